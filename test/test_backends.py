"""Backends agree numerically (torch vs ONNX Runtime here; TensorRT where installed), the engine-cache key
logic, and every error path that can be reached without a GPU."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from mnm_core.backends import create_backend
from mnm_core.backends.engine_cache import (
    DEFAULT_PROFILE,
    EngineKey,
    cached_engine,
    check_engine_file,
    engine_path,
    in_profile,
    profile_for,
    read_sidecar,
    sidecar_path,
    timing_cache_path,
    write_engine,
)
from mnm_core.backends.onnxruntime_backend import OnnxRuntimeBackend, choose_providers
from mnm_core.backends.tensorrt_backend import device_index
from mnm_core.errors import BackendError
from mnm_core.export import export_onnx
from mnm_core.pipeline import Fuser
from test.test_export import random_vgii

SIZES = [(64, 96), (40, 56)]
"""A real-sized input and the padded size of an odd one (37×53 → 40×56), both unlike the traced 64×96 graph."""


def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(out - ref) / np.linalg.norm(ref))


def random_inputs(n_atoms: int, size: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.random((1, 1, *size), dtype=np.float32)
    gamma = (0.5 + rng.random((1, n_atoms))).astype(np.float32)
    beta = (0.1 * rng.standard_normal((1, n_atoms))).astype(np.float32)
    return y, gamma, beta


@pytest.fixture(scope="module", params=["tiny", "small"])
def variants(request, tmp_path_factory):
    """(model, fp32 ONNX, fp16 ONNX) of a random model of each preset."""
    folder = tmp_path_factory.mktemp(request.param)
    model = random_vgii(request.param)
    return model, export_onnx(model, folder / "fp32.onnx"), export_onnx(model, folder / "fp16.onnx", precision="fp16")


@pytest.mark.parametrize("size", SIZES)
def test_onnxruntime_matches_torch(variants, size):
    model, fp32, fp16 = variants
    inputs = random_inputs(model.config.n_atoms, size)
    reference = create_backend("torch", model).run(*inputs)
    for ref in reference:  # non-trivial outputs: not clamped to a constant
        assert np.mean((ref > 0) & (ref < 1)) > 0.9 and ref.std() > 1e-2
    for out, ref in zip(create_backend("onnxruntime", model, onnx_path=fp32).run(*inputs), reference):
        assert out.shape == ref.shape and out.dtype == np.float32
        assert relative_error(out, ref) < 1e-4
    half = create_backend("onnxruntime", model, precision="fp16", onnx_path=fp16)
    assert half.describe() == "onnxruntime fp16 (CPU)"
    for out, ref in zip(half.run(*inputs), reference):
        assert relative_error(out, ref) < 1e-2


def test_torch_fp16_matches_fp32(variants):
    model = variants[0]
    inputs = random_inputs(model.config.n_atoms, SIZES[1])
    for out, ref in zip(create_backend("torch", model, precision="fp16").run(*inputs),
                        create_backend("torch", model).run(*inputs)):
        assert relative_error(out, ref) < 1e-2


def test_cached_export_and_fuser(tmp_path):
    """An empty onnx_path exports once to the cache folder and the Fuser runs on it like on torch."""
    model = random_vgii("tiny")
    backend = create_backend("onnxruntime", model, onnx_path="", cache_dir=str(tmp_path))
    cached = list((tmp_path / "onnx").glob("*.onnx"))
    assert len(cached) == 1 and backend.path == cached[0]
    stamp = cached[0].stat().st_mtime_ns
    create_backend("onnxruntime", model, onnx_path="", cache_dir=str(tmp_path))
    assert cached[0].stat().st_mtime_ns == stamp
    frame = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    with Fuser(backend) as onnx_fuser, Fuser(create_backend("torch", model)) as torch_fuser:
        got, want = onnx_fuser.process(frame), torch_fuser.process(frame)
    assert got.fused.shape == frame.shape and got.pseudo_ir.shape == frame.shape[:2]
    assert np.abs(got.fused.astype(int) - want.fused).max() <= 1
    assert np.abs(got.pseudo_ir.astype(int) - want.pseudo_ir).max() <= 1


def test_backend_errors(tmp_path):
    model = random_vgii("tiny")
    fp32 = export_onnx(model, tmp_path / "m.onnx")
    with pytest.raises(BackendError, match="unknown backend 'tflite'"):
        create_backend("tflite", model)
    with pytest.raises(BackendError, match="unknown options"):
        create_backend("onnxruntime", model, onnx_path=fp32, engine_path="x")
    with pytest.raises(BackendError, match=r"fp32 export but fp16 was asked for.*--fp16"):
        create_backend("onnxruntime", model, precision="fp16", onnx_path=fp32)
    with pytest.raises(BackendError, match=r"does not exist.*mnm export"):
        OnnxRuntimeBackend(tmp_path / "missing.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage")
    with pytest.raises(BackendError, match="re-export"):
        OnnxRuntimeBackend(corrupt)
    backend = OnnxRuntimeBackend(fp32)
    y, gamma, beta = random_inputs(8, (40, 52))
    with pytest.raises(BackendError, match=r"not a multiple of 8.*pad"):
        backend.run(y, gamma, beta)
    with pytest.raises(BackendError, match="gamma/beta must be 1×8"):
        backend.run(y[..., :48], gamma[:, :4], beta)
    with pytest.raises(BackendError, match="onnxruntime-gpu"):
        choose_providers("cuda", ["CPUExecutionProvider"])
    assert choose_providers("cuda:0", ["CUDAExecutionProvider", "CPUExecutionProvider"])[0] == "CUDAExecutionProvider"
    with pytest.raises(BackendError, match="CUDA device"):
        device_index("cpu")
    assert device_index("cuda:1") == 1


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_tensorrt_not_installed_says_what_to_do(tmp_path):
    model = random_vgii("tiny")
    with pytest.raises(BackendError, match=r"pip install tensorrt.*JetPack|JetPack.*pip install tensorrt"):
        create_backend("tensorrt", model, device="cuda", onnx_path="", cache_dir=str(tmp_path))
    assert not (tmp_path / "onnx").exists()  # fails before spending time on an export


def key(**changes) -> EngineKey:
    fields = dict(onnx_sha256="ab" * 32, tensorrt_version="10.3.0", gpu_name="Orin (nvgpu)",
                  compute_capability="8.7", precision="fp16", profile=DEFAULT_PROFILE)
    return EngineKey(**{**fields, **changes})


def test_engine_key_and_paths(tmp_path):
    base = key()
    assert base.digest() == key().digest() and EngineKey.from_dict(json.loads(json.dumps(base.as_dict()))) == base
    variants = [key(tensorrt_version="11.0.0"), key(gpu_name="NVIDIA H100"), key(compute_capability="9.0"),
                key(precision="fp32"), key(onnx_sha256="cd" * 32), key(profile=profile_for([(512, 640)]))]
    paths = {engine_path(tmp_path, k) for k in [base, *variants]}
    assert len(paths) == 7 and all(p.suffix == ".engine" and p.parent == tmp_path / "engines" for p in paths)
    assert timing_cache_path(tmp_path, base) == timing_cache_path(tmp_path, key(precision="fp32"))
    assert timing_cache_path(tmp_path, base) != timing_cache_path(tmp_path, key(tensorrt_version="11.0.0"))
    assert profile_for([(512, 640), (256, 320), (1024, 1280)]) == ((256, 320), (512, 640), (1024, 1280))
    assert profile_for(None) == DEFAULT_PROFILE
    assert in_profile(DEFAULT_PROFILE, 720, 1280) and not in_profile(DEFAULT_PROFILE, 2160, 3840)


def test_engine_cache_hits_misses_and_sidecar(tmp_path):
    wanted = key()
    assert cached_engine(tmp_path, wanted) is None
    engine = write_engine(engine_path(tmp_path, wanted), b"serialised engine", wanted, build_s=12.3)
    sidecar = json.loads(sidecar_path(engine).read_text())
    assert sidecar["key"]["gpu_name"] == "Orin (nvgpu)" and sidecar["engine_bytes"] == 17
    assert read_sidecar(engine) == wanted and cached_engine(tmp_path, wanted) == engine
    # A changed key maps to another file: it is built fresh, never loaded from the old one.
    assert cached_engine(tmp_path, key(tensorrt_version="11.0.0")) is None
    # A sidecar that disagrees with its file name (copied by hand), or is unreadable, forces a rebuild.
    sidecar_path(engine).write_text(json.dumps({"key": key(gpu_name="other").as_dict()}))
    assert cached_engine(tmp_path, wanted) is None
    sidecar_path(engine).write_text("{not json")
    assert read_sidecar(engine) is None and cached_engine(tmp_path, wanted) is None


def test_explicit_engine_file_errors(tmp_path):
    wanted = key()
    engine = tmp_path / "model.engine"
    with pytest.raises(BackendError, match=r"does not exist.*mnm export --engine"):
        check_engine_file(engine, wanted)
    engine.write_bytes(b"engine")
    with pytest.raises(BackendError, match="no readable sidecar"):
        check_engine_file(engine, wanted)
    write_engine(engine, b"engine", key(gpu_name="NVIDIA GeForce RTX 4090", compute_capability="8.9",
                                        tensorrt_version="10.0.1"), build_s=1.0)
    with pytest.raises(BackendError, match=r"TensorRT 10.0.1, this is TensorRT 10.3.0.*RTX 4090.*Orin.*rebuild"):
        check_engine_file(engine, wanted)
    write_engine(engine, b"engine", wanted, build_s=1.0)
    check_engine_file(engine, wanted)


def test_bench_json_rows(tmp_path, capsys):
    from mnm_core.cli import main

    assert main(["bench", "--json", "--presets", "tiny", "--sizes", "64x48", "--repeats", "2", "--warmup", "1",
                 "--cache-dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(r["backend"], r["precision"], r["preset"], r["width"], r["height"]): r for r in report["results"]}
    assert set(rows) == {("torch", "fp32", "tiny", 64, 48), ("onnxruntime", "fp32", "tiny", 64, 48)}
    for row in rows.values():
        assert row["repeats"] == 2 and row["warmup"] == 1 and row["p99_ms"] >= row["median_ms"] > 0
        assert row["fps"] == pytest.approx(1e3 / row["median_ms"]) and row["memory"] == "host RSS"
    assert report["machine"]["cpu_count"] >= 1 and any("tiny" in note for note in report["notes"])


def cuda_tensorrt_available() -> bool:
    if importlib.util.find_spec("tensorrt") is None or importlib.util.find_spec("pycuda") is None:
        return False
    import pycuda.driver as cuda

    try:
        cuda.init()
        return cuda.Device.count() > 0
    except cuda.Error:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_tensorrt_available(), reason="needs TensorRT, pycuda and a CUDA GPU (none here)")
def test_tensorrt_matches_torch_and_caches(tmp_path, variants):
    model, fp32, fp16 = variants
    inputs = random_inputs(model.config.n_atoms, SIZES[0])
    reference = create_backend("torch", model).run(*inputs)
    sizes = [SIZES[0], SIZES[1]]
    backend = create_backend("tensorrt", model, device="cuda", onnx_path=fp32, cache_dir=str(tmp_path), sizes=sizes)
    for out, ref in zip(backend.run(*inputs), reference):
        assert relative_error(out, ref) < 1e-3
    engines = list((tmp_path / "engines").glob("*.engine"))
    assert len(engines) == 1 and sidecar_path(engines[0]).is_file()
    stamp = engines[0].stat().st_mtime_ns
    again = create_backend("tensorrt", model, device="cuda", onnx_path=fp32, cache_dir=str(tmp_path), sizes=sizes)
    assert engines[0].stat().st_mtime_ns == stamp  # loaded, not rebuilt
    with pytest.raises(BackendError, match="outside the TensorRT engine's profile"):
        again.run(*random_inputs(model.config.n_atoms, (128, 160)))
    engines[0].write_bytes(b"corrupt")  # deserialisation fails → rebuilt
    create_backend("tensorrt", model, device="cuda", onnx_path=fp32, cache_dir=str(tmp_path), sizes=sizes)
    assert engines[0].stat().st_size > 1000
    half = create_backend("tensorrt", model, device="cuda", precision="fp16", onnx_path=fp16,
                          cache_dir=str(tmp_path), sizes=sizes)
    for out, ref in zip(half.run(*inputs), reference):
        assert relative_error(out, ref) < 1e-2

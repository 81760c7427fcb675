"""int8 (ONNX Runtime static quantisation) and bf16 (torch) fast paths: files, backends, errors, `mnm bench` rows.

A random tiny model and the made-up pairs of conftest's `pair_root`; calibration crops are 48×64, so each
quantisation takes about a second.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from mnm_core import calibration
from mnm_core.backends import create_backend
from mnm_core.backends.tensorrt_backend import TensorRtBackend
from mnm_core.calibration import calibration_images
from mnm_core.cli import main
from mnm_core.colour import luminance
from mnm_core.config import TextConfig
from mnm_core.errors import BackendError, DataError
from mnm_core.export import INPUT_NAMES, OUTPUT_NAMES, export_onnx, read_metadata
from mnm_core.quantize import FALLBACK_RANDOM, calibration_samples, quantize_int8
from test.test_export import random_vgii

SIZE = (48, 64)
"""H×W of the calibration crops (the pairs are 40×40: scaled up to cover it)."""


@pytest.fixture(scope="module")
def folders(pair_root):
    return [pair_root / "synth_a", pair_root / "synth_b"]


@pytest.fixture(scope="module")
def images(folders):
    return calibration_images(folders, count=6, size=SIZE)


@pytest.fixture(scope="module")
def frames(images):
    """The calibration crops' visible Y, 1×1×H×W."""
    return [luminance(image)[None, None] for image in images]


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, images):
    """(model, fp32 export, int8 file quantised from it)."""
    folder = tmp_path_factory.mktemp("int8")
    model = random_vgii("tiny")
    fp32 = export_onnx(model, folder / "fp32.onnx")
    samples = calibration_samples(model, images, TextConfig(encoder="none"))
    return model, fp32, quantize_int8(fp32, folder / "int8.onnx", samples)


@pytest.fixture
def calibration_folders(monkeypatch, folders):
    """Make the default calibration folders (the shared training sets) the made-up pairs."""
    monkeypatch.setattr(calibration, "default_calibration_folders", lambda: folders)


def test_calibration_images(folders, images, tmp_path):
    assert len(images) == 6
    assert all(i.shape == (*SIZE, 3) and i.dtype == np.float32 and 0 <= i.min() <= i.max() <= 1 for i in images)
    assert all(np.array_equal(a, b) for a, b in zip(images, calibration_images(folders, count=6, size=SIZE)))
    plain = calibration_images([folders[0] / "vis"], count=2, size=(32, 32))  # a folder of images, no pairs
    assert len(plain) == 2 and plain[0].shape == (32, 32, 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no calibration images"):
        calibration_images([tmp_path / "empty"])
    with pytest.raises(DataError, match="does not exist"):
        calibration_images([tmp_path / "missing"])


def test_calibration_samples_carry_the_modulations_the_pipeline_feeds(images):
    """Identity plus each crop's own text modulation (MiniLM, the node's slow path) for a model that
    takes its features; random bounded ones instead where there is no usable text path."""
    model = random_vgii("fast")  # 384-d text features: MiniLM's
    with torch.no_grad():  # untrained heads give the identity for any text
        for parameter in [*model.gamma_head.parameters(), *model.beta_head.parameters()]:
            parameter.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(parameter.numel()))
    samples = calibration_samples(model, images[:2], TextConfig(encoder="minilm"), random_per_frame=1)
    bound = model.config.modulation_bound
    for sample, image in zip(samples, images):
        np.testing.assert_array_equal(sample.y[0, 0], luminance(image))
        (gamma0, beta0), (gamma1, beta1), (gamma2, beta2) = sample.modulations
        assert (gamma0 == 1).all() and (beta0 == 0).all()
        assert not np.allclose(gamma1, 1) and np.abs(gamma1 - 1).max() <= bound and np.abs(beta1).max() <= bound
        assert np.abs(gamma2 - 1).max() <= bound and np.abs(beta2).max() <= bound
    tiny = random_vgii("tiny")  # 16-d text features: MiniLM does not fit, so random ones stand in
    for text in (TextConfig(encoder="minilm"), TextConfig(encoder="none")):
        sample = calibration_samples(tiny, images[:1], text)[0]
        assert len(sample.modulations) == 1 + FALLBACK_RANDOM


def test_int8_file_metadata_ops_and_io(quantized):
    _, fp32, int8 = quantized
    source, meta = read_metadata(fp32), read_metadata(int8)
    assert meta.precision == "int8" and meta.checkpoint_hash == source.checkpoint_hash
    assert (meta.preset, meta.n_atoms, meta.sizes) == (source.preset, source.n_atoms, source.sizes)
    graph = onnx.load(str(int8)).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert [i.name for i in graph.input] == list(INPUT_NAMES) and [o.name for o in graph.output] == list(OUTPUT_NAMES)
    float32 = onnx.TensorProto.FLOAT
    assert all(v.type.tensor_type.elem_type == float32 for v in [*graph.input, *graph.output])
    # Convs with several input and output channels take per-channel int8 weights; thin ones (one input or
    # output channel, or a weight the graph computes) stay float: faster so on AVX2 (mnm_core.quantize).
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    quantized, kept = 0, 0
    for conv in (node for node in graph.node if node.op_type == "Conv"):
        weights = initializers.get(conv.input[1])
        if weights is not None or producers[conv.input[1]].op_type != "DequantizeLinear":
            assert weights is None or min(weights.shape[:2]) == 1
            kept += 1
            continue
        dequantize = producers[conv.input[1]]
        weights, scale = initializers[dequantize.input[0]], initializers[dequantize.input[1]]
        assert weights.dtype == np.int8 and scale.shape == (weights.shape[0],) and min(weights.shape[:2]) > 1
        quantized += 1
    assert quantized > kept > 0


def test_int8_runs_in_onnxruntime_close_to_fp32(quantized, frames):
    model, fp32, int8 = quantized
    backend = create_backend("onnxruntime", model, precision="int8", onnx_path=str(int8))
    reference = create_backend("onnxruntime", model, onnx_path=str(fp32))
    assert backend.describe() == "onnxruntime int8 (CPU)"
    n_atoms = model.config.n_atoms
    gamma, beta = np.ones((1, n_atoms), np.float32), np.zeros((1, n_atoms), np.float32)
    for frame in frames[:3]:
        for out, ref in zip(backend.run(frame, gamma, beta), reference.run(frame, gamma, beta)):
            assert out.dtype == np.float32 and out.shape == ref.shape
            assert np.abs(out - ref).mean() < 0.01  # measured 0.002 (fp32 outputs have std ≈ 0.1)
    with pytest.raises(BackendError, match=r"int8 export but fp32 was asked for.*mnm export --out"):
        create_backend("onnxruntime", model, onnx_path=str(int8))
    with pytest.raises(BackendError, match=r"fp32 export but int8 was asked for.*mnm export --int8"):
        create_backend("onnxruntime", model, precision="int8", onnx_path=str(fp32))


def test_int8_from_the_shipped_file_or_the_cache(quantized, calibration_folders, monkeypatch, tmp_path):
    model, _, int8 = quantized
    from mnm_core import quantize

    shipped = tmp_path / "weights" / "mnm_tiny.int8.onnx"
    monkeypatch.setattr(quantize, "shipped_int8_path", lambda preset: shipped)
    shipped.parent.mkdir()
    shipped.write_bytes(int8.read_bytes())
    assert create_backend("onnxruntime", model, precision="int8", cache_dir=str(tmp_path)).path == shipped
    # A shipped file of other weights is not used: the model is calibrated into the cache, once.
    other = random_vgii("tiny", seed=1)
    backend = create_backend("onnxruntime", other, precision="int8", cache_dir=str(tmp_path))
    assert backend.path.parent == tmp_path / "onnx" and backend.path.name.endswith("-int8.onnx")
    stamp = backend.path.stat().st_mtime_ns
    again = create_backend("onnxruntime", other, precision="int8", cache_dir=str(tmp_path))
    assert again.path == backend.path and backend.path.stat().st_mtime_ns == stamp


def test_int8_without_calibration_data_says_how_to_make_one(monkeypatch, tmp_path):
    monkeypatch.setattr(calibration, "default_calibration_folders", lambda: [])
    with pytest.raises(BackendError, match=r"no calibration data.*mnm export --int8.*--calibration DIR.*onnx_path"):
        create_backend("onnxruntime", random_vgii("tiny"), precision="int8", cache_dir=str(tmp_path))
    assert main(["export", "--preset", "tiny", "--int8", "--out", str(tmp_path / "q.onnx")]) == 1


def test_cli_export_int8(folders, tmp_path, caplog):
    out = tmp_path / "q.onnx"
    calibration_args = ["--calibration", *map(str, folders)]
    assert main(["export", "--preset", "tiny", "--int8", *calibration_args, "--size", "64x48", "--out", str(out)]) == 0
    assert read_metadata(out).precision == "int8" and read_metadata(out).sizes == ((48, 64),)
    caplog.clear()
    assert main(["export", "--preset", "tiny", "--int8", "--calibration", str(tmp_path / "none"),
                 "--out", str(out)]) == 1
    assert "calibration folder" in caplog.text and "does not exist" in caplog.text
    caplog.clear()
    assert main(["export", "--preset", "tiny", *calibration_args, "--out", str(out)]) == 1
    assert "int8 exports only" in caplog.text
    caplog.clear()
    assert main(["export", "--preset", "tiny", "--int8", *calibration_args, "--engine", str(tmp_path / "e"),
                 "--out", str(out)]) == 1
    assert "does not take int8" in caplog.text


def test_backends_refuse_precisions_they_cannot_run(quantized, tmp_path):
    model, _, int8 = quantized
    with pytest.raises(BackendError, match=r"tensorrt backend does not take int8.*--fp16.*onnxruntime"):
        create_backend("tensorrt", model, precision="int8", device="cuda", cache_dir=str(tmp_path))
    with pytest.raises(BackendError, match="tensorrt backend does not take int8"):
        TensorRtBackend(int8)  # the file's precision, checked before TensorRT is imported
    with pytest.raises(BackendError, match=r"no bf16.*backend torch with precision bf16"):
        create_backend("onnxruntime", model, precision="bf16", cache_dir=str(tmp_path))
    with pytest.raises(BackendError, match=r"torch backend has no int8.*onnxruntime"):
        create_backend("torch", model, precision="int8")
    assert not (tmp_path / "onnx").exists()  # refused before any export


def test_torch_bf16_close_to_fp32(frames):
    model = random_vgii("tiny")
    backend = create_backend("torch", model, precision="bf16")
    assert backend.describe() == "torch bf16 (cpu)"
    n_atoms = model.config.n_atoms
    gamma, beta = np.ones((1, n_atoms), np.float32), np.zeros((1, n_atoms), np.float32)
    reference = create_backend("torch", model)
    for out, ref in zip(backend.run(frames[0], gamma, beta), reference.run(frames[0], gamma, beta)):
        assert out.dtype == np.float32 and out.shape == ref.shape
        assert np.abs(out - ref).mean() < 0.005  # measured 0.001


def test_bench_int8_and_bf16_rows(calibration_folders, tmp_path, capsys):
    assert main(["bench", "--json", "--presets", "tiny", "--sizes", "64x48", "--repeats", "1", "--warmup", "1",
                 "--precisions", "fp32", "int8", "bf16", "--cache-dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(r["backend"], r["precision"]) for r in report["results"]}
    assert rows == {("torch", "fp32"), ("torch", "bf16"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")}
    notes = "\n".join(report["notes"])
    assert "skipped torch int8 tiny" in notes and "skipped onnxruntime bf16 tiny" in notes
    assert "onnxruntime int8 tiny: " in notes and "-int8.onnx" in notes

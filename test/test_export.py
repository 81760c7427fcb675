"""ONNX export of the fast path: op set TensorRT supports (every preset), names, dynamic sizes, metadata, cache."""

from __future__ import annotations

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from mnm_core.cli import main
from mnm_core.config import PRESETS
from mnm_core.errors import BackendError, ExportError
from mnm_core.export import OPSET, cached_onnx, export_onnx, model_hash, read_metadata, unsupported_ops
from mnm_core.model import VgiiModel
from test.conftest import random_dictionary


def random_vgii(preset: str, seed: int = 0) -> VgiiModel:
    """A VgiiModel with random weights and a random dictionary of positive, blur-like atoms.

    An untrained model has D = 0 and trivial outputs; with unit-norm random atoms the random U-Nets
    saturate the clamp. Positive atoms and a damped RIN output and tail refinement keep both outputs
    inside (0, 1) and varying, so parity is tested on real values.
    """
    torch.manual_seed(seed)
    model = VgiiModel(PRESETS[preset]).eval()
    n_atoms, size = model.config.n_atoms, model.config.atom_size
    atoms = torch.rand(n_atoms, size, size, generator=torch.Generator().manual_seed(seed))
    model.set_dictionary(atoms / atoms.sum(dim=(1, 2), keepdim=True) * 4 / n_atoms)
    with torch.no_grad():
        for conv in (model.rin.unet.out, model.tail.refine[-1]):
            conv.weight.mul_(0.1)
            conv.bias.mul_(0.1)
    return model


def dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """preset → fp32 export of a random model (the paper preset too: the op check covers every preset)."""
    folder = tmp_path_factory.mktemp("onnx")
    names = ("tiny", "fast", "small", "paper")
    return {name: export_onnx(random_vgii(name), folder / f"{name}.onnx") for name in names}


@pytest.mark.parametrize("preset", ["tiny", "fast", "small", "paper"])
def test_every_preset_uses_only_tensorrt_ops(exported, preset):
    graph = onnx.load(str(exported[preset]))
    onnx.checker.check_model(graph)
    ops = {node.op_type for node in graph.graph.node}
    assert not unsupported_ops(graph), f"ops outside the TensorRT list: {unsupported_ops(graph)}"
    assert {"Conv", "ConvTranspose", "Slice", "Concat"} <= ops  # the real network, not an empty graph
    assert not ops & {"DFT", "Loop", "If", "Scan", "ScatterND", "Einsum"}


def test_fp16_variant_uses_only_tensorrt_ops_and_keeps_fp32_io(tmp_path):
    path = export_onnx(random_vgii("tiny"), tmp_path / "tiny16.onnx", precision="fp16")
    graph = onnx.load(str(path))
    assert not unsupported_ops(graph)
    assert read_metadata(path).precision == "fp16"
    assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in [*graph.graph.input, *graph.graph.output])
    assert any(init.data_type == TensorProto.FLOAT16 for init in graph.graph.initializer)


def test_names_opset_dynamic_sizes_and_metadata(exported):
    graph = onnx.load(str(exported["small"]))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) == OPSET >= 17
    inputs = {v.name: dims(v) for v in graph.graph.input}
    outputs = {v.name: dims(v) for v in graph.graph.output}
    assert list(inputs) == ["y", "gamma", "beta"] and list(outputs) == ["pseudo_ir", "fused_y"]
    assert inputs["y"][:2] == [1, 1] and all(isinstance(d, str) for d in inputs["y"][2:])
    assert inputs["gamma"] == inputs["beta"] == [1, 32]
    assert all(isinstance(d, str) for d in outputs["fused_y"][2:])
    meta = read_metadata(exported["small"])
    assert (meta.preset, meta.n_atoms, meta.text_dim, meta.size_multiple, meta.precision, meta.sizes) == (
        "small", 32, 384, 8, "fp32", ())
    assert meta.checkpoint_hash == model_hash(random_vgii("small"))


def test_fixed_sizes(tmp_path):
    model = random_vgii("tiny")
    single = export_onnx(model, tmp_path / "one.onnx", sizes=[(48, 64)])
    assert dims(onnx.load(str(single)).graph.input[0]) == [1, 1, 48, 64]
    meta = read_metadata(single)
    meta.check_size(48, 64)
    with pytest.raises(BackendError, match=r"not one of the sizes.*--size 64x56"):
        meta.check_size(56, 64)
    several = read_metadata(export_onnx(model, tmp_path / "two.onnx", sizes=[(48, 64), (256, 320)]))
    assert several.sizes == ((48, 64), (256, 320))
    with pytest.raises(ExportError, match="multiple of 8"):
        export_onnx(model, tmp_path / "bad.onnx", sizes=[(50, 64)])


def test_unsupported_ops_are_found_in_nested_graphs():
    def node(op: str, **kwargs) -> onnx.NodeProto:
        return helper.make_node(op, ["x"], ["z"], **kwargs)

    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    result = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])
    branch = helper.make_graph([node("DFT")], "branch", [], [result])
    graph = helper.make_graph([node("Relu"), node("If", then_branch=branch, else_branch=branch), node("ScatterND")],
                              "g", [value], [value])
    assert unsupported_ops(helper.make_model(graph)) == {"If", "DFT", "ScatterND"}


def test_read_metadata_errors(tmp_path, exported):
    with pytest.raises(BackendError, match=r"does not exist.*mnm export"):
        read_metadata(tmp_path / "missing.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(exported["tiny"].read_bytes()[:1000])
    with pytest.raises(BackendError, match=r"corrupt.*re-export"):
        read_metadata(corrupt)
    foreign = tmp_path / "foreign.onnx"
    graph = onnx.load(str(exported["tiny"]))
    del graph.metadata_props[:]
    onnx.save(graph, str(foreign))
    with pytest.raises(BackendError, match="not an mnm export"):
        read_metadata(foreign)


def test_model_hash_follows_the_weights():
    model = random_vgii("tiny")
    assert model_hash(model) == model_hash(random_vgii("tiny"))
    model.set_dictionary(random_dictionary(8, 5))
    assert model_hash(model) != model_hash(random_vgii("tiny"))


def test_cached_export_is_reused_and_repaired(tmp_path):
    model = random_vgii("tiny")
    first = cached_onnx(model, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert cached_onnx(model, tmp_path) == first and first.stat().st_mtime_ns == stamp
    first.write_bytes(b"not onnx")
    assert cached_onnx(model, tmp_path) == first and read_metadata(first).preset == "tiny"
    other = random_vgii("tiny", seed=3)
    assert cached_onnx(other, tmp_path) != first


def test_cli_export_from_checkpoint_and_preset(tmp_path, caplog):
    from mnm_core.checkpoint import CheckpointInfo, save_checkpoint

    model = random_vgii("tiny")
    checkpoint = save_checkpoint(tmp_path / "tiny.safetensors", model,
                                 CheckpointInfo(kind="vgii", preset="tiny", model_config=model.config))
    out = tmp_path / "from_ckpt.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--fp16", "--out", str(out)]) == 0
    meta = read_metadata(out)
    assert (meta.preset, meta.precision, meta.checkpoint_hash) == ("tiny", "fp16", model_hash(model))
    assert main(["export", "--preset", "tiny", "--size", "96x64", "--out", str(tmp_path / "p.onnx")]) == 0
    assert read_metadata(tmp_path / "p.onnx").sizes == ((64, 96),)
    assert main(["export", "--preset", "tiny", "--size", "95x64", "--out", str(tmp_path / "q.onnx")]) == 1
    assert "multiple of 8" in caplog.text


@pytest.mark.parametrize("where", ["/proc/x.onnx", "file/x.onnx", "folder"])
def test_cli_export_to_an_unwritable_place_is_one_message(where, tmp_path, caplog):
    """/proc is not writable, a file cannot hold a folder, a folder is not a file: no traceback."""
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    out = where if where.startswith("/") else str(tmp_path / where)
    assert main(["export", "--preset", "tiny", "--out", out]) == 1
    assert f"cannot write {out}" in caplog.text and "Traceback" not in caplog.text


def test_cli_engine_without_tensorrt_says_what_to_do(tmp_path, caplog):
    pytest.importorskip("onnx")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed here; the engine path is tested in test_backends.py")
    except ImportError:
        pass
    out = tmp_path / "t.onnx"
    assert main(["export", "--preset", "tiny", "--out", str(out), "--engine", str(tmp_path / "t.engine")]) == 1
    assert out.is_file()  # the ONNX file is still written
    assert "pip install tensorrt" in caplog.text and not (tmp_path / "t.engine").exists()

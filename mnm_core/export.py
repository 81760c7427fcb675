"""Export of the fast path to ONNX (DESIGN.md §2): y, γ, β → pseudo-IR, fused Y, with D as a constant.

The graph is traced with the TorchScript exporter (`dynamo=False`) and then simplified with onnxsim.
Both exporters of torch 2.13 give the same op set after simplification (Conv, ConvTranspose, Slice,
Concat, Relu, Add/Sub/Mul, Sigmoid, Clip), with dynamic height and width; the TorchScript one does it
in 3–10 s on two CPU cores where the dynamo exporter (torch.export) needs ~30 s even for the tiny
preset, and the Fuser exports on first start. Parity tests at sizes other than the traced one prove the
dynamic dimensions.

Every file carries `metadata_props` that the backends read back (`read_metadata`): preset, n_atoms,
text_dim, size multiple, precision, fixed sizes, mnm version and the hash of the model state.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mnm_core import __version__
from mnm_core.config import PRESETS, SIZE_MULTIPLE, ModelConfig
from mnm_core.errors import BackendError, ExportError

LOGGER = logging.getLogger(__name__)

OPSET = 18
INPUT_NAMES = ("y", "gamma", "beta")
OUTPUT_NAMES = ("pseudo_ir", "fused_y")
PRECISIONS = ("fp32", "fp16")
TRACE_SIZE = (64, 96)
"""H×W of the example input a dynamic graph is traced at (any multiple of 8 would do)."""

TENSORRT_OPS = frozenset({
    "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Conv",
    "ConvTranspose", "Div", "Elu", "Erf", "Exp", "Expand", "Flatten", "Gather", "Gemm",
    "GlobalAveragePool", "Identity", "InstanceNormalization", "LeakyRelu", "MatMul", "Max", "MaxPool",
    "Min", "Mul", "Neg", "Pad", "PRelu", "Pow", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Resize",
    "Shape", "Sigmoid", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose",
    "Unsqueeze", "Where",
})
"""ONNX ops the fast path may use: a subset of what TensorRT 10's ONNX parser supports. Deliberately
absent: DFT/STFT (FFT), linear algebra (Einsum over solvers, Det, ...), Loop/If/Scan and ScatterND."""


@dataclass(frozen=True)
class OnnxMetadata:
    """What an exported file says about itself (its `metadata_props`)."""

    preset: str
    n_atoms: int
    text_dim: int
    size_multiple: int
    precision: str
    mnm_version: str
    checkpoint_hash: str
    sizes: tuple[tuple[int, int], ...] = ()
    """Fixed H×W sizes the file was exported for; empty = any multiple of `size_multiple`."""

    def as_props(self) -> dict[str, str]:
        return {
            "mnm_preset": self.preset,
            "mnm_n_atoms": str(self.n_atoms),
            "mnm_text_dim": str(self.text_dim),
            "mnm_size_multiple": str(self.size_multiple),
            "mnm_precision": self.precision,
            "mnm_version": self.mnm_version,
            "mnm_checkpoint_hash": self.checkpoint_hash,
            "mnm_sizes": ",".join(f"{h}x{w}" for h, w in self.sizes),
        }

    @classmethod
    def from_props(cls, props: dict[str, str], path: Path) -> OnnxMetadata:
        try:
            sizes = tuple(tuple(int(v) for v in s.split("x")) for s in props["mnm_sizes"].split(",") if s)
            return cls(preset=props["mnm_preset"], n_atoms=int(props["mnm_n_atoms"]),
                       text_dim=int(props["mnm_text_dim"]), size_multiple=int(props["mnm_size_multiple"]),
                       precision=props["mnm_precision"], mnm_version=props["mnm_version"],
                       checkpoint_hash=props["mnm_checkpoint_hash"], sizes=sizes)  # type: ignore[arg-type]
        except (KeyError, ValueError) as exc:
            raise BackendError(f"{path} is an ONNX file but not an mnm export (metadata {exc} missing or bad); "
                               "re-export it with `mnm export`") from exc

    def check_size(self, height: int, width: int) -> None:
        """Raise BackendError when an H×W input does not fit this export."""
        if self.sizes and (height, width) not in self.sizes:
            listed = ", ".join(f"{w}×{h}" for h, w in self.sizes)
            raise BackendError(f"input {width}×{height} (W×H) is not one of the sizes this model was exported for "
                               f"({listed}); re-export with `mnm export --size {width}x{height}` or without --size")
        if height % self.size_multiple or width % self.size_multiple:
            raise BackendError(f"input {width}×{height} (W×H) is not a multiple of {self.size_multiple}; "
                               "pad it first (mnm_core.colour.pad_to_multiple)")


class _HalfPrecision(nn.Module):
    """fp32 inputs and outputs around an fp16 model: every variant has the same I/O types."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pseudo_ir, fused_y = self.model(y.half(), gamma.half(), beta.half())
        return pseudo_ir.float(), fused_y.float()


def model_hash(model: nn.Module) -> str:
    """SHA-256 of a model's state (names, dtypes, shapes, values): the identity of the weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def preset_of(config: ModelConfig) -> str:
    """The name of the preset `config` equals, or 'custom'."""
    return next((name for name, candidate in PRESETS.items() if candidate == config), "custom")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_onnx(model: nn.Module, path: str | Path, precision: str = "fp32",
                sizes: list[tuple[int, int]] | None = None, preset: str | None = None,
                simplify: bool = True) -> Path:
    """Export a VgiiModel's fast path to `path` (written atomically) and return the path.

    `sizes`: None or empty = dynamic H×W (multiples of 8); one size = a static graph; several = a
    dynamic graph whose metadata lists them (backends accept only those; TensorRT builds its profile
    from them). Raises ExportError when tracing, simplifying or the op check fails.
    """
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; use fp32 or fp16")
    sizes = [tuple(s) for s in sizes or []]
    for height, width in sizes:
        if height < SIZE_MULTIPLE or width < SIZE_MULTIPLE or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ExportError(f"size {width}×{height} (W×H) is not a positive multiple of {SIZE_MULTIPLE}; round it up "
                              "as the Fuser pads frames (1280×720 stays 1280x720, 1920×1080 becomes 1920x1088)")
    path = Path(path)
    check_writable(path)  # before tracing: a bad --out fails at once
    config = model.config
    metadata = OnnxMetadata(preset=preset or preset_of(config), n_atoms=config.n_atoms, text_dim=config.text_dim,
                            size_multiple=SIZE_MULTIPLE, precision=precision, mnm_version=__version__,
                            checkpoint_hash=model_hash(model), sizes=tuple(sizes))  # type: ignore[arg-type]
    graph = _trace(model, precision, sizes[0] if len(sizes) == 1 else TRACE_SIZE, dynamic=len(sizes) != 1)
    if simplify:
        graph = _simplify(graph)
    bad = unsupported_ops(graph)
    if bad:
        raise ExportError(f"the exported graph uses ops TensorRT 10 does not support: {sorted(bad)}; "
                          "the fast path must stay conv-only (DESIGN.md §2)")
    save_onnx(graph, metadata, path)
    LOGGER.info("exported %s (%s, %s, %s) → %s", metadata.preset, precision,
                "dynamic H×W" if not sizes else "sizes " + metadata.as_props()["mnm_sizes"],
                f"{path.stat().st_size / 1e6:.1f} MB", path)
    return path


def save_onnx(graph, metadata: OnnxMetadata, path: Path) -> None:
    """Write an ONNX ModelProto to `path` atomically, with `metadata` as its only metadata_props."""
    import onnx

    del graph.metadata_props[:]
    for key, value in metadata.as_props().items():
        graph.metadata_props.add(key=key, value=value)
    graph.producer_name, graph.producer_version = "mnm", __version__
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        onnx.save(graph, str(tmp))
        tmp.replace(path)  # atomic: a reader never sees half a file
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc


def check_writable(path: Path) -> None:
    """ExportError unless `path` can be written: its folder exists (or can be made) and is writable."""
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a folder; give a file name such as {path / 'mnm.onnx'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: cannot create its folder ({exc.strerror or exc})") from exc
    if not os.access(path.parent, os.W_OK):
        raise ExportError(f"cannot write {path}: its folder {path.parent} is not writable")


def _trace(model: nn.Module, precision: str, size: tuple[int, int], dynamic: bool):
    import onnx

    module = copy.deepcopy(model).float().cpu().eval()
    if precision == "fp16":
        module = _HalfPrecision(module.half()).eval()
    n_atoms = model.config.n_atoms
    example = (torch.full((1, 1, *size), 0.5), torch.ones(1, n_atoms), torch.zeros(1, n_atoms))
    axes = {name: {2: "height", 3: "width"} for name in ("y", *OUTPUT_NAMES)} if dynamic else None
    tmp = Path(tempfile.gettempdir()) / f"mnm-trace-{os.getpid()}-{id(module)}.onnx"
    try:
        with warnings.catch_warnings():
            # Benign: the tracer's notes about Python scalars and unfoldable reversed slices of D.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*Constant folding.*")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            with torch.no_grad():  # the inference form of the synthesis (mnm_core.dictionary.synthesize)
                torch.onnx.export(module, example, str(tmp), dynamo=False, opset_version=OPSET,
                                  input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                                  dynamic_axes=axes)
        return onnx.load(str(tmp))
    except Exception as exc:  # the exporter raises many error types
        raise ExportError(f"tracing the fast path to ONNX failed: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _simplify(graph):
    import onnxsim

    try:
        simplified, ok = onnxsim.simplify(graph)
    except Exception as exc:  # onnxsim raises RuntimeError and its own checker errors
        raise ExportError(f"simplifying the exported graph failed: {exc}") from exc
    if not ok:
        raise ExportError("onnxsim could not verify the simplified graph against the original; "
                          "export with simplify=False to inspect the raw graph")
    return simplified


def unsupported_ops(graph) -> set[str]:
    """Op types in an ONNX ModelProto (including nested graphs) outside TENSORRT_OPS."""
    found: set[str] = set()

    def walk(g) -> None:
        for node in g.node:
            found.add(node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}")
            for attribute in node.attribute:
                for sub in [attribute.g, *attribute.graphs]:
                    if sub is not None and len(sub.node):
                        walk(sub)

    walk(graph.graph)
    return found - TENSORRT_OPS


def read_metadata(path: str | Path) -> OnnxMetadata:
    """The mnm metadata of an exported file; BackendError with what to do when missing or corrupt."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise BackendError(f"ONNX file {path} does not exist; export one with `mnm export --out {path}`")
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError, OSError
        raise BackendError(f"ONNX file {path} is corrupt or not an ONNX model ({exc}); "
                           f"re-export it with `mnm export --out {path}`") from exc
    return OnnxMetadata.from_props({p.key: p.value for p in graph.metadata_props}, path)


def default_cache_dir() -> Path:
    """~/.cache/mnm (or $XDG_CACHE_HOME/mnm): exported ONNX files, TensorRT engines, timing caches."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnm"


@functools.cache
def graph_code_hash() -> str:
    """SHA-256 of the source that decides the exported graphs (the model, the dictionary math, this exporter,
    and int8's quantiser and calibration frames): the same weights exported by changed code give another
    graph, so the cache keys on both."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    sources = [*root.glob("model/*.py"), root / "dictionary.py", Path(__file__), root / "quantize.py",
               root / "calibration.py"]
    for path in sorted(sources):
        digest.update(path.name.encode() + b"|" + path.read_bytes())
    return digest.hexdigest()


def cache_file(cache_dir: str | Path | None, checkpoint_hash: str, precision: str) -> Path:
    """Where the cache keeps the dynamic-size export of the weights with this hash in this precision, made
    by the graph code of this installation (`graph_code_hash`)."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    return cache / "onnx" / f"vgii-{checkpoint_hash[:16]}-{graph_code_hash()[:8]}-{precision}.onnx"


def cached_onnx(model: nn.Module, cache_dir: str | Path | None, precision: str = "fp32") -> Path:
    """The dynamic-size export of `model` in the cache, keyed by the hash of its state; exported once."""
    path = cache_file(cache_dir, model_hash(model), precision)
    if path.is_file():
        try:
            if read_metadata(path).precision == precision:
                LOGGER.debug("reusing cached export %s", path)
                return path
        except BackendError as exc:
            LOGGER.warning("cached export is unusable, exporting again: %s", exc)
    LOGGER.info("exporting the model to the cache %s (once per checkpoint)", path.parent)
    return export_onnx(model, path, precision=precision)


__all__ = [
    "INPUT_NAMES",
    "OPSET",
    "OUTPUT_NAMES",
    "TENSORRT_OPS",
    "OnnxMetadata",
    "cache_file",
    "cached_onnx",
    "check_writable",
    "default_cache_dir",
    "export_onnx",
    "file_sha256",
    "model_hash",
    "preset_of",
    "read_metadata",
    "save_onnx",
    "unsupported_ops",
]

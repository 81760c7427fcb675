"""int8 fast path for ONNX Runtime on the CPU: static post-training quantisation of the fp32 export.

QDQ format (QuantizeLinear/DequantizeLinear around each op; ONNX Runtime fuses them into QLinearConv
etc.), per-channel int8 weights, uint8 activations with min/max ranges calibrated on visible-Y frames,
each under the modulations the deployed pipeline feeds the fast path (`calibration_samples`): the
identity (γ = 1, β = 0) and the frame's own text modulation from the node's slow path. Measured on the
`fast` model against fp32 (pseudo-IR SSIM): calibrated at the identity alone it lost 0.26 on
msrs_test_128 once the text moved γ and β (ranges clipped); with two random modulations within the
bound per frame 0.007–0.011 (the box is wider than what the text asks for, so ranges were coarse); with
the frames' own text modulations 0.004–0.007 on every test set and the validation split, under the text
and under the identity (docs/benchmarks.md); the file recalibrated for the residual fusion gate 0.004–0.009
against torch fp32 on the test sets (docs/training.md). Inputs, outputs and their float32 types stay those of every
other export, and so does the mnm metadata (`mnm_precision` = int8, same `mnm_checkpoint_hash`): every
backend calls it the same way. TensorRT does not take these files (tensorrt_backend refuses them).

Choices measured on the project's AMD EPYC (AVX2, no VNNI), small preset, 320×256, one thread:
- `reduce_range` (7-bit weights): without VNNI, u8×s8 products are summed in pairs into saturating
  16-bit lanes (VPMADDUBSW); full 8-bit weights overflowed there and gave 3× the error (mean |Δ| of the
  pseudo-IR 0.0078 vs 0.0028 on real frames) at the same speed.
- uint8 activations: int8 activations (s8s8) ran 1.8× slower than u8s8 on this CPU, no more accurate.
- thin convolutions stay float: a Conv with one input or one output channel (the dictionary's analysis
  and synthesis, the image-facing first and last layers, the sum over atoms) ran 3–7× slower as
  QLinearConv than as ONNX Runtime's fp32 NCHWc kernel, which made the int8 `fast` preset no faster
  than fp32. Keeping them float: `fast` 1.26× faster than fp32 (was 0.94×), `small` unchanged (1.5×),
  and the pseudo-IR closer to fp32 (mean |Δ| 0.70 vs 0.91 gray levels for `small`).
- ONNX Runtime's `quant_pre_process`: its symbolic shape inference fails on the dynamic H×W graph and
  its optimisation step made no measurable difference after onnxsim, so only ONNX shape inference is
  run (which also marks the model as pre-processed for the quantiser).
In ONNX Runtime's optimised graph the other Convs become QLinearConv, Add/Mul/Concat/Sigmoid their
QLinear forms; ConvTranspose (RIN's up-sampling) and Slice stay float between DequantizeLinear/QuantizeLinear.

A shipped int8 file for a preset's embedded weights lives beside them, `mnm_core/weights/mnm_<preset>.int8.onnx`;
(re)build it with `mnm export --int8 --out mnm_core/weights/mnm_<preset>.int8.onnx` (calibrated on the
training sets under ../shared/data) whenever the embedded checkpoint changes: it is used only while its
`mnm_checkpoint_hash` matches the weights.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from torch import nn

from mnm_core.colour import luminance
from mnm_core.config import TextConfig
from mnm_core.errors import BackendError, DataError, ExportError, MnmError, TextEncoderError
from mnm_core.export import (
    OnnxMetadata,
    cache_file,
    cached_onnx,
    check_writable,
    model_hash,
    preset_of,
    read_metadata,
    save_onnx,
)
from mnm_core.model import VgiiModel
from mnm_core.modulation import Modulation

LOGGER = logging.getLogger(__name__)


FALLBACK_RANDOM = 2
"""Random bounded (γ, β) for a calibration frame the text path gives no modulation for."""


@dataclasses.dataclass(frozen=True)
class CalibrationSample:
    """One visible-Y frame (1×1×H×W float32 in [0, 1]) and the (γ, β) pairs (1×K float32 each) it is run
    under: the activation ranges must cover every modulation the fast path will be fed."""

    y: np.ndarray
    modulations: tuple[tuple[np.ndarray, np.ndarray], ...]


class _CalibrationReader:
    """ONNX Runtime's CalibrationDataReader protocol (`get_next`): one input per (frame, modulation)."""

    def __init__(self, samples: Iterator[CalibrationSample], metadata: OnnxMetadata) -> None:
        self.samples = samples
        self.metadata = metadata
        self.count = 0
        self.pending: list[dict[str, np.ndarray]] = []

    def get_next(self) -> dict[str, np.ndarray] | None:
        if not self.pending:
            sample = next(self.samples, None)
            if sample is None:
                return None
            frame = np.asarray(sample.y, dtype=np.float32)
            if frame.ndim != 4 or frame.shape[:2] != (1, 1):
                raise DataError(f"calibration frames must be 1×1×H×W visible Y, got shape {frame.shape}")
            self.metadata.check_size(*frame.shape[-2:])
            self.count += 1
            shape = (1, self.metadata.n_atoms)
            for gamma, beta in sample.modulations:
                if np.shape(gamma) != shape or np.shape(beta) != shape:
                    raise DataError(f"calibration γ and β must be {shape}, got {np.shape(gamma)} and {np.shape(beta)}")
            self.pending = [{"y": np.ascontiguousarray(frame), "gamma": np.asarray(gamma, np.float32),
                             "beta": np.asarray(beta, np.float32)} for gamma, beta in sample.modulations]
        return self.pending.pop(0)


def calibration_samples(model: VgiiModel, images: Sequence[np.ndarray], text: TextConfig | None = None,
                        random_per_frame: int = 0, seed: int = 0) -> list[CalibrationSample]:
    """Each RGB crop's visible Y under the modulations the deployed pipeline feeds the fast path: the
    identity (before the first text result) and the one the slow path computes for that crop with the
    `text` encoder (`mnm_core.text.frame_modulations`: prompt from the crop and I_pir⁰, encoder, Φγ/Φβ),
    plus `random_per_frame` random (γ, β) within the model's bound.

    A frame without a text modulation (`text.encoder` none, an encoder that fails to load or to encode,
    or one of another feature size than the model's) gets FALLBACK_RANDOM random bounded modulations
    instead, so the int8 ranges still cover what a text might ask for.
    """
    texts = _text_modulations(model, images, text or TextConfig())
    bound = model.config.modulation_bound
    shape = (1, model.config.n_atoms)
    rng = np.random.default_rng(seed)
    identity = Modulation.identity(model.config.n_atoms)
    samples = []
    for rgb, text_modulation in zip(images, texts):
        modulations = [(identity.gamma, identity.beta)]
        if text_modulation is not None:
            modulations.append((text_modulation.gamma, text_modulation.beta))
        randoms = random_per_frame if text_modulation is not None else max(random_per_frame, FALLBACK_RANDOM)
        modulations += [(1 + rng.uniform(-bound, bound, shape).astype(np.float32),
                         rng.uniform(-bound, bound, shape).astype(np.float32)) for _ in range(randoms)]
        samples.append(CalibrationSample(np.ascontiguousarray(luminance(rgb))[None, None], tuple(modulations)))
    return samples


def _text_modulations(model: VgiiModel, images: Sequence[np.ndarray], text: TextConfig) -> list[Modulation | None]:
    """Each image's text modulation, or None for all of them without a usable text path (logged)."""
    from mnm_core.text import frame_modulations

    if text.encoder == "none":
        return [None] * len(images)
    try:
        return frame_modulations(model, images, text)
    except TextEncoderError as exc:
        LOGGER.warning("int8 calibration without text modulations (random bounded ones instead): %s", exc)
        return [None] * len(images)


def _thin_convs(graph) -> list[str]:
    """Names of the Conv nodes to keep float: one input or one output channel, or weights the graph computes."""
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    return [node.name for node in graph.node if node.op_type == "Conv"
            and (node.input[1] not in shapes or min(shapes[node.input[1]][:2]) == 1)]


def quantize_int8(fp32_onnx: str | Path, out: str | Path, calibration: Iterable[CalibrationSample]) -> Path:
    """Quantise an fp32 mnm export to int8 at `out` (written atomically), calibrated on `calibration`
    (`calibration_samples`). DataError when there is none; ExportError when the
    source is not an fp32 export or quantisation fails.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_onnx, out = Path(fp32_onnx), Path(out)
    metadata = read_metadata(fp32_onnx)
    if metadata.precision != "fp32":
        raise ExportError(f"{fp32_onnx} is an {metadata.precision} export; int8 is quantised from an fp32 one "
                          "(`mnm export --out F.onnx`)")
    check_writable(out)
    frames = iter(calibration)
    first = next(frames, None)
    if first is None:
        raise DataError("int8 quantisation needs calibration frames and got none")
    reader = _CalibrationReader(itertools.chain([first], frames), metadata)
    with tempfile.TemporaryDirectory(prefix="mnm-int8-") as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        try:
            quant_pre_process(str(fp32_onnx), str(prepared), skip_optimization=True, skip_symbolic_shape=True)
            keep_float = _thin_convs(onnx.load(str(prepared)).graph)
            quantize_static(str(prepared), str(quantized), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=keep_float)
        except MnmError:
            raise
        except Exception as exc:  # onnxruntime's quantiser raises ValueError, RuntimeError, its own Fail types
            raise ExportError(f"int8 quantisation of {fp32_onnx} failed: {exc}") from exc
        graph = onnx.load(str(quantized))
    save_onnx(graph, dataclasses.replace(metadata, precision="int8"), out)
    ops = Counter(node.op_type for node in graph.graph.node)
    LOGGER.info("quantised %s to int8 on %d calibration frames (%d QuantizeLinear, %d DequantizeLinear, "
                "%d of %d Conv kept float) → %s", fp32_onnx.name, reader.count, ops["QuantizeLinear"],
                ops["DequantizeLinear"], len(keep_float), ops["Conv"], out)
    return out


def shipped_int8_path(preset: str) -> Path:
    """Where the package keeps the calibrated int8 file of a preset's embedded weights (may not exist)."""
    from mnm_core.checkpoint import default_checkpoint_path

    return default_checkpoint_path().parent / f"mnm_{preset}.int8.onnx"


def is_int8_of(path: Path, checkpoint_hash: str) -> bool:
    """Whether `path` is a readable int8 export of the weights with this hash."""
    if not path.is_file():
        return False
    try:
        metadata = read_metadata(path)
    except BackendError as exc:
        LOGGER.warning("ignoring int8 file %s: %s", path, exc)
        return False
    if metadata.precision != "int8" or metadata.checkpoint_hash != checkpoint_hash:
        LOGGER.info("%s is not an int8 export of these weights; not using it", path)
        return False
    return True


def int8_onnx(model: nn.Module, cache_dir: str | Path | None = None) -> Path:
    """The int8 export of `model`: the shipped file if it is of these weights, else the cache's, else one
    calibrated now into the cache on the default calibration folders (the training sets), else BackendError."""
    from mnm_core.calibration import calibration_images, default_calibration_folders

    checkpoint_hash = model_hash(model)
    shipped = shipped_int8_path(preset_of(model.config))
    cached = cache_file(cache_dir, checkpoint_hash, "int8")
    for path in (shipped, cached):
        if is_int8_of(path, checkpoint_hash):
            LOGGER.debug("using int8 export %s", path)
            return path
    folders = default_calibration_folders()
    if not folders:
        raise BackendError(f"int8 needs a calibrated int8 export of these weights: none is shipped ({shipped.name}) "
                           "and no calibration data was found (the training sets under ../shared/data); make one "
                           "with `mnm export --int8 [--checkpoint CKPT] --calibration DIR --out F.onnx` (DIR: "
                           "camera frames, or vis/+ir/ pairs) and set onnx_path to F.onnx")
    LOGGER.info("calibrating an int8 export of these weights into the cache (once per checkpoint)")
    samples = calibration_samples(model, calibration_images(folders))
    return quantize_int8(cached_onnx(model, cache_dir, "fp32"), cached, samples)


__all__ = ["FALLBACK_RANDOM", "CalibrationSample", "calibration_samples", "int8_onnx", "is_int8_of", "quantize_int8",
           "shipped_int8_path"]

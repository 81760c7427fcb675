"""The one typed source of defaults: model presets, text conditioning and the frame pipeline.

Every key has a type and a default here; the CLI, training and the ROS node read these dataclasses.
Mappings (YAML files, ROS parameters, CLI overrides) are turned into them with `from_mapping`, which
rejects unknown keys with a suggestion and checks types. TextConfig and PipelineConfig also validate
themselves when built (`validate_fields`: types, and the bounds of every numeric field declared with
`bounded`), so a bad value is refused with the same message whichever way it comes in.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from mnm_core.errors import ConfigError

T = TypeVar("T")

PresetName = Literal["paper", "small", "fast", "tiny"]
BackendName = Literal["torch", "onnxruntime", "tensorrt"]
Precision = Literal["fp32", "fp16", "int8", "bf16"]
PipelinePrecision = Literal["auto", "fp32", "fp16", "int8", "bf16"]
EmbeddedModel = Literal["auto", "fast", "small"]
EncoderName = Literal["minilm", "hf-causal-lm", "openai", "none"]
PromptStyle = Literal["full", "simple"]
FusionRule = Literal["convex", "residual"]

SIZE_MULTIPLE = 8
"""Network inputs are padded to a multiple of this (the U-Nets downsample three times)."""


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Inclusive bounds of a numeric config field (NaN is always refused)."""

    low: float
    high: float
    unit: str = ""

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" + (f" {self.unit}" if self.unit else "")


def bounded(default: Any, low: float, high: float, unit: str = "") -> Any:
    """A dataclass field whose value must lie in [low, high]; checked by `validate_fields`, shown by the
    node's parameter descriptors (`field_bounds`)."""
    return dataclasses.field(default=default, metadata={"bounds": Bounds(low, high, unit)})


def field_bounds(cls: type, name: str) -> Bounds | None:
    """The bounds of field `name` of dataclass `cls`, if it was declared with `bounded`."""
    return next(f.metadata.get("bounds") for f in dataclasses.fields(cls) if f.name == name)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def validate_fields(config: Any) -> None:
    """Check every field of a (frozen) dataclass instance against its annotation and its bounds.

    Call from `__post_init__`. An int given for a float field becomes a float; anything else that does
    not fit is a ConfigError naming the class, the field, the value and what is allowed.
    """
    cls = type(config)
    for field in dataclasses.fields(config):
        name = f"{cls.__name__}.{field.name}"
        value = _check_type(name, getattr(config, field.name), _type_hints(cls)[field.name])
        object.__setattr__(config, field.name, value)
        bounds = field.metadata.get("bounds")
        if bounds is not None and not bounds.low <= value <= bounds.high:
            raise ConfigError(f"{name} must be in {bounds}, got {value!r}")


def parse_size(text: str) -> tuple[int, int]:
    """A resolution 'WIDTHxHEIGHT' ('x', 'X' or '×'), e.g. '640x512' → (height, width) = (512, 640).

    ConfigError unless both sides are whole numbers of at least 1.
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise ConfigError(f"size {text!r} must be WIDTHxHEIGHT with positive whole numbers, e.g. 640x512")
    return int(match[2]), int(match[1])


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of the JSRL and VGII/AFRI networks (DESIGN.md §1)."""

    n_atoms: int = 32
    """K, the number of dictionary atoms (= coefficient channels)."""
    atom_size: int = 5
    """k, the odd side length of each atom."""
    widths: tuple[int, ...] = (32, 64, 128, 256)
    """Channel widths of the U-Net levels (CoeNet and RIN), 2 to 4 levels."""
    rin_stride: int = 1
    """RIN's U-Net works on a grid this many times coarser (1 or 2); the identity path stays full size."""
    n_stages: int = 1
    """N, unfolded JSRL stages (the paper uses 1)."""
    head_width: int = 64
    """Width of HeadNet, the image → initial coefficients CNN."""
    lista_steps: int = 3
    """Unrolled LISTA steps in REN."""
    ren_width: int = 32
    """Width of REN's residual CNN step."""
    gate_width: int = 32
    """Width of the fusion gate Ψ."""
    fusion_rule: FusionRule = "convex"
    """How the fused Y is made (mnm_core/model/vgii.py): 'residual' (what the presets train) the visible
    image plus a change of its code, I_f = y + D ⋆ ((W_vis − 1) ⊙ S̃_vis + W_pir ⊙ S_pir), each W in
    (0, 2); 'convex' (DESIGN.md §1, and the default here because checkpoints written before this key have
    it) the synthesis of a convex mix, W_vis + W_pir = 1, which cannot hold more detail than REN's code."""
    dicnet_width: int = 32
    """Width of DicNet, the dictionary refinement CNN."""
    hyp_width: int = 64
    """Width of HypNet, σ → per-stage weights."""
    text_dim: int = 384
    """Dimension of the text feature the Φγ/Φβ heads take (384 = all-MiniLM-L6-v2)."""
    text_hidden: int = 256
    """Hidden width of the Φγ/Φβ heads."""
    tail_width: int = 16
    """Width of TailNet's light refinement after synthesis; 0 disables it."""
    modulation_bound: float = 0.25
    """Largest change the language modulation may make: |γ − 1| and |β| stay below this."""

    def __post_init__(self) -> None:
        if self.atom_size % 2 != 1 or self.atom_size < 1:
            raise ConfigError(f"atom_size must be odd and positive, got {self.atom_size}")
        if self.n_atoms < 1 or self.n_stages < 1 or self.lista_steps < 1:
            raise ConfigError("n_atoms, n_stages and lista_steps must be at least 1")
        if not 0.0 < self.modulation_bound <= 10.0:
            raise ConfigError(f"modulation_bound must be in (0, 10], got {self.modulation_bound}")
        if not 2 <= len(self.widths) <= 4 or min(self.widths) < 1:
            raise ConfigError(f"widths must be two to four positive ints, got {self.widths}")
        if self.rin_stride not in (1, 2):
            raise ConfigError(f"rin_stride must be 1 or 2, got {self.rin_stride}")
        if self.rin_stride * 2 ** (len(self.widths) - 1) > SIZE_MULTIPLE:
            raise ConfigError(f"rin_stride {self.rin_stride} with {len(self.widths)} U-Net levels needs sizes that are "
                              f"multiples of {self.rin_stride * 2 ** (len(self.widths) - 1)}; mnm pads to "
                              f"{SIZE_MULTIPLE}: use fewer levels")


PRESETS: dict[str, ModelConfig] = {
    "paper": ModelConfig(
        n_atoms=64,
        widths=(64, 128, 256, 512),
        head_width=128,
        lista_steps=4,
        ren_width=128,
        gate_width=128,
        dicnet_width=64,
        hyp_width=64,
        text_hidden=1024,
        tail_width=32,
        fusion_rule="residual",
    ),
    "small": ModelConfig(fusion_rule="residual"),
    # CPU-first (issue 13): 16 atoms, RIN's U-Net on a half-size grid, narrow REN and gate; ~1/9 of small's MACs
    "fast": ModelConfig(
        n_atoms=16,
        widths=(24, 48, 96),
        rin_stride=2,
        head_width=32,
        lista_steps=2,
        ren_width=16,
        gate_width=16,
        dicnet_width=16,
        tail_width=8,
        text_hidden=128,
        fusion_rule="residual",
    ),
    "tiny": ModelConfig(
        n_atoms=8,
        widths=(8, 8, 16, 16),
        head_width=8,
        lista_steps=2,
        ren_width=8,
        gate_width=8,
        dicnet_width=8,
        hyp_width=8,
        text_dim=16,
        text_hidden=8,
        tail_width=4,
        fusion_rule="residual",
    ),
}


def preset(name: str) -> ModelConfig:
    """The ModelConfig of a named preset; an unknown name is a ConfigError with the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """Language conditioning: prompt style, text encoder and the background refresh (slow path)."""

    encoder: EncoderName = "minilm"
    """Text encoder: minilm (embedded default), hf-causal-lm, openai, or none (identity modulation)."""
    model_dir: str = ""
    """Local model directory for hf-causal-lm."""
    pooling: Literal["mean", "last"] = "mean"
    """How hf-causal-lm pools its last hidden state."""
    trust_remote_code: bool = False
    """Allow hf-causal-lm models with custom code (e.g. Qwen-7B-Chat)."""
    url: str = "http://127.0.0.1:8000/v1"
    """Base URL of an OpenAI-compatible server for the openai encoder."""
    server_model: str = ""
    """Model name sent to the openai encoder's server."""
    prompt_style: PromptStyle = "full"
    """Full scene description or the simplified one."""
    refresh_period_s: float = bounded(2.0, 0.01, 86400.0, "s")
    """Seconds between slow-path refreshes of the modulation (γ, β)."""
    timeout_s: float = bounded(10.0, 0.01, 3600.0, "s")
    """An encoder call running longer than this is abandoned and counted as a failure."""

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.url and not re.match(r"https?://", self.url):
            raise ConfigError(f"TextConfig.url must start with http:// or https://, got {self.url!r}")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The frame pipeline (Fuser): which checkpoint, which backend, which precision."""

    checkpoint: str = ""
    """Checkpoint path; empty = the embedded model `model` shipped with the package."""
    model: EmbeddedModel = "auto"
    """Embedded model used when checkpoint is empty: auto = the best shipped one for the device, now `fast` on
    a CPU and on CUDA (mnm_core.machine.AUTO_MODELS)."""
    backend: BackendName = "onnxruntime"
    """Inference backend of the fast path."""
    precision: PipelinePrecision = "auto"
    """Numeric precision of the fast path; auto = int8 on a CPU where a calibrated file of the weights is
    shipped (else fp32), fp16 on CUDA."""
    device: str = "auto"
    """cpu, cuda, cuda:N, or auto = CUDA where the backend can use it, else cpu."""
    threads: int = bounded(0, 0, 1024)
    """CPU threads of the backend; 0 = the cores this process may run on (its CPU affinity)."""
    max_side: int = bounded(192, 0, 16384, "px")
    """Longest side the fast path runs at: larger frames are downscaled for it and its outputs brought back
    to the frame's size (mnm_core.working_size); 0 = every frame at its own size. 192 was chosen on the
    held-out validation frames (docs/training.md, "Working resolution"): warm objects are found better
    there than at full size, by every shipped model, at a tenth of the cost of a 640×480 frame."""
    onnx_path: str = ""
    """Exported ONNX file for onnxruntime/tensorrt; empty = export the checkpoint to a cache."""
    engine_cache_dir: str = ""
    """Folder for exported ONNX files and TensorRT engines; empty = ~/.cache/mnm."""

    def __post_init__(self) -> None:
        validate_fields(self)
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise ConfigError(f"PipelineConfig.device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        for name in ("checkpoint", "onnx_path"):  # refused when set, not at the next configure
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ConfigError(f"PipelineConfig.{name}: {path} does not exist or is not a file")


DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
"""Torch devices the pipeline accepts."""


def _check_type(name: str, value: Any, annotation: Any) -> Any:
    """Check (and gently coerce) one value against its field annotation."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise ConfigError(f"{name}: {value!r} is not one of {list(allowed)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {type(value).__name__}")
        item_type = typing.get_args(annotation)[0]
        return tuple(_check_type(f"{name}[{i}]", v, item_type) for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(name, value, option)
            except ConfigError:
                continue
        raise ConfigError(f"{name}: {value!r} does not match {annotation}")
    if annotation is type(None):
        if value is not None:
            raise ConfigError(f"{name}: expected null")
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool):
        if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
            raise ConfigError(f"{name}: expected {annotation.__name__}, got {value!r}")
        return value
    return value


def from_mapping(cls: type[T], values: Mapping[str, Any], base: T | None = None) -> T:
    """Build dataclass `cls` from `values` over `base` (or the defaults).

    Unknown keys raise ConfigError naming the closest valid key; values are type-checked.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown key {key!r} for {cls.__name__}{hint}; valid keys: {names}")
        checked[key] = _check_type(f"{cls.__name__}.{key}", value, hints[key])
    start = base if base is not None else cls()
    return dataclasses.replace(start, **checked)  # type: ignore[type-var]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a non-mapping document is a ConfigError."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must hold a mapping, got {type(data).__name__}")
    return data


PairLayout = Literal["mnm", "msrs", "llvip", "m3fd", "kaist"]
TrainStage = Literal["jsrl", "dict", "vgii", "fusion", "all"]
TrainPrecision = Literal["auto", "fp32", "bf16"]


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Training data: paired IR/visible folders, crops and augmentation (training/data.py)."""

    root: str = "../shared/data"
    """Folder holding the sets; relative paths are relative to the repository root."""
    train_sets: tuple[str, ...] = ("roadscene_train", "msrs_train_128", "m3svd_train")
    """Training sets under `root`."""
    val_every: int = 10
    """Every n-th pair of each training set (sorted by name) is held out as the validation split
    (day road scenes from RoadScene/M3SVD, day and night from MSRS); never the test sets."""
    val_set: str = ""
    """A separate validation set under `root` instead of the held-out split; empty = the held-out split."""
    pack: str = ""
    """A packed data file (training/pack.py) to train from instead of `root`: the training pairs, the
    held-out validation pairs and their precomputed text features (for machines without the data or a
    text model)."""
    layout: PairLayout = "mnm"
    """Folder layout of each set: mnm vis/+ir/, msrs vi/+ir/, llvip visible/+infrared/, m3fd Vis/+Ir/,
    kaist visible/+lwir/ (searched recursively; the same relative name is one pair)."""
    crop_size: int = 128
    """Side of the random square training crops (a multiple of 8); large enough to hold whole objects."""
    context_fraction: float = 0.25
    """Fraction of the crops that are whole frames downscaled to crop_size (scene context)."""
    zoom_out_max: float = 1.0
    """Scale augmentation of the random crops: each takes a window of crop_size·s pixels, s uniform in
    [1, zoom_out_max], area-downscaled to crop_size (objects at several distances, more context per
    crop; visible and IR alike, so their relation is kept). 1 = crops at full resolution only."""
    zoom_in_max: float = 1.0
    """The other direction: the window's scale s is uniform in [1/zoom_in_max, zoom_out_max], and a window
    smaller than crop_size is upscaled to it (objects nearer, or a camera of higher resolution than the
    training sets': TNO's and a 1280×720 robot camera's objects are 1.5–3× larger in pixels than
    RoadScene's). 1 = no zoom-in."""
    balance_sets: bool = True
    """Draw each training set equally often (else each image equally often)."""
    photometric: float = 0.0
    """Strength of the visible image's photometric augmentation (brightness, contrast, gamma, colour).
    0 by default: the visible brightness is the main cue for temperature, and changing it alone breaks
    the visible/IR relation the model has to learn."""
    val_images: int = 12
    """How many held-out images of each training set are scored (validation is kept cheap)."""
    val_max_side: int = 256
    """Validation images are centre-cropped to at most this side (and to a multiple of 8)."""
    val_working_side: int = 0
    """Validation runs the model as the pipeline does at this working size (`PipelineConfig.max_side`: the
    image downscaled to it on its long side, the outputs brought back); 0 = each image at its own size.
    With whole held-out frames (a large val_max_side) it scores what the node runs."""

    def __post_init__(self) -> None:
        if self.val_every < 2:
            raise ConfigError(f"val_every must be at least 2 (every n-th pair is held out), got {self.val_every}")
        if not 0.0 <= self.context_fraction <= 1.0:
            raise ConfigError(f"context_fraction must be in [0, 1], got {self.context_fraction}")
        if self.zoom_out_max < 1.0:
            raise ConfigError(f"zoom_out_max must be at least 1 (1 = no zoom), got {self.zoom_out_max}")
        if self.zoom_in_max < 1.0:
            raise ConfigError(f"zoom_in_max must be at least 1 (1 = no zoom), got {self.zoom_in_max}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Both training stages (DESIGN.md §1): optimisation, loss weights, logging, checkpoints."""

    preset: PresetName = "small"
    seed: int = 0
    out_dir: str = "runs/default"
    """Run folder: resume state, TensorBoard logs, checkpoints and the JSON summary."""
    export_path: str = ""
    """Where the best stage-2 model is also written as an fp16 checkpoint; empty = only in out_dir."""
    export_max_mib: float = 0.0
    """Split the fp16 export into <export_path>.partN files of at most this size (0 = never); join
    them with `cat <export_path>.part* > <export_path>`."""
    log_dir: str = ""
    """Folder for summary.json and the TensorBoard scalars; empty = out_dir."""
    batch_size: int = 4
    """Crops per step and per process."""
    jsrl_steps: int = 200
    jsrl_lr: float = 1e-3
    dict_batches: int = 50
    """Batches of crops accumulated into the dataset-level dictionary statistics."""
    vgii_steps: int = 2000
    vgii_lr: float = 1e-3
    """Learning rate of the pseudo-IR stage (REN, RIN, TailNet, Φγ/Φβ)."""
    warmup_steps: int = 20
    """Linear learning-rate warm-up, then cosine decay to 5 % at the stage's last step."""
    grad_clip: float = 1.0
    ema_decay: float = 0.0
    """Keep an exponential moving average of the trained weights with this decay (e.g. 0.999, about the
    last 1000 steps; training/weight_average.py) and validate, select and write the averaged weights;
    0 = off, the trained weights themselves."""
    steps_per_epoch: int = 100
    """Validation, image grids and the best-model check happen once per epoch."""
    log_every: int = 10
    checkpoint_every: int = 50
    """Steps between resume checkpoints (also written on SIGINT/SIGTERM and at the end)."""
    init_from: str = ""
    """A stage-2 checkpoint to start the pseudo-IR stage from (its weights and its dictionary), e.g. the
    shipped model; empty = from scratch with the run's own dictionary."""
    precision: TrainPrecision = "auto"
    """Network precision in training: bf16 autocast with channels-last memory, or fp32; auto = bf16 on
    CUDA and on CPUs with native bf16 (AVX-512 BF16 or AMX), fp32 elsewhere (bf16 is emulated, and far
    slower, on AVX2-only CPUs). The dictionary solves and the losses stay fp32."""
    fusion_steps: int = 300
    """Steps of the fusion stage: the gate Ψ trained with the fusion loss, the pseudo-IR path frozen."""
    fusion_lr: float = 1e-3
    w_coeff: float = 0.0
    """Pseudo-IR stage: coefficient loss of RIN's output to the JSRL teacher's S_ir (relative MSE);
    needs the run's jsrl.safetensors."""
    w_recon: float = 0.5
    """Pseudo-IR stage: L1 of D ⋆ REN(y) to y, keeps the visible coefficients a faithful code of the image."""
    w_pixel: float = 1.0
    """Pseudo-IR stage: L1 of the pseudo-IR to the real IR, weighted per pixel by 1 + w_warm·IR."""
    w_warm: float = 4.0
    """Extra L1 weight of warm pixels (× the normalised real IR): warm objects count more than background."""
    w_ssim: float = 1.0
    """Pseudo-IR stage: 1 − SSIM of the pseudo-IR to the real IR."""
    w_ir_gradient: float = 1.0
    """Pseudo-IR stage: L1 between the Sobel gradients of the pseudo-IR and the real IR (fights blur)."""
    w_rank: float = 0.0
    """Pseudo-IR stage: warm-pixel ranking loss, a smooth surrogate of 1 − hotspot_auc per crop."""
    w_intensity: float = 1.0
    """Fusion stage: L1 of the fused Y to max(y_vis, ir)."""
    w_gradient: float = 1.0
    """Fusion stage: L1 of the fused gradient magnitude to the larger of the two source gradients."""
    w_fusion_ssim: float = 0.5
    """Fusion stage: 1 − mean SSIM of the fused Y to both sources."""
    w_fused_rank: float = 0.0
    """Fusion stage: the warm-pixel ranking loss on the fused Y, so warm objects stand out in the fused
    image (what an infrared–visible fusion is for); validation reports it as fused_hotspot_auc."""
    text_thumb_size: int = 64
    """Side of the thumbnails the stage-2 prompts are computed on (prompts need only coarse statistics);
    the node describes frames on thumbnails of `mnm_core.text.refresher.PROMPT_SIDE`, which must match."""
    text_refresh: bool = True
    """Pseudo-IR stage: recompute the prompts and their features (and the feature standardisation) from the
    model being trained at every validation, so the Φγ/Φβ heads learn from the prompts the trained model
    will produce when deployed (a prompt describes the model's own I_pir⁰, which training changes). Only
    where the stage runs a text encoder itself (not with a data pack's precomputed features)."""
    text_dropout: float = 0.0
    """Pseudo-IR stage: fraction of each batch trained with the identity modulation (γ = 1, β = 0) instead
    of the text's, so the pseudo-IR is sound before the first text result arrives and the text refines
    it rather than switching it."""
    train_text_heads: bool = True
    """Pseudo-IR stage: train the Φγ/Φβ heads. False keeps the heads and the text feature standardisation
    of `init_from` as they are and trains only REN/RIN/TailNet under them: on this project's CPU budget
    continuations that moved the heads lost hotspot_auc on tno_test, whose prompts are mostly those of
    RoadScene's grey day frames, where the same heads cost accuracy (docs/training.md, 2026-12-02)."""
    text_grey: float = 0.0
    """Pseudo-IR stage: fraction of each batch whose prompt is written from the grey version of its visible
    frame (what a monochrome camera, or TNO's grey night frames, would give), so the Φγ/Φβ heads cannot
    tell the dataset, and with it day or night, from the colour sentence alone. The luminance, and with
    it the pseudo-IR, is the same either way: only the prompt changes."""
    night_exposure: float = 0.0
    """Pseudo-IR stage: fraction of each batch's dark frames (training/exposure.py) seen as an auto-exposing
    camera gives them, brightened by a gamma fixed per image, with the exposed frame's prompt (grey for
    the `text_grey` part); the IR target is the same."""
    budget_s: float = 0.0
    """Wall-clock budget of the whole run in seconds (0 = none: the step counts alone decide). With a
    budget each stage ends at its share of it (budget_split) or at its step count, whichever comes
    first, validates, saves and hands over; the learning-rate schedule follows the larger of the step
    and the time progress, so a stage cut by the clock still ends on a low learning rate."""
    budget_split: tuple[float, float, float, float] = (0.15, 0.05, 0.7, 0.1)
    """Shares of budget_s for jsrl, dict, vgii and fusion; time a stage leaves unused passes to the next."""
    validate_every_s: float = 0.0
    """Also validate (and export an improved model) whenever this many seconds passed since the last
    validation (0 = only every steps_per_epoch)."""

    def __post_init__(self) -> None:
        if self.budget_s < 0 or any(share < 0 for share in self.budget_split) or sum(self.budget_split) <= 0:
            raise ConfigError("budget_s and the budget_split shares must be non-negative (and the shares not all 0)")
        if not 0.0 <= self.text_dropout <= 1.0:
            raise ConfigError(f"text_dropout must be in [0, 1], got {self.text_dropout}")
        if not 0.0 <= self.text_grey <= 1.0:
            raise ConfigError(f"text_grey must be in [0, 1], got {self.text_grey}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")
        if not 0.0 <= self.night_exposure <= 1.0:
            raise ConfigError(f"night_exposure must be in [0, 1], got {self.night_exposure}")
        if not self.train_text_heads and not self.init_from:
            raise ConfigError("train_text_heads: false keeps init_from's Φγ/Φβ heads; set train.init_from")


__all__ = [
    "PRESETS",
    "SIZE_MULTIPLE",
    "Bounds",
    "DataConfig",
    "ModelConfig",
    "PipelineConfig",
    "TextConfig",
    "TrainConfig",
    "bounded",
    "field_bounds",
    "from_mapping",
    "load_yaml",
    "parse_size",
    "preset",
    "validate_fields",
]

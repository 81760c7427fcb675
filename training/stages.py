"""The training stages: JSRL (stage 1), the dataset-level dictionary, then stage 2 in two parts as the
official code does: the pseudo-IR path with pseudo-IR losses only (vgii), then the fusion gate with the
pseudo-IR path frozen (fusion).

Each stage keeps its resume state in `<out_dir>/<stage>_state.pt` (model, optimizer, step, RNG) and
writes its product when it finishes: `jsrl.safetensors`, `dictionary.safetensors`, `vgii_last.safetensors`
and `vgii_best.safetensors` (best validation score, see training/validate.py; also exported in fp16 to
`export_path`), `model.safetensors` (after the fusion stage; exported too).
Batches are drawn from a generator seeded by (seed, stage, step, rank), so a resumed run sees exactly
the batches an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from mnm_core.checkpoint import CheckpointInfo, load_model, save_checkpoint
from mnm_core.config import DataConfig, TextConfig, TrainConfig
from mnm_core.dictionary import DictionaryStatistics, synthesize
from mnm_core.errors import CheckpointError
from mnm_core.model import JsrlModel, VgiiModel
from training.data import CropSampler, PairedImage
from training.logging_utils import RunLogger, StopFlag, load_state, save_state
from training.losses import PseudoIrOutput, fusion_loss, jsrl_loss, pseudo_ir_loss
from training.text_features import compute_features, create_text_encoder, set_standardisation
from training.validate import FUSION_METRICS_AVAILABLE, validate

LOGGER = logging.getLogger(__name__)
STAGE_IDS = {"jsrl": 1, "dict": 2, "vgii": 3, "fusion": 4}


class TrainingStoppedError(Exception):
    """Training stopped early (signal or --stop-after) after saving its state."""


@dataclass
class RunContext:
    train: TrainConfig
    data: DataConfig
    text: TextConfig
    out_dir: Path
    sampler: CropSampler
    val_images: list[PairedImage]
    logger: RunLogger
    stop: StopFlag
    device: torch.device
    rank: int = 0
    world: int = 1
    stop_after: int = 0
    """Simulated interruption: save and stop once a stage's step counter reaches this (0 = never)."""
    text_features: tuple[torch.Tensor, torch.Tensor, str] | None = None
    """Precomputed (train, validation) text features and the encoder fingerprint, from a data pack."""
    started: float = dataclasses.field(default_factory=time.monotonic)

    def stage_deadline(self, stage: str) -> float:
        """time.monotonic() by which `stage` hands over: its cumulative share of train.budget_s (inf without)."""
        if self.train.budget_s <= 0:
            return math.inf
        shares = self.train.budget_split
        upto = sum(shares[:STAGE_IDS[stage]]) / sum(shares)
        return self.started + self.train.budget_s * upto

    def generator(self, stage: str, step: int) -> torch.Generator:
        seed = ((self.train.seed * 1_000_003 + STAGE_IDS[stage]) * 10_000_019 + step) * 64 + self.rank
        return torch.Generator().manual_seed(seed)

    def batch(self, stage: str, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        vis, ir, idx = self.sampler.sample(self.train.batch_size, self.generator(stage, step))
        return vis.to(self.device), ir.to(self.device), idx

    def info(self, kind: str, text_encoder: str = "none", **extra: object) -> CheckpointInfo:
        from mnm_core.config import preset

        provenance = {"train": dataclasses.asdict(self.train), "data": dataclasses.asdict(self.data), **extra}
        return CheckpointInfo(kind=kind, preset=self.train.preset, model_config=preset(self.train.preset),
                              text_encoder=text_encoder, extra=provenance)


def learning_rate(base: float, step: int, total: int, warmup: int, time_progress: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to 5 % of `base` at `total` steps or at the end of the time
    budget (`time_progress` = fraction of the stage's time used), whichever is nearer."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_progress))
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def _wrap(module: nn.Module, ctx: RunContext) -> nn.Module:
    if ctx.world == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module)


def _train_loop(ctx: RunContext, stage: str, model: nn.Module, step_fn: Callable[[int], dict[str, torch.Tensor]],
                total: int, base_lr: float, state_extra: dict, saved: dict | None,
                on_epoch: Callable[[int], None] | None) -> int:
    """Shared optimisation loop with resume, LR schedule, clipping, logging and signal-safe saving.

    `step_fn(step)` computes the loss terms of one step (with a 'total'); `state_extra` is saved beside
    the model and optimizer. `saved` is the resume state (see `_resume`; the caller has already restored
    the model and `state_extra` from it): the optimizer, RNG and step counter continue from there.
    Returns the final step.
    """
    from tqdm import tqdm

    state_path = ctx.out_dir / f"{stage}_state.pt"
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=base_lr)
    step = 0
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        step = int(saved["step"])
        LOGGER.info("%s: resumed at step %d from %s", stage, step, state_path)

    def checkpoint() -> None:
        if ctx.rank == 0:
            save_state(state_path, {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "torch_rng": torch.get_rng_state(), "extra": state_extra})

    progress = tqdm(total=total, initial=step, desc=stage, disable=ctx.rank != 0, dynamic_ncols=True)
    started = last_validation = time.monotonic()
    start_step, deadline = step, ctx.stage_deadline(stage)
    while step < total:
        now = time.monotonic()
        time_progress = 0.0 if math.isinf(deadline) else (now - started) / max(1e-6, deadline - started)
        lr = learning_rate(base_lr, step, total, ctx.train.warmup_steps, time_progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        terms = step_fn(step)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, ctx.train.grad_clip)
        optimizer.step()
        step += 1
        values = {k: float(v.detach()) for k, v in terms.items()}
        state_extra["last_loss"] = values
        progress.update(1)
        progress.set_postfix(loss=f"{values['total']:.4f}")
        now = time.monotonic()
        out_of_time = now >= deadline
        if step % ctx.train.log_every == 0 or step == total:
            rate = (step - start_step) * ctx.train.batch_size * ctx.world / max(1e-6, now - started)
            ctx.logger.scalars(f"{stage}/loss", values, step)
            ctx.logger.scalars(f"{stage}", {"lr": lr, "grad_norm": float(grad_norm), "crops_per_s": rate}, step)
        if step % ctx.train.checkpoint_every == 0 or step == total:
            checkpoint()
        every_s = ctx.train.validate_every_s
        if on_epoch is not None and (step % ctx.train.steps_per_epoch == 0 or step == total or out_of_time
                                     or (every_s > 0 and now - last_validation >= every_s)):
            on_epoch(step)
            checkpoint()
            last_validation = time.monotonic()
        if ctx.stop or (ctx.stop_after and step >= ctx.stop_after and step < total):
            checkpoint()
            progress.close()
            raise TrainingStoppedError(f"{stage} stopped at step {step}/{total}; rerun with --resume to continue")
        if out_of_time:
            checkpoint()
            LOGGER.info("%s: time budget reached at step %d of %d", stage, step, total)
            break
    progress.close()
    seconds = time.monotonic() - started
    crops = (step - start_step) * ctx.train.batch_size * ctx.world
    ctx.logger.update_summary(stage, {"steps_this_process": step - start_step,
                                      "seconds_this_process": round(seconds, 1),
                                      "crops_per_s": crops / max(1e-6, seconds)})
    return step


def _resume(ctx: RunContext, stage: str, model: nn.Module, extra: dict) -> dict | None:
    """Restore the model and the extra state of `stage` from its resume file; the state, or None."""
    saved = load_state(ctx.out_dir / f"{stage}_state.pt")
    if saved is not None:
        model.load_state_dict(saved["model"])
        extra.update(saved.get("extra", {}))
    return saved


def run_jsrl(ctx: RunContext) -> Path:
    """Stage 1: train JSRL to reconstruct both modalities through the shared batch dictionary."""
    from mnm_core.config import preset

    torch.manual_seed(ctx.train.seed)
    model = JsrlModel(preset(ctx.train.preset)).to(ctx.device)
    wrapped = _wrap(model, ctx)
    extra: dict = {}
    saved = _resume(ctx, "jsrl", model, extra)

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        vis, ir, _ = ctx.batch("jsrl", step)
        return jsrl_loss(wrapped(vis, ir), vis, ir)

    steps = _train_loop(ctx, "jsrl", model, step_fn, ctx.train.jsrl_steps, ctx.train.jsrl_lr, extra, saved, None)
    path = ctx.out_dir / "jsrl.safetensors"
    if ctx.rank == 0:
        save_checkpoint(path, model, ctx.info("jsrl", steps=steps))
        ctx.logger.update_summary("jsrl", {"steps": steps, "final_loss": extra.get("last_loss", {})})
    return path


def run_dict(ctx: RunContext) -> Path:
    """Accumulate the DSB statistics over training crops and solve the dataset-level shared dictionary."""
    from tqdm import tqdm

    jsrl, _ = load_model(ctx.out_dir / "jsrl.safetensors", kind="jsrl", preset=ctx.train.preset)
    jsrl = jsrl.to(ctx.device)
    config = jsrl.config
    stats = DictionaryStatistics(config.n_atoms, config.atom_size, device=ctx.device)
    deadline = ctx.stage_deadline("dict")
    for batch in tqdm(range(ctx.train.dict_batches), desc="dict", disable=ctx.rank != 0):
        vis, ir, _ = ctx.batch("dict", batch)
        jsrl.accumulate_statistics(stats, vis, ir)
        if time.monotonic() >= deadline and ctx.world == 1:  # ranks must add the same number of batches
            LOGGER.info("dict: time budget reached after %d of %d batches", batch + 1, ctx.train.dict_batches)
            break
    if ctx.world > 1:
        n_pixels = torch.tensor([float(stats.n_pixels)], dtype=torch.float64, device=ctx.device)
        for tensor in (stats.gram, stats.rhs, n_pixels):
            dist.all_reduce(tensor)
        stats.n_pixels = int(n_pixels.item())
    dictionary = jsrl.dataset_dictionary(stats).float().cpu()
    path = ctx.out_dir / "dictionary.safetensors"
    if ctx.rank == 0:
        from safetensors.torch import save_file

        tmp = path.with_name(path.name + ".tmp")
        save_file({"dictionary": dictionary.contiguous()}, str(tmp))
        tmp.replace(path)
        norms = dictionary.flatten(1).norm(dim=1)
        ctx.logger.update_summary("dict", {"batches": ctx.train.dict_batches, "n_pixels": stats.n_pixels,
                                           "atom_norm_min": float(norms.min()), "atom_norm_max": float(norms.max())})
    return path


def load_dictionary(out_dir: Path) -> torch.Tensor:
    from safetensors.torch import load_file

    path = out_dir / "dictionary.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: run the 'dict' stage first (--stage dict)")
    return load_file(str(path))["dictionary"]


def fast_math(train: TrainConfig, device: torch.device) -> bool:
    """Whether bf16 autocast and channels-last pay: on CUDA and on CPUs with AMX, not on AVX2-only CPUs
    (measured on an AVX2 EPYC: a bf16 step was ~20× slower than fp32, channels-last 1.2–2.7× slower)."""
    if train.precision != "auto":
        return train.precision == "bf16"
    if device.type == "cuda":
        return True
    amx = getattr(torch._C._cpu, "_is_amx_tile_supported", None)
    return bool(amx and amx())


def autocast(ctx: RunContext) -> torch.autocast:
    """bf16 autocast of the networks where it pays (see fast_math); else a no-op."""
    return torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=fast_math(ctx.train, ctx.device))


class VgiiStep(nn.Module):
    """One stage-2 forward pass as a module (so DistributedDataParallel can wrap it).

    `fusion=False` runs the pseudo-IR path only (no gate: it is not trained then) and returns a
    PseudoIrOutput; `fusion=True` returns the fused Y. Outputs are fp32 whatever the autocast.
    """

    def __init__(self, model: VgiiModel, fusion: bool) -> None:
        super().__init__()
        self.model = model
        self.fusion = fusion

    def forward(self, y: torch.Tensor, text_feature: torch.Tensor | None) -> PseudoIrOutput | torch.Tensor:
        if text_feature is None:
            gamma, beta = self.model.identity_modulation(y.shape[0])
        else:
            gamma, beta = self.model.modulation(text_feature)
        if self.fusion:
            return self.model.fast_path(y, gamma, beta).fused_y.float()
        coeffs_vis, coeffs_pir, pseudo_ir = self.model.pseudo_ir_path(y, gamma, beta)
        vis_recon = synthesize(self.model.dictionary, coeffs_vis)
        return PseudoIrOutput(coeffs_pir.float(), pseudo_ir.float(), vis_recon.float())


def _stage2_model(ctx: RunContext, source: Path | None) -> VgiiModel:
    """The VGII model on the device: the weights of `source` (a vgii checkpoint), else a fresh model on
    the run's dictionary; channels-last when configured."""
    from mnm_core.config import preset

    if source is not None:
        model, _ = load_model(source, kind="vgii", preset=ctx.train.preset)
        model = model.float()
    else:
        torch.manual_seed(ctx.train.seed + 1)
        model = VgiiModel(preset(ctx.train.preset))
        model.set_dictionary(load_dictionary(ctx.out_dir))
    model = model.to(ctx.device)
    return model.to(memory_format=torch.channels_last) if fast_math(ctx.train, ctx.device) else model


def _text_features(ctx: RunContext, model: VgiiModel, extra: dict):
    """(train, validation) text features, or (None, None) with the encoder off; sets the model's
    feature standardisation the first time an encoder is used in this run. Precomputed features (from a
    data pack) are used as they are, without a text model; a pack without features means no text."""
    if ctx.data.pack and ctx.text_features is None:
        return None, None
    if ctx.text_features is not None:
        train_features, val_features, fingerprint = ctx.text_features
        if extra["text_encoder"] != fingerprint:
            set_standardisation(model, train_features)
            extra["text_encoder"] = fingerprint
        return train_features, val_features
    encoder = create_text_encoder(ctx.text, model.config.text_dim)
    if encoder is None:
        return None, None
    model.eval()
    train_text = compute_features(model, ctx.sampler.images, encoder, ctx.text, ctx.train.text_thumb_size)
    val_text = compute_features(model, ctx.val_images, encoder, ctx.text, ctx.train.text_thumb_size)
    if extra["text_encoder"] != train_text.fingerprint:
        set_standardisation(model, train_text.features)
        extra["text_encoder"] = train_text.fingerprint
    LOGGER.info("text encoder %s; first prompt: %s", train_text.fingerprint, train_text.prompts[0])
    return train_text.features, val_text.features


def _loss_weights(ctx: RunContext) -> dict[str, float]:
    return {f.name: getattr(ctx.train, f.name) for f in dataclasses.fields(ctx.train) if f.name.startswith("w_")}


def run_vgii(ctx: RunContext) -> Path:
    """Stage 2a, the pseudo-IR path (REN, RIN, TailNet, Φγ/Φβ) with pseudo-IR losses only.

    Starts from `train.init_from` (weights and dictionary) when given, else from scratch on the run's
    dictionary. The best validation `val_score` (warm-object AUC and SSIM, day and night) is kept as
    vgii_best.safetensors and exported to `export_path`.
    """
    init = Path(ctx.train.init_from) if ctx.train.init_from else None
    model = _stage2_model(ctx, init)
    dictionary = model.dictionary
    teacher_net = None
    if ctx.train.w_coeff > 0:
        teacher_net, _ = load_model(ctx.out_dir / "jsrl.safetensors", kind="jsrl", preset=ctx.train.preset)
        teacher_net = teacher_net.to(ctx.device).requires_grad_(False)
    extra: dict = {"text_encoder": "none", "best_score": -1.0, "history": []}
    saved = _resume(ctx, "vgii", model, extra)  # the text setup below needs the resumed weights
    train_text, val_text = _text_features(ctx, model, extra)
    model.train()
    model.gate.requires_grad_(False)
    for head in (model.gamma_head, model.beta_head):
        head.requires_grad_(train_text is not None)
    wrapped = _wrap(VgiiStep(model, fusion=False), ctx)
    weights = _loss_weights(ctx)

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        vis, ir, idx = ctx.batch("vgii", step)
        feature = None if train_text is None else train_text[idx].to(ctx.device)
        with torch.no_grad():
            teacher = None if teacher_net is None else teacher_net.encode(ir, "ir", dictionary)
        with autocast(ctx):
            out = wrapped(vis, feature)
        return pseudo_ir_loss(out, vis, ir, teacher, weights)

    def on_epoch(step: int) -> None:
        if ctx.rank != 0:
            return
        scores = _validate_and_log(ctx, model, val_text, step, with_fusion=False)
        extra["history"].append({"step": step, **scores})
        info = ctx.info("vgii", text_encoder=extra["text_encoder"], steps=step, val=scores)
        save_checkpoint(ctx.out_dir / "vgii_last.safetensors", model, info)
        if scores["val_score"] > extra["best_score"]:
            extra["best_score"] = scores["val_score"]
            save_checkpoint(ctx.out_dir / "vgii_best.safetensors", model, info)
            export_checkpoint(ctx, model, info)
            LOGGER.info("step %d: new best validation score %.4f (hotspot_auc %.4f, SSIM %.4f)", step,
                        scores["val_score"], scores["hotspot_auc"], scores["pseudo_ir_ssim"])
        ctx.logger.update_summary("vgii", {"steps": step, "text_encoder": extra["text_encoder"],
                                           "best_val_score": extra["best_score"], "last_val": scores,
                                           "last_loss": extra.get("last_loss", {})})

    _train_loop(ctx, "vgii", model, step_fn, ctx.train.vgii_steps, ctx.train.vgii_lr, extra, saved, on_epoch)
    return ctx.out_dir / "vgii_best.safetensors"


def run_fusion(ctx: RunContext) -> Path:
    """Stage 2b, adaptive fusion: the gate Ψ trained with the fusion loss on the best pseudo-IR model,
    whose pseudo-IR path stays frozen (as the official code does). Writes model.safetensors (and the
    fp16 export) at the end."""
    model = _stage2_model(ctx, ctx.out_dir / "vgii_best.safetensors")
    extra: dict = {"text_encoder": "none", "history": []}
    saved = _resume(ctx, "fusion", model, extra)
    train_text, val_text = _text_features(ctx, model, extra)
    model.train()
    model.requires_grad_(False)
    model.gate.requires_grad_(True)
    wrapped = _wrap(VgiiStep(model, fusion=True), ctx)
    weights = _loss_weights(ctx)

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        vis, ir, idx = ctx.batch("fusion", step)
        feature = None if train_text is None else train_text[idx].to(ctx.device)
        with autocast(ctx):
            fused_y = wrapped(vis, feature)
        return fusion_loss(fused_y, vis, ir, weights)

    def on_epoch(step: int) -> None:
        if ctx.rank == 0:
            scores = _validate_and_log(ctx, model, val_text, step, FUSION_METRICS_AVAILABLE)
            extra["history"].append({"step": step, **scores})

    steps = _train_loop(ctx, "fusion", model.gate, step_fn, ctx.train.fusion_steps, ctx.train.fusion_lr, extra,
                        saved, on_epoch)
    path = ctx.out_dir / "model.safetensors"
    if ctx.rank == 0:
        info = ctx.info("vgii", text_encoder=extra["text_encoder"], steps=steps, val=extra["history"][-1])
        save_checkpoint(path, model, info)
        export_checkpoint(ctx, model, info)
        ctx.logger.update_summary("fusion", {"steps": steps, "last_val": extra["history"][-1]})
    return path


def export_checkpoint(ctx: RunContext, model: VgiiModel, info: CheckpointInfo) -> None:
    """Write the fp16 export (train.export_path), split into .partN files when over train.export_max_mib
    (a transfer limit of the GPU machine); a no-op without an export path."""
    if not ctx.train.export_path:
        return
    path = Path(ctx.train.export_path)
    save_checkpoint(path, model, info, half=True)
    limit = int(ctx.train.export_max_mib * 2**20)
    for stale in path.parent.glob(path.name + ".part*"):
        stale.unlink()
    if limit <= 0 or path.stat().st_size <= limit:
        return
    data = path.read_bytes()
    for index, start in enumerate(range(0, len(data), limit)):
        path.with_name(f"{path.name}.part{index:02d}").write_bytes(data[start:start + limit])
    path.unlink()


def _validate_and_log(ctx: RunContext, model: VgiiModel, val_text: torch.Tensor | None, step: int,
                      with_fusion: bool) -> dict[str, float]:
    model.eval()
    scores, grid = validate(model, ctx.val_images, val_text, with_fusion=with_fusion)
    model.train()
    ctx.logger.scalars("val", scores, step)
    ctx.logger.images("val/vis_pseudoir_ir_fused", grid, step)
    return scores

"""The three training stages: JSRL (stage 1), the dataset-level dictionary, VGII + AFRI (stage 2).

Each stage keeps its resume state in `<out_dir>/<stage>_state.pt` (model, optimizer, step, RNG) and
writes its product when it finishes: `jsrl.safetensors`, `dictionary.safetensors`, `vgii_last.safetensors`
and `vgii_best.safetensors` (best validation pseudo-IR SSIM; also exported in fp16 to `export_path`).
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
from training.losses import jsrl_loss, vgii_loss
from training.text_features import compute_features, create_text_encoder, set_standardisation
from training.validate import validate

LOGGER = logging.getLogger(__name__)
STAGE_IDS = {"jsrl": 1, "dict": 2, "vgii": 3}


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


def learning_rate(base: float, step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5 % of `base` at `total`."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
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
    params = list(model.parameters())
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
    started, start_step = time.time(), step
    while step < total:
        lr = learning_rate(base_lr, step, total, ctx.train.warmup_steps)
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
        if step % ctx.train.log_every == 0 or step == total:
            rate = (step - start_step) * ctx.train.batch_size * ctx.world / max(1e-6, time.time() - started)
            ctx.logger.scalars(f"{stage}/loss", values, step)
            ctx.logger.scalars(f"{stage}", {"lr": lr, "grad_norm": float(grad_norm), "crops_per_s": rate}, step)
        if step % ctx.train.checkpoint_every == 0 or step == total:
            checkpoint()
        if on_epoch is not None and (step % ctx.train.steps_per_epoch == 0 or step == total):
            on_epoch(step)
            checkpoint()
        if ctx.stop or (ctx.stop_after and step >= ctx.stop_after and step < total):
            checkpoint()
            progress.close()
            raise TrainingStoppedError(f"{stage} stopped at step {step}/{total}; rerun with --resume to continue")
    progress.close()
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
    for batch in tqdm(range(ctx.train.dict_batches), desc="dict", disable=ctx.rank != 0):
        vis, ir, _ = ctx.batch("dict", batch)
        jsrl.accumulate_statistics(stats, vis, ir)
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


class VgiiStep(nn.Module):
    """The stage-2 forward pass as one module (so DistributedDataParallel can wrap it)."""

    def __init__(self, model: VgiiModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, y: torch.Tensor, text_feature: torch.Tensor | None):
        if text_feature is None:
            gamma, beta = self.model.identity_modulation(y.shape[0])
        else:
            gamma, beta = self.model.modulation(text_feature)
        out = self.model.fast_path(y, gamma, beta)
        return out, synthesize(self.model.dictionary, out.coeffs_vis)


def run_vgii(ctx: RunContext) -> Path:
    """Stage 2: VGII + AFRI with the frozen JSRL teacher and the shared dictionary."""
    from mnm_core.config import preset

    jsrl, _ = load_model(ctx.out_dir / "jsrl.safetensors", kind="jsrl", preset=ctx.train.preset)
    jsrl = jsrl.to(ctx.device).requires_grad_(False)
    torch.manual_seed(ctx.train.seed + 1)
    model = VgiiModel(preset(ctx.train.preset)).to(ctx.device)
    model.set_dictionary(load_dictionary(ctx.out_dir).to(ctx.device))
    dictionary = model.dictionary
    extra: dict = {"text_encoder": "none", "best_ssim": -1.0, "history": []}
    saved = _resume(ctx, "vgii", model, extra)  # the text setup below needs the resumed weights

    encoder = create_text_encoder(ctx.text, model.config.text_dim)
    train_text = val_text = None
    if encoder is not None:
        model.eval()
        train_text = compute_features(model, ctx.sampler.images, encoder, ctx.text, ctx.train.text_thumb_size)
        val_text = compute_features(model, ctx.val_images, encoder, ctx.text, ctx.train.text_thumb_size)
        if extra["text_encoder"] != train_text.fingerprint:
            set_standardisation(model, train_text.features)
            extra["text_encoder"] = train_text.fingerprint
        LOGGER.info("stage 2 text encoder %s; first prompt: %s", train_text.fingerprint, train_text.prompts[0])
    model.train()
    for head in (model.gamma_head, model.beta_head):
        head.requires_grad_(encoder is not None)
    wrapped = _wrap(VgiiStep(model), ctx)
    weights = {f.name: getattr(ctx.train, f.name) for f in dataclasses.fields(ctx.train) if f.name.startswith("w_")}

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        vis, ir, idx = ctx.batch("vgii", step)
        feature = None if train_text is None else train_text.features[idx].to(ctx.device)
        with torch.no_grad():
            teacher = jsrl.encode(ir, "ir", dictionary) if ctx.train.w_coeff > 0 else None
        out, vis_recon = wrapped(vis, feature)
        return vgii_loss(out, vis, ir, teacher, vis_recon, weights)

    def on_epoch(step: int) -> None:
        if ctx.rank != 0:
            return
        model.eval()
        scores, grid = validate(model, ctx.val_images, None if val_text is None else val_text.features)
        model.train()
        ctx.logger.scalars("val", scores, step)
        ctx.logger.images("val/vis_pseudoir_ir_fused", grid, step)
        extra["history"].append({"step": step, **scores})
        info = ctx.info("vgii", text_encoder=extra["text_encoder"], steps=step, val=scores)
        save_checkpoint(ctx.out_dir / "vgii_last.safetensors", model, info)
        if scores["pseudo_ir_ssim"] > extra["best_ssim"]:
            extra["best_ssim"] = scores["pseudo_ir_ssim"]
            save_checkpoint(ctx.out_dir / "vgii_best.safetensors", model, info)
            if ctx.train.export_path:
                save_checkpoint(ctx.train.export_path, model, info, half=True)
            LOGGER.info("step %d: new best validation pseudo-IR SSIM %.4f", step, scores["pseudo_ir_ssim"])
        ctx.logger.update_summary("vgii", {"steps": step, "text_encoder": extra["text_encoder"],
                                           "best_val_pseudo_ir_ssim": extra["best_ssim"], "last_val": scores,
                                           "last_loss": extra.get("last_loss", {})})

    _train_loop(ctx, "vgii", model, step_fn, ctx.train.vgii_steps, ctx.train.vgii_lr, extra, saved, on_epoch)
    return ctx.out_dir / "vgii_best.safetensors"

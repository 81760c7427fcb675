"""The shared optimisation loop (resume, budgets, validation hooks), stage 1 (JSRL) and the dataset-level
dictionary; stage 2 (the pseudo-IR stage `vgii` and the `fusion` stage) is in training/stage2.py.

Each stage keeps its resume state in `<out_dir>/<stage>_state.pt` (model, optimizer, step, RNG) and
writes its product when it finishes: `jsrl.safetensors`, `dictionary.safetensors`, `vgii_last.safetensors`
and `vgii_best.safetensors` (best validation score, see training/validate.py; also exported in fp16 to
`export_path`), `model.safetensors` (after the fusion stage; exported too).
Batches are drawn from a generator seeded by (seed, stage, step, rank), so a resumed run sees exactly
the batches an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
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
from mnm_core.dictionary import DictionaryStatistics
from mnm_core.errors import CheckpointError
from mnm_core.model import JsrlModel
from training.data import CropSampler, PairedImage
from training.exposure import night_exposure_gammas
from training.logging_utils import RunLogger, StopFlag, load_state, save_state
from training.losses import jsrl_loss
from training.weight_average import WeightAverage

LOGGER = logging.getLogger(__name__)
STAGE_IDS = {"jsrl": 1, "dict": 2, "vgii": 3, "fusion": 4}
IDENTITY_STREAM = 0x5EED
"""Random stream of `RunContext.sample_mask` for the samples trained with the identity modulation."""
GREY_STREAM = 0x6EE7
"""Random stream of `RunContext.sample_mask` for the samples whose prompt is their grey one."""
EXPOSURE_STREAM = 0xE7905E
"""Random stream of `RunContext.sample_mask` for the samples seen as an auto-exposing camera gives them."""


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

    @functools.cached_property
    def exposure(self) -> torch.Tensor | None:
        """Each training image's night-exposure γ (training/exposure.py), or None without train.night_exposure."""
        if self.train.night_exposure <= 0:
            return None
        return night_exposure_gammas(self.sampler.images, self.train.seed)

    def batch(self, stage: str, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        vis, ir, idx = self.sampler.sample(self.train.batch_size, self.generator(stage, step))
        return vis.to(self.device), ir.to(self.device), idx

    def sample_mask(self, stage: str, step: int, fraction: float, stream: int = IDENTITY_STREAM) -> torch.Tensor:
        """Which samples of the step's batch get a treatment (B booleans, about `fraction` of them):
        reproducible per step like the batch, from a random stream of the treatment's own."""
        generator = torch.Generator().manual_seed(self.generator(stage, step).initial_seed() ^ stream)
        return torch.rand(self.train.batch_size, generator=generator) < fraction

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


def wrap(module: nn.Module, ctx: RunContext) -> nn.Module:
    if ctx.world == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module)


def train_loop(ctx: RunContext, stage: str, model: nn.Module, step_fn: Callable[[int], dict[str, torch.Tensor]],
                total: int, base_lr: float, state_extra: dict, saved: dict | None,
                on_epoch: Callable[[int], None] | None) -> int:
    """Shared optimisation loop with resume, LR schedule, clipping, logging and signal-safe saving.

    `step_fn(step)` computes the loss terms of one step (with a 'total'); `state_extra` is saved beside
    the model and optimizer. `saved` is the resume state (see `_resume`; the caller has already restored
    the model and `state_extra` from it): the optimizer, RNG and step counter continue from there.
    With `train.ema_decay` the loop keeps a moving average of the weights (training/weight_average.py):
    `on_epoch` runs with the averaged weights in the model, and they are the model's weights when the
    loop returns. Returns the final step.
    """
    from tqdm import tqdm

    state_path = ctx.out_dir / f"{stage}_state.pt"
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=base_lr)
    average = WeightAverage(model, ctx.train.ema_decay) if ctx.train.ema_decay > 0 else None
    step = 0
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        if average is not None and "weight_average" in saved:
            average.load_state_dict(saved["weight_average"])
        torch.set_rng_state(saved["torch_rng"])
        step = int(saved["step"])
        LOGGER.info("%s: resumed at step %d from %s", stage, step, state_path)

    def checkpoint() -> None:
        if ctx.rank == 0:
            state = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "torch_rng": torch.get_rng_state(), "extra": state_extra}
            if average is not None:
                state["weight_average"] = average.state_dict()
            save_state(state_path, state)

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
        if average is not None:
            average.update()
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
            with average.applied() if average is not None else contextlib.nullcontext():
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
    if average is not None:
        average.copy_to_model()
    seconds = time.monotonic() - started
    crops = (step - start_step) * ctx.train.batch_size * ctx.world
    ctx.logger.update_summary(stage, {"steps_this_process": step - start_step,
                                      "seconds_this_process": round(seconds, 1),
                                      "crops_per_s": crops / max(1e-6, seconds)})
    return step


def resume_state(ctx: RunContext, stage: str, model: nn.Module, extra: dict) -> dict | None:
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
    wrapped = wrap(model, ctx)
    extra: dict = {}
    saved = resume_state(ctx, "jsrl", model, extra)

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        vis, ir, _ = ctx.batch("jsrl", step)
        return jsrl_loss(wrapped(vis, ir), vis, ir)

    steps = train_loop(ctx, "jsrl", model, step_fn, ctx.train.jsrl_steps, ctx.train.jsrl_lr, extra, saved, None)
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


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), where oneDNN runs bf16 convolutions
    faster than fp32; elsewhere (AVX2-only) bf16 is emulated and far slower."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def fast_math(train: TrainConfig, device: torch.device) -> bool:
    """Whether bf16 autocast and channels-last pay: on CUDA and on CPUs with native bf16, not on AVX2-only
    CPUs (measured: on an AVX2 EPYC a bf16 step was ~20× slower than fp32, channels-last 1.2–2.7× slower;
    on an AVX-512 BF16 EPYC the `fast` pseudo-IR step was 1.9× faster in bf16, docs/training.md)."""
    if train.precision != "auto":
        return train.precision == "bf16"
    return device.type == "cuda" or native_bf16_cpu()


def autocast(ctx: RunContext) -> torch.autocast:
    """bf16 autocast of the networks where it pays (see fast_math); else a no-op."""
    return torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=fast_math(ctx.train, ctx.device))

"""Stage 2, in two parts as the paper's official code trains it: the pseudo-IR path (REN, RIN, TailNet,
Φγ/Φβ) with pseudo-IR losses only (`run_vgii`), then the fusion gate Ψ with that path frozen
(`run_fusion`). The optimisation loop, resume and budgets are training/stages.py's.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import torch
from torch import nn

from mnm_core.checkpoint import CheckpointInfo, load_model, read_checkpoint, save_checkpoint
from mnm_core.config import FusionRule
from mnm_core.dictionary import synthesize
from mnm_core.errors import ConfigError
from mnm_core.model import VgiiModel
from training.exposure import expose_luminance
from training.losses import PseudoIrOutput, fusion_loss, pseudo_ir_loss
from training.stages import (
    EXPOSURE_STREAM,
    GREY_STREAM,
    RunContext,
    autocast,
    fast_math,
    load_dictionary,
    resume_state,
    train_loop,
    wrap,
)
from training.text_features import (
    compute_features,
    create_text_encoder,
    prompt_count,
    prompt_rows,
    set_standardisation,
)
from training.validate import FUSION_METRICS_AVAILABLE, validate

LOGGER = logging.getLogger(__name__)


class VgiiStep(nn.Module):
    """One stage-2 forward pass as a module (so DistributedDataParallel can wrap it).

    `fusion=False` runs the pseudo-IR path only (no gate: it is not trained then) and returns a
    PseudoIrOutput; `fusion=True` returns the fused Y. Outputs are fp32 whatever the autocast.
    """

    def __init__(self, model: VgiiModel, fusion: bool) -> None:
        super().__init__()
        self.model = model
        self.fusion = fusion

    def forward(self, y: torch.Tensor, text_feature: torch.Tensor | None,
                identity: torch.Tensor | None = None) -> PseudoIrOutput | torch.Tensor:
        """`identity` (B booleans) marks samples that get γ = 1, β = 0 instead of their text's."""
        gamma, beta = self.model.identity_modulation(y.shape[0])
        if text_feature is not None:
            text_gamma, text_beta = self.model.modulation(text_feature)
            if identity is None:
                gamma, beta = text_gamma, text_beta
            else:
                keep = identity.to(y.device)[:, None]
                gamma, beta = torch.where(keep, gamma, text_gamma), torch.where(keep, beta, text_beta)
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
        model = _with_fusion_rule(model.float(), preset(ctx.train.preset).fusion_rule, ctx.train.seed)
    else:
        torch.manual_seed(ctx.train.seed + 1)
        model = VgiiModel(preset(ctx.train.preset))
        model.set_dictionary(load_dictionary(ctx.out_dir))
    model = model.to(ctx.device)
    return model.to(memory_format=torch.channels_last) if fast_math(ctx.train, ctx.device) else model


def _with_fusion_rule(model: VgiiModel, fusion_rule: FusionRule, seed: int) -> VgiiModel:
    """`model` with the preset's fusion rule: itself when it has it, else the same weights with a fresh
    gate for that rule (a checkpoint from before the 'residual' rule continues; the fusion stage trains it)."""
    if model.config.fusion_rule == fusion_rule:
        return model
    LOGGER.info("fusion rule: %s in the checkpoint, %s in the preset; the gate starts afresh",
                model.config.fusion_rule, fusion_rule)
    torch.manual_seed(seed + 2)
    rebuilt = VgiiModel(dataclasses.replace(model.config, fusion_rule=fusion_rule))
    kept = {name: tensor for name, tensor in model.state_dict().items() if not name.startswith("gate.")}
    rebuilt.load_state_dict(kept, strict=False)
    return rebuilt


def _stage_encoder(ctx: RunContext, model: VgiiModel):
    """The text encoder this stage runs itself: None with a data pack (its features are precomputed, or
    there is no text) or with the encoder off."""
    if ctx.text_features is not None or ctx.data.pack:
        return None
    return create_text_encoder(ctx.text, model.config.text_dim)


def _standardise(ctx: RunContext, model: VgiiModel, features: torch.Tensor) -> None:
    """The model's text feature standardisation from `features`, unless the heads stay as initialised
    (`train.train_text_heads` False): they were fitted to the init's standardisation."""
    if ctx.train.train_text_heads:
        set_standardisation(model, features)


def _text_features(ctx: RunContext, model: VgiiModel, extra: dict, encoder):
    """(train, validation) text features, or (None, None) without text; sets the model's feature
    standardisation the first time an encoder is used in this run. Precomputed features (from a data
    pack, or refreshed features in the resume state) are used as they are."""
    if ctx.text_features is not None:
        train_features, val_features, fingerprint = ctx.text_features
        expected = prompt_count(len(ctx.sampler.images), ctx.train.text_grey > 0, ctx.exposure is not None)
        if len(train_features) != expected:
            raise ConfigError(f"the data pack holds {len(train_features)} training text features, this run needs "
                              f"{expected} (train.text_grey and train.night_exposure add prompts per image): "
                              "pack with this config")
    elif "refreshed_text" in extra:
        return extra["refreshed_text"]
    elif encoder is None:
        return None, None
    else:
        train_features, val_features = _encode_prompts(ctx, model, encoder)
        fingerprint = encoder.fingerprint
    if extra["text_encoder"] != fingerprint:
        _standardise(ctx, model, train_features)
        extra["text_encoder"] = fingerprint
    return train_features, val_features


def _encode_prompts(ctx: RunContext, model: VgiiModel, encoder) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of the prompts describing each training and validation image with the model as it is now."""
    was_training = model.training
    model.eval()
    train_text = compute_features(model, ctx.sampler.images, encoder, ctx.text, ctx.train.text_thumb_size,
                                  with_grey=ctx.train.text_grey > 0, exposure=ctx.exposure)
    val_text = compute_features(model, ctx.val_images, encoder, ctx.text, ctx.train.text_thumb_size)
    model.train(was_training)
    LOGGER.info("text encoder %s; first prompt: %s", encoder.fingerprint, train_text.prompts[0])
    return train_text.features, val_text.features


def _refresh_text(ctx: RunContext, model: VgiiModel, encoder, extra: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """New features from the current model's prompts and their standardisation; kept in the resume state
    so a resumed run continues with exactly these."""
    features = _encode_prompts(ctx, model, encoder)
    _standardise(ctx, model, features[0])
    extra["refreshed_text"] = features
    return features


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
    saved = resume_state(ctx, "vgii", model, extra)  # the text setup below needs the resumed weights
    encoder = _stage_encoder(ctx, model)
    train_text, val_text = _text_features(ctx, model, extra, encoder)
    refresh = encoder is not None and ctx.train.text_refresh
    model.train()
    model.gate.requires_grad_(False)
    for head in (model.gamma_head, model.beta_head):
        head.requires_grad_(train_text is not None and ctx.train.train_text_heads)
    wrapped = wrap(VgiiStep(model, fusion=False), ctx)
    weights = _loss_weights(ctx)

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        vis, ir, idx = ctx.batch("vgii", step)
        grey = ctx.sample_mask("vgii", step, ctx.train.text_grey, GREY_STREAM) if ctx.train.text_grey > 0 else None
        exposed = None
        if ctx.exposure is not None:
            gammas = ctx.exposure[idx]
            exposed = ctx.sample_mask("vgii", step, ctx.train.night_exposure, EXPOSURE_STREAM) & (gammas < 1)
            vis = expose_luminance(vis, gammas, exposed)
        rows = prompt_rows(idx, len(ctx.sampler.images), grey, exposed, with_grey=ctx.train.text_grey > 0)
        feature = None if train_text is None else train_text[rows].to(ctx.device)
        identity = ctx.sample_mask("vgii", step, ctx.train.text_dropout) if ctx.train.text_dropout > 0 else None
        with torch.no_grad():
            teacher = None if teacher_net is None else teacher_net.encode(ir, "ir", dictionary)
        with autocast(ctx):
            out = wrapped(vis, feature, identity)
        return pseudo_ir_loss(out, vis, ir, teacher, weights)

    def on_epoch(step: int) -> None:
        nonlocal train_text, val_text
        if ctx.rank == 0:
            _save_if_best(step)
        # Every rank (the features follow the shared weights), and only while the stage goes on: the last
        # validation of a stage ended by its step count or its time budget needs no new features.
        goes_on = step < ctx.train.vgii_steps and time.monotonic() < ctx.stage_deadline("vgii")
        if refresh and goes_on:
            train_text, val_text = _refresh_text(ctx, model, encoder, extra)

    def _save_if_best(step: int) -> None:
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

    train_loop(ctx, "vgii", model, step_fn, ctx.train.vgii_steps, ctx.train.vgii_lr, extra, saved, on_epoch)
    return ctx.out_dir / "vgii_best.safetensors"


def _pseudo_ir_source(ctx: RunContext) -> Path:
    """The checkpoint whose pseudo-IR path the fusion stage freezes: this run's vgii_best, else
    train.init_from (so `train.py --stage fusion` with init_from retrains an existing model's gate alone)."""
    best = ctx.out_dir / "vgii_best.safetensors"
    if best.is_file() or not ctx.train.init_from:
        return best
    return Path(ctx.train.init_from)


def run_fusion(ctx: RunContext) -> Path:
    """Stage 2b, adaptive fusion: the gate Ψ trained with the fusion loss on the best pseudo-IR model,
    whose pseudo-IR path stays frozen (as the official code does). Writes model.safetensors (and the
    fp16 export) at the end."""
    best = _pseudo_ir_source(ctx)
    model = _stage2_model(ctx, best)
    # The pseudo-IR path is frozen, its text standardisation included: keep the best model's encoder
    # fingerprint so _text_features does not recompute the mean/std from this model's prompts.
    extra: dict = {"text_encoder": read_checkpoint(best)[0].text_encoder, "history": []}
    saved = resume_state(ctx, "fusion", model, extra)
    train_text, val_text = _text_features(ctx, model, extra, _stage_encoder(ctx, model))
    model.train()
    model.requires_grad_(False)
    model.gate.requires_grad_(True)
    wrapped = wrap(VgiiStep(model, fusion=True), ctx)
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

    steps = train_loop(ctx, "fusion", model, step_fn, ctx.train.fusion_steps, ctx.train.fusion_lr, extra,
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
    scores, grid = validate(model, ctx.val_images, val_text, with_fusion=with_fusion,
                            max_side=ctx.data.val_working_side)
    model.train()
    ctx.logger.scalars("val", scores, step)
    ctx.logger.images("val/vis_pseudoir_ir_fused", grid, step)
    return scores

"""Training pipeline (training/train.py): tiny-preset smoke run, exact resume, signal-safe stop, data layouts.

Everything runs the real script on small images the tests generate; no shared data is needed.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mnm_core.checkpoint import load_model, read_checkpoint, save_checkpoint
from mnm_core.errors import ConfigError, DataError
from mnm_core.model import VgiiModel
from test.conftest import write_pair
from training.data import find_pairs
from training.logging_utils import load_state
from training.train import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_PY = REPO_ROOT / "training" / "train.py"


def _config(tmp_path: Path, pair_root: Path, encoder: str = "none", **train: object) -> Path:
    values = {"preset": "tiny", "out_dir": str(tmp_path / "run"), "batch_size": 2, "jsrl_steps": 4,
              "dict_batches": 2, "vgii_steps": 6, "fusion_steps": 3, "steps_per_epoch": 3, "log_every": 1,
              "checkpoint_every": 2,
              "warmup_steps": 2, "export_path": str(tmp_path / "export.safetensors"), **train}
    config = {"train": values,
              "data": {"root": str(pair_root), "train_sets": ["synth_a", "synth_b"], "val_set": "synth_val",
                       "crop_size": 16, "val_images": 2, "val_max_side": 32},
              "text": {"encoder": encoder}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _train(config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(TRAIN_PY), "--config", str(config), *args],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory, pair_root: Path) -> Path:
    """One uninterrupted tiny-preset run of all stages, with a moving average of the weights (shared by
    the smoke and the resume test)."""
    tmp_path = tmp_path_factory.mktemp("straight")
    result = _train(_config(tmp_path, pair_root, ema_decay=0.9))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path


def test_tiny_preset_trains_all_stages(straight_run: Path) -> None:
    tmp_path = straight_run
    run = tmp_path / "run"
    for product in ("jsrl.safetensors", "dictionary.safetensors", "vgii_last.safetensors", "vgii_best.safetensors",
                    "summary.json"):
        assert (run / product).is_file(), product
    assert any((run / "tb").iterdir()), "no TensorBoard event file"
    model, info = load_model(tmp_path / "export.safetensors", kind="vgii", preset="tiny")
    assert info.text_encoder == "none" and info.extra["steps"] > 0
    assert float(model.dictionary.abs().sum()) > 0, "the shared dictionary was not set"
    _, tensors = read_checkpoint(tmp_path / "export.safetensors")
    assert tensors["rin.unet.out.weight"].dtype == torch.float16
    summary = yaml.safe_load((run / "summary.json").read_text())  # JSON is YAML
    assert {"pseudo_ir_ssim", "hotspot_auc", "val_score"} <= set(summary["vgii"]["last_val"])
    assert {"AG", "Qcb"} <= set(summary["fusion"]["last_val"])  # the fusion stage scores the fused image
    assert np.isfinite(summary["vgii"]["last_loss"]["total"])
    # validation and the stage's checkpoints hold the averaged weights, training goes on with its own
    state = load_state(run / "vgii_state.pt")
    _, last = read_checkpoint(run / "vgii_last.safetensors")
    averaged = state["weight_average"]["average"]
    assert state["weight_average"]["updates"] == 6 and "rin.unet.out.weight" in averaged
    for name, tensor in averaged.items():
        torch.testing.assert_close(last[name], tensor, msg=name)
    assert not torch.equal(averaged["rin.unet.out.weight"], state["model"]["rin.unet.out.weight"])


@pytest.mark.slow
def test_resumed_run_matches_uninterrupted_run(tmp_path: Path, pair_root: Path, straight_run: Path) -> None:
    interrupted = _config(tmp_path / "b", pair_root, ema_decay=0.9)
    first = _train(interrupted, "--stop-after", "3")  # stops inside JSRL at step 3 of 4
    assert first.returncode == 130, first.stderr[-3000:]
    assert load_state(tmp_path / "b" / "run" / "jsrl_state.pt")["step"] == 3
    second = _train(interrupted, "--resume", "--stop-after", "3")  # finishes JSRL, dict; stops VGII at 3/6
    assert second.returncode == 130, second.stderr[-3000:]
    assert "resumed at step 3" in second.stderr
    third = _train(interrupted, "--resume")
    assert third.returncode == 0, third.stderr[-3000:]
    a = load_state(straight_run / "run" / "vgii_state.pt")
    b = load_state(tmp_path / "b" / "run" / "vgii_state.pt")
    assert a["step"] == b["step"] == 6
    for name, value in a["extra"]["last_loss"].items():
        assert b["extra"]["last_loss"][name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
    for name, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    for name, tensor in a["weight_average"]["average"].items():
        torch.testing.assert_close(b["weight_average"]["average"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_sigterm_leaves_a_resumable_state(tmp_path: Path, pair_root: Path) -> None:
    config = _config(tmp_path, pair_root, jsrl_steps=10_000, checkpoint_every=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(TRAIN_PY), "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = tmp_path / "run" / "jsrl_state.pt"
    try:
        deadline = time.monotonic() + 120
        while not state.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state.is_file(), "no checkpoint appeared"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    saved = load_state(state)
    assert 1 <= saved["step"] < 10_000
    refused = _train(config)
    assert refused.returncode == 2 and "--resume" in refused.stderr


def test_config_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  vgii_step: 10\n")
    with pytest.raises(ConfigError, match="vgii_steps"):
        load_config(path)
    path.write_text("trian:\n  seed: 1\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(path)


def test_find_pairs_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    write_pair(tmp_path / "kaist" / "set00" / "V000" / "visible", tmp_path / "kaist" / "set00" / "V000" / "lwir",
                "I00000", rng, size=16)
    write_pair(tmp_path / "llvip" / "visible" / "train", tmp_path / "llvip" / "infrared" / "train", "010001",
                rng, size=16)
    (tmp_path / "llvip" / "visible" / "train" / "unpaired.png").write_bytes(b"")
    assert [p[0].name for p in find_pairs(tmp_path / "kaist", "kaist")] == ["I00000.png"]
    assert [p[1].parent.name for p in find_pairs(tmp_path / "llvip", "llvip")] == ["train"]
    with pytest.raises(DataError, match="no vi/"):
        find_pairs(tmp_path / "llvip", "msrs")
    with pytest.raises(DataError, match="unknown layout"):
        find_pairs(tmp_path / "llvip", "flir")


def test_warm_ranking_loss_orders_perfect_flat_and_inverted() -> None:
    from training.losses import warm_ranking_loss

    ir = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    perfect, flat, inverted = (float(warm_ranking_loss(p, ir)) for p in (ir, torch.full_like(ir, 0.3), 1 - ir))
    assert perfect < flat < inverted
    assert float(warm_ranking_loss(ir, torch.zeros_like(ir))) == 0.0  # flat IR: no warm pixels to rank


def test_fusion_loss_ranks_warm_pixels_only_when_asked() -> None:
    """w_fused_rank adds the warm-pixel ranking of the fused Y: a fused image that keeps the real IR's
    warm pixels bright costs less than one that darkens them; with weight 0 the term is absent."""
    from training.losses import fusion_loss

    generator = torch.Generator().manual_seed(1)
    vis, ir = torch.rand(2, 1, 32, 32, generator=generator), torch.rand(2, 1, 32, 32, generator=generator)
    weights = {"w_intensity": 1.0, "w_gradient": 1.0, "w_fusion_ssim": 0.5, "w_fused_rank": 0.0}
    assert "fused_rank" not in fusion_loss(vis, vis, ir, weights)
    weights["w_fused_rank"] = 5.0
    torch.manual_seed(0)
    warm = fusion_loss((vis + ir) / 2, vis, ir, weights)["fused_rank"]
    torch.manual_seed(0)
    cold = fusion_loss((vis + 1 - ir) / 2, vis, ir, weights)["fused_rank"]
    assert float(warm) < float(cold)


def test_fusion_stage_trains_only_the_gate(straight_run: Path) -> None:
    """The fusion stage leaves the pseudo-IR path (weights and text standardisation) as the best
    pseudo-IR model had it, and changes the gate."""
    _, best = read_checkpoint(straight_run / "run" / "vgii_best.safetensors")
    _, final = read_checkpoint(straight_run / "run" / "model.safetensors")
    assert best.keys() == final.keys()
    for name in best:
        if not name.startswith("gate."):
            torch.testing.assert_close(final[name], best[name], rtol=0, atol=0, msg=name)
    assert any(not torch.equal(final[n], best[n]) for n in best if n.startswith("gate."))


def test_fusion_stage_retrains_the_gate_of_a_convex_checkpoint(tmp_path: Path, pair_root: Path,
                                                              straight_run: Path) -> None:
    """`--stage fusion` with init_from and no pseudo-IR stage of its own retrains an existing model's gate:
    a checkpoint from before the residual fusion rule ('convex') comes out with the preset's rule
    and its pseudo-IR path untouched."""
    model, info = load_model(straight_run / "run" / "vgii_best.safetensors", kind="vgii", preset="tiny")
    convex = dataclasses.replace(info.model_config, fusion_rule="convex")
    old = VgiiModel(convex)
    old.load_state_dict(model.state_dict())
    source = tmp_path / "convex.safetensors"
    save_checkpoint(source, old, dataclasses.replace(info, model_config=convex))
    result = _train(_config(tmp_path, pair_root, init_from=str(source)), "--stage", "fusion")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the gate starts afresh" in result.stderr
    final_info, final = read_checkpoint(tmp_path / "run" / "model.safetensors")
    assert final_info.model_config.fusion_rule == "residual"
    _, before = read_checkpoint(source)
    for name in before:
        if not name.startswith("gate."):
            torch.testing.assert_close(final[name], before[name], rtol=0, atol=0, msg=name)


def test_text_features_follow_the_model_being_trained(tmp_path: Path, pair_root: Path) -> None:
    """With train.text_refresh the pseudo-IR stage re-encodes its prompts from the current model at each
    validation (kept in the resume state) and the model's feature standardisation follows them; with
    train.text_dropout part of each batch trains with the identity modulation and with train.text_grey part
    of it with its grey prompt, whose rows follow the colour ones."""
    config = _config(tmp_path, pair_root, encoder="minilm", preset="fast", text_refresh=True,
                     text_dropout=0.5, text_grey=0.5, batch_size=2)
    result = _train(config)
    assert result.returncode == 0, result.stderr[-3000:]
    state = load_state(tmp_path / "run" / "vgii_state.pt")
    train_features, val_features = state["extra"]["refreshed_text"]
    assert train_features.shape == (2 * 7, 384) and val_features.shape == (2, 384)
    torch.testing.assert_close(state["model"]["text_mean"], train_features.mean(dim=0))
    best_info, best = read_checkpoint(tmp_path / "run" / "vgii_best.safetensors")
    final_info, final = read_checkpoint(tmp_path / "run" / "model.safetensors")
    assert final_info.text_encoder == best_info.text_encoder != "none"
    torch.testing.assert_close(final["text_mean"], best["text_mean"])  # the fusion stage keeps them


def test_night_exposure_trains_on_exposed_dark_frames_with_their_prompts(tmp_path: Path, pair_root: Path) -> None:
    """train.night_exposure on dark frames: the run trains, and its prompt rows hold the exposed block
    (colour and grey) after the colour and grey rows, describing brighter frames than the dark originals."""
    from PIL import Image

    dark_root = tmp_path / "dark"
    for vis_path, ir_path in find_pairs(pair_root / "synth_a", "mnm") + find_pairs(pair_root / "synth_val", "mnm"):
        set_name = vis_path.parent.parent.name
        for folder, path, scale in (("vis", vis_path, 0.15), ("ir", ir_path, 1.0)):
            (dark_root / set_name / folder).mkdir(parents=True, exist_ok=True)
            array = (np.asarray(Image.open(path)) * scale).astype(np.uint8)
            Image.fromarray(array).save(dark_root / set_name / folder / path.name)
    init = REPO_ROOT / "mnm_core" / "weights" / "mnm_fast.safetensors"
    config = _config(tmp_path, dark_root, encoder="minilm", preset="fast", init_from=str(init), text_refresh=True,
                     text_grey=0.5, night_exposure=1.0, batch_size=2)
    values = yaml.safe_load(config.read_text())
    values["data"]["train_sets"] = ["synth_a"]
    config.write_text(yaml.safe_dump(values))
    result = _train(config, "--stage", "vgii")
    assert result.returncode == 0, result.stderr[-3000:]
    state = load_state(tmp_path / "run" / "vgii_state.pt")
    train_features, _ = state["extra"]["refreshed_text"]
    assert train_features.shape == (4 * 4, 384)
    colour, grey, exposed, exposed_grey = train_features.split(4)
    assert not torch.allclose(colour, exposed) and not torch.allclose(grey, exposed_grey)


def test_frozen_text_heads_keep_the_init_modulation(tmp_path: Path, pair_root: Path) -> None:
    """train.train_text_heads false: the pseudo-IR stage trains REN/RIN/TailNet under the init's Φγ/Φβ
    heads and text standardisation, which come out bit-exact; it needs an init_from to keep them from."""
    with pytest.raises(ConfigError, match="init_from"):
        load_config(_config(tmp_path / "no_init", pair_root, encoder="minilm", train_text_heads=False))
    init = REPO_ROOT / "mnm_core" / "weights" / "mnm_fast.safetensors"
    config = _config(tmp_path, pair_root, encoder="minilm", preset="fast", init_from=str(init),
                     train_text_heads=False, text_refresh=True, batch_size=2)
    result = _train(config, "--stage", "vgii")
    assert result.returncode == 0, result.stderr[-3000:]
    _, before = read_checkpoint(init)
    _, after = read_checkpoint(tmp_path / "run" / "vgii_last.safetensors")
    kept = [name for name in before if name.split(".")[0] in ("gamma_head", "beta_head", "text_mean", "text_std")]
    assert len(kept) == 10
    for name in kept:
        torch.testing.assert_close(after[name].float(), before[name].float(), rtol=0, atol=0, msg=name)
    assert not torch.equal(after["ren.init.0.weight"].float(), before["ren.init.0.weight"].float())


def test_validate_scores_a_checkpoint_with_and_without_its_text(tmp_path: Path, pair_root: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    """`python -m training.validate --text-off` scores under the identity modulation: rows labelled so,
    and (for a model trained with text) different scores."""
    from training.validate import main as validate_main

    config = _config(tmp_path, pair_root, encoder="minilm", preset="fast")
    shipped = str(REPO_ROOT / "mnm_core" / "weights" / "mnm_fast.safetensors")
    rows = {}
    for flag in ([], ["--text-off"]):
        assert validate_main(["--config", str(config), "--checkpoint", shipped, *flag]) == 0
        rows[bool(flag)] = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {shipped}")]
    assert len(rows[False]) == len(rows[True]) >= 2  # all, and each group with frames
    assert all(" (text off) | " in row for row in rows[True]) and not any("text off" in row for row in rows[False])
    assert [row.split(" | ")[4:] for row in rows[False]] != [row.split(" | ")[4:] for row in rows[True]]


def test_grey_prompts_change_only_the_colour_sentence() -> None:
    """A colourful frame's grey prompt says "mostly grey"; brightness, contrast and the warm objects of
    I_pir⁰ (the same luminance) are described alike, and the grey rows follow the colour rows."""
    from mnm_core.config import TextConfig
    from training.data import PairedImage
    from training.text_features import compute_features, create_text_encoder

    rng = np.random.default_rng(0)
    vis = np.zeros((96, 128, 3), np.uint8)
    vis[:, :64] = (200, 30, 30)  # saturated red and blue halves
    vis[:, 64:] = (30, 30, 200)
    vis = np.clip(vis + rng.integers(0, 20, vis.shape), 0, 255).astype(np.uint8)
    images = [PairedImage(vis, vis[:, :, 0].copy(), "set", "a"),
              PairedImage(vis[::-1].copy(), vis[:, :, 2].copy(), "set", "b")]
    model, _ = load_model(None)
    model.float().eval()
    config = TextConfig(encoder="minilm")
    features = compute_features(model, images, create_text_encoder(config, model.config.text_dim), config,
                                thumb_size=64, with_grey=True)
    assert features.features.shape == (4, 384)
    def without_colours(prompt: str) -> list[str]:
        return [sentence for sentence in prompt.split(". ") if "olours:" not in sentence]

    for colour_prompt, grey_prompt in zip(features.prompts[:2], features.prompts[2:]):
        assert "mostly grey" in grey_prompt and "mostly grey" not in colour_prompt
        assert without_colours(colour_prompt) == without_colours(grey_prompt)
    assert not torch.allclose(features.features[:2], features.features[2:])


def test_zoomed_crops_keep_the_pair_aligned_and_the_default_batches() -> None:
    """zoom_out_max > 1 shrinks a larger window of both modalities alike, zoom_in_max > 1 enlarges a
    smaller one; at 1 the batches are unchanged."""
    from mnm_core.config import DataConfig
    from training.data import CropSampler, PairedImage

    rows, cols = np.mgrid[0:300, 0:400]
    pattern = ((rows // 20 + cols // 20) % 2 * 255).astype(np.uint8)  # 20-px checkerboard
    image = PairedImage(np.repeat(pattern[:, :, None], 3, axis=2), pattern, "set", "a")

    def batch(config: DataConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return CropSampler([image], config).sample(16, torch.Generator().manual_seed(0))

    zoomed = batch(DataConfig(crop_size=64, context_fraction=0.0, zoom_out_max=3.0))
    plain = batch(DataConfig(crop_size=64, context_fraction=0.0))
    assert zoomed[0].shape == plain[0].shape == (16, 1, 64, 64)
    assert torch.allclose(zoomed[0], zoomed[1], atol=1e-6)  # the visible Y is the IR here: still aligned
    grey = lambda y: ((y > 0.05) & (y < 0.95)).float().mean()  # noqa: E731 - area-averaged cell borders
    assert grey(zoomed[1]) > grey(plain[1]) and grey(plain[1]) == 0  # zoomed crops were downscaled
    again = CropSampler([image], DataConfig(crop_size=64, context_fraction=0.0, zoom_out_max=1.0))
    assert torch.equal(again.sample(16, torch.Generator().manual_seed(0))[1], plain[1])
    with pytest.raises(ConfigError):
        DataConfig(zoom_out_max=0.5)
    zoomed_in = batch(DataConfig(crop_size=64, context_fraction=0.0, zoom_in_max=3.0))
    assert zoomed_in[0].shape == (16, 1, 64, 64) and torch.allclose(zoomed_in[0], zoomed_in[1], atol=1e-6)
    edges = lambda y: ((y[..., 1:] > 0.5) != (y[..., :-1] > 0.5)).float().sum(-1).mean()  # noqa: E731
    assert edges(zoomed_in[1]) < 0.8 * edges(plain[1])  # upscaled windows: larger cells, fewer borders
    with pytest.raises(ConfigError):
        DataConfig(zoom_in_max=0.9)


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads the CPU flags from Linux's /proc/cpuinfo")
def test_precision_auto_uses_bf16_where_the_cpu_has_it() -> None:
    """`precision: auto` follows the CPU's own flags: bf16 with AVX-512 BF16 or AMX, fp32 on AVX2 only."""
    from mnm_core.config import TrainConfig
    from training.stages import fast_math

    flags = set(Path("/proc/cpuinfo").read_text().split())
    native = bool(flags & {"avx512_bf16", "amx_bf16"})
    assert fast_math(TrainConfig(precision="auto"), torch.device("cpu")) is native
    assert fast_math(TrainConfig(precision="fp32"), torch.device("cpu")) is False
    assert fast_math(TrainConfig(precision="bf16"), torch.device("cpu")) is True

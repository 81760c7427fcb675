"""The background modulation refresher: the fast path never waits, failures keep the last good (γ, β).

The encoders here are real TextEncoder implementations defined for the test (deterministic features,
with a scripted behaviour per call: answer, sleep, raise, hang or return NaN).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import zlib

import numpy as np
import pytest
import torch

from mnm_core.backends.torch_backend import TorchBackend
from mnm_core.checkpoint import CheckpointInfo, save_checkpoint
from mnm_core.config import PipelineConfig, TextConfig, TrainConfig, preset
from mnm_core.errors import TextEncoderError
from mnm_core.model import VgiiModel
from mnm_core.modulation import ModulationSource
from mnm_core.pipeline import Fuser
from mnm_core.text import check_encoder, create_modulation_source
from mnm_core.text.base import TextEncoder
from mnm_core.text.frame_prompt import PROMPT_SIDE, thumbnail
from mnm_core.text.refresher import BACKGROUND_NICENESS, ModulationRefresher
from test.conftest import random_dictionary
from training.data import PairedImage
from training.text_features import compute_features

FINGERPRINT = "scripted:test:mean"


class ScriptedEncoder(TextEncoder):
    """16-d features from each text's CRC; call i does `script[i]` ('ok', 'raise', 'nan', 'hang', or a sleep)."""

    name = "scripted"
    fingerprint = FINGERPRINT

    def __init__(self, script: list[str | float], dim: int = 16) -> None:
        self.dim = dim
        self.script = list(script)
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.torch_threads = 0
        """torch's thread count in the thread of the last call."""

    def encode(self, texts: list[str]) -> np.ndarray:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        self.torch_threads = torch.get_num_threads()
        self.started.set()
        if isinstance(step, float):
            time.sleep(step)
        elif step == "raise":
            raise RuntimeError("encoder exploded")
        elif step == "hang":
            self.release.wait(30)
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.dim) for t in texts]
        features = np.asarray(rows, np.float32)
        return features * np.nan if step == "nan" else features


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run fastest on one intra-op thread; on a shared 2-core machine OpenMP spinning
    otherwise makes single frames take seconds. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(text_dim: int = 16) -> VgiiModel:
    """The tiny preset with a random dictionary and non-zero head outputs (so text changes γ, β)."""
    torch.manual_seed(0)
    model = VgiiModel(dataclasses.replace(preset("tiny"), text_dim=text_dim))
    config = model.config
    model.set_dictionary(random_dictionary(config.n_atoms, config.atom_size))
    for head in (model.gamma_head, model.beta_head):
        torch.nn.init.normal_(head.mlp[-1].weight, std=0.5)
    return model.eval()


def frame(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def rgb_float(seed: int) -> np.ndarray:
    return frame(seed).astype(np.float32) / 255.0


def median_latency_ms(fuser: Fuser, frames: list[np.ndarray]) -> float:
    return float(np.median([fuser.process(f).timings_ms["total"] for f in frames]))


def wait_for(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_fast_path_never_waits_for_a_slow_encoder() -> None:
    model = tiny_model()
    frames = [frame(i) for i in range(40)]
    baseline = Fuser(TorchBackend(model))
    median_latency_ms(baseline, frames[:5])  # warm-up
    without = median_latency_ms(baseline, frames)
    identity_result = baseline.process(frames[0])

    encoder = ScriptedEncoder([3.0])  # every call takes 3 s
    source = ModulationRefresher(model, encoder, TextConfig(refresh_period_s=0.05, timeout_s=30.0))
    with Fuser(TorchBackend(model), source) as fuser:
        fuser.process(frames[0])
        assert encoder.started.wait(10), "the refresher never called the encoder"
        with_slow = median_latency_ms(fuser, frames)
        assert encoder.calls == 1 and source.stats()["refreshes"] == 0  # all frames ran during the 3 s call
        assert fuser.process(frames[0]).modulation.source == "identity"
        assert with_slow / without < 2.0, f"per-frame latency {with_slow:.2f} ms vs {without:.2f} ms without"
        assert wait_for(lambda: source.stats()["refreshes"] >= 1)
        result = fuser.process(frames[0])
    assert result.modulation.source == "scripted" and result.modulation.prompt.startswith("A ")
    assert not np.allclose(result.modulation.gamma, 1.0) and not np.allclose(result.modulation.beta, 0.0)
    assert not np.array_equal(result.pseudo_ir, identity_result.pseudo_ir)


def test_the_slow_path_runs_at_a_lower_priority() -> None:
    """The refresh and encoder threads yield the CPU to the fast path (nice BACKGROUND_NICENESS) and keep
    their torch ops to themselves (one thread each), while the caller's torch thread count is unchanged."""
    encoder = ScriptedEncoder(["hang"])
    source = ModulationRefresher(tiny_model(), encoder, TextConfig(refresh_period_s=0.02, timeout_s=60.0))
    torch.set_num_threads(2)  # this module runs on one (one_torch_thread); a node's main thread has several
    source.observe(rgb_float(0), None)
    source.start()
    try:
        assert encoder.started.wait(10)
        threads = {t.name: t.native_id for t in threading.enumerate()}
        for name in ("mnm-text-refresh", "mnm-text-encode"):
            assert os.getpriority(os.PRIO_PROCESS, threads[name]) >= BACKGROUND_NICENESS
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < BACKGROUND_NICENESS
        assert encoder.torch_threads == 1 and torch.get_num_threads() == 2
    finally:
        encoder.release.set()
        source.stop()
        torch.set_num_threads(1)


def test_failures_keep_the_last_good_modulation() -> None:
    encoder = ScriptedEncoder(["ok", "raise", "nan", "hang", "ok"])
    source = ModulationRefresher(tiny_model(), encoder, TextConfig(timeout_s=0.3))
    source.observe(rgb_float(1), None)
    assert source.refresh()
    good = source.current()
    assert good.source == "scripted" and good.gamma.shape == (1, 8)

    source.observe(rgb_float(2), None)
    assert not source.refresh()  # raises
    assert not source.refresh()  # NaN (the failed frame is retried)
    assert not source.refresh()  # hangs past timeout_s: abandoned
    assert not source.refresh()  # the hung call still runs: no second call is started
    assert source.current() is good
    stats = source.stats()
    assert (stats["refreshes"], stats["failures"], stats["non_finite"], stats["timeouts"]) == (1, 4, 1, 1)
    assert stats["consecutive_failures"] == 4 and "still running" in stats["last_error"]
    assert encoder.calls == 4

    encoder.release.set()
    assert wait_for(lambda: source.refresh())
    assert source.current() is not good and source.stats()["consecutive_failures"] == 0


def test_background_retries_back_off_and_stop_is_prompt() -> None:
    encoder = ScriptedEncoder(["raise"])
    source = ModulationRefresher(tiny_model(), encoder, TextConfig(refresh_period_s=0.02, timeout_s=1.0))
    source.observe(rgb_float(3), None)
    source.start()
    time.sleep(1.0)
    source.stop()
    # Without back-off ~50 calls would fit in 1 s; doubling delays 0.04, 0.08, ... allow about five.
    assert 2 <= encoder.calls <= 8, encoder.calls
    assert source.current().source == "identity" and source.stats()["failures"] == encoder.calls

    hanging = ScriptedEncoder(["hang"])
    source = ModulationRefresher(tiny_model(), hanging, TextConfig(refresh_period_s=0.02, timeout_s=60.0))
    source.observe(rgb_float(4), None)
    source.start()
    assert hanging.started.wait(10)
    thread = source._thread
    source.stop()
    assert thread is not None and not thread.is_alive()
    hanging.release.set()


def test_refuses_other_encoder_or_dimension() -> None:
    model = tiny_model()
    info = CheckpointInfo(kind="vgii", preset="tiny", model_config=model.config, text_encoder=FINGERPRINT)
    with pytest.raises(TextEncoderError, match=r"'minilm:all-MiniLM-L6-v2:mean'.*'scripted:test:mean'"):
        create_modulation_source(model, info, TextConfig())  # refused before MiniLM is loaded
    untrained = dataclasses.replace(info, text_encoder="none")
    with pytest.raises(TextEncoderError, match=r"trained without text: set text\.encoder to none"):
        create_modulation_source(model, untrained, TextConfig())
    with pytest.raises(TextEncoderError, match=r"gives 384-d features.*text_dim=16"):
        check_encoder(FINGERPRINT, 384, model, info)
    check_encoder(FINGERPRINT, 16, model, info)
    source = create_modulation_source(model, untrained, TextConfig(encoder="none"))
    assert type(source) is ModulationSource


def test_prompts_are_described_on_training_thumbnails() -> None:
    """The node describes the square thumbnail training computed its prompts on, whatever the frame."""
    assert TrainConfig().text_thumb_size == PROMPT_SIDE
    rgb = np.random.default_rng(0).random((192, 256, 3), dtype=np.float32)
    for frame in (rgb, rgb[:40, :50]):
        small = thumbnail(frame)
        assert small.shape == (PROMPT_SIDE, PROMPT_SIDE, 3) and small.dtype == np.float32
        assert abs(float(small.mean()) - float(frame.mean())) < 0.02


def test_node_and_training_write_the_same_prompt_for_an_image() -> None:
    """The heads learn from training's prompts; the node must write the same words for the same image,
    whatever it described before (no sentence about an earlier frame), so evaluation does not depend
    on the order of its images."""
    model = tiny_model()
    frames = [frame(1, 120, 160), frame(2, 48, 64), np.full((90, 70, 3), 20, np.uint8), frame(1, 120, 160)]
    images = [PairedImage(vis, vis[:, :, 0].copy(), "test", str(i)) for i, vis in enumerate(frames)]
    trained = compute_features(model, images, ScriptedEncoder(["ok"]), TextConfig(), PROMPT_SIDE)
    refresher = ModulationRefresher(model, ScriptedEncoder(["ok"]), TextConfig())
    written = []
    for vis in frames:
        rgb = vis.astype(np.float32) / 255.0
        refresher.observe(rgb, rgb[:, :, 0])
        assert refresher.refresh()
        written.append(refresher.current().prompt)
    assert written == trained.prompts
    assert written[0] == written[3] and len(set(written)) == 3


@pytest.mark.slow
def test_fuser_from_config_with_minilm(tmp_path) -> None:
    """End to end: a checkpoint trained 'with' MiniLM, Fuser.from_config, real MiniLM in the background."""
    model = tiny_model(text_dim=384)
    info = CheckpointInfo(kind="vgii", preset="tiny", model_config=model.config,
                          text_encoder="minilm:all-MiniLM-L6-v2:mean")
    path = save_checkpoint(tmp_path / "tiny_minilm.safetensors", model, info)
    pipeline = PipelineConfig(checkpoint=str(path), backend="torch")
    with Fuser.from_config(pipeline, TextConfig(refresh_period_s=0.05)) as fuser:
        assert fuser.process(frame(0)).modulation.source == "identity"
        assert wait_for(lambda: fuser.process(frame(1)).modulation.source == "minilm", timeout_s=120)
        stats = fuser.modulation_source.stats()
    assert stats["refreshes"] >= 1 and stats["failures"] == 0 and "scene" in str(stats["prompt"])


def test_synchronous_fuser_modulates_every_frame_before_its_fast_path():
    """Evaluation mode: no background thread; each frame's own prompt sets its (γ, β)."""
    model = tiny_model()
    encoder = ScriptedEncoder(["ok"])
    source = ModulationRefresher(model, encoder, TextConfig(refresh_period_s=60.0))
    fuser = Fuser(TorchBackend(model), source, synchronous=True)
    rng = np.random.default_rng(0)
    dark = (rng.random((32, 48, 3)) * 40).astype(np.uint8)
    bright = (200 + rng.random((32, 48, 3)) * 55).astype(np.uint8)
    first = fuser.process(dark)
    second = fuser.process(bright)
    assert source._thread is None  # nothing ran in the background
    assert encoder.calls == 2
    assert first.modulation.source != "identity" and first.modulation.prompt != second.modulation.prompt
    assert not np.array_equal(first.modulation.gamma, second.modulation.gamma)
    again = Fuser(TorchBackend(model), ModulationRefresher(model, ScriptedEncoder(["ok"]), TextConfig()),
                  synchronous=True).process(dark)
    np.testing.assert_array_equal(again.pseudo_ir, first.pseudo_ir)  # reproducible
    fuser.close()

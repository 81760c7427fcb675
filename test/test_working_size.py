"""The fast path's working size (PipelineConfig.max_side): large frames run downscaled, outputs come back
at the frame's size, and the visible detail of the fused image is kept."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mnm_core.backends.torch_backend import TorchBackend
from mnm_core.config import PipelineConfig
from mnm_core.errors import ConfigError
from mnm_core.pipeline import Fuser
from mnm_core.working_size import to_frame_size, to_working_size, working_size
from test.test_model import vgii_with_dictionary


def test_working_size_shrinks_only_frames_above_max_side_and_keeps_the_aspect() -> None:
    assert working_size(480, 640, 0) == (480, 640)
    assert working_size(480, 640, 640) == (480, 640)
    assert working_size(480, 640, 320) == (240, 320)
    assert working_size(720, 1280, 320) == (180, 320)
    assert working_size(1000, 3, 100) == (100, 1)  # at least one pixel
    with pytest.raises(ConfigError, match="max_side"):
        PipelineConfig(max_side=-1)


def test_the_fused_image_keeps_the_frames_own_detail() -> None:
    """Where the fusion changed nothing at the working size, the fused Y is the frame's Y exactly; a change
    made there comes back upsampled on top of it."""
    y = np.random.default_rng(0).random((96, 128), dtype=np.float32)
    y_work = to_working_size(y, 64)
    assert y_work.shape == (48, 64)
    pseudo_ir = np.full_like(y_work, 0.25)
    up_ir, fused = to_frame_size(pseudo_ir, y_work.copy(), y_work, y)
    assert up_ir.shape == y.shape and np.allclose(up_ir, 0.25)
    np.testing.assert_array_equal(fused, y)
    _, fused = to_frame_size(pseudo_ir, y_work + 0.1, y_work, y)
    np.testing.assert_allclose(fused, y + 0.1, atol=1e-6)


def test_the_fuser_runs_large_frames_at_the_working_size() -> None:
    model = vgii_with_dictionary("tiny")
    frame = cv2.resize(np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8), (128, 96))
    native, working = Fuser(TorchBackend(model)), Fuser(TorchBackend(model), max_side=64)
    large = working.process(frame)
    assert large.pseudo_ir.shape == (96, 128) and large.fused.shape == frame.shape
    small_frame = cv2.resize(frame, (64, 48), interpolation=cv2.INTER_AREA)
    expected = cv2.resize(native.process(small_frame).pseudo_ir, (128, 96), interpolation=cv2.INTER_LINEAR)
    assert np.abs(large.pseudo_ir.astype(int) - expected).max() <= 2  # rounding to uint8 on both sides
    small = native.process(small_frame)  # a frame within max_side runs unchanged
    np.testing.assert_array_equal(working.process(small_frame).pseudo_ir, small.pseudo_ir)
    np.testing.assert_array_equal(working.process(small_frame).fused, small.fused)


def test_validation_at_a_working_size_scores_what_the_node_runs() -> None:
    """training.validate with max_side gives the scores of the Fuser's outputs at that working size."""
    from mnm_core.guesses import pseudo_ir_comparison
    from training.data import PairedImage
    from training.validate import validate

    model = vgii_with_dictionary("tiny")
    rng = np.random.default_rng(2)
    vis = cv2.resize(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), (160, 120))
    ir = cv2.resize(rng.integers(0, 256, (30, 40), dtype=np.uint8), (160, 120))
    scores, _ = validate(model, [PairedImage(vis, ir, "test", "a")], None, with_fusion=False, max_side=64)
    node = Fuser(TorchBackend(model), max_side=64).process(vis)
    expected = pseudo_ir_comparison(vis, ir, node.pseudo_ir)
    for name in ("pseudo_ir_ssim", "hotspot_auc", "pseudo_ir_psnr"):
        assert scores[name] == pytest.approx(expected[name], abs=1e-6), name

"""Networks: presets, fast path shapes and finiteness, identity heads, JSRL stages, parameter budget."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mnm_core.backends.torch_backend import TorchBackend
from mnm_core.config import PRESETS, ModelConfig, from_mapping, preset
from mnm_core.errors import InputError
from mnm_core.model import JsrlModel, VgiiModel
from mnm_core.model.vgii import Gate
from mnm_core.pipeline import Fuser
from mnm_core.report import model_report
from test.conftest import random_dictionary


def vgii_with_dictionary(name: str) -> VgiiModel:
    """A preset with a random dictionary, seeded: about 1 in 20 random initialisations of `tiny` clamps
    every output to 0 or 1, and then no input or modulation changes it."""
    torch.manual_seed(0)
    config = preset(name)
    model = VgiiModel(config).eval()
    model.set_dictionary(random_dictionary(config.n_atoms, config.atom_size))
    return model


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_fast_path_of_every_preset_is_finite_and_input_sized(name):
    model = vgii_with_dictionary(name)
    y = torch.rand(1, 1, 32, 40)
    gamma, beta = model.identity_modulation()
    with torch.no_grad():
        pseudo_ir, fused_y = model(y, gamma, beta)
    for out in (pseudo_ir, fused_y):
        assert out.shape == y.shape
        assert torch.isfinite(out).all()
        assert out.min() >= 0 and out.max() <= 1


def test_modulation_heads_start_at_identity():
    model = VgiiModel(preset("tiny"))
    feature = torch.randn(3, model.config.text_dim)
    gamma, beta = model.modulation(feature)
    torch.testing.assert_close(gamma, torch.ones(3, model.config.n_atoms))
    torch.testing.assert_close(beta, torch.zeros(3, model.config.n_atoms))


def test_modulation_changes_the_fast_path():
    model = vgii_with_dictionary("tiny")
    y = torch.rand(1, 1, 16, 16)
    gamma, beta = model.identity_modulation()
    with torch.no_grad():
        base, _ = model(y, gamma, beta)
        shifted, _ = model(y, gamma * 1.5, beta + 0.2)
    assert not torch.allclose(base, shifted)


def vgii_with_gate(fusion_rule: str) -> VgiiModel:
    config = dataclasses.replace(preset("tiny"), fusion_rule=fusion_rule)
    model = VgiiModel(config).eval()
    model.set_dictionary(random_dictionary(config.n_atoms, config.atom_size))
    return model


def test_convex_gate_weights_are_a_partition_of_unity():
    model = vgii_with_gate("convex")
    with torch.no_grad():
        out = model.fast_path(torch.rand(2, 1, 16, 16), *model.identity_modulation(2))
        weight_vis, weight_pir = model.gate(out.coeffs_vis, out.coeffs_pir)
    assert ((weight_vis >= 0) & (weight_vis <= 1)).all()
    torch.testing.assert_close(weight_vis + weight_pir, torch.ones_like(weight_vis))


def test_residual_fusion_starts_at_the_visible_image_and_may_exceed_one():
    """A fresh 'residual' gate weights the visible coefficients ≈ 1 and adds ≈ 0.1 of the pseudo-IR's;
    with W_vis = 1 and W_pir = 0 the fused Y is the visible Y exactly (not REN's approximation of it);
    each weight is bounded by (0, 2) on its own."""
    model = vgii_with_gate("residual")
    y = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        out = model.fast_path(y, *model.identity_modulation(2))
        weight_vis, weight_pir = model.gate(out.coeffs_vis, out.coeffs_pir)
        assert abs(float(weight_vis.mean()) - 1.0) < 0.1
        assert abs(float(weight_pir.mean()) - Gate.FREE_INIT_PIR) < 0.05
        last = model.gate.net[-1]
        last.weight.zero_()
        last.bias[model.config.n_atoms:] = -50.0
        torch.testing.assert_close(model.fast_path(y, *model.identity_modulation(2)).fused_y, y)
        last.bias.fill_(50.0)
        weight_vis, weight_pir = model.gate(out.coeffs_vis, out.coeffs_pir)
    assert float(weight_vis.min()) > 1.9 and float(weight_pir.max()) <= Gate.FREE_MAX


def test_presets_train_residual_fusion_and_old_checkpoints_keep_convex_fusion():
    assert all(config.fusion_rule == "residual" for config in PRESETS.values())
    assert from_mapping(ModelConfig, {"n_atoms": 8}).fusion_rule == "convex"


def test_initial_pseudo_ir_equals_identity_fast_path():
    model = vgii_with_dictionary("tiny")
    y = torch.rand(1, 1, 16, 24)
    with torch.no_grad():
        pseudo_ir, _ = model(y, *model.identity_modulation())
        torch.testing.assert_close(model.initial_pseudo_ir(y), pseudo_ir)


def test_jsrl_forward_and_teacher_encoding():
    model = JsrlModel(preset("tiny"))
    vis, ir = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    out = model(vis, ir)
    assert out.dictionary.shape == (8, 5, 5)
    assert out.reconstructions["vis"].shape == vis.shape
    loss = sum((out.reconstructions[m] - x).abs().mean() for m, x in (("vis", vis), ("ir", ir)))
    loss.backward()
    assert all(p.grad is not None for p in model.coenet.parameters())
    with torch.no_grad():
        coeffs = model.encode(ir, "ir", out.dictionary)
    assert coeffs.shape == (2, 8, 16, 16)


def test_paper_preset_parameter_budget():
    total = model_report("paper").as_dict()["params_total"]
    assert abs(total - 21.8e6) / 21.8e6 < 0.15


def test_fast_preset_costs_a_fraction_of_small():
    """The CPU-first preset: at most a sixth of small's fast-path MACs, the same outputs' contract."""
    fast, small = model_report("fast"), model_report("small")
    size = list(small.fast_path_macs)[-1]
    assert fast.fast_path_macs[size] * 6 < small.fast_path_macs[size]
    assert fast.component_macs[size]["rin"] * 4 < small.component_macs[size]["rin"]


def test_three_level_unet_keeps_size_and_four_level_names():
    from mnm_core.model.blocks import UNet

    three, four = UNet(2, 3, (4, 8, 16)), UNet(2, 3, (4, 8, 16, 32))
    assert three(torch.rand(1, 2, 8, 16)).shape == (1, 3, 8, 16)
    names = {name.split(".")[0] for name in four.state_dict()}
    assert names == {"enc0", "enc1", "enc2", "bottom", "down0", "down1", "down2", "up0", "up1", "up2",
                     "dec0", "dec1", "dec2", "out"}  # the shipped small checkpoint's keys


def test_rin_stride_needs_sizes_the_fuser_pads_to():
    from mnm_core.config import ModelConfig
    from mnm_core.errors import ConfigError

    with pytest.raises(ConfigError, match="multiples of 16"):
        ModelConfig(widths=(8, 16, 32, 64), rin_stride=2)
    with pytest.raises(ConfigError, match="rin_stride"):
        ModelConfig(rin_stride=3)


@pytest.mark.parametrize("shape,layout", [((1, 1, 3), "rgb"), ((7, 13, 3), "bgr"), ((9, 11), "gray"),
                                          ((641 // 4, 479 // 4, 3), "rgb")])
def test_odd_sizes_round_trip_through_the_fuser(shape, layout):
    fuser = Fuser(TorchBackend(vgii_with_dictionary("tiny")))
    frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    result = fuser.process(frame, layout)
    assert result.pseudo_ir.shape == shape[:2] and result.pseudo_ir.dtype == np.uint8
    assert result.fused.shape == frame.shape and result.fused.dtype == np.uint8


@pytest.mark.parametrize("frame,layout,message", [
    (np.zeros((0, 0, 3), np.uint8), "rgb", "empty"),
    (np.zeros((4, 4, 3), np.float32), "rgb", "uint8"),
    (np.zeros((4, 4), np.uint8), "rgb", "H×W×3"),
    (np.zeros((4, 4, 3), np.uint8), "yuv", "layout"),
])
def test_bad_frames_are_refused_clearly(frame, layout, message):
    fuser = Fuser(TorchBackend(vgii_with_dictionary("tiny")))
    with pytest.raises(InputError, match=message):
        fuser.process(frame, layout)

"""Defaults per machine (mnm_core.machine): embedded model, device, precision and threads, and what the
Fuser reports it chose."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mnm_core import checkpoint as checkpoint_module
from mnm_core import quantize
from mnm_core.checkpoint import CheckpointInfo, save_checkpoint
from mnm_core.config import PipelineConfig, preset
from mnm_core.export import model_hash
from mnm_core.machine import AUTO_MODELS, embedded_checkpoint, resolve_device, resolve_precision, usable_cores
from mnm_core.pipeline import Fuser
from test.test_export import random_vgii


@pytest.fixture
def weights(tmp_path, monkeypatch):
    """A weights folder standing in for mnm_core/weights: default_checkpoint_path(preset) points into it."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setattr(checkpoint_module, "default_checkpoint_path",
                        lambda name="": folder / f"mnm_{name or 'small'}.safetensors")
    return folder


def test_threads_follow_the_cores_this_process_may_use():
    assert usable_cores() == len(os.sched_getaffinity(0))


def test_auto_device_is_the_cpu_without_cuda_and_explicit_devices_stay():
    assert resolve_device(PipelineConfig(device="cpu")) == "cpu"
    assert resolve_device(PipelineConfig(backend="tensorrt", device="cuda:1")) == "cuda:1"
    import torch

    if not torch.cuda.is_available():
        assert resolve_device(PipelineConfig()) == "cpu"
        assert resolve_device(PipelineConfig(backend="torch")) == "cpu"
    assert resolve_device(PipelineConfig(backend="tensorrt")) == "cuda"  # TensorRT runs nowhere else


def test_auto_model_is_the_best_shipped_one_for_the_device(weights):
    for name in ("fast", "small"):
        (weights / f"mnm_{name}.safetensors").touch()
    for device in ("cpu", "cuda"):
        assert embedded_checkpoint("auto", device).name == f"mnm_{AUTO_MODELS[device][0]}.safetensors"
    assert embedded_checkpoint("auto", "cpu").name == "mnm_fast.safetensors"
    assert embedded_checkpoint("small", "cpu").name == "mnm_small.safetensors"
    (weights / "mnm_fast.safetensors").unlink()  # only small shipped: auto falls back to it
    assert embedded_checkpoint("auto", "cpu").name == "mnm_small.safetensors"
    assert embedded_checkpoint("auto", "cuda").name == "mnm_small.safetensors"


def test_auto_precision_is_int8_only_with_a_calibrated_file_of_these_weights(tmp_path, monkeypatch):
    model, other = random_vgii("tiny"), random_vgii("tiny", seed=3)
    shipped = tmp_path / "mnm_tiny.int8.onnx"
    monkeypatch.setattr(quantize, "shipped_int8_path", lambda name: shipped)
    monkeypatch.setattr(quantize, "is_int8_of", lambda path, digest: path == shipped and digest == model_hash(model))
    auto = PipelineConfig()
    assert resolve_precision(auto, "cpu", model) == "fp32"  # no file shipped
    shipped.touch()
    assert resolve_precision(auto, "cpu", model) == "int8"
    assert resolve_precision(auto, "cpu", other) == "fp32"
    assert resolve_precision(auto, "cuda", model) == "fp16"
    assert resolve_precision(PipelineConfig(backend="torch"), "cpu", model) == "fp32"
    assert resolve_precision(PipelineConfig(precision="fp32"), "cpu", model) == "fp32"


def test_the_fuser_reports_its_choices(weights):
    model = random_vgii("tiny")
    config = preset("tiny")
    save_checkpoint(weights / "mnm_fast.safetensors", model,
                    CheckpointInfo(kind="vgii", preset="tiny", model_config=config))
    with Fuser.from_config(PipelineConfig(backend="torch"), synchronous=True) as fuser:
        deployment = fuser.deployment
        fuser.process(np.zeros((16, 24, 3), np.uint8))
    assert deployment.checkpoint.endswith("mnm_fast.safetensors") and deployment.preset == "tiny"
    assert (deployment.device, deployment.precision, deployment.threads) == ("cpu", "fp32", usable_cores())
    info = deployment.as_info()
    assert info["model"] == "tiny (mnm_fast.safetensors)" and info["threads"] == str(usable_cores())

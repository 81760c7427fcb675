"""PyTorch backend: the VgiiModel itself on CPU or CUDA, fp32 or fp16."""

from __future__ import annotations

import copy

import numpy as np
import torch

from mnm_core.backends.base import InferenceBackend
from mnm_core.errors import BackendError
from mnm_core.model import VgiiModel


class TorchBackend(InferenceBackend):
    name = "torch"

    def __init__(self, model: VgiiModel, device: str = "cpu", precision: str = "fp32", compile: bool = False) -> None:
        if precision not in ("fp32", "fp16"):
            raise BackendError(f"torch backend: unknown precision {precision!r}; use fp32 or fp16")
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise BackendError(f"torch backend: invalid device {device!r}: {exc}") from exc
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendError(f"torch backend: device {device!r} asked for but CUDA is not available; use cpu")
        self.precision = precision
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        # A private copy: moving or casting must not change the caller's model (the slow path uses it).
        self.model = copy.deepcopy(model).to(self.device, self.dtype).eval()
        self.compiled = compile
        if compile:  # optional: torch.compile (recompiles once per new input size)
            self.model = torch.compile(self.model, dynamic=False)

    @property
    def n_atoms(self) -> int:
        return self.model.config.n_atoms

    @torch.inference_mode()
    def run(self, y: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, self.dtype)

        pseudo_ir, fused_y = self.model(tensor(y), tensor(gamma), tensor(beta))
        return pseudo_ir.float().cpu().numpy(), fused_y.float().cpu().numpy()

    def describe(self) -> str:
        return f"torch {self.precision} ({self.device}{', compiled' if self.compiled else ''})"

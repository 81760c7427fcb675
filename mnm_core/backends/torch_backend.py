"""PyTorch backend: the VgiiModel itself on CPU or CUDA, in fp32, fp16 or bf16 (float32 in and out).

bf16 on the CPU runs channels-last: on a CPU without native bf16 (this project's AMD EPYC, AVX2 only)
torch 2.13's bf16 convolutions in the default NCHW layout are ~100× slower than fp32, channels-last ones
~7× (a 32-channel 3×3 conv at 320×256: fp32 33 ms, bf16 NCHW 3.5 s, bf16 channels-last 0.23 s; the
small preset's fast path: fp32 0.9 s, bf16 NCHW 100 s, bf16 channels-last 10 s).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from mnm_core.backends.base import InferenceBackend
from mnm_core.errors import BackendError
from mnm_core.model import VgiiModel

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchBackend(InferenceBackend):
    name = "torch"

    def __init__(self, model: VgiiModel, device: str = "cpu", precision: str = "fp32", compile: bool = False,
                 threads: int = 0) -> None:
        """threads: CPU threads for torch's operators (process-wide in torch), 0 = leave torch's default."""
        if precision == "int8":
            raise BackendError("the torch backend has no int8: int8 is a static quantisation of the ONNX export, "
                               "run it with backend onnxruntime")
        if precision not in DTYPES:
            raise BackendError(f"torch backend: unknown precision {precision!r}; use fp32, fp16 or bf16")
        if threads > 0:
            torch.set_num_threads(threads)
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise BackendError(f"torch backend: invalid device {device!r}: {exc}") from exc
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendError(f"torch backend: device {device!r} asked for but CUDA is not available; use cpu")
        if precision == "bf16" and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise BackendError(f"torch backend: {torch.cuda.get_device_name(self.device)} has no bf16; use fp16")
        self.precision = precision
        self.dtype = DTYPES[precision]
        self.memory_format = torch.channels_last if precision == "bf16" and self.device.type == "cpu" \
            else torch.contiguous_format
        # A private copy: moving or casting must not change the caller's model (the slow path uses it).
        self.model = copy.deepcopy(model).to(self.device, self.dtype, memory_format=self.memory_format).eval()
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

        y_in = tensor(y).contiguous(memory_format=self.memory_format)
        pseudo_ir, fused_y = self.model(y_in, tensor(gamma), tensor(beta))
        return pseudo_ir.float().cpu().numpy(), fused_y.float().cpu().numpy()

    def describe(self) -> str:
        return f"torch {self.precision} ({self.device}{', compiled' if self.compiled else ''})"

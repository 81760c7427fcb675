"""ONNX Runtime backend: the exported fast path on the CPU (the default), or CUDA/TensorRT execution providers."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mnm_core.backends.base import InferenceBackend
from mnm_core.errors import BackendError
from mnm_core.export import INPUT_NAMES, OUTPUT_NAMES, read_metadata

LOGGER = logging.getLogger(__name__)

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
EXPORT_FLAGS = {"fp32": "", "fp16": " --fp16", "int8": " --int8"}
"""The precisions an ONNX file can have, and the `mnm export` flag that makes each."""


def check_precision(precision: str) -> None:
    """BackendError unless onnxruntime can run `precision` (asked for, or of a file)."""
    if precision == "bf16":
        raise BackendError("the onnxruntime backend has no bf16: ONNX Runtime's CPU provider has no bfloat16 "
                           "arithmetic (a bf16 Conv graph does not even load), so there is no bf16 export; use "
                           "backend torch with precision bf16, or precision int8 or fp32 here")
    if precision not in EXPORT_FLAGS:
        raise BackendError(f"onnxruntime backend: unknown precision {precision!r}; use one of {list(EXPORT_FLAGS)}")


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendError("the onnxruntime backend needs the onnxruntime package: `pip install onnxruntime` "
                           "(or onnxruntime-gpu for CUDA), or choose backend torch") from exc
    return onnxruntime


def choose_providers(device: str, available: list[str]) -> list[str]:
    """Execution providers for `device`: 'cpu' → CPU only; 'cuda[:N]' → TensorRT/CUDA EPs present, then CPU."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if not device.startswith("cuda"):
        raise BackendError(f"onnxruntime backend: unknown device {device!r}; use cpu or cuda")
    gpu = [p for p in GPU_PROVIDERS if p in available]
    if not gpu:
        raise BackendError(f"onnxruntime backend: device {device!r} asked for, but this onnxruntime has only "
                           f"{available}; install onnxruntime-gpu matching your CUDA, or use device cpu")
    return [*gpu, "CPUExecutionProvider"]


class OnnxRuntimeBackend(InferenceBackend):
    """Runs an exported ONNX file; its metadata gives n_atoms, precision and the accepted sizes."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, device: str = "cpu", precision: str | None = None,
                 threads: int = 0) -> None:
        ort = import_onnxruntime()
        self.path = Path(onnx_path)
        if precision is not None:
            check_precision(precision)
        self.metadata = read_metadata(self.path)
        if precision is not None and precision != self.metadata.precision:
            raise BackendError(f"{self.path} is an {self.metadata.precision} export but {precision} was asked for; "
                               f"export an {precision} variant (`mnm export{EXPORT_FLAGS[precision]} --out FILE`) "
                               "or change the precision")
        self.precision = self.metadata.precision
        self.device = device
        providers = choose_providers(device, ort.get_available_providers())
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BackendError(f"onnxruntime cannot load {self.path} ({exc}); re-export it with "
                               f"`mnm export --out {self.path}`") from exc
        names = ([i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()])
        if names != (list(INPUT_NAMES), list(OUTPUT_NAMES)):
            raise BackendError(f"{self.path} has inputs/outputs {names}, not {INPUT_NAMES}/{OUTPUT_NAMES}; "
                               "re-export it with `mnm export`")
        self.providers = self.session.get_providers()
        LOGGER.info("onnxruntime %s on %s: %s", self.precision, self.providers[0], self.path)

    @property
    def n_atoms(self) -> int:
        return self.metadata.n_atoms

    def run(self, y: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.metadata.check_size(*y.shape[-2:])
        if gamma.shape[-1] != self.n_atoms or beta.shape[-1] != self.n_atoms:
            raise BackendError(f"gamma/beta must be 1×{self.n_atoms}, got {gamma.shape} and {beta.shape}")
        feeds = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in zip(INPUT_NAMES, (y, gamma, beta))}
        pseudo_ir, fused_y = self.session.run(list(OUTPUT_NAMES), feeds)
        return pseudo_ir, fused_y

    def describe(self) -> str:
        provider = self.providers[0].removesuffix("ExecutionProvider")
        return f"onnxruntime {self.precision} ({provider})"

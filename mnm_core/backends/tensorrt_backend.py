"""TensorRT backend: an engine built from the exported ONNX file, run with pycuda buffers on one stream.

Works with TensorRT 10 (JetPack 6) and 11. TensorRT 11's builder has no FP16/INT8 flags: precision
comes from the ONNX file itself, so every network is created strongly typed (where the flag exists)
and fp16 means the fp16 export (`mnm export --fp16`). Before strong typing (TensorRT 8) the FP16
builder flag is used instead. Engines are cached by `engine_cache.EngineKey` and rebuilt when the key
changes or deserialisation fails; builds share a timing cache per TensorRT version and GPU model.
tensorrt and pycuda are imported when a backend is made, never at module import.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from mnm_core.backends.base import InferenceBackend
from mnm_core.backends.engine_cache import (
    EngineKey,
    Profile,
    cached_engine,
    check_engine_file,
    engine_path,
    format_profile,
    in_profile,
    profile_for,
    timing_cache_path,
    write_engine,
)
from mnm_core.errors import BackendError
from mnm_core.export import INPUT_NAMES, OUTPUT_NAMES, default_cache_dir, file_sha256, read_metadata

LOGGER = logging.getLogger(__name__)

WORKSPACE_BYTES = 1 << 30


def import_tensorrt():
    """(tensorrt, pycuda.driver), or BackendError saying how to install them."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendError("the tensorrt backend needs TensorRT's Python package: on a Jetson it comes with "
                           "JetPack 6 (python3-libnvinfer), on a desktop `pip install tensorrt`; or choose "
                           "backend onnxruntime or torch") from exc
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise BackendError("the tensorrt backend needs pycuda for its buffers and stream: `pip install pycuda` "
                           "(needs the CUDA toolkit); or choose backend onnxruntime or torch") from exc
    return tensorrt, cuda


def check_precision(precision: str) -> None:
    """BackendError unless TensorRT builds engines of `precision` (asked for, or of a file): fp32 or fp16."""
    if precision == "int8":
        raise BackendError("the tensorrt backend does not take int8 exports: they are calibrated for ONNX Runtime "
                           "on the CPU; build TensorRT engines from the fp16 (`mnm export --fp16`) or fp32 export, "
                           "or run int8 with backend onnxruntime")
    if precision not in ("fp32", "fp16"):
        raise BackendError(f"the tensorrt backend builds fp32 or fp16 engines, not {precision!r}; use fp16 on a GPU"
                           + (", or backend torch for bf16" if precision == "bf16" else ""))


def device_index(device: str) -> int:
    """'cuda' → 0, 'cuda:1' → 1; anything else is a BackendError."""
    name, _, index = device.partition(":")
    if name != "cuda" or (index and not index.isdigit()):
        raise BackendError(f"the tensorrt backend runs on a CUDA device, not {device!r}; use device cuda or cuda:N")
    return int(index or 0)


def engine_key(trt, cuda, onnx_path: Path, precision: str, profile: Profile, index: int) -> EngineKey:
    gpu = cuda.Device(index)
    major, minor = gpu.compute_capability()
    return EngineKey(onnx_sha256=file_sha256(onnx_path), tensorrt_version=trt.__version__,
                     gpu_name=gpu.name(), compute_capability=f"{major}.{minor}", precision=precision,
                     profile=profile)


def build_engine(trt, onnx_path: Path, key: EngineKey, timing_cache: Path | None) -> bytes:
    """Parse the ONNX file and build a serialised engine for `key` (minutes on a Jetson)."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    creation = trt.NetworkDefinitionCreationFlag
    strongly_typed = hasattr(creation, "STRONGLY_TYPED")
    if strongly_typed:
        flags |= 1 << int(creation.STRONGLY_TYPED)
    elif hasattr(creation, "EXPLICIT_BATCH"):  # TensorRT 8 needs it; 10 ignores it; 11 has no such flag
        flags |= 1 << int(creation.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {onnx_path}: {errors}; re-export it with `mnm export`")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if not strongly_typed and key.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    if key.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32: keep parity with the other backends
    (min_hw, opt_hw, max_hw) = key.profile
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAMES[0], (1, 1, *min_hw), (1, 1, *opt_hw), (1, 1, *max_hw))
    config.add_optimization_profile(profile)
    cache = None
    if timing_cache is not None:
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    LOGGER.info("building a TensorRT %s engine for %s, sizes %s (once; minutes on a Jetson)",
                key.precision, key.gpu_name, format_profile(key.profile))
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT could not build an engine from {onnx_path} (see TensorRT's log above); "
                           "try another precision or backend onnxruntime")
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def build_engine_file(onnx_path: str | Path, out: str | Path, sizes: list[tuple[int, int]] | None = None,
                      device: str = "cuda", cache_dir: str | Path | None = None) -> Path:
    """`mnm export --engine`: build an engine (with its JSON sidecar) from an exported ONNX file."""
    trt, cuda = import_tensorrt()
    onnx_path = Path(onnx_path)
    metadata = read_metadata(onnx_path)
    index = device_index(device)
    cuda.init()
    context = cuda.Device(index).retain_primary_context()
    context.push()
    try:
        key = engine_key(trt, cuda, onnx_path, metadata.precision, profile_for(sizes or metadata.sizes), index)
        start = time.perf_counter()
        data = build_engine(trt, onnx_path, key, timing_cache_path(cache_dir or default_cache_dir(), key))
        return write_engine(out, data, key, time.perf_counter() - start)
    finally:
        context.pop()


class TensorRtBackend(InferenceBackend):
    """One engine, one execution context, one stream; device buffers reallocated when the size changes."""

    name = "tensorrt"

    def __init__(self, onnx_path: str | Path, device: str = "cuda", precision: str | None = None,
                 cache_dir: str | Path | None = None, engine_path: str | Path | None = None,
                 sizes: list[tuple[int, int]] | None = None) -> None:
        self.path = Path(onnx_path)
        self.metadata = read_metadata(self.path)
        check_precision(self.metadata.precision)
        if precision is not None and precision != self.metadata.precision:
            raise BackendError(f"{self.path} is an {self.metadata.precision} export but {precision} was asked for; "
                               "TensorRT takes its precision from the ONNX file: export the matching variant "
                               "(`mnm export --fp16` for fp16)")
        self.precision = self.metadata.precision
        self.trt, self.cuda = import_tensorrt()
        index = device_index(device)
        self.cuda.init()
        self.cuda_context = self.cuda.Device(index).retain_primary_context()
        self.cuda_context.push()
        try:
            self.profile = profile_for(sizes or self.metadata.sizes)
            self.key = engine_key(self.trt, self.cuda, self.path, self.precision, self.profile, index)
            self.engine = self._load_engine(Path(cache_dir) if cache_dir else default_cache_dir(), engine_path)
            self.context = self.engine.create_execution_context()
            self.stream = self.cuda.Stream()
        finally:
            self.cuda_context.pop()
        self._buffers: dict[str, tuple[np.ndarray, object]] = {}
        self._shape: tuple[int, int] | None = None

    def _load_engine(self, cache_dir: Path, explicit: str | Path | None):
        runtime = self.trt.Runtime(self.trt.Logger(self.trt.Logger.WARNING))
        if explicit:
            check_engine_file(explicit, self.key)
            engine = runtime.deserialize_cuda_engine(Path(explicit).read_bytes())
            if engine is None:
                raise BackendError(f"TensorRT engine {explicit} cannot be deserialised (corrupt, or built by another "
                                   f"TensorRT); rebuild it with `mnm export --engine {explicit}`")
            return engine
        path = cached_engine(cache_dir, self.key)
        if path is not None:
            engine = runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is not None:
                LOGGER.info("TensorRT engine from the cache: %s", path)
                return engine
            LOGGER.warning("cached engine %s failed to deserialise; rebuilding", path)
        start = time.perf_counter()
        data = build_engine(self.trt, self.path, self.key, timing_cache_path(cache_dir, self.key))
        path = write_engine(engine_path(cache_dir, self.key), data, self.key, time.perf_counter() - start)
        LOGGER.info("TensorRT engine built in %.0f s: %s", time.perf_counter() - start, path)
        engine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise BackendError("TensorRT could not deserialise the engine it just built; check the TensorRT install")
        return engine

    @property
    def n_atoms(self) -> int:
        return self.metadata.n_atoms

    def _allocate(self, height: int, width: int) -> None:
        """Page-locked host and device buffers for every I/O tensor at this input size."""
        self.context.set_input_shape(INPUT_NAMES[0], (1, 1, height, width))
        self._buffers = {}
        for name in (*INPUT_NAMES, *OUTPUT_NAMES):
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = self.trt.nptype(self.engine.get_tensor_dtype(name))
            host = self.cuda.pagelocked_empty(shape, dtype)
            device = self.cuda.mem_alloc(host.nbytes)
            self.context.set_tensor_address(name, int(device))
            self._buffers[name] = (host, device)
        self._shape = (height, width)

    def run(self, y: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = y.shape[-2:]
        self.metadata.check_size(height, width)
        if not in_profile(self.profile, height, width):
            raise BackendError(f"input {width}×{height} (W×H) is outside the TensorRT engine's profile "
                               f"{format_profile(self.profile)}; create the backend with sizes including "
                               f"({height}, {width}) (or `mnm export --size {width}x{height} --engine ...`)")
        self.cuda_context.push()
        try:
            if self._shape != (height, width):
                self._allocate(height, width)
            for name, array in zip(INPUT_NAMES, (y, gamma, beta)):
                host, device = self._buffers[name]
                np.copyto(host, array.reshape(host.shape), casting="same_kind")
                self.cuda.memcpy_htod_async(device, host, self.stream)
            if not self.context.execute_async_v3(stream_handle=self.stream.handle):
                raise BackendError("TensorRT execution failed (see TensorRT's log); try backend onnxruntime")
            for name in OUTPUT_NAMES:
                host, device = self._buffers[name]
                self.cuda.memcpy_dtoh_async(host, device, self.stream)
            self.stream.synchronize()
            return tuple(self._buffers[name][0].astype(np.float32, copy=True) for name in OUTPUT_NAMES)
        finally:
            self.cuda_context.pop()

    def describe(self) -> str:
        return f"tensorrt {self.precision} ({self.key.gpu_name}, TensorRT {self.key.tensorrt_version})"

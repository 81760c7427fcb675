"""Inference backends of the fast path, chosen by name."""

from mnm_core.backends.base import InferenceBackend

__all__ = ["BACKENDS", "InferenceBackend", "create_backend"]

BACKENDS = ("torch", "onnxruntime", "tensorrt")


def create_backend(name: str, model, precision: str = "fp32", device: str = "cpu",
                   **options: object) -> InferenceBackend:
    """The backend `name` running `model` (a VgiiModel).

    Precisions: torch fp32, fp16, bf16; onnxruntime fp32, fp16, int8; tensorrt fp32, fp16. Options: torch
    takes `compile` (bool) and `threads` (0 = torch's default). onnxruntime and tensorrt take `onnx_path`
    (empty = export `model` once to `cache_dir`, default ~/.cache/mnm, keyed by the hash of its state and
    of the graph code; for int8 the shipped calibrated file of these weights, else one calibrated into the
    cache: `mnm_core.quantize.int8_onnx`) and `cache_dir`; onnxruntime also takes `threads` (0 = its own
    default; tensorrt accepts and ignores it); tensorrt also `engine_path` (a prebuilt engine; empty = the
    engine cache) and `sizes` (H×W list for the optimization profile). Unknown options are errors.
    """
    from mnm_core.errors import BackendError

    def take(*allowed: str) -> dict:
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise BackendError(f"backend {name}: unknown options {unknown}; valid: {sorted(allowed)}")
        return {key: value for key, value in options.items() if key in allowed}

    if name == "torch":
        from mnm_core.backends.torch_backend import TorchBackend

        # The Fuser passes onnx_path/cache_dir to every backend; torch does not need them.
        kwargs = take("compile", "onnx_path", "cache_dir", "threads")
        return TorchBackend(model, device=device, precision=precision, compile=bool(kwargs.get("compile", False)),
                            threads=int(kwargs.get("threads", 0)))
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {list(BACKENDS)}")
    # Fail on a precision the backend cannot run, or a missing runtime, before spending time on an export.
    if name == "onnxruntime":
        from mnm_core.backends.onnxruntime_backend import check_precision, import_onnxruntime

        check_precision(precision)
        import_onnxruntime()
        kwargs = take("onnx_path", "cache_dir", "threads")
    else:
        from mnm_core.backends.tensorrt_backend import check_precision, import_tensorrt

        check_precision(precision)
        import_tensorrt()
        kwargs = take("onnx_path", "cache_dir", "engine_path", "sizes", "threads")  # threads: CPU only, unused
    onnx_path = kwargs.pop("onnx_path", "") or _default_onnx(model, precision, kwargs.get("cache_dir") or None)
    if name == "onnxruntime":
        from mnm_core.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(onnx_path, device=device, precision=precision, threads=int(kwargs.get("threads", 0)))
    from mnm_core.backends.tensorrt_backend import TensorRtBackend

    return TensorRtBackend(onnx_path, device="cuda" if device == "cpu" else device, precision=precision,
                           cache_dir=kwargs.get("cache_dir") or None, engine_path=kwargs.get("engine_path") or None,
                           sizes=kwargs.get("sizes") or None)


def _default_onnx(model, precision: str, cache_dir: str | None):
    """The export a backend runs when no onnx_path is given (see `create_backend`)."""
    if precision == "int8":
        from mnm_core.quantize import int8_onnx

        return int8_onnx(model, cache_dir)
    from mnm_core.export import cached_onnx

    return cached_onnx(model, cache_dir, precision)

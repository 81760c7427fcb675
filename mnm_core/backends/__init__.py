"""Inference backends of the fast path, chosen by name."""

from mnm_core.backends.base import InferenceBackend

__all__ = ["BACKENDS", "InferenceBackend", "create_backend"]

BACKENDS = ("torch", "onnxruntime", "tensorrt")


def create_backend(name: str, model, precision: str = "fp32", device: str = "cpu",
                   **options: object) -> InferenceBackend:
    """The backend `name` running `model` (a VgiiModel).

    Options: torch takes `compile` (bool). onnxruntime and tensorrt take `onnx_path` (empty = export
    `model` once to `cache_dir`, default ~/.cache/mnm, keyed by the hash of its state) and `cache_dir`;
    onnxruntime also takes `threads`; tensorrt also `engine_path` (a prebuilt engine; empty = the
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
        kwargs = take("compile", "onnx_path", "cache_dir")
        return TorchBackend(model, device=device, precision=precision, compile=bool(kwargs.get("compile", False)))
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {list(BACKENDS)}")
    from mnm_core.export import cached_onnx

    # Fail on a missing runtime before spending time on an export.
    if name == "onnxruntime":
        from mnm_core.backends.onnxruntime_backend import import_onnxruntime

        import_onnxruntime()
        kwargs = take("onnx_path", "cache_dir", "threads")
    else:
        from mnm_core.backends.tensorrt_backend import import_tensorrt

        import_tensorrt()
        kwargs = take("onnx_path", "cache_dir", "engine_path", "sizes")
    onnx_path = kwargs.pop("onnx_path", "") or cached_onnx(model, kwargs.get("cache_dir") or None, precision)
    if name == "onnxruntime":
        from mnm_core.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(onnx_path, device=device, precision=precision, threads=int(kwargs.get("threads", 0)))
    from mnm_core.backends.tensorrt_backend import TensorRtBackend

    return TensorRtBackend(onnx_path, device="cuda" if device == "cpu" else device, precision=precision,
                           cache_dir=kwargs.get("cache_dir") or None, engine_path=kwargs.get("engine_path") or None,
                           sizes=kwargs.get("sizes") or None)

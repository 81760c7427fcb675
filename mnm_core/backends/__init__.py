"""Inference backends of the fast path, chosen by name."""

from mnm_core.backends.base import InferenceBackend

__all__ = ["InferenceBackend", "create_backend"]


def create_backend(name: str, model, precision: str = "fp32", device: str = "cpu",
                   **options: object) -> InferenceBackend:
    """The backend `name` running `model` (a VgiiModel)."""
    from mnm_core.errors import BackendError

    if name == "torch":
        from mnm_core.backends.torch_backend import TorchBackend

        return TorchBackend(model, device=device, precision=precision)
    raise BackendError(f"unknown or unavailable backend {name!r}; choose torch, onnxruntime or tensorrt")

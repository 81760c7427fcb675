"""Domain errors of mnm. Each names what raised it; messages say what to do."""


class MnmError(Exception):
    """Base of every error mnm raises on purpose."""


class ConfigError(MnmError):
    """A configuration value or key is invalid or unknown."""


class InputError(MnmError):
    """An image or frame cannot be processed (empty, wrong layout, wrong dtype)."""


class CheckpointError(MnmError):
    """A checkpoint is missing, corrupt, or does not match the model asked for."""


class ExportError(MnmError):
    """Exporting the fast path to ONNX (or an engine) failed."""


class BackendError(MnmError):
    """An inference backend is unavailable or cannot run the given model or input."""


class TextEncoderError(MnmError):
    """A text encoder cannot be loaded or failed to encode."""


class DataError(MnmError):
    """A dataset folder, image pair or bag cannot be read."""

"""mnm core: the Missing-No-More method and its runtime, without ROS.

Heavy dependencies (torch, onnxruntime, transformers) are imported by the submodules that need them,
never here, so `import mnm_core` stays cheap.
"""

from mnm_core.errors import (
    BackendError,
    CheckpointError,
    ConfigError,
    DataError,
    ExportError,
    InputError,
    MnmError,
    TextEncoderError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "ExportError",
    "InputError",
    "MnmError",
    "TextEncoderError",
    "__version__",
]

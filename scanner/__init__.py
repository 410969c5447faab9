"""vscan: video frame-sampling scanner."""

from scanner._errors import (
    BankError,
    ConfigError,
    DecodeError,
    DecodeTimeoutError,
    FileAccessError,
    InputError,
    ModelError,
    UnsupportedMediaError,
    VscanError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "BankError",
    "ConfigError",
    "DecodeError",
    "DecodeTimeoutError",
    "FileAccessError",
    "InputError",
    "ModelError",
    "UnsupportedMediaError",
    "VscanError",
]

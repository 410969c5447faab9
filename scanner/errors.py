"""The one exception tree of vscan.

    VscanError
    ├── InputError                 the input file itself is the problem
    │   ├── FileAccessError        missing, unreadable, not a regular file
    │   ├── UnsupportedMediaError  not a video or image we can read
    │   ├── DecodeError            opened, but decoding failed
    │   │   └── DecodeTimeoutError the per-file time limit ran out
    │   └── ArchiveError           a zip/tar input cannot be opened or listed
    │       └── ArchiveMemberError one member refused or unreadable: path
    │                              traversal, decompression bomb, link (vscan.inputs.archives)
    ├── ModelError                 an ONNX model or its manifest is unusable
    ├── BankError                  a bank file or hash list is unusable
    └── ConfigError                invalid option values

Every error that concerns one input file becomes that file's result record
(`status: "error"`, `error.type` = the class name); it never ends a scan.
"""

from __future__ import annotations

__all__ = [
    "VscanError",
    "InputError",
    "FileAccessError",
    "UnsupportedMediaError",
    "DecodeError",
    "DecodeTimeoutError",
    "ArchiveError",
    "ArchiveMemberError",
    "ModelError",
    "BankError",
    "ConfigError",
]


class VscanError(Exception):
    """Base of every error vscan raises on purpose."""


class InputError(VscanError):
    """The input file is the problem (not vscan, not the machine)."""


class FileAccessError(InputError):
    """The path is missing, unreadable, or not a regular file."""


class UnsupportedMediaError(InputError):
    """The file is not a video or image any of our decoders can open."""


class DecodeError(InputError):
    """The file opened but its frames could not be decoded."""


class DecodeTimeoutError(DecodeError):
    """Decoding ran past the per-file wall-clock limit."""


class ArchiveError(InputError):
    """A zip or tar input cannot be opened or listed (its members are scanned in place)."""


class ArchiveMemberError(ArchiveError):
    """One archive member is refused (path traversal, decompression bomb, link) or unreadable."""


class ModelError(VscanError):
    """An ONNX model or its manifest is missing, corrupt or mismatched."""


class BankError(VscanError):
    """A hash bank or imported hash list is missing or malformed."""


class ConfigError(VscanError):
    """An option value is invalid."""


def error_info(exc: BaseException) -> dict[str, str]:
    """A record's ``error``: the vscan error type, or InternalError:<type> for anything else."""
    kind = type(exc).__name__ if isinstance(exc, VscanError) else f"InternalError:{type(exc).__name__}"
    return {"type": kind, "message": str(exc) or repr(exc)}



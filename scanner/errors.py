"""The one exception tree of vscan, and the one retry policy.

    VscanError                     kind
    ├── InputError                 input      the input file itself is the problem
    │   ├── FileAccessError        input      missing, unreadable, not a regular file
    │   ├── UnsupportedMediaError  input      not a video or image we can read
    │   ├── DecodeError            input      opened, but decoding failed
    │   │   └── DecodeTimeoutError transient  the per-file time limit ran out
    │   ├── ArchiveError           input      a zip/tar input cannot be opened or listed
    │   │   └── ArchiveMemberError input      one member refused or unreadable: path
    │   │                                     traversal, decompression bomb, link (vscan.inputs.archives)
    │   └── QuarantinedError       input      the file was being worked on when workers
    │                                         or nodes died QUARANTINE_DEATHS times
    ├── DecoderCrashError          transient  the decoding process died (once more with PyAV first)
    ├── ModelError                 transient  an ONNX model or its manifest is unusable,
    │                                         or the model stage failed on a file
    ├── BankError                  internal   a bank file or hash list is unusable
    └── ConfigError                internal   invalid option values
    (anything else)                internal   a bug: ``InternalError:<type>`` in the record

Every error that concerns one input file becomes that file's result record
(``status: "error"``, ``error.type`` = the class name, ``error.kind``); it
never ends a scan.

The kind is decided where the error is raised (a class attribute), and
:func:`is_permanent` is the one policy every stage uses: only ``input``
errors are the file's own and final (resume skips the file, ``--state``
remembers its content). ``transient`` (the run's circumstances: a time
limit, a crash, the model stage) and ``internal`` (an unexpected exception:
a bug in vscan) are tried again by the next run over the same output and
never stored in ``--state``.
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
    "DecoderCrashError",
    "QuarantinedError",
    "ERROR_KINDS",
    "error_info",
    "error_kind",
    "is_permanent",
]

#: The kinds of error, from the file's fault to vscan's.
ERROR_KINDS = ("input", "transient", "internal")


class VscanError(Exception):
    """Base of every error vscan raises on purpose."""

    #: input (the file's fault: final), transient (the run's: retried), internal (vscan's: retried)
    kind = "internal"


class InputError(VscanError):
    """The input file is the problem (not vscan, not the machine)."""

    kind = "input"


class FileAccessError(InputError):
    """The path is missing, unreadable, or not a regular file."""


class UnsupportedMediaError(InputError):
    """The file is not a video or image any of our decoders can open."""


class DecodeError(InputError):
    """The file opened but its frames could not be decoded."""


class DecodeTimeoutError(DecodeError):
    """Decoding ran past the per-file wall-clock limit."""

    kind = "transient"  # a loaded machine, not only the file: tried again by the next run


class ArchiveError(InputError):
    """A zip or tar input cannot be opened or listed (its members are scanned in place)."""


class ArchiveMemberError(ArchiveError):
    """One archive member is refused (path traversal, decompression bomb, link) or unreadable."""


class ModelError(VscanError):
    """An ONNX model or its manifest is missing, corrupt or mismatched."""

    kind = "transient"


class QuarantinedError(InputError):
    """The file was in the work of decode workers or nodes that died
    ``QUARANTINE_DEATHS`` times: recorded, not sent on to kill more of the cluster."""


class DecoderCrashError(VscanError):
    """The decoding process died (a decoder abort); retried with PyAV first, then recorded."""

    kind = "transient"


class BankError(VscanError):
    """A hash bank or imported hash list is missing or malformed."""


class ConfigError(VscanError):
    """An option value is invalid."""


def error_info(exc: BaseException) -> dict[str, str]:
    """A record's ``error``: the vscan error type (or InternalError:<type> for
    anything else), the message, and the kind (:data:`ERROR_KINDS`)."""
    from vscan.inputs.paths import display

    # Shown on terminals and stored everywhere: a path inside the message may
    # carry bytes that are not UTF-8 or control characters (vscan.inputs.paths).
    message = display(str(exc) or repr(exc))
    if isinstance(exc, VscanError):
        return {"type": type(exc).__name__, "message": message, "kind": exc.kind}
    return {"type": f"InternalError:{type(exc).__name__}", "message": message, "kind": "internal"}


def _kinds_by_name() -> dict[str, str]:
    found, todo = {}, [VscanError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls.kind
        todo.extend(cls.__subclasses__())
    return found


def error_kind(error: dict | None) -> str | None:
    """The kind of a record's ``error`` (None without one). Records written
    before kinds existed are judged by their type: a vscan class its kind,
    anything else internal."""
    if not error:
        return None
    kind = error.get("kind")
    if kind in ERROR_KINDS:
        return kind
    return _kinds_by_name().get(str(error.get("type")), "internal")


def is_permanent(error: dict | None) -> bool:
    """The one retry policy: is this error the file's own, final verdict?
    Only input errors are; resume re-tries the others and ``--state`` never stores them."""
    return error_kind(error) == "input"

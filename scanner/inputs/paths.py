"""Lossless paths: the raw bytes of every input path, and a display-safe text.

File systems allow any byte sequence but ``/`` and NUL in a name (and tar
headers allow NUL too): a Latin-1 name from a FAT stick or an old tar is not
UTF-8. Inside vscan a path is a ``str`` as ``os.fsdecode`` gives it (bytes
that are not UTF-8 become lone surrogates, ``surrogateescape``), which can
open the file again but cannot be stored as UTF-8 text (SQLite, JSON files,
Parquet) or at all (PostgreSQL refuses NUL).

A record therefore keeps two fields (vscan.verdict.record):

* ``path``: display-safe text, always valid UTF-8 without control
  characters: each byte that is not UTF-8 is written ``\\xNN``, each control
  character (NUL, newline, C1) ``\\xNN`` too;
* ``path_bytes``: base64 of the raw bytes, present only when ``path`` is not
  the raw name itself (the case above). :func:`record_key` is the identity
  resume, ``--state``, reading results back and exports use.
"""

from __future__ import annotations

import base64
import re
from typing import Any

__all__ = ["MAX_DIR_DEPTH", "raw_bytes", "display", "path_fields", "record_key", "record_raw_path", "safe_text"]

#: Folder levels a walk descends (folders, disk images): deeper folders get
#: a FileAccessError record of their own. Walks use a stack of their own, so
#: the cap bounds the work, not Python's recursion.
MAX_DIR_DEPTH = 256

#: Characters a stored or shown path must not carry as they are: controls
#: (C0, DEL, C1) and lone surrogates (bytes that were not UTF-8).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: What no sink can store as text at all (UTF-8 encoders refuse surrogates, PostgreSQL refuses NUL).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def raw_bytes(path: str) -> bytes:
    """The bytes a path stands for (``os.fsencode`` on a UTF-8 system)."""
    try:
        return path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate outside the escaped-byte range
        return path.encode("utf-8", "surrogatepass")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # an escaped byte: show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def display(path: str) -> str:
    """Display-safe text for ``path``: valid UTF-8, no control characters."""
    return _UNSAFE.sub(_escape, path)


def safe_text(text: str) -> str:
    """``text`` storable everywhere: surrogates and NUL escaped, the rest kept (newlines included)."""
    return _UNSTORABLE.sub(_escape, text) if _UNSTORABLE.search(text) else text


def path_fields(path: str) -> dict[str, Any]:
    """A record's ``path`` (display-safe) and, when that is not the raw name, ``path_bytes``."""
    shown = display(path)
    if shown == path:
        return {"path": path}
    return {"path": shown, "path_bytes": base64.b64encode(raw_bytes(path)).decode("ascii")}


def record_key(record: dict[str, Any]) -> bytes:
    """A record's path identity: its raw bytes."""
    encoded = record.get("path_bytes")
    if encoded:
        return base64.b64decode(encoded)
    return raw_bytes(record.get("path") or "")


def record_raw_path(record: dict[str, Any]) -> str:
    """The path a record is about, as a ``str`` that opens the file again (``os.fsdecode`` form)."""
    return record_key(record).decode("utf-8", "surrogateescape")

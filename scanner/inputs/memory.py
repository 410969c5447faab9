"""Decoding from memory: bytes in an anonymous in-memory file (Linux memfd).

The decoders take paths; ``/proc/self/fd/N`` of a memfd is a path every one
of them (decord, PyAV, PIL) opens, and nothing touches a file system. The
memfd is named after the original file, so its suffix still picks the
decoder (stills vs video): see :func:`source_name`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vscan.inputs.paths import display

__all__ = ["memory_file", "source_name"]

_PREFIX = "/memfd:"
_MAX_NAME = 200  # memfd names are limited to 249 bytes


@contextmanager
def memory_file(name: str, data: bytes | None = None) -> Iterator[tuple[int, Path]]:
    """(fd, path) of a new in-memory file named ``name`` holding ``data``
    (write more to ``fd``); closed, and its memory freed, on exit."""
    # Only the suffix matters; a name that is not UTF-8 or has NUL is shown safely (vscan.inputs.paths).
    flat = display(name).replace("/", "_") or "member"
    if len(flat.encode()) > _MAX_NAME:
        suffix = os.path.splitext(flat)[1][:16]
        flat = flat.encode()[: _MAX_NAME - len(suffix.encode())].decode(errors="ignore") + suffix
    fd = os.memfd_create(flat, os.MFD_CLOEXEC)
    try:
        if data:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        yield fd, Path(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def source_name(path: str | os.PathLike) -> str:
    """The name whose suffix says what ``path`` holds: the memfd's own name
    for an in-memory file, else the path."""
    text = str(path)
    if text.startswith(("/proc/self/fd/", "/dev/fd/")):
        try:
            target = os.readlink(text)
        except OSError:
            return text
        if target.startswith(_PREFIX):
            return target[len(_PREFIX) :].removesuffix(" (deleted)")
    return text

"""Pickles over a pipe with their arrays out of band: a decode process's answers (vscan.runtime.embedded).

A decoded file is 0.4-5 MB of frames. Pickled in band, its arrays were
copied into the pickle by the decode process, then copied out of it again by
the scanning process's ``pickle.loads``, holding the GIL the model thread
needs. Here (pickle protocol 5) each array's buffer goes to the pipe as it
is, and is read straight into memory the unpickled array then uses (not
zeroed first). 150 of the archive bench's decoded files (153 MiB of frames)
through a pipe, both sides' CPU, mean of 5 runs: 0.104 + 0.147 -> 0.058 +
0.126 CPU-s (issue #30); what is left is mostly the pipe's own copies.

A message: its pickle's length and its buffers' count (8 + 4 bytes,
little-endian), each buffer's length (8 bytes each), the pickle, the
buffers.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, BinaryIO

import numpy as np

__all__ = ["write_message", "read_message"]

#: Bytes of a message's fixed head: its pickle's length (8) and its buffers' count (4).
_HEAD = 12


def write_message(out: BinaryIO, message: Any) -> None:
    """``message`` pickled to ``out`` (a binary file, flushed), its contiguous arrays' buffers out of band."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    head = len(data).to_bytes(8, "little") + len(raws).to_bytes(4, "little") + b"".join(r.nbytes.to_bytes(8, "little") for r in raws)
    out.write(head)
    out.write(data)
    for raw in raws:
        out.write(raw)
    out.flush()


def read_message(fd: int) -> Any:
    """The next message on file descriptor ``fd`` (EOFError: the writer ended before it all came)."""
    head = _read(fd, _HEAD)
    size, count = int.from_bytes(head[:8], "little"), int.from_bytes(head[8:], "little")
    lengths = _read(fd, 8 * count)
    data = _read(fd, size)
    buffers = [_read(fd, int.from_bytes(lengths[8 * i : 8 * i + 8], "little"), empty=True) for i in range(count)]
    return pickle.loads(data, buffers=buffers)


def _read(fd: int, size: int, *, empty: bool = False) -> Any:
    """Exactly ``size`` bytes, read into one writable buffer (an array unpickled on it is as a copied one);
    ``empty``: a numpy buffer not zeroed first (a frame buffer's pages are then written once, by the read)."""
    data = np.empty(size, np.uint8) if empty else bytearray(size)
    done, view = 0, memoryview(data)
    while done < size:
        got = os.readv(fd, [view[done:]])
        if not got:
            raise EOFError
        done += got
    return data

"""Why an MP4/MOV (ISO base media) file that no decoder opens cannot be read: its top-level boxes
walked from the file's start, their headers only.

A camera or phone writes the media data (``mdat``) first and the index (``moov``: where every frame
lies, and the codec's parameter sets) last. A recording stopped by a crash, a flat battery or a full
card, and a carved or half-copied file, end before the index: FFmpeg says only "Invalid data found
when processing input". Without the index the frames cannot be located or decoded, so the record
stays an error, and says why in the operator's words (the bytes present against those the ``mdat``
box declares), so the file can go to a repair tool that takes a reference file from the same device.
Opened read-only; at most ``MAX_BOXES`` box headers are read.
"""

from __future__ import annotations

import itertools
import os
import struct
from typing import BinaryIO

from vscan.inputs.sniff import HEAD_BYTES, what_it_is

__all__ = ["MAX_BOXES", "top_boxes", "why_unopenable"]

#: Top-level box headers read, at most (a well-formed file has a handful).
MAX_BOXES = 4096
#: Box types that may start an ISO base media file (QuickTime files may open on ``wide``, ``free`` or ``mdat``).
_FIRST = {b"ftyp", b"wide", b"free", b"skip", b"mdat", b"moov", b"pnot"}


def top_boxes(f: BinaryIO, size: int, limit: int | None = MAX_BOXES):
    """(type, start, payload start, declared end) of each top-level box of the file ``f`` of ``size`` bytes, from its
    headers, at most ``limit`` (None: any); the last may end past ``size``, or be None (declared 0: to the end of the
    file). The walk ends at a size that is not a box's. vscan.decode.pyav_entries finds the ``moov`` with it too."""
    offset = 0
    for _ in range(limit) if limit is not None else itertools.count():
        if offset + 8 > size:
            return
        f.seek(offset)
        head = f.read(16)
        if len(head) < 8:
            return
        length, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if length == 1:
            if len(head) < 16:
                return
            length, header = struct.unpack(">Q", head[8:16])[0], 16
        elif length == 0:  # "to the end of the file": an mdat whose recording never closed it
            yield kind, offset, offset + header, None
            return
        if length < header:
            return  # not a box: the walk ends (damage past what this explains)
        yield kind, offset, offset + header, offset + length
        offset += length


def why_unopenable(source: str | os.PathLike | BinaryIO) -> str | None:
    """A sentence on why this MP4/MOV cannot be opened (no index; the index cut off), or None where
    its boxes do not say (not such a file, or a damage they do not show)."""
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                return why_unopenable(f)
        except OSError:
            return None
    f = source  # an open file, or an in-memory one (an archive member): read, then put back where it was
    try:
        was = f.tell()
        try:
            size = f.seek(0, os.SEEK_END)
            f.seek(0)
            head = f.read(HEAD_BYTES)
            f.seek(0)
            boxes = [(kind, start, end) for kind, start, _, end in top_boxes(f, size)]
        finally:
            f.seek(was)
    except Exception:  # noqa: BLE001 - an explanation only: a source that cannot say gives none
        return None
    if not boxes or boxes[0][0] not in _FIRST:
        return what_it_is(head)  # not an MP4/MOV: encrypted, zeros, text, a picture or document renamed (vscan.inputs.sniff)
    kinds = {kind for kind, _, _ in boxes}
    moov = next(((start, end) for kind, start, end in boxes if kind == b"moov"), None)
    mdat = next(((start, end) for kind, start, end in boxes if kind == b"mdat"), None)
    if moov is not None:
        start, end = moov
        if end is not None and end > size:
            return (f"its index (moov box) is cut off: {size - start:,} of the {end - start:,} bytes it declares are in the file, "
                    "so its frames cannot be located (a file cut off or half-copied)")
        return None
    if mdat is None or b"ftyp" not in kinds and boxes[0][0] != b"mdat":
        return None
    start, end = mdat
    if end is None:
        told = "its media data (mdat box) was never closed (declared size 0)"
    elif end > size:
        told = f"it ends inside its media data: {size - start:,} of the {end - start:,} bytes its mdat box declares are in the file"
    elif end < size:
        return (f"an MP4/MOV with no index (moov box): its media data (mdat box) is whole, and the {size - end:,} bytes after it "
                "are not an index (overwritten or damaged); without it the frames cannot be located (a repair tool with a "
                "reference file from the same device may rebuild it)")
    else:
        told = "its media data (mdat box) is whole"
    return (f"an MP4/MOV with no index (moov box): {told}; the index is written last, so the recording was interrupted or "
            "the file was cut off (carved or half-copied), and without it the frames cannot be located (a repair tool "
            "with a reference file from the same device may rebuild it)")

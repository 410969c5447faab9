"""Query frames that meet their entry's row at the time an alignment predicts, within looser bits.

A bank whose rows are sparse in time (``vscan bank build --rows sparse``: two a second where
real footage changes 24-52 bits a frame) meets a copy's frames at the rows' own times only,
and an edit that moves every frame near the 31-bit threshold (a mirror met through the
derived variants, a letterbox) leaves some of them at 32-40 bits: too few frames for the
percentage rule. Once several frames of the file agree on one alignment with an entry
(``vscan.bank.align``), a frame that lies within ``ALIGNED_MAX_DISTANCE`` bits of the row
standing at its predicted time counts as matched too. By chance that is ~1e-27 a frame
(a random hash within 40 of 256 bits), and only frames the alignment already points at
are looked at: a handful of distances an entry, no search.
"""

from __future__ import annotations

import numpy as np

from vscan.bank.align import Alignment
from vscan.bank.query import FileQuery
from vscan.bank.store import BankIndex

__all__ = ["ALIGNED_MAX_DISTANCE", "ALIGNED_MIN_FRAMES", "ALIGNED_TOLERANCE_SECONDS", "aligned_samples"]

#: Bits a frame may lie from the row standing at its predicted time.
ALIGNED_MAX_DISTANCE = 40
#: Frames of the file that must agree on the alignment (within the search's radius) first.
ALIGNED_MIN_FRAMES = 1
#: How far from a row's time range the predicted time may fall (a frame or two, and the alignment's error).
ALIGNED_TOLERANCE_SECONDS = 0.25
_WHOLE_FRAME_KINDS = ("frames", "unbordered")


def aligned_samples(index: BankIndex, entry: int, row_ends: np.ndarray, query: FileQuery, variant: int, alignment: Alignment | None,
                    matched: np.ndarray, min_quality: int) -> np.ndarray:  # fmt: skip
    """The file's samples, beyond ``matched``, whose whole-frame hash (dihedral ``variant``) lies within
    ``ALIGNED_MAX_DISTANCE`` of a row of ``entry`` standing at ``alignment``'s predicted time."""
    if alignment is None or alignment.num_frames < ALIGNED_MIN_FRAMES:
        return np.zeros(0, np.int64)
    rows = np.flatnonzero((index.entry_rows == entry) & (index.qualities >= min_quality))
    if not rows.size:
        return np.zeros(0, np.int64)
    rows = rows[np.isfinite(index.timestamps_seconds[rows])]
    rows = rows[np.argsort(index.timestamps_seconds[rows], kind="stable")]
    t0 = index.timestamps_seconds[rows]
    t1 = np.maximum.accumulate(np.maximum(np.nan_to_num(row_ends[rows], nan=-np.inf), t0))  # each row's range ends at the next's start
    times = query.frames.hashes.timestamps_seconds
    samples, hashes, near = [], [], []  # (the sample, its hash, a row standing near its predicted time) pairs
    for version in query.versions:
        if version.kind not in _WHOLE_FRAME_KINDS or version.variants is None:
            continue
        keep = np.flatnonzero((version.hashes.qualities >= min_quality) & ~np.isin(version.rows, matched))
        at = alignment.rate * times[version.rows[keep]] + alignment.offset_seconds
        keep, at = keep[np.isfinite(at)], at[np.isfinite(at)]
        # the rows whose range meets [at - tolerance, at + tolerance]: from the first ending after it to the last starting before it
        lo = np.searchsorted(t1, at - ALIGNED_TOLERANCE_SECONDS, side="left")
        hi = np.searchsorted(t0, at + ALIGNED_TOLERANCE_SECONDS, side="right")
        count = np.maximum(hi - lo, 0)
        owner = np.repeat(np.arange(keep.size), count)
        pos = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count) + np.repeat(lo, count)
        samples.append(version.rows[keep[owner]])
        hashes.append(version.variants[keep[owner], variant])
        near.append(rows[pos])
    samples = np.concatenate(samples) if samples else np.zeros(0, np.int64)
    if not samples.size:
        return np.zeros(0, np.int64)
    # only the pairs the alignment points at are compared: a handful of distances, no search
    distance = np.unpackbits(np.concatenate(hashes) ^ index.hashes[np.concatenate(near)], axis=1).sum(axis=1)
    return np.unique(samples[distance <= ALIGNED_MAX_DISTANCE]).astype(np.int64)

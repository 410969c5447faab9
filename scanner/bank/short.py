"""Short and strong evidence: a match resting on fewer aligned seconds.

The robust matcher (``vscan.bank.robust``) decides on vPDQ's query% /
compared% rule or on a time-aligned run of >= ``align_min_seconds`` (5 s).
A 3-second excerpt of a known video inside 30 s of other content passes
neither: too few of the query's frames match, and the run is short. It is
still strong evidence when every frame of the run sits at a small distance
and all follow one rate and offset: ``is_strong_short`` accepts a run of
>= ``min_frames`` distinct query frames covering >= ``min_seconds`` whose
closest pairs are all within ``max_distance`` bits, their median within
``median_distance``. The defaults (2.5 s, 3 frames, 20 and 16 bits) were
chosen on ``vscan.bench.bench_distractors`` (no false positive among 367
unrelated clips and stills against 2,002 bank entries, whose closest
candidate of any path was 24 bits away) and
``vscan.bench.bench_robustness`` (3 s excerpts: their frames sit 4-20 bits
from the reference's).
"""

from __future__ import annotations

import numpy as np

from vscan.bank.align import Alignment

__all__ = ["is_strong_short"]


def is_strong_short(
    alignment: Alignment | None,
    t_query: np.ndarray,
    t_reference: np.ndarray,
    distances: np.ndarray,
    *,
    min_seconds: float = 2.5,
    max_distance: int = 20,
    median_distance: int = 16,
    min_frames: int = 3,
    tolerance_seconds: float = 0.5,
) -> bool:
    """True when ``alignment``'s run is short but strong (module docstring)."""
    if alignment is None or alignment.seconds < min_seconds or alignment.num_frames < min_frames:
        return False
    tq, tr = np.asarray(t_query, np.float64), np.asarray(t_reference, np.float64)
    lo, hi = alignment.query_span_seconds
    inlier = (np.abs(tr - alignment.rate * tq - alignment.offset_seconds) <= tolerance_seconds) & (tq >= lo) & (tq <= hi)
    if not inlier.any():
        return False
    # Each aligned query frame's closest aligned pair must be close.
    times, inverse = np.unique(tq[inlier], return_inverse=True)
    best = np.full(times.size, np.iinfo(np.int64).max)
    np.minimum.at(best, inverse, np.asarray(distances)[inlier].astype(np.int64))
    return bool(times.size >= min_frames and best.max() <= max_distance and np.median(best) <= median_distance)

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

A short file is its own evidence: a 4 s copy sampled at 1 frame/s shows 3-4
frames, so it can never hold the 5 s run, and one frame edited past the
threshold (a caption, an emoji, noise) drops it under vPDQ's 80%.
``is_short_file`` accepts a file of at most ``max_file_seconds`` (6 s: at
1 frame/s such a file holds the 5 s run only when every frame aligns) when at
least ``min_frames`` of its aligned frames, and at least ``min_share`` of its
considered (quality-filtered, distinct) frames, sit within ``max_distance``
bits of the reference at one rate and offset. The defaults were chosen on
``vscan.bench.bench_short`` (a tune split of 3-5.5 s sources, seeds other
than ``bench_generalise``'s held-out split).

A shorter run needs more frames: an excerpt of 2.0-2.5 s (the bench's excerpts are 2-5 s long) shows a run
of 1.8-2.3 s however densely it is sampled, under ``min_seconds`` at any rate. A run up to
``SHORTER_BY_SECONDS`` under ``min_seconds`` is strong too when it holds ``SHORTER_MIN_FRAMES`` distinct
frames (twice ``min_frames``: a second pass at 5 frames/s shows 9-12 on such an excerpt), all under the
same distance limits. Sparse rows judged per row (below) hold 2-3 rows over such a run, so they never
take it.

A run's end frames past the limit are its edges where judged per frame too: a second pass after a cut (``AtCuts``, an
archive scan's, 2 frames a second over 4 s) takes the cut's own frame first, a transition or the frame a codec smeared
across the cut, 22 bits off where the 8 after it lay within 10 (check split: a portrait excerpt pillarboxed in a
compilation, missed; measured with the region's boxes hashed at the scan's size, a trial not kept: docs/banks.md). A run
that fails is judged again without its end frames over ``max_distance``, the frames between covering ``min_seconds`` (or
``SHORTER_BY_SECONDS`` less with ``SHORTER_MIN_FRAMES``) on their own: the run they would make alone. Same session,
adaptive, the shipped code: full banks tune 146 -> 147 of 160 (an excerpt), check and held-out and every sparse split the
same; 0 false positives among 600 unrelated files against tune's banks, nor in ``bench_distractors``.

A dense run may hold a few frames past the limit. A 5 frames/s second pass over a 2.4-3 s excerpt shows
12-15 frames, and at that rate a region's picture (an excerpt pillarboxed inside a wider compilation) now and
then lands 22-28 bits off for one frame: the tune split's pattern excerpt held 12 frames over 2.4 s, 9 of them
within 20 bits, median 16, and three at 22-24 failed the every-frame bound. A run of ``DENSE_MIN_FRAMES`` or
more distinct frames is strong when ``DENSE_CLOSE_SHARE`` of them are within ``max_distance`` and the median
is within ``median_distance``: at least 8 close frames where the rule above asks for 3 (or 6).

Sparse rows seen by dense frames: a bank row may stand for a second of video (a vPDQ list at one hash
a second) while a second look samples every frame near it (``vscan.bank.row_looks``). Only the frame
at the row's own time can meet it; the frames between rows sit 20-30 bits off and would fail both
rules. Given ``row_start`` (each pair's row's start time), when the aligned pairs hold more distinct
query frames than rows, both rules judge one best distance per row instead of per query frame, and
``is_short_file`` counts its share over the rows the aligned span holds. A row stands for the time up to the next, so an
excerpt's last frame may meet the row after the excerpt's last (its content other video, 28 bits off,
where the rows before met at 2: lists' tune excerpt on a 1 s/hash list): ``is_strong_short`` leaves
out end rows over ``max_distance``, when the rows kept still stand for ``min_seconds``.
"""

from __future__ import annotations

import numpy as np

from vscan.bank.align import Alignment

__all__ = ["DENSE_CLOSE_SHARE", "DENSE_MIN_FRAMES", "SHORTER_BY_SECONDS", "SHORTER_MIN_FRAMES", "SHORT_FILE_SECONDS", "is_short_file", "is_strong_short"]

#: Files up to this long are decided as a whole by ``is_short_file``.
SHORT_FILE_SECONDS = 6.0
#: A run this much under ``is_strong_short``'s ``min_seconds`` is strong with ``SHORTER_MIN_FRAMES`` distinct frames (module docstring).
SHORTER_BY_SECONDS = 0.5
SHORTER_MIN_FRAMES = 6
#: A run of this many distinct frames (a 5 fps second pass over 2.4 s) is strong when ``DENSE_CLOSE_SHARE`` of them,
#: not all, are within the short rule's distance (module docstring).
DENSE_MIN_FRAMES = 12
DENSE_CLOSE_SHARE = 2 / 3


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
    row_start: np.ndarray | None = None,
) -> bool:
    """True when ``alignment``'s run is short but strong (module docstring): ``min_frames`` over ``min_seconds``,
    or ``SHORTER_MIN_FRAMES`` (at least ``2 * min_frames``) over ``SHORTER_BY_SECONDS`` less; a run of
    ``DENSE_MIN_FRAMES`` or more needs ``DENSE_CLOSE_SHARE`` of its frames within ``max_distance``, not all."""
    need = None if alignment is None else _frames_needed(alignment.seconds, min_seconds, min_frames)
    if need is None or alignment.num_frames < need:
        return False
    best, rows_in_span, times = _aligned_best(alignment, t_query, t_reference, distances, tolerance_seconds, row_start)
    if rows_in_span is not None and best.size:  # per row: end rows over the limit are the excerpt's edges (module docstring)
        kept = best[_inner(best, max_distance)]
        if kept.size < best.size and kept.size * _row_gap(row_start, alignment, t_query, t_reference, tolerance_seconds) < min_seconds:
            return False
        best = kept
    if _strong(best, need, max_distance, median_distance):
        return True
    if rows_in_span is not None or not best.size or (best[0] <= max_distance and best[-1] <= max_distance):
        return False
    # per frame: end frames over the limit are the excerpt's edges (a cut's own frame, a transition); the frames
    # between must make a strong run on their own (module docstring)
    inner = _inner(best, max_distance)
    if inner.stop == 0:
        return False
    pad = alignment.seconds - (alignment.query_span_seconds[1] - alignment.query_span_seconds[0])  # one frame's time, as the run counts it
    need = _frames_needed(float(times[inner.stop - 1] - times[inner.start]) + max(0.0, pad), min_seconds, min_frames)
    return need is not None and _strong(best[inner], need, max_distance, median_distance)


def _inner(best: np.ndarray, max_distance: int) -> slice:
    """The stretch of ``best`` (closest distances in time order) from its first entry within ``max_distance`` to its last:
    the run without its end entries past the limit (an empty slice where none is within it)."""
    close = np.flatnonzero(best <= max_distance)
    return slice(int(close[0]), int(close[-1]) + 1) if close.size else slice(0, 0)


def _frames_needed(seconds: float, min_seconds: float, min_frames: int) -> int | None:
    """The distinct frames a run of ``seconds`` needs to be strong (module docstring), None when it is too short at any count."""
    if seconds < min_seconds - SHORTER_BY_SECONDS:
        return None
    return min_frames if seconds >= min_seconds else max(SHORTER_MIN_FRAMES, 2 * min_frames)


def _strong(best: np.ndarray, need: int, max_distance: int, median_distance: int) -> bool:
    """``is_strong_short``'s test of a run's closest distances ``best`` (one per frame or row, in time order)."""
    if best.size < need or np.median(best) > median_distance:
        return False
    if best.size >= DENSE_MIN_FRAMES:  # a dense run: a few frames past the limit among many close ones (module docstring)
        return bool((best <= max_distance).sum() >= DENSE_CLOSE_SHARE * best.size)
    return bool(best.max() <= max_distance)


def is_short_file(
    alignment: Alignment | None,
    t_query: np.ndarray,
    t_reference: np.ndarray,
    distances: np.ndarray,
    *,
    considered_frames: int,
    duration_seconds: float | None,
    max_file_seconds: float = SHORT_FILE_SECONDS,
    min_frames: int = 2,
    min_share: float = 0.5,
    max_distance: int = 20,
    tolerance_seconds: float = 0.5,
    row_start: np.ndarray | None = None,
) -> bool:
    """True when a file of at most ``max_file_seconds`` is covered by ``alignment`` (module docstring)."""
    if alignment is None or not duration_seconds or duration_seconds > max_file_seconds:
        return False
    best, rows_in_span, _ = _aligned_best(alignment, t_query, t_reference, distances, tolerance_seconds, row_start)
    close = int((best <= max_distance).sum())
    return close >= min_frames and close >= min_share * (considered_frames if rows_in_span is None else rows_in_span)


def _row_gap(row_start, alignment: Alignment, t_query, t_reference, tolerance_seconds: float) -> float:
    """The median spacing (s) of the rows ``alignment``'s pairs meet (per-row judgement, ``_aligned_best``)."""
    tq, tr = np.asarray(t_query, np.float64), np.asarray(t_reference, np.float64)
    lo, hi = alignment.query_span_seconds
    inlier = (np.abs(tr - alignment.rate * tq - alignment.offset_seconds) <= tolerance_seconds) & (tq >= lo) & (tq <= hi)
    starts = np.unique(np.asarray(row_start, np.float64)[inlier])
    return float(np.median(np.diff(starts))) if starts.size > 1 else 0.0


def _aligned_best(alignment: Alignment, t_query, t_reference, distances, tolerance_seconds: float,
                  row_start: np.ndarray | None = None) -> tuple[np.ndarray, int | None, np.ndarray]:
    """(the closest pair's distance of each distinct query frame on ``alignment``'s line within its query span,
    None); with ``row_start`` and more such query frames than rows: (each row's closest pair's distance, the
    rows the aligned reference span holds at their median spacing) instead (module docstring)."""
    tq, tr = np.asarray(t_query, np.float64), np.asarray(t_reference, np.float64)
    lo, hi = alignment.query_span_seconds
    inlier = (np.abs(tr - alignment.rate * tq - alignment.offset_seconds) <= tolerance_seconds) & (tq >= lo) & (tq <= hi)
    if not inlier.any():
        return np.zeros(0, np.int64), None, np.zeros(0)
    key, rows_in_span = tq[inlier], None
    if row_start is not None:
        rows = np.asarray(row_start, np.float64)[inlier]
        starts = np.unique(rows)
        if starts.size < np.unique(key).size:  # dense frames on sparse rows: one best per row
            key = rows
            gap = float(np.median(np.diff(starts))) if starts.size > 1 else 0.0
            r0, r1 = alignment.reference_span_seconds
            rows_in_span = max(starts.size, int(np.floor((r1 - r0) / gap + 1e-6)) + 1) if gap > 0 else starts.size
    times, inverse = np.unique(key, return_inverse=True)
    best = np.full(times.size, np.iinfo(np.int64).max)
    np.minimum.at(best, inverse, np.asarray(distances)[inlier].astype(np.int64))
    return best, rows_in_span, times

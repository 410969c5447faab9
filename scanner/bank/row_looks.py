"""Where a second look at a file should take its frames: at the times of a sparse entry's rows.

A bank of ``--rows sparse`` keeps, where real footage changes 24-52 bits a frame, one row every half
second (a tick): the frame a scan sampling twice a second takes. A copy whose frames are shifted
against those ticks (a trim at any point) shows a 1 fps scan frames that lie 80-110 bits from every
row, except the one or two that happen to fall on a tick. Those few give a weak hit, and the pair
closest to its row gives the copy's offset against the entry to a frame. A second pass that takes the
copy's frames at ``row time - offset`` then meets every tick row at a few bits, so the aligned run
decides (``vscan.bank.align``), or query% over the frames that fall on ticks does (``tick_pct``), where denser
sampling alone would lower query% (docs/banks.md).

Only rows that stand for a quarter to one second (``LOOK_MIN_RANGE_SECONDS``,
``LOOK_MAX_RANGE_SECONDS``: a sparse bank's ticks and short runs) are looked at: a bank of every
frame, or cover's 1-2 frame runs on real footage, already meets a 1 fps scan's frames; runs longer
than a second are slow footage, met anywhere in them. ``vscan.decode.adaptive.Adaptive.refine``
adds these times to its second pass (``LookWindows``).
"""

from __future__ import annotations

import numpy as np

from vscan.bank.store import BankIndex

__all__ = ["LOOK_MIN_RANGE_SECONDS", "LOOK_MAX_RANGE_SECONDS", "LOOK_REACH_SECONDS", "LOOK_MAX_FRAMES", "TICK_MAX_RANGE_SECONDS", "DENSE_REACH_SECONDS", "DENSE_FPS", "TICK_SAMPLE_SECONDS", "TICK_MIN_FRAMES", "look_seconds", "tick_pct"]

#: Rows standing for at least this long (a tick of 0.5 s; a run of real footage is 1-2 frames) ...
LOOK_MIN_RANGE_SECONDS = 0.25
#: ... and at most this long (a longer run is slow footage: a frame anywhere in it meets it).
LOOK_MAX_RANGE_SECONDS = 1.0
#: How far from the weak hit the look reaches (as ``Adaptive.window_seconds``).
LOOK_REACH_SECONDS = 8.0
#: Frames a look takes at most per entry (32 ticks: 16 s of a sparse entry).
LOOK_MAX_FRAMES = 32
#: A row standing for at most this long is a tick: its hash is its first frame's (``vscan.bank.rows.clock_runs``).
TICK_MAX_RANGE_SECONDS = 0.55
#: A hit met only on a longer run: every frame (up to this rate) this far either side of it.
DENSE_REACH_SECONDS = 3.0
DENSE_FPS = 30.0
#: A query frame within this of a tick row's predicted time falls on it (half a frame at 24 fps).
TICK_SAMPLE_SECONDS = 0.021
#: Tick rows met before ``tick_pct`` says anything (as ``MatchSettings.align_min_frames``).
TICK_MIN_FRAMES = 4


def _entry_rows(index: BankIndex, entry: int, min_quality: int) -> np.ndarray:
    """The entry's frame rows of at least ``min_quality``: a slice where the index holds rows by entry (it does:
    ``vscan.bank.rows.row_end_seconds``), not a scan of every row of a large bank for each weak hit."""
    if "row_looks.sorted" not in index.cache:
        e = np.asarray(index.entry_rows)
        index.cache["row_looks.sorted"] = bool(e.size < 2 or (e[1:] >= e[:-1]).all())
    if index.cache["row_looks.sorted"]:
        lo, hi = np.searchsorted(index.entry_rows, [entry, entry + 1])
        rows = np.arange(lo, hi)
    else:
        rows = np.flatnonzero(index.entry_rows == entry)
    return rows[index.qualities[rows] >= min_quality]


def _sparse_rows(index: BankIndex, entry: int, row_ends: np.ndarray, min_quality: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The entry's rows (``_entry_rows``), their start times and the seconds each stands for, and which of them are
    sparse rows (standing for ``LOOK_MIN_RANGE_SECONDS`` to ``LOOK_MAX_RANGE_SECONDS``: a tick or a short run)."""
    rows = _entry_rows(index, entry, min_quality)
    r0 = index.timestamps_seconds[rows]
    span = np.nan_to_num(row_ends[rows], nan=-np.inf) - r0
    sparse = (span >= LOOK_MIN_RANGE_SECONDS - 1e-6) & (span <= LOOK_MAX_RANGE_SECONDS + 1e-6)
    return rows, r0, span, sparse


def look_seconds(index: BankIndex, entry: int, row_ends: np.ndarray, pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                 duration_seconds: float | None, min_quality: int) -> tuple[float, ...]:  # fmt: skip
    """The query times a second look takes for a weak hit on ``entry``: ``pairs`` (query seconds, row start, row end,
    bits) are its strict pairs. Met on a tick row (its start is its frame: the offset to a frame), the times at which
    the entry's sparse rows stand, within ``LOOK_REACH_SECONDS`` of the hit; met only on a longer run (its hash a
    frame somewhere in it), every frame within ``DENSE_REACH_SECONDS`` of the hit, so some fall on the ticks next to it.
    () when the entry has no sparse rows."""
    tq, t0, t1, bits = (np.asarray(a, np.float64) for a in pairs)
    _, r0, _, sparse = _sparse_rows(index, entry, row_ends, min_quality)
    sparse &= np.isfinite(r0)
    ok = np.isfinite(tq) & np.isfinite(t0)
    if not sparse.any() or not ok.any():
        return ()
    end = float(duration_seconds) if duration_seconds and duration_seconds > 0 else np.inf
    # the closest pair (of equals, one on a tick): a farther pair on a tick is often a look-alike frame of the shot
    k = np.flatnonzero(ok)[np.lexsort((t1[ok] - t0[ok], bits[ok]))[0]]
    q = tq[k]
    if t1[k] - t0[k] <= TICK_MAX_RANGE_SECONDS:
        at = np.unique(r0[sparse]) - (t0[k] - q)
        reach, cap = LOOK_REACH_SECONDS, LOOK_MAX_FRAMES
    else:
        at = q + np.arange(-DENSE_REACH_SECONDS, DENSE_REACH_SECONDS + 1e-9, 1.0 / DENSE_FPS)
        reach, cap = DENSE_REACH_SECONDS, int(2 * DENSE_REACH_SECONDS * DENSE_FPS) + 1
    at = at[(at >= -1e-6) & (at < end) & (np.abs(at - q) <= reach + 1e-9) & (np.abs(at - q) > 1e-3)]
    at = at[np.argsort(np.abs(at - q), kind="stable")[:cap]]
    return tuple(float(t) for t in np.sort(np.maximum(at, 0.0)))


def tick_pct(index: BankIndex, entry: int, row_ends: np.ndarray, versions: list[tuple[np.ndarray, np.ndarray]],
             pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], max_bits: int, min_quality: int,
             min_seconds: float) -> float:  # fmt: skip
    """query% over the frames that can meet a sparse entry: of its tick rows (``TICK_MAX_RANGE_SECONDS``: the row's
    hash is its first frame's) that a query frame falls on (within ``TICK_SAMPLE_SECONDS`` of the time the closest
    tick pair predicts, rate 1) between the first and last met within ``max_bits``, the share met; 0 with fewer than
    ``TICK_MIN_FRAMES`` met or the met ticks' rows standing for less than ``min_seconds`` (the short rule's 2.5 s).
    A second look samples every frame near a weak hit, most of them between ticks, 80-110 bits from every row: they
    could not meet the entry and would only dilute query%. ``versions``: (times, hashes [n, 32]) of the whole-frame
    query versions in the match's dihedral variant."""
    tq, t0, t1, bits = (np.asarray(a, np.float64) for a in pairs)
    rows, r0, span, sparse = _sparse_rows(index, entry, row_ends, min_quality)
    if not sparse.any():
        return 0.0  # not a sparse entry
    tick = np.isfinite(tq) & np.isfinite(t0) & (t1 - t0 <= TICK_MAX_RANGE_SECONDS)
    if not tick.any():
        return 0.0
    k = np.flatnonzero(tick)[np.argmin(bits[tick])]
    ticks = rows[np.isfinite(r0) & (span <= TICK_MAX_RANGE_SECONDS)]
    predicted = index.timestamps_seconds[ticks] - (t0[k] - tq[k])
    best = np.full(ticks.size, 256)
    for times, hashes in versions:
        if not len(times):
            continue
        order = np.argsort(times, kind="stable")
        at = np.clip(np.searchsorted(times[order], predicted), 1, len(times) - 1) if len(times) > 1 else np.zeros(ticks.size, np.int64)
        for cand in (order[at - 1], order[at]) if len(times) > 1 else (order[at],):
            on = np.abs(times[cand] - predicted) <= TICK_SAMPLE_SECONDS
            d = np.unpackbits(hashes[cand] ^ index.hashes[ticks], axis=1).sum(axis=1)
            best = np.where(on, np.minimum(best, d), best)
    met = best <= max_bits
    if met.sum() < TICK_MIN_FRAMES:
        return 0.0
    last = np.flatnonzero(met)[np.argmax(predicted[met])]
    ranges = np.nan_to_num(row_ends[ticks], nan=0.0) - index.timestamps_seconds[ticks]
    if predicted[last] + ranges[last] - predicted[met].min() < min_seconds - 1e-6:  # the met ticks' rows stand for that long
        return 0.0
    # over the stretch the met ticks span: an excerpt inside other video meets none outside it
    inside = (best < 256) & (predicted >= predicted[met].min() - 1e-6) & (predicted <= predicted[met].max() + 1e-6)
    return 100.0 * float(met.sum()) / float(inside.sum())

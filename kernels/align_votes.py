"""The alignment's vote count (vscan.bank.align), every candidate rate at once.

``densest_cell`` is ``vscan.bank.align._densest_cell`` vectorised: the same
(rate, offset) for the same pairs, bit for bit (the same float operations in
the same order, the same tie rules), but one ``np.unique`` over every
(rate, bin phase, offset bin, query frame) instead of one per rate and phase.
With 142 candidate rates and two phases that was 284 ``np.unique`` calls per
matched entry, ~18 ms, the largest single cost of matching a known copy on
the archive bench (issue #30: 4.5 of 17 s of the model stage's work).

A known copy at its own speed puts every query frame, with its heaviest
pair, in one cell at rate 1: no other rate can beat that cell, so only the
rates nearest 1 are counted then (``_nearest_if_whole``; 247 of the archive's
251 alignments, its vote count's CPU 0.32 -> 0.16 s, the same records).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["densest_cell", "PHASES"]

#: Two bin phases, so a cluster straddling a bin edge is still counted whole.
PHASES = (0.0, 0.5)
#: Pairs x candidates counted at once: small enough to stay in the CPU cache (8192: fastest on 80-1,000 pairs).
_CHUNK_ELEMENTS = 1 << 13


def densest_cell(tq: np.ndarray, tr: np.ndarray, weights: np.ndarray | None, rates: np.ndarray, width: float) -> tuple[float, float]:
    """(rate, offset) of the (rate, offset bin) cell holding the most distinct
    query frames (ties: the heaviest best pair per frame, then the rate
    nearest 1, then the first candidate); the offset is the median of the
    cell's pairs. ``tq``/``tr``: the pairs' query and reference seconds (1-D,
    finite, not empty)."""
    q_id = np.unique(tq, return_inverse=True)[1].reshape(-1)
    n_q = int(q_id.max()) + 1
    rates = np.asarray(rates, np.float64)
    candidates = [(r, p) for r in range(rates.size) for p in range(len(PHASES))]  # the reference's loop order
    best = _nearest_if_whole(tq, tr, weights, rates, width, q_id, n_q, candidates)
    per_chunk = max(1, _CHUNK_ELEMENTS // max(tq.size, 1))
    for start in range(0, len(candidates), per_chunk) if best is None else ():
        best = _best(best, list(range(start, min(start + per_chunk, len(candidates)))), candidates, tq, tr, weights, rates, width, q_id, n_q)
    assert best is not None
    (r, p), top_bin = best[4], best[5]
    rate = rates[r]
    offsets = tr - rate * tq
    bins = np.floor(offsets / width + PHASES[p]).astype(np.int64)
    return float(rate), float(np.median(offsets[bins - bins.min() == top_bin]))


def _best(best: tuple | None, ks: list[int], candidates: list[tuple[int, int]], tq: np.ndarray, tr: np.ndarray, weights: np.ndarray | None,
          rates: np.ndarray, width: float, q_id: np.ndarray, n_q: int) -> tuple | None:  # fmt: skip
    """``best`` (frames, weight, -|log rate|, -candidate, candidate, its bin) against the candidates numbered ``ks``."""
    chunk = [candidates[k] for k in ks]
    score, top = _chunk_scores(tq, tr, weights, rates, width, q_id, n_q, chunk)
    for j, k in enumerate(ks):
        s = (int(score[0][j]), float(score[1][j]), float(score[2][j]), -k)
        if best is None or s > best[:4]:
            best = (*s, chunk[j], int(top[j]))
    return best


def _nearest_if_whole(tq: np.ndarray, tr: np.ndarray, weights: np.ndarray | None, rates: np.ndarray, width: float, q_id: np.ndarray,
                      n_q: int, candidates: list[tuple[int, int]]) -> tuple | None:  # fmt: skip
    """The best cell, from the candidates whose rate is nearest 1 alone, where one of them holds every query frame
    with each frame's heaviest pair (a known copy at its own speed): no other candidate can beat it (at most as many
    frames, a weight at most that one, summed in the same order and so no larger in floating point, and a rate
    farther from 1), so the other ~280 are not counted. None where none does: every candidate is counted."""
    closeness = [-abs(math.log(x)) for x in rates.tolist()]
    nearest = max(closeness)
    best = _best(None, [k for k, (r, _) in enumerate(candidates) if closeness[r] == nearest], candidates, tq, tr, weights, rates, width, q_id, n_q)
    if best is None or best[0] < n_q:
        return None
    if weights is not None:  # each frame's heaviest pair, summed in frame order as _chunk_scores sums a cell's (np.bincount)
        by_frame = np.argsort(q_id, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(q_id[by_frame]) != 0])
        heaviest = np.maximum.reduceat(np.asarray(weights, np.float64)[by_frame], starts)
        if best[1] != float(np.bincount(np.zeros(n_q, np.int64), weights=heaviest, minlength=1)[0]):
            return None
    return best


def _chunk_scores(tq: np.ndarray, tr: np.ndarray, weights: np.ndarray | None, rates: np.ndarray, width: float, q_id: np.ndarray,
                  n_q: int, chunk: list[tuple[int, int]]) -> tuple[tuple[np.ndarray, ...], np.ndarray]:  # fmt: skip
    """Per candidate of ``chunk``: its best bin's (distinct query frames, weight, -|log rate|) and that bin.
    Only the occupied (candidate, bin) cells are counted: a long reference spans many empty bins."""
    n = len(chunk)
    r_idx = np.fromiter((r for r, _ in chunk), np.int64, n)
    phase = np.fromiter((PHASES[p] for _, p in chunk), np.float64, n)
    rate = rates[r_idx]
    offsets = tr[None, :] - rate[:, None] * tq[None, :]  # the reference's tr - rate * tq, row by row
    bins = np.floor(offsets / width + phase[:, None]).astype(np.int64)
    rel = bins - bins.min(axis=1, keepdims=True)
    n_bins = int(rel.max()) + 1
    cell = (np.arange(n, dtype=np.int64)[:, None] * n_bins + rel) * n_q + q_id[None, :]
    # Each candidate's cells lie in a range of their own: sorted row by row, the rows laid end to end are sorted.
    if weights is None:
        flat = np.sort(cell, axis=1).reshape(-1)
    else:
        by_cell = np.argsort(cell, axis=1)
        flat = np.take_along_axis(cell, by_cell, axis=1).reshape(-1)
    distinct = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    key = flat[distinct]  # distinct (candidate, bin, query frame), sorted
    slot = key // n_q  # candidate * n_bins + bin, sorted
    starts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]])
    occupied = slot[starts]  # the occupied (candidate, bin) cells
    counts = np.diff(np.r_[starts, slot.size])  # distinct query frames per cell
    owner = occupied // n_bins
    if weights is None:  # most frames, then the first such bin (as argmax)
        order = np.lexsort((-occupied, counts, owner))
        mass = np.zeros(occupied.size)
    else:  # most frames, then the heaviest best pair per frame, then the last such bin (as lexsort(...)[-1])
        heaviest = np.maximum.reduceat(np.asarray(weights, np.float64)[by_cell].reshape(-1), distinct)  # the best pair per (cell, frame)
        mass = np.bincount(np.repeat(np.arange(occupied.size), counts), weights=heaviest, minlength=occupied.size)  # summed in bin order
        order = np.lexsort((occupied, mass, counts, owner))
    last = order[np.r_[owner[order][1:] != owner[order][:-1], True]]  # each candidate's best cell (every candidate has one)
    closeness = np.array([-abs(math.log(x)) for x in rate.tolist()])
    return (counts[last], mass[last], closeness), occupied[last] - owner[last] * n_bins

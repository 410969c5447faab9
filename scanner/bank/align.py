"""Temporal alignment of matched frames: runs with one offset and one rate.

vPDQ treats a video as a bag of frames, so a short excerpt inside a long
compilation (query% and compared% both low) is lost, while a few coincidental
frame hits count as much as a real run. Here matched frame pairs
``(t_query, t_reference)`` vote, per candidate rate (playback speed, reference
seconds per query second), for an offset in ``t_reference = rate * t_query +
offset``; the densest (rate, offset) cell wins, and its pairs are cut into runs
wherever the query side has a gap longer than ``max_gap_seconds``. The
longest run is the alignment.

Random hits scatter over offsets and rates, so they do not form a run of
several seconds; a re-upload, trimmed, sped up or embedded, does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vscan.kernels.align_votes import densest_cell  # _densest_cell below, every rate at once (same result, ~10x faster)

__all__ = ["Alignment", "align", "DEFAULT_RATES", "spread_ranges", "RANGE_STEP_SECONDS", "RANGE_MAX_POINTS"]

#: Candidate rates: 0.5x .. 2x in 1% steps (geometric), 1.0 exactly included.
DEFAULT_RATES = np.unique(np.round(np.exp(np.linspace(np.log(0.5), np.log(2.0), 141)), 4).tolist() + [1.0])


#: A pair whose reference row stands for a time range (a run of near-identical frames, ``vscan.bank.rows.row_end_seconds``)
#: votes at points this far apart over the range: half the alignment's tolerance, so any time in it is within reach.
RANGE_STEP_SECONDS = 0.5
#: ... at most this many points a pair (a still shot of an hour: points 56 s apart, as good as its one row can say).
RANGE_MAX_POINTS = 64


def spread_ranges(t_start: np.ndarray, t_end: np.ndarray, step: float = RANGE_STEP_SECONDS,
                  max_points: int = RANGE_MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(index into the pairs, reference seconds): each pair's reference range [t_start, t_end) as points
    ``step`` apart from its start (one point, the start, where the range is no longer than ``step`` or unknown),
    so the aligner sees a query frame that met a run's row at any time of the run."""
    t0, t1 = np.asarray(t_start, np.float64), np.asarray(t_end, np.float64)
    length = np.where(np.isfinite(t0) & np.isfinite(t1), t1 - t0, 0.0)
    count = np.clip(np.ceil(length / step - 1e-9), 1, max_points).astype(np.int64)
    owner = np.repeat(np.arange(t0.size), count)
    k = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)
    spacing = np.where(count > 1, length / count, 0.0)
    return owner, t0[owner] + k * spacing[owner]


@dataclass(frozen=True)
class Alignment:
    """The longest run of matched frames consistent with one rate and offset.

    ``t_reference = rate * t_query + offset_seconds``. ``seconds`` is the query
    time the run covers (first to last aligned query frame, plus one frame
    step); ``num_frames`` counts distinct aligned query frames.
    """

    rate: float
    offset_seconds: float
    num_frames: int
    seconds: float
    query_span_seconds: tuple[float, float]
    reference_span_seconds: tuple[float, float]

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.num_frames >= 1 and self.seconds >= 0):
            raise ValueError(f"Invalid alignment {self}")


def align(
    t_query: np.ndarray,
    t_reference: np.ndarray,
    *,
    rates: np.ndarray = DEFAULT_RATES,
    tolerance_seconds: float = 0.5,
    max_gap_seconds: float = 3.0,
    weights: np.ndarray | None = None,
) -> Alignment | None:
    """Best alignment of matched pairs (``t_query[i]``, ``t_reference[i]``); None without finite pairs.

    ``weights`` (per pair, e.g. 32 - distance) break ties between cells with
    as many query frames: the cell whose frames' best pairs weigh most wins
    (a short run of a slow pan has several near-equal cells)."""
    tq = np.asarray(t_query, np.float64)
    tr = np.asarray(t_reference, np.float64)
    wt = np.zeros(tq.shape) if weights is None else np.asarray(weights, np.float64)
    if tq.shape != tr.shape or tq.ndim != 1:
        raise ValueError(f"Expected two 1-D arrays of one length, got {tq.shape} and {tr.shape}")
    ok = np.isfinite(tq) & np.isfinite(tr)
    tq, tr, wt = tq[ok], tr[ok], wt[ok]
    if tq.size == 0:
        return None
    if tolerance_seconds <= 0:
        raise ValueError(f"Invalid tolerance_seconds ({tolerance_seconds}). Supported values are > 0.")
    # Dense references give each query frame several near-identical neighbours:
    # one vote per (query frame, 0.1 s of reference time) is enough.
    order = np.argsort(-wt, kind="stable")  # the heaviest pair of each cell is the one kept
    tq, tr, wt = tq[order], tr[order], wt[order]
    _, first = np.unique(np.stack([tq, np.round(tr * 10)]), axis=1, return_index=True)
    tq, tr, wt = tq[first], tr[first], wt[first]
    rates = np.asarray(rates, np.float64)
    q_times = np.unique(tq)
    n_q = q_times.size
    rate, offset = densest_cell(tq, tr, None if weights is None else wt, rates, 2 * tolerance_seconds)
    inlier = np.abs(tr - rate * tq - offset) <= tolerance_seconds
    times = np.unique(tq[inlier])
    # Cut into runs at query-side gaps; keep the longest (by covered time).
    cuts = np.flatnonzero(np.diff(times) > max_gap_seconds) + 1
    runs = np.split(times, cuts)
    step = float(np.median(np.diff(q_times))) if n_q > 1 else 0.0
    run = max(runs, key=lambda r: (r[-1] - r[0], r.size))
    sel = inlier & (tq >= run[0]) & (tq <= run[-1])
    if run.size >= 3:
        rate, offset = _refit(tq[sel], tr[sel], rates, rate, offset)
    return Alignment(
        rate=float(rate),
        offset_seconds=float(offset),
        num_frames=int(run.size),
        seconds=float(run[-1] - run[0] + step),
        query_span_seconds=(float(run[0]), float(run[-1])),
        reference_span_seconds=(float(tr[sel].min()), float(tr[sel].max())),
    )


def _densest_cell(tq: np.ndarray, tr: np.ndarray, weights: np.ndarray | None, rates: np.ndarray, width: float) -> tuple[float, float]:
    """(rate, offset) of the (rate, offset bin) cell holding the most distinct
    query frames (ties: the heaviest best pair per frame, then the rate
    nearest 1); the offset is the median of the cell's pairs. The reference:
    ``align`` counts with vscan.kernels.align_votes.densest_cell, the same result
    for every rate at once (tests/test_align_votes.py)."""
    q_id = np.unique(tq, return_inverse=True)[1]
    n_q = int(q_id.max()) + 1
    best = (-1, 0.0, 0.0, 0.0, 0.0)  # (distinct query frames, weight, -|log rate|, rate, offset)
    for rate in rates:
        offsets = tr - rate * tq
        # Two bin phases, so a cluster straddling a bin edge is still counted whole.
        for phase in (0.0, 0.5):
            bins = np.floor(offsets / width + phase).astype(np.int64)
            cell = (bins - bins.min()) * n_q + q_id
            key, inverse = np.unique(cell, return_inverse=True)  # distinct (bin, query frame)
            counts = np.bincount(key // n_q)
            if weights is None:
                top = int(counts.argmax())
                weight = 0.0
            else:  # most frames, then the heaviest best pair per frame
                heaviest = np.full(key.size, -np.inf)
                np.maximum.at(heaviest, inverse, weights)
                mass = np.bincount(key // n_q, weights=heaviest)
                top = int(np.lexsort((mass, counts))[-1])
                weight = float(mass[top])
            score = (int(counts[top]), weight, -abs(math.log(rate)))
            if score > best[:3]:
                in_bin = bins - bins.min() == top
                best = (*score, float(rate), float(np.median(offsets[in_bin])))
    return best[3], best[4]


def _refit(tq: np.ndarray, tr: np.ndarray, rates: np.ndarray, rate: float, offset: float) -> tuple[float, float]:
    """Rate and offset refined on a run's pairs: a line through one reference time per query
    frame (their median), kept when its rate lies within the candidates' range (+-5%)."""
    uq, inv = np.unique(tq, return_inverse=True)
    med = np.array([np.median(tr[inv == k]) for k in range(uq.size)])
    if np.ptp(uq) > 0:
        fit_rate, fit_offset = np.polyfit(uq, med, 1)
        if rates.min() * 0.95 <= fit_rate <= rates.max() * 1.05:
            return float(fit_rate), float(fit_offset)
    return rate, offset

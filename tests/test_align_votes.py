"""vscan.kernels.align_votes: the alignment's vote count over every candidate rate at once gives
vscan.bank.align's (rate, offset), bit for bit, ties included (issue #30: the per-rate loop was the
largest single cost of matching a known copy)."""

import numpy as np
import pytest

from vscan.bank.align import DEFAULT_RATES, _densest_cell
from vscan.kernels import align_votes
from vscan.kernels.align_votes import densest_cell


def _pairs(rng: np.random.Generator, trial: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    n = int(rng.integers(1, 400))
    q_times = np.sort(rng.uniform(0, rng.uniform(1, 60), int(rng.integers(1, 40)))).round(2)
    tq = rng.choice(q_times, n)
    if trial % 3 == 0:  # a copy: one rate and offset, jitter
        tr = tq * rng.choice([1.0, 0.8, 1.25]) + rng.uniform(-5, 30) + rng.normal(0, 0.2, n)
    else:  # scattered hits, some on a coarse grid (ties between bins and rates)
        tr = rng.uniform(0, rng.uniform(1, 3000), n)
    tr = np.round(tr, 1) if trial % 2 else tr
    weights = None if trial % 4 == 0 else (32.0 - rng.integers(0, 32, n)).astype(np.float64)
    return tq, tr, weights


@pytest.mark.parametrize("chunk", [1 << 13, 64])  # chunks of several candidates, and one candidate a chunk
def test_same_cell_as_the_per_rate_loop(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(align_votes, "_CHUNK_ELEMENTS", chunk)
    rng = np.random.default_rng(30)
    for trial in range(40):
        tq, tr, weights = _pairs(rng, trial)
        assert densest_cell(tq, tr, weights, DEFAULT_RATES, 1.0) == _densest_cell(tq, tr, weights, DEFAULT_RATES, 1.0), trial


def test_ties_go_to_the_rate_nearest_one_then_the_first() -> None:
    tq = np.array([0.0, 1.0, 2.0])
    tr = np.array([5.0, 6.0, 7.0])  # every rate near 1 holds all three frames in one bin
    rate, offset = densest_cell(tq, tr, None, DEFAULT_RATES, 1.0)
    assert (rate, offset) == _densest_cell(tq, tr, None, DEFAULT_RATES, 1.0)
    assert rate == 1.0 and offset == 5.0

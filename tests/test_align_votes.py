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


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The candidates (rate, phase) whose cells were counted, appended per call of align_votes._chunk_scores."""
    seen: list[int] = []
    real = align_votes._chunk_scores

    def counting(*args, **kwargs):
        seen.append(len(args[-1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(align_votes, "_chunk_scores", counting)
    return seen


@pytest.mark.parametrize("weighted", [False, True])
def test_a_copy_at_its_own_speed_is_counted_at_the_rates_nearest_one_alone(weighted: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue #30: 247 of the archive's 251 alignments are a known copy at rate 1 (every query frame, with its
    heaviest pair, in one cell): no other rate can beat that cell, so only the rates nearest 1 are counted."""
    seen = _counted(monkeypatch)
    rng = np.random.default_rng(5)
    tq = np.repeat(np.arange(40) * 0.5, 5)  # 40 frames, 5 pairs each: the aligned one heaviest, 4 elsewhere in the reference
    tr = np.where(np.arange(tq.size) % 5 == 0, tq + 12.0, rng.uniform(0, 400, tq.size))
    weights = np.where(np.arange(tq.size) % 5 == 0, 30.0, rng.integers(1, 30, tq.size).astype(np.float64)) if weighted else None
    assert densest_cell(tq, tr, weights, DEFAULT_RATES, 1.0) == _densest_cell(tq, tr, weights, DEFAULT_RATES, 1.0) == (1.0, 12.0)
    nearest = sum(abs(np.log(DEFAULT_RATES)) == abs(np.log(DEFAULT_RATES)).min()) * len(align_votes.PHASES)
    assert sum(seen) == nearest < 2 * len(DEFAULT_RATES), seen


def test_every_rate_is_counted_where_the_nearest_cell_misses_a_frame_or_its_heaviest_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shortcut holds only where nothing can beat it: a frame outside the cell, or a frame whose heaviest pair lies
    outside it (another rate's cell may then weigh more), and every candidate is counted, as before."""
    seen = _counted(monkeypatch)
    tq = np.repeat(np.arange(20) * 0.5, 2)
    tr = np.where(np.arange(tq.size) % 2 == 0, tq + 12.0, tq * 1.25 + 3.0)  # each frame at rate 1 and at rate 1.25
    light = np.where(np.arange(tq.size) % 2 == 0, 10.0, 20.0)  # the rate-1.25 pairs heavier
    found = densest_cell(tq, tr, light, DEFAULT_RATES, 1.0)
    assert found == _densest_cell(tq, tr, light, DEFAULT_RATES, 1.0) and found[0] > 1.1  # near 1.25: the heavier cell, not rate 1's
    assert sum(seen) > 2 * len(DEFAULT_RATES), seen  # the nearest candidates, then all of them
    seen.clear()  # unweighted, rate 1 holds every frame: rate 1.25 can only tie it, and is farther from 1
    assert densest_cell(tq, tr, None, DEFAULT_RATES, 1.0) == _densest_cell(tq, tr, None, DEFAULT_RATES, 1.0) == (1.0, 12.0)
    assert sum(seen) < 2 * len(DEFAULT_RATES), seen
    seen.clear()
    lone = np.r_[tq, 30.0]  # a frame with one pair, far from the cell
    assert densest_cell(lone, np.r_[tr, 900.0], None, DEFAULT_RATES, 1.0) == _densest_cell(lone, np.r_[tr, 900.0], None, DEFAULT_RATES, 1.0)
    assert sum(seen) > 2 * len(DEFAULT_RATES), seen

"""The split index's compiled search (``vscan.bank.mih_numba``) reports each (query, row) pair once, through the first of
its 16 tables that finds it, not once per table (a close row is found through most of them: 10x the hits on the
archive bench), and still every pair within the radius (issue #30)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from vscan.bank.disk_index import SplitIndex, _halves  # noqa: E402
from vscan.bank.mih_kernel import search_kernel  # noqa: E402


def test_each_pair_once_and_every_pair(tmp_path):
    rng = np.random.default_rng(17)
    base = rng.integers(0, 256, (40, 32), dtype=np.uint8)
    # rows close to each other (a source's frames, crops and windows), and unrelated ones
    flips = (rng.random((40, 30, 32)) < 0.04).astype(np.uint8) << rng.integers(0, 8, (40, 30, 32)).astype(np.uint8)
    rows = np.concatenate([(base[:, None] ^ flips).reshape(-1, 32), rng.integers(0, 256, (2000, 32), dtype=np.uint8)])
    index = SplitIndex.build(rows, tmp_path / "idx")
    query = np.concatenate([base[:10] ^ (rng.random((10, 32)) < 0.02).astype(np.uint8), rows[:5], rng.integers(0, 256, (5, 32), dtype=np.uint8)])
    none = np.zeros(0, np.uint8)
    for radius in (7, 15, 31, 45, 63):
        q, row, d = search_kernel(_halves(query), query.view(np.uint64), index.offsets, index.ids, index.partner, index._words, radius, none, cap=8)
        key = q * len(rows) + row
        assert np.unique(key).size == key.size  # once each (cap 8: the queries with more found again, still once)
        want = np.bitwise_count(query[:, None] ^ rows[None]).sum(-1)
        wq, wr = np.nonzero(want <= radius)
        order = np.lexsort((row, q))
        assert np.array_equal(q[order], wq) and np.array_equal(row[order], wr) and np.array_equal(d[order], want[wq, wr])
        assert key.size > len(query) or radius < 31
        disabled = np.zeros(len(rows), np.uint8)
        disabled[::3] = 1
        sq, sr, _ = index.search(query, radius, disabled=disabled)
        keep = disabled[wr] == 0
        assert np.array_equal(sq, wq[keep]) and np.array_equal(sr, wr[keep])


def test_the_search_probes_int32_offsets_in_memory(tmp_path):
    rng = np.random.default_rng(2)
    rows = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    index = SplitIndex.open(SplitIndex.build(rows, tmp_path / "idx").path)
    query = rows[:20] ^ (rng.random((20, 32)) < 0.05).astype(np.uint8)
    got = index.search(query, 31)
    probe = index._probe_offsets()
    assert probe.dtype == np.int32 and np.array_equal(probe, index.offsets) and index._probe_offsets() is probe  # made once
    want = np.bitwise_count(query[:, None] ^ rows[None]).sum(-1)
    wq, wr = np.nonzero(want <= 31)
    assert np.array_equal(got[0], wq) and np.array_equal(got[1], wr) and np.array_equal(got[2], want[wq, wr])


def test_probe_masks_are_made_once_a_weight():
    from vscan.bank.mih_kernel import probe_masks

    masks, weights = probe_masks(1)
    assert probe_masks(1)[0] is masks and not masks.flags.writeable and masks.tolist()[:3] == [0, 1, 2] and weights.max() == 1
    assert len(probe_masks(2)[0]) == 1 + 16 + 120

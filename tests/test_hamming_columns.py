"""The compiled brute force over a bank's words laid out as columns (``vscan.hashing.hamming_numba``: the gates'
64-bit lookups over every bank row, issue #30) finds the same pairs, in the same order, as the row layout and numpy."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from vscan.bank.disk_index import SplitIndex  # noqa: E402
from vscan.hashing import hamming_numba  # noqa: E402


def _numpy_pairs(query, bank, radius):
    d = np.bitwise_count(query[:, None, :] ^ bank[None, :, :]).sum(axis=-1)
    q, b = np.nonzero(d <= radius)
    return q.astype(np.int64), b.astype(np.int64), d[q, b].astype(np.int16)


def test_columns_find_the_rows_pairs():
    rng = np.random.default_rng(21)
    bank = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    near = bank[rng.integers(0, 3000, 40)] ^ (rng.random((40, 32)) < 0.12).astype(np.uint8) * rng.integers(1, 256, (40, 32), dtype=np.uint8)
    query = np.concatenate([near, rng.integers(0, 256, (30, 32), dtype=np.uint8), bank[:3]])
    readonly = bank.copy()
    readonly.flags.writeable = False
    for radius in (0, 31, 64, 100):
        cases = ((query, bank, hamming_numba.columns(bank)),  # columns kept by the caller
                 (query, readonly, None),  # made here: >= COLUMNS_FROM_QUERIES queries
                 (query[:2], bank, None))  # fmt: skip  (rows: too few queries to lay the bank out again)
        for q, b, cols in cases:
            got, want = hamming_numba.pairs_within(q, b, radius, bank_columns=cols), _numpy_pairs(q, bank, radius)
            for a, w in zip(got, want):
                assert a.dtype == w.dtype and np.array_equal(a, w)
        assert _numpy_pairs(near, bank, radius)[0].size or radius == 0  # the near queries find rows


def test_banks_of_several_tiles_give_every_pair_in_row_order_in_both_layouts():
    """The loops pass over the bank a tile at a time (``_hamming_kernel.TILE_ROWS``) with every query, not query by query
    over the whole bank (which streamed a 10M-row bank from memory once a query): pairs in every tile and in the last,
    short one, each query's rows still in row order."""
    from vscan.hashing._hamming_kernel import TILE_ROWS

    rng = np.random.default_rng(5)
    bank = rng.integers(0, 256, (2 * TILE_ROWS + 123, 32), dtype=np.uint8)
    at = np.array([0, TILE_ROWS - 1, TILE_ROWS, 2 * TILE_ROWS + 122, 5, TILE_ROWS + 7])
    bank[at[3:]] = bank[at[0]]  # one query meets rows in all three tiles
    near = bank[at] ^ (rng.random((len(at), 32)) < 0.1).astype(np.uint8) * rng.integers(1, 256, (len(at), 32), dtype=np.uint8)
    query = np.concatenate([near, rng.integers(0, 256, (9, 32), dtype=np.uint8)])
    for radius in (31, 64):
        want = _numpy_pairs(query, bank, radius)
        assert len(set(want[1].tolist()) & set(at.tolist())) >= 5
        for cols in (hamming_numba.columns(bank), None):
            for q in (query, query[:1], query[:3]):  # and one query, the row layout's tiles laid out again for it
                got = hamming_numba.pairs_within(q, bank, radius, bank_columns=cols)
                w = _numpy_pairs(q, bank, radius)
                assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(got, w))


def test_a_split_index_keeps_its_columns_for_the_64_bit_lookups(tmp_path):
    rng = np.random.default_rng(4)
    hashes = rng.integers(0, 256, (2500, 32), dtype=np.uint8)
    index = SplitIndex.build(hashes, tmp_path / "idx")
    query = hashes[:12] ^ (rng.random((12, 32)) < 0.1).astype(np.uint8)
    first = index.search(query, 64)
    kept = index._columns
    assert kept is not None and kept.shape == (4, 2500)
    second = index.search(query, 64)
    assert index._columns is kept  # made once
    want = _numpy_pairs(query, hashes, 64)
    for a, b, c in zip(first, second, want):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_a_bank_past_the_row_cap_is_searched_in_rows_and_no_copy_is_kept(tmp_path, monkeypatch):
    """The columns are a copy as large as the bank's rows, kept for the process's life by a bank index: a bank of more
    than ``COLUMNS_MAX_ROWS`` rows (10M rows: 320 MB in every model worker) is searched in its own row layout."""
    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 256, (2500, 32), dtype=np.uint8)
    index = SplitIndex.build(hashes, tmp_path / "idx")
    query = hashes[:12] ^ (rng.random((12, 32)) < 0.1).astype(np.uint8)
    monkeypatch.setattr(hamming_numba, "COLUMNS_MAX_ROWS", 2000)
    made = []
    real = hamming_numba.columns
    monkeypatch.setattr(hamming_numba, "columns", lambda bank: made.append(len(bank)) or real(bank))
    got = index.search(query, 64)
    assert index._columns is None and made == []
    for a, w in zip(got, _numpy_pairs(query, hashes, 64)):
        assert np.array_equal(a, w)
    assert all(np.array_equal(a, w) for a, w in zip(hamming_numba.pairs_within(query, hashes, 64), _numpy_pairs(query, hashes, 64)))
    assert made == []


def test_a_large_search_on_several_threads_gives_the_same_pairs_in_the_same_order(monkeypatch):
    """A search of many pairs (a 10M-row bank's gates) counts tile by tile, writes from the tiles that hold pairs, and
    spreads its tiles over the calling thread's numba threads: each query's pairs are still in row order, in both
    layouts, query chunk by query chunk, on one thread or two."""
    import numba

    from vscan.hashing._hamming_kernel import TILE_ROWS

    rng = np.random.default_rng(8)
    bank = rng.integers(0, 256, (3 * TILE_ROWS + 77, 32), dtype=np.uint8)
    at = rng.integers(0, len(bank), 12)
    bank[at[6:]] = bank[at[0]]  # one query meets rows in several tiles
    near = bank[at] ^ (rng.random((len(at), 32)) < 0.1).astype(np.uint8) * rng.integers(1, 256, (len(at), 32), dtype=np.uint8)
    query = np.concatenate([rng.integers(0, 256, (5, 32), dtype=np.uint8), near, rng.integers(0, 256, (4, 32), dtype=np.uint8)])
    monkeypatch.setattr(hamming_numba, "PARALLEL_MIN_PAIRS", 1)
    monkeypatch.setattr(hamming_numba, "_PARALLEL_QUERIES", 7)  # several query chunks, some with no pair
    before = numba.get_num_threads()
    try:
        for threads, radius in [(t, r) for t in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}) for r in (31, 64)]:
            numba.set_num_threads(threads)
            want = _numpy_pairs(query, bank, radius)
            assert want[0].size >= 12
            for q, cols in ((query, hamming_numba.columns(bank)), (query, None), (query[5:8], None)):  # the last: rows layout
                got, w = hamming_numba.pairs_within(q, bank, radius, bank_columns=cols), _numpy_pairs(q, bank, radius)
                assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(got, w))
            assert all(a.size == 0 for a in hamming_numba.pairs_within(query[:5], bank, 20))
    finally:
        numba.set_num_threads(before)

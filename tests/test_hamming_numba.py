"""The brute force's compiled loop (vscan.hashing.hamming_numba) gives numpy's pairs, in numpy's order (issue #30:
the searches of files that matched nothing look rows up at 64 bits, one past the multi-index search)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from vscan.bank import index as bank_index  # noqa: E402
from vscan.hashing import hamming_numba  # noqa: E402


def _numpy_pairs(query, bank, radius):
    """numpy's tiled loop alone (the compiled one switched off)."""
    real = hamming_numba.loaded
    hamming_numba.loaded = lambda: False
    try:
        return bank_index.brute_force_pairs(query, bank, radius)
    finally:
        hamming_numba.loaded = real


@pytest.mark.parametrize("radius", [0, 31, 63, 64, 128, 256])
def test_the_compiled_pairs_are_numpys(radius):
    rng = np.random.default_rng(radius)
    bank = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    query = rng.integers(0, 256, (40, 32), dtype=np.uint8)
    query[::5] = bank[rng.integers(0, len(bank), 8)]  # exact rows and rows a few bits off: pairs at every distance
    query[1::5] ^= rng.integers(0, 2, (8, 32), dtype=np.uint8) << rng.integers(0, 8, (8, 32), dtype=np.uint8)
    got, want = hamming_numba.pairs_within(query, bank, radius), _numpy_pairs(query, bank, radius)
    assert [a.dtype for a in got] == [a.dtype for a in want] == [np.int64, np.int64, np.int16]
    assert all(np.array_equal(a, b) for a, b in zip(got, want)) and (radius < 31 or got[0].size)


def test_brute_force_pairs_uses_it_once_numba_is_loaded(monkeypatch):
    import numba  # noqa: F401  (a scan's model worker has it loaded)

    calls = []
    real = hamming_numba.pairs_within
    monkeypatch.setattr(hamming_numba, "pairs_within", lambda *a, **k: calls.append(a) or real(*a, **k))
    rng = np.random.default_rng(1)
    bank, query = rng.integers(0, 256, (5000, 32), dtype=np.uint8), rng.integers(0, 256, (8, 32), dtype=np.uint8)
    query[2] = bank[7]
    q, b, d = bank_index.brute_force_pairs(query, bank, 64)
    assert calls and list(zip(q, b, d)) == [(2, 7, 0)]
    bank_index.brute_force_pairs(query[:1], bank[:10], 64)  # a few pairs: numpy's loop, no parallel launch
    assert len(calls) == 1

"""A search's own lookups (a gate's boxes, the off-centre windows: ``Matcher.row_hits``) are searched once: a
memory-mapped bank neither looks them up among the query hashes it keeps nor keeps them (``MappedBank.candidates``,
``keep=False``), with the same entries and hits; the file's own hashes stay kept (issue #30)."""

from __future__ import annotations

import numpy as np

from tests.test_narrow_cache import _bank
from vscan.bank.mapped import MappedBank, prepare
from vscan.bank.matcher import Matcher
from vscan.bank.query import MatchSettings


def test_search_lookups_are_not_kept_and_find_the_same(tmp_path):
    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(5))
    prepare(path)
    rng = np.random.default_rng(9)
    near = np.concatenate([bases ^ rng.integers(0, 2, bases.shape, dtype=np.uint8), rng.integers(0, 256, (20, 32), dtype=np.uint8)])
    kept_bank, once_bank = MappedBank.open(path), MappedBank.open(path)
    for radius, extra_only in ((31, False), (64, False), (28, True), (64, True)):
        want = kept_bank.candidates(near, radius, 50, extra_only=extra_only)
        got = once_bank.candidates(near, radius, 50, extra_only=extra_only, keep=False)
        assert got.dtype == want.dtype and np.array_equal(got, want) and want.size
    assert not once_bank._kept_candidates and kept_bank._kept_candidates
    empty = once_bank.candidates(np.zeros((0, 32), np.uint8), 31, 50, keep=False)
    assert empty.dtype == np.int64 and empty.size == 0
    bank = MappedBank.open(path)
    matcher = Matcher(bank, MatchSettings())
    hits = matcher.row_hits(near, 64)
    windows = matcher.row_hits(near, 28, prep_prefix="crop")
    assert not bank._kept_candidates  # kept nothing: the search's hashes were searched once
    again = Matcher(kept_bank, MatchSettings())  # a bank whose candidates were kept finds the same hits
    for mine, theirs in ((hits, again.row_hits(near, 64)), (windows, again.row_hits(near, 28, prep_prefix="crop"))):
        assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
    assert hits["query"].size and windows["query"].size


def test_a_repeated_search_lookup_is_answered_again(tmp_path, monkeypatch):
    """A duplicate file's searches repeat their lookups whole: the bank keeps the last lookups (one entry each) and
    answers a repeat without searching, the same entries."""
    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(6))
    prepare(path)
    bank = MappedBank.open(path)
    searched = []
    pairs = MappedBank._candidate_pairs
    monkeypatch.setattr(MappedBank, "_candidate_pairs", lambda self, *a, **k: searched.append(1) or pairs(self, *a, **k))
    near = bases ^ np.uint8(3)
    first = bank.candidates(near, 64, 50, keep=False)
    again = bank.candidates(near.copy(), 64, 50, keep=False)
    assert len(searched) == 1 and again is first and not first.flags.writeable and first.size
    other = bank.candidates(near[:2], 64, 50, keep=False)  # another lookup: searched
    assert len(searched) == 2 and np.array_equal(other, MappedBank.open(path).candidates(near[:2], 64, 50))
    assert not bank._kept_candidates

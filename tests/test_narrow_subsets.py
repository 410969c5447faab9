"""A memory-mapped bank keeps the index of a set of candidate entries with the matcher's derived
structures (vscan.bank.mapped, MappedBank._subset_rows): the next file narrowed to the same entries
(an archive of copies of a few banked clips) builds no unique rows, CSR or row ends again, and
matches the same; labels are still read at each narrowing (issue #30)."""

from __future__ import annotations

import numpy as np

from vscan.bank import robust
from vscan.bank.mapped import MappedBank, narrow_for_query, prepare
from vscan.bank.matcher import Matcher
from vscan.bank.query import MatchSettings
from vscan.bank.updates import relabel_entries
from tests.test_narrow_cache import _bank, _query


def test_a_second_file_narrowed_to_the_same_entries_reuses_the_derived_structures(tmp_path, monkeypatch):
    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(5))
    prepare(path)
    bank = MappedBank.open(path)
    settings = MatchSettings()
    first = narrow_for_query(bank, _query(bases[1]), settings)
    before = Matcher(first, settings).match(_query(bases[1]))
    built: list[int] = []
    prepare_robust = robust._prepare_robust
    monkeypatch.setattr(robust, "unique_hashes", lambda h, _u=robust.unique_hashes: built.append(len(h)) or _u(h))
    second = narrow_for_query(bank, _query(bases[1]), settings)
    again = Matcher(second, settings).match(_query(bases[1]))
    assert second.cache is first.cache and prepare_robust(second, settings.min_quality) is prepare_robust(first, settings.min_quality)
    assert built == [4 * 8, 4]  # the query's alone (4 frames x 8 variants, then its frames); none of the bank side's (8 rows)
    assert [repr(m) for m in again] == [repr(m) for m in before] and again[0].bank_entry_id == "e1" and again[0].is_match
    other = narrow_for_query(bank, _query(bases[2]), settings)  # other entries: their own structures
    assert other.entry_ids == ["e2"] and other.cache is not first.cache


def test_a_label_changed_between_two_files_is_read_with_the_kept_structures(tmp_path):
    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(6))
    prepare(path)
    bank = MappedBank.open(path)
    settings = MatchSettings()
    first = narrow_for_query(bank, _query(bases[0]), settings)
    relabel_entries(path, ["e0"], label="renamed")
    second = narrow_for_query(bank, _query(bases[0]), settings)
    assert first.labels == ["label0"] and second.labels == ["renamed"] and second.cache is first.cache
    assert Matcher(second, settings).match(_query(bases[0]))[0].label == "renamed"


def test_hashes_searched_once_are_not_searched_again(tmp_path):
    """A file confirmed in the call that matched its first pass is narrowed again with its first pass's
    hashes: only the hashes not seen yet reach the bank's index, and the candidates are the same."""
    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(8))
    prepare(path)
    bank = MappedBank.open(path)
    searched: list[int] = []
    search = bank.index.search
    bank.index.search = lambda q, r, **kw: searched.append(len(q)) or search(q, r, **kw)
    first = bank.candidates(np.stack([bases[1], bases[2]]), 16, 0)
    again = bank.candidates(np.stack([bases[2], bases[1], bases[3]]), 16, 0)
    assert searched == [2, 1]  # the second search: base 3 alone
    fresh = MappedBank.open(path)
    assert first.tolist() == fresh.candidates(np.stack([bases[1], bases[2]]), 16, 0).tolist() == [1, 2]
    assert again.tolist() == fresh.candidates(np.stack([bases[2], bases[1], bases[3]]), 16, 0).tolist() == [1, 2, 3]
    assert bank.candidates(bases[:1], 16, 0).tolist() == [0] and searched == [2, 1, 1]

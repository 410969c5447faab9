"""A first pass and its confirmation matched in one model call (issue #30): the confirmation's
query is the first pass's frames and one more, against the same narrowed bank. What the first
pass's plain match searched is kept (``kept``: vscan.bank.robust._kept_search, the narrowed bank
in vscan.bank.matcher.Matcher.for_file) and the confirmation searches only its new hashes; its
matches are the same as a match searched whole."""

from __future__ import annotations

import numpy as np

import vscan.bank.mapped as mapped
import vscan.bank.prepared as prepared
import vscan.bank.robust as robust
from vscan.bank.hash_input import dihedral_variants
from vscan.bank.mapped import MappedBank, prepare
from vscan.bank.matcher import Matcher
from vscan.bank.prepared import unique_hashes
from vscan.bank.query import FileQuery, MatchSettings, QueryVersion
from vscan.bank.writer import BankWriter
from vscan.hashing.vpdq import ExtraHashes, FrameHashes


def _bank(path, rng) -> np.ndarray:
    bases = rng.integers(0, 256, (4, 32), dtype=np.uint8)
    with BankWriter(path) as writer:
        for k, base in enumerate(bases):
            m = 12
            hashes = np.repeat(base[None], m, 0)
            hashes[:, 8 + k] ^= np.arange(m, dtype=np.uint8)  # near-duplicates of the base, a frame every 0.5 s
            fh = FrameHashes(np.arange(m, dtype=np.int64) * 2, np.arange(m) * 0.5, np.full(m, 90, np.int32), hashes)
            used = writer.add_frame_hashes(f"e{k}", f"label{k}", ("gen.txt", "vpdq_txt", f"e{k}"), "video", fh, m * 0.5)
            extra = hashes[[1, 3]] ^ np.uint8(1)
            writer.add_extra_hashes(used, ExtraHashes(np.array([2, 6]), ("crop0.900", "borders"), np.full(2, 80, np.int32), extra))
    return bases


def _query(hashes: np.ndarray, times: np.ndarray) -> FileQuery:
    fh = FrameHashes(np.round(times * 2).astype(np.int64), times.astype(np.float64), np.full(len(hashes), 80, np.int32), hashes)
    return FileQuery((QueryVersion("frames", fh, dihedral_variants(hashes)),), {"sha256": "ab" * 32}, 6.0)


def _frames(base: np.ndarray, times: list[float], k: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times, np.float64)
    hashes = np.repeat(base[None], t.size, 0)
    hashes[:, 8 + k] ^= np.round(t * 2).astype(np.uint8)  # the bank's frame at that time
    hashes[:, 0] ^= np.uint8(3)  # a copy a couple of bits off
    return hashes, t


def _described(matches) -> list[str]:
    return [repr(m) for m in matches]  # NaN fields compare as text


def _spied(monkeypatch):
    searched, narrowed = [], []
    search, narrow = prepared._search, mapped.narrow_for_query
    monkeypatch.setattr(prepared, "_search", lambda q, *a: searched.append(len(q)) or search(q, *a))
    monkeypatch.setattr(mapped, "narrow_for_query", lambda *a: narrowed.append(1) or narrow(*a))
    return searched, narrowed


def test_confirmation_searches_only_its_new_frame_and_matches_as_searched_whole(tmp_path, monkeypatch):
    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(5))
    prepare(path)
    h1, t1 = _frames(bases[1], [0.0, 1.5, 3.0, 4.5], 1)
    h2, t2 = _frames(bases[1], [2.0], 1)
    first, both = _query(h1, t1), _query(np.concatenate([h1, h2])[[0, 1, 4, 2, 3]], np.concatenate([t1, t2])[[0, 1, 4, 2, 3]])
    whole = _described(Matcher(MappedBank.open(path), MatchSettings()).match(both))
    assert whole and "e1" in whole[0]
    searched, narrowed = _spied(monkeypatch)
    matcher, kept = Matcher(MappedBank.open(path), MatchSettings()), {}
    assert _described(matcher.match(first, kept=kept)) == _described(Matcher(MappedBank.open(path), MatchSettings()).match(first))
    searched.clear(), narrowed.clear()
    index = kept["matcher.narrowed"][2]
    assert matcher.for_file(both, kept=kept).index is index  # the same entries: the first pass's narrowed bank
    assert _described(matcher.match(both, kept=kept)) == whole
    assert narrowed == []  # not narrowed again
    new = unique_hashes(dihedral_variants(h2).reshape(-1, 32))[0]
    assert searched == [len(new)]  # the new frame's variants alone (the first pass's were kept)


def test_a_confirmation_reaching_another_entry_is_narrowed_and_searched_anew(tmp_path, monkeypatch):
    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(6))
    prepare(path)
    h1, t1 = _frames(bases[1], [0.0, 1.5, 3.0, 4.5], 1)
    h2, t2 = _frames(bases[2], [5.0], 2)  # a frame of another entry
    first, both = _query(h1, t1), _query(np.concatenate([h1, h2]), np.concatenate([t1, t2]))
    whole = _described(Matcher(MappedBank.open(path), MatchSettings()).match(both))
    assert any("e2" in m for m in whole)
    searched, narrowed = _spied(monkeypatch)
    matcher, kept = Matcher(MappedBank.open(path), MatchSettings()), {}
    matcher.match(first, kept=kept)
    searched.clear(), narrowed.clear()
    assert _described(matcher.match(both, kept=kept)) == whole
    assert narrowed == [1] and searched == [len(unique_hashes(dihedral_variants(both.frames.hashes.hashes).reshape(-1, 32))[0])]


def test_kept_pairs_are_the_search_whole_in_its_order(tmp_path):
    """Random subsets searched in turn with one ``kept``, by brute force and through the split index: every pair
    list equals the whole search's, order and dtypes and all."""
    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(7))
    prepare(path)
    rng = np.random.default_rng(8)
    hashes = np.concatenate([_frames(bases[k], list(rng.uniform(0, 6, 6)), k)[0] for k in range(4)])
    hashes[rng.random(len(hashes)) < 0.3, 3] ^= np.uint8(0xF0)
    queries = dihedral_variants(hashes).reshape(-1, 32)
    index = MappedBank.open(path).narrow([queries], 31, 50)
    bank = robust._prepare_robust(index, 50)
    for blocking in (50_000, 1):
        kept: dict = {}
        found = 0
        for size in (20, 60, 30, len(queries), 3):
            q_uniq, q_inverse = unique_hashes(queries[rng.choice(len(queries), size, replace=False)])
            got = robust._row_pairs(q_uniq, q_inverse, bank, 31, "auto", blocking, "cpu", kept)
            want = robust._row_pairs(q_uniq, q_inverse, bank, 31, "auto", blocking, "cpu")
            assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(got, want))
            found += want[0].size
        assert found > 100
        assert len(kept["robust.pairs"][2]) == len(unique_hashes(queries)[0])  # each hash searched once, then kept

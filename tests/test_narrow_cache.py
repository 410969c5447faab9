"""A memory-mapped bank keeps the rows of the entries it narrowed to (vscan.bank.mapped,
MappedBank._entry_rows): the next file narrowed to the same entries (an archive of copies
of a few banked clips) reads none of their rows again and gets the same index (issue #30)."""

from __future__ import annotations

import numpy as np

from vscan.bank.hash_input import dihedral_variants
from vscan.bank.mapped import MappedBank, narrow_for_query, prepare
from vscan.bank.query import FileQuery, MatchSettings, QueryVersion
from vscan.bank.writer import BankWriter
from vscan.hashing.vpdq import ExtraHashes, FrameHashes


def _bank(path, rng) -> np.ndarray:
    bases = rng.integers(0, 256, (4, 32), dtype=np.uint8)
    with BankWriter(path) as writer:
        for k, base in enumerate(bases):
            m = 6
            hashes = np.repeat(base[None], m, 0)
            hashes[:, k] ^= np.arange(m, dtype=np.uint8)  # near-duplicates of the base
            fh = FrameHashes(np.arange(m, dtype=np.int64) * 2, np.arange(m) * 0.5, np.full(m, 90, np.int32), hashes)
            used = writer.add_frame_hashes(f"e{k}", f"label{k}", ("gen.txt", "vpdq_txt", f"e{k}"), "video", fh, m * 0.5)
            extra = hashes[[1, 3]] ^ np.uint8(1)
            writer.add_extra_hashes(used, ExtraHashes(np.array([2, 6]), ("crop0.900", "borders"), np.full(2, 80, np.int32), extra))
    return bases


def _query(base: np.ndarray) -> FileQuery:
    hashes = np.repeat(base[None], 4, 0)
    fh = FrameHashes(np.arange(4, dtype=np.int64), np.arange(4) * 1.0, np.full(4, 80, np.int32), hashes)
    return FileQuery((QueryVersion("frames", fh, dihedral_variants(hashes)),), {})


def test_second_file_narrowed_to_the_same_entries_reads_no_rows_again(tmp_path, monkeypatch):
    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(3))
    prepare(path)
    bank = MappedBank.open(path)
    reads: list[int] = []
    rows_of = MappedBank._rows_of
    monkeypatch.setattr(MappedBank, "_rows_of", lambda self, e: reads.append(e) or rows_of(self, e))
    first = narrow_for_query(bank, _query(bases[1]), MatchSettings())
    assert first.entry_ids == ["e1"] and reads == [bank._entry_of("e1")]
    second = narrow_for_query(bank, _query(bases[1]), MatchSettings())
    assert len(reads) == 1  # read once, for the first file
    for name in ("hashes", "entry_rows", "frame_numbers", "timestamps_seconds", "qualities"):
        assert np.array_equal(getattr(first, name), getattr(second, name), equal_nan=name == "timestamps_seconds")
    assert second.labels == ["label1"] and second.extra.preps == first.extra.preps == ("crop0.900", "borders")
    assert np.array_equal(second.extra.hashes, first.extra.hashes) and np.array_equal(second.extra.frame_rows, [1, 3])
    third = narrow_for_query(bank, _query(bases[2]), MatchSettings())  # another entry: its rows read
    assert third.entry_ids == ["e2"] and len(reads) == 2

"""A CPU scan's matcher searches a narrowed bank of a few thousand unique rows through the split
index (vscan.runtime.file_match.match_settings: CPU_BLOCKING_MIN_HASHES), not by brute force: the
same matches, the index built once and kept with the narrowed bank for the next file (issue #30)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from vscan.bank import disk_index
from vscan.bank.hash_input import dihedral_variants
from vscan.bank.mapped import MappedBank, prepare
from vscan.bank.matcher import Matcher
from vscan.bank.query import FileQuery, QueryVersion
from vscan.bank.writer import BankWriter
from vscan.config import Runtime, ScanConfig
from vscan.hashing.vpdq import FrameHashes
from vscan.runtime.file_match import match_settings


def _bank(path, rng, rows: int = 6000) -> np.ndarray:
    hashes = rng.integers(0, 256, (rows, 32), dtype=np.uint8)
    with BankWriter(path) as writer:
        fh = FrameHashes(np.arange(rows, dtype=np.int64), np.arange(rows) / 30.0, np.full(rows, 90, np.int32), hashes)
        writer.add_frame_hashes("e0", "label0", ("gen.txt", "vpdq_txt", "e0"), "video", fh, rows / 30.0)
    return hashes


def _query(hashes: np.ndarray) -> FileQuery:
    picked = hashes[::1500][:4].copy()
    picked[:, 0] ^= 7  # 3 bits off
    fh = FrameHashes(np.arange(4, dtype=np.int64), np.arange(4) * 50.0, np.full(4, 80, np.int32), picked)
    return FileQuery((QueryVersion("frames", fh, dihedral_variants(picked)),), {}, 200.0)


def test_a_narrowed_bank_of_6000_rows_is_searched_through_a_split_index_built_once(tmp_path, monkeypatch):
    path = tmp_path / "b.bank"
    hashes = _bank(path, np.random.default_rng(7))
    prepare(path)
    settings = match_settings(ScanConfig(runtime=Runtime(device="cpu")))
    built: list[int] = []
    from_hashes = disk_index.SplitIndex.from_hashes.__func__
    monkeypatch.setattr(disk_index.SplitIndex, "from_hashes", classmethod(lambda cls, h: built.append(len(h)) or from_hashes(cls, h)))
    bank = MappedBank.open(path)
    matcher = Matcher(bank, settings)
    first = matcher.match(_query(hashes))
    second = matcher.match(_query(hashes))
    assert built == [6000]  # the narrowed bank's rows, indexed once for both files
    brute = Matcher(MappedBank.open(path), replace(settings, method="brute")).match(_query(hashes))
    assert [repr(m) for m in first] == [repr(m) for m in second] == [repr(m) for m in brute]
    assert first[0].bank_entry_id == "e0" and first[0].num_query_hashes_matched == 4

"""Scans match against the bank's memory-mapped index (vscan.bank.mapped): the
same matches as the bank loaded into memory, rows added and entries disabled
since the index was built included; a scan builds the index once and its
model actors never load the bank's rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vscan.bank.append import BankAppender
from vscan.bank.hash_input import dihedral_variants
from vscan.bank.lookup import index_path
from vscan.bank.mapped import MappedBank, narrow_for_query, prepare
from vscan.bank.match import match_digests, match_frames
from vscan.bank.query import FileQuery, MatchSettings, QueryVersion
from vscan.bank.store import Bank
from vscan.bank.updates import disable_entries
from vscan.bank.writer import BankWriter
from vscan.hashing.vpdq import ExtraHashes, FrameHashes

PREPS = ("borders", "crop0.900", "window:rot90")


def _flip(rng, h: np.ndarray, bits: int) -> np.ndarray:
    out = h.copy()
    for i in rng.choice(256, bits, replace=False):
        out[i // 8] ^= 1 << (i % 8)
    return out


def _entries(rng, n: int, prefix: str, bases: np.ndarray):
    """Clips: runs of near-duplicate frames of a base hash (some frames repeated
    exactly, some without timestamps, some of low quality), a few extra rows each."""
    for k in range(n):
        base = bases[k % len(bases)]
        m = int(rng.integers(3, 12))
        hashes = np.stack([_flip(rng, base, int(rng.integers(0, 20))) for _ in range(m)])
        hashes[m // 2] = hashes[0]  # an exact repeat
        ts = np.arange(m) * 0.5 + (np.nan if k % 7 == 3 else 0.0)
        quality = np.where(rng.random(m) < 0.15, 20, 90).astype(np.int32)
        fh = FrameHashes(np.arange(m, dtype=np.int64) * 3, ts, quality, hashes)
        pick = rng.choice(m, min(m, 3), replace=False)
        extra = ExtraHashes(np.asarray(fh.frame_numbers[pick], np.int64), tuple(PREPS[i % 3] for i in range(pick.size)),
                            np.full(pick.size, 80, np.int32), np.stack([_flip(rng, h, 10) for h in hashes[pick]]))  # fmt: skip
        yield f"{prefix}{k:03d}", None if k % 5 == 0 else f"label{k % 3}", fh, extra, m * 0.5


def _write(writer, rng, n, prefix, bases, digest_of=None):
    for entry_id, label, fh, extra, duration in _entries(rng, n, prefix, bases):
        used = writer.add_frame_hashes(entry_id, label, ("gen.txt", "vpdq_txt", entry_id), "video", fh, duration)
        writer.add_extra_hashes(used, extra)
        if digest_of and used in digest_of:
            writer.add_digest(used, "sha256", digest_of[used])


@pytest.fixture()
def bank(tmp_path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(5)
    bases = rng.integers(0, 256, (12, 32), dtype=np.uint8)
    path = tmp_path / "gen.bank"
    with BankWriter(path) as writer:
        _write(writer, rng, 40, "v", bases, {"v007": "ab" * 32, "v030": "cd" * 32})
        writer.add_file_digest("d-only", "digests", ("list.txt", "digest_list", "1"), "sha256", "ab" * 32)
    return path, bases


def _queries(rng, bases):
    for k in range(6):
        base = bases[k * 2 % len(bases)]
        n = 8
        hashes = np.stack([_flip(rng, base, int(rng.integers(0, 26))) for _ in range(n)])
        if k % 2:  # a mirrored copy
            hashes = dihedral_variants(hashes)[:, 4].copy()
        fh = FrameHashes(np.arange(n, dtype=np.int64), np.arange(n) * 0.5, np.full(n, 80, np.int32), hashes)
        yield fh, dihedral_variants(hashes)


def _same(bank_path: Path, bases, rng, *, sha256=None):
    with Bank(bank_path) as b:
        full = b.load_index()
    mapped = MappedBank.open(bank_path)
    assert mapped.rows_in_memory == mapped.delta_rows + len(mapped.xdelta_hashes)
    checked = 0
    for fh, variants in _queries(rng, bases):
        unoverlaid = FrameHashes(fh.frame_numbers, fh.timestamps_seconds, fh.qualities, np.stack([_flip(rng, h, 8) for h in fh.hashes]))
        un_var = dihedral_variants(unoverlaid.hashes)
        for robust in (False, True):
            versions = (QueryVersion("frames", fh, variants), QueryVersion("unoverlaid", unoverlaid, un_var)) if robust else (QueryVersion("frames", fh),)
            small = narrow_for_query(mapped, FileQuery(versions, {"sha256": sha256}), MatchSettings())
            assert len(small) < len(full)  # only the candidates' rows
            args = dict(variants=variants, unoverlaid=unoverlaid, unoverlaid_variants=un_var) if robust else {}
            for whole, part in ((full, small), (full.disabled, small.disabled)):
                if whole is None:
                    assert part is None
                    continue
                expected = match_digests(sha256, None, whole) + match_frames(fh, whole, **args)
                got = match_digests(sha256, None, part) + match_frames(fh, part, **args)
                assert repr(got) == repr(expected)
                checked += len(expected)
    assert checked > 10
    return mapped


def test_narrowed_index_matches_like_the_loaded_bank(bank):
    path, bases = bank
    info = prepare(path)
    scan = index_path(path) / "scan"
    assert json.loads((scan / "scan.json").read_text())["index"]["num_hashes"] == info["num_hashes"]
    mtime = (scan / "scan.json").stat().st_mtime_ns
    _same(path, bases, np.random.default_rng(1), sha256="ab" * 32)
    # Disabled entries and rows appended since: no rebuild, same matches (disabled ones apart).
    disable_entries(path, ["v002", "v014", "d-only"], reason="test")
    with BankAppender(path) as appender:
        _write(appender, np.random.default_rng(9), 6, "w", bases, {"w001": "ab" * 32})
    assert prepare(path) == info and (scan / "scan.json").stat().st_mtime_ns == mtime
    mapped = _same(path, bases, np.random.default_rng(2), sha256="ab" * 32)
    assert mapped.delta_rows > 0 and mapped.has_disabled and mapped.files > 0


def _comparable(record: dict) -> dict:
    """A record without what differs between two runs (timings, where it ran, run ids)."""
    drop = {"timings", "ran_on", "scanned_at", "run_id", "elapsed_seconds", "wall_seconds"}
    return {k: v for k, v in record.items() if k not in drop}


def test_scan_opens_the_mapped_index_once_and_records_equal_the_in_memory_bank(tmp_path, ray_local):
    from vscan.bench import synth
    from vscan.bench.edits import edit_clip
    from vscan.config import Runtime, Sampling, ScanConfig
    from vscan.decode import FixedRate
    from vscan.output.read import read_records
    from vscan.output.sinks import JsonlSink
    from vscan.runtime.driver import run_scan
    from vscan.runtime.model_pool import ModelPool, put_bank_index
    from vscan.runtime.ray_start import cluster_nodes

    src = tmp_path / "src"
    a = synth.make_clip(src / "a.mp4", seed=1, seconds=3, size=(96, 64))
    b = synth.make_clip(src / "b.mp4", seed=2, seconds=3, size=(96, 64))
    bank = tmp_path / "r.bank"
    Bank.build(bank, [a, b], device="cpu")
    clips = tmp_path / "clips"
    edit_clip(a, clips / "a_flipped.mp4", "hflip")
    edit_clip(b, clips / "b_reencoded.mp4", "reencode")
    synth.make_clip(clips / "other.mp4", seed=7, seconds=2, size=(96, 64))
    with Bank(bank) as opened:
        b_entry = next(e for (e, *_) in opened.rows("entries") if Path(e).name.startswith("b"))
    disable_entries(bank, [b_entry], reason="test")
    records = {}
    for mode, in_memory in (("mapped", False), ("memory", True), ("mapped again", False)):
        config = ScanConfig(sampling=Sampling(policy=FixedRate(2.0)), runtime=Runtime(device="cpu", bank_in_memory=in_memory))
        out = tmp_path / f"{mode}.jsonl"
        with JsonlSink(out) as sink:
            run_scan([clips], sink=sink, bank_path=bank, config=config)
        records[mode] = {Path(r["path"]).name: _comparable(r) for r in read_records(out)}
        if mode == "mapped":  # the index was built by this scan, once
            built = (index_path(bank) / "index.json").stat().st_mtime_ns
    assert (index_path(bank) / "index.json").stat().st_mtime_ns == built  # reused, not rebuilt
    assert records["mapped"] == records["memory"] == records["mapped again"]
    flipped, reencoded = records["mapped"]["a_flipped.mp4"], records["mapped"]["b_reencoded.mp4"]
    assert any(m["is_match"] for m in flipped["matches"]) and reencoded["skipped_disabled"] == [b_entry]
    # The actors' banks: memory-mapped rows, none loaded (and all of them in memory the old way).
    with Bank(bank) as opened:
        loaded = opened.load_index()
    rows = len(loaded) + len(loaded.disabled)
    nodes = cluster_nodes()
    for in_memory in (False, True):
        config = ScanConfig(runtime=Runtime(device="cpu", bank_in_memory=in_memory))
        pool = ModelPool(config, put_bank_index(bank, config, nodes), nodes)
        try:
            while not pool.started(timeout=1.0):
                pass
            stats = pool.stats()
        finally:
            pool.close()
        if in_memory:
            assert stats["bank_rows_in_memory"] >= rows and stats["bank_rows_mapped"] == 0
        else:
            assert stats["bank_rows_in_memory"] == 0 and stats["bank_rows_mapped"] >= rows


def test_a_bank_inside_the_scanned_folder_gets_nothing_written_beside_it(tmp_path, ray_local):
    """Evidence is never modified: a bank kept inside a scanned folder gets no
    index built beside it (the scan loads it into memory instead and still
    matches); an index already there and up to date is used, read-only."""
    from vscan.bench import synth
    from vscan.bench.edits import edit_clip
    from vscan.config import Runtime, Sampling, ScanConfig
    from vscan.decode import FixedRate
    from vscan.output.read import read_records
    from vscan.output.sinks import JsonlSink
    from vscan.runtime.bank_share import MappedBankRef
    from vscan.runtime.driver import run_scan
    from vscan.runtime.model_pool import put_bank_index
    from vscan.runtime.ray_start import cluster_nodes

    a = synth.make_clip(tmp_path / "src" / "a.mp4", seed=1, seconds=3, size=(96, 64))
    folder = tmp_path / "evidence"
    bank = folder / "r.bank"
    folder.mkdir()
    Bank.build(bank, [a], device="cpu")
    edit_clip(a, folder / "a_flipped.mp4", "hflip")
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    config = ScanConfig(sampling=Sampling(policy=FixedRate(2.0)), runtime=Runtime(device="cpu"))
    with JsonlSink(tmp_path / "r.jsonl") as sink:
        run_scan([folder], sink=sink, bank_path=bank, config=config)
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    flipped = next(r for r in read_records(tmp_path / "r.jsonl") if r["path"].endswith("a_flipped.mp4"))
    assert any(m["is_match"] for m in flipped["matches"])
    nodes = cluster_nodes()
    assert not isinstance(put_bank_index(bank, config, nodes, [folder]), MappedBankRef)
    prepare(bank)  # as `vscan bank build` / `compact` leave it
    assert isinstance(put_bank_index(bank, config, nodes, [folder]), MappedBankRef)

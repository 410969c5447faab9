"""One read path (issue #24 item 3): the index holds rows and the ids of their entries, the
entry table is read from the bank at match time, in one place (vscan.bank.entry_table).

A label changed in place after the index and the scan arrays were built is what every
read path reports (a scan's memory-mapped bank, a bank loaded into memory, the service),
and nothing of an entry but its id is copied beside the index."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import numpy as np

from vscan.bank.hash_input import dihedral_variants
from vscan.bank.lookup import index_path
from vscan.bank.mapped import MappedBank, narrow_for_query, prepare
from vscan.bank.matcher import Matcher
from vscan.bank.query import FileQuery, MatchSettings, QueryVersion
from vscan.bank.store import Bank
from vscan.bank.updates import history
from vscan.bank.writer import BankWriter
from vscan.hashing.vpdq import FrameHashes


def _bank(path, rng) -> np.ndarray:
    bases = rng.integers(0, 256, (3, 32), dtype=np.uint8)
    with BankWriter(path) as writer:
        for k, base in enumerate(bases):
            hashes = np.repeat(base[None], 6, 0)
            hashes[:, k] ^= np.arange(6, dtype=np.uint8)
            fh = FrameHashes(np.arange(6, dtype=np.int64) * 2, np.arange(6) * 0.5, np.full(6, 90, np.int32), hashes)
            writer.add_frame_hashes(f"e{k}", f"label{k}", ("gen.txt", "vpdq_txt", f"e{k}"), "video", fh, 3.0)
    return bases


def _query(base: np.ndarray) -> FileQuery:
    hashes = np.repeat(base[None], 4, 0)
    fh = FrameHashes(np.arange(4, dtype=np.int64), np.arange(4) * 1.0, np.full(4, 80, np.int32), hashes)
    return FileQuery((QueryVersion("frames", fh, dihedral_variants(hashes)),), {})


def _cli(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "VSCAN_USER": "tester"}
    return subprocess.run([sys.executable, "-m", "vscan.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def _relabel(path, entry_id: str, label: str) -> None:
    """``vscan bank relabel``: a new generation, the old label kept in the history."""
    with Bank(path) as b:
        before = b.generation
    proc = _cli("bank", "relabel", path, entry_id, "--label", label, "--reason", "re-reviewed")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"relabelled": [entry_id], "already": []}
    with Bank(path) as b:
        assert b.generation != before
    (event,) = [e for e in history(path, entry_id) if e.action == "relabel"]
    assert (event.who, event.reason, event.detail["label"][1]) == ("tester", "re-reviewed", label)


def test_a_label_changed_after_the_index_was_built_is_served_by_every_read_path(tmp_path):
    from vscan.serve.bank_state import BankState

    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(5))
    prepare(path)
    bank = MappedBank.open(path)
    assert narrow_for_query(bank, _query(bases[1]), MatchSettings()).labels == ["label1"]
    _relabel(path, "e1", "relabelled")
    prepare(path)  # the index is still fresh (same lineage and rows): nothing is rebuilt
    scan = json.loads((index_path(path) / "scan" / "scan.json").read_text())
    files = sorted(p.stem for p in (index_path(path) / "scan").glob("*.npy"))
    # Nothing of an entry but its id beside the index: no labels, kinds or durations to go stale.
    assert not {"labels", "kinds"} & set(scan) and not [f for f in files if f in ("entry_label", "entry_kind", "entry_duration")]
    for opened in (bank, MappedBank.open(path)):  # opened before and after the change
        matches = Matcher(opened).match(_query(bases[1]))
        assert [(m.bank_entry_id, m.label) for m in matches if m.is_match] == [("e1", "relabelled")]
    with Bank(path) as b:
        assert [(m.bank_entry_id, m.label) for m in Matcher(b.load_index()).match(_query(bases[1])) if m.is_match] == [("e1", "relabelled")]
    state = BankState.open(path)
    hits = state.search(bases[1][None], 31)[0]
    assert [(h["bank_content_id"], h["label"]) for h in hits] == [("e1", "relabelled")]


def test_relabel_changes_a_kind_refuses_unknown_entries_and_keeps_what_is_already_so(tmp_path):
    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(6))
    prepare(path)
    proc = _cli("bank", "relabel", path, "e0", "e2", "--label", "label2", "--kind", "image")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"relabelled": ["e0", "e2"], "already": []}
    narrowed = narrow_for_query(MappedBank.open(path), _query(bases[2]), MatchSettings())
    assert (narrowed.entry_ids, narrowed.labels, narrowed.kinds) == (["e2"], ["label2"], ["image"])
    with Bank(path) as b:
        generation = b.generation
    proc = _cli("bank", "relabel", path, "e2", "--label", "label2")  # nothing to change: no new generation
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"relabelled": [], "already": ["e2"]}
    for bad in (["e9", "--label", "x"], ["e1"], ["e1", "--kind", "file_digest"]):
        proc = _cli("bank", "relabel", path, *bad)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    with Bank(path) as b:
        info = b.info()
        assert b.generation == generation and (info.labels, info.kinds) == ({"label1": 1, "label2": 2}, {"image": 2, "video": 1})


def _traced(*conns: sqlite3.Connection) -> list[str]:
    statements: list[str] = []
    for conn in conns:
        conn.set_trace_callback(statements.append)
    return statements


def test_every_read_path_gets_rows_from_the_row_table_and_entries_from_one_reader(tmp_path):
    """Rows (the index's and those imported after it was built) come from the one row table behind the
    index, for a scan's narrowing, ``vscan bank lookup`` and ``vscan serve`` alike: none of them reads
    ``frame_hashes`` when it answers; entry metadata is one read of ``entries`` (vscan.bank.entry_table)."""
    from vscan.bank.append import append_to_bank
    from vscan.bank.lookup import BankLookup
    from vscan.serve.bank_state import BankState

    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(6))
    prepare(path)
    added = bases[0] ^ np.uint8(0x0F)  # imported after the index was built: a row of the delta
    (tmp_path / "late.txt").write_text(f"0,100,{bases[0].tobytes().hex()},0.000\n7,100,{added.tobytes().hex()},1.400\n")
    append_to_bank(path, [tmp_path / "late.txt"])
    with sqlite3.connect(path) as conn:
        truth = {(e, f) for e, f in conn.execute("SELECT entry_id, frame_number FROM frame_hashes")}
    with BankLookup.open(path) as lookup:
        assert lookup.delta_size == 2
        statements = _traced(lookup._conn, lookup.table._connection())
        found = lookup.lookup(np.stack([bases[0], added]), 8)
        # the index's rows from the row table; of the delta, only the row hit, by its rowid
        assert [s for s in statements if "frame_hashes" in s] == ["SELECT rowid, entry_id, frame_number, timestamp_seconds "
                                                                  "FROM frame_hashes WHERE rowid IN (19,20)"]  # fmt: skip
    got = {(m["entry"], m["frame"]) for item in found for m in item["matches"]}
    assert got <= truth and ("late", 7) in got and ("e0", 0) in got

    state = BankState.open(path)
    statements = _traced(state.conn, state.lookup._conn, state.lookup.table._connection())
    hits = state.search(np.stack([added, bases[1]]), 0)
    assert [[(h["bank_content_id"], h["frame"], h["timestamp_seconds"]) for h in hit] for hit in hits] == [[("late", 7, 1.4)], [("e1", 0, 0.0)]]
    assert [s for s in statements if "frame_hashes" in s] == [s for s in statements if "WHERE rowid IN (20)" in s] and statements
    assert [s for s in statements if "FROM entries" in s] and all("source_type" in s for s in statements if "FROM entries" in s)

    bank = MappedBank.open(path)
    statements = _traced(bank._db())
    index = narrow_for_query(bank, _query(added), MatchSettings())
    assert "late" in index.entry_ids and not [s for s in statements if "frame_hashes" in s]
    assert len([s for s in statements if "FROM entries" in s]) == 1


def test_a_lookup_opens_reading_only_the_delta_rows_hashes_and_reads_the_rest_of_a_row_when_it_is_hit(tmp_path, monkeypatch):
    """200k rows imported after the index made ``BankLookup`` open in 0.74-1.04 s instead of 0.50-0.71 s: it read
    every delta row's entry, frame, time and quality. It reads their rowids and hashes (what a search needs); a hit's
    entry and frame are read by its rowid; a disabled entry's delta rows by one indexed query."""
    import vscan.bank.lookup as lookup_module
    from vscan.bank.append import append_to_bank
    from vscan.bank.updates import disable_entries

    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(8))
    prepare(path)
    late = [bases[0] ^ np.uint8(1 << k) for k in range(8)]
    (tmp_path / "late.txt").write_text("".join(f"{i},100,{h.tobytes().hex()},{i / 5:.3f}\n" for i, h in enumerate(late)))
    (tmp_path / "later.txt").write_text(f"0,100,{(bases[2] ^ np.uint8(3)).tobytes().hex()},0.000\n")
    append_to_bank(path, [tmp_path / "late.txt", tmp_path / "later.txt"])
    disable_entries(path, ["later"])
    statements: list[str] = []
    connect = lookup_module._connect

    def traced(bank_path):
        conn = connect(bank_path)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(lookup_module, "_connect", traced)
    with lookup_module.BankLookup.open(path) as lookup:
        read = [s for s in statements if "FROM frame_hashes" in s and "count(*)" not in s]
        assert lookup.delta_size == 9 and not [s for s in read if "frame_number" in s or "timestamp" in s], read
        found = lookup.lookup(np.stack([late[3], bases[2] ^ np.uint8(3)]), 0)
    assert [[(m["entry"], m["frame"]) for m in item["matches"]] for item in found] == [[("late", 3)], []]


def test_a_bank_loaded_into_memory_reads_its_rows_once_through_the_row_table_with_the_mapped_banks_answers(tmp_path):
    """``Bank.load_index`` (no index beside the bank) builds its BankIndex from the shared row table: the frame
    rows are read once (before: once for the enabled entries and again for the disabled ones), and it holds
    what a scan's memory-mapped bank narrows to for the same entries, disabled ones apart."""
    from vscan.bank.append import append_to_bank
    from vscan.bank.updates import disable_entries

    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(9))
    late = bases[1] ^ np.uint8(0x30)
    (tmp_path / "late.txt").write_text(f"3,100,{late.tobytes().hex()},0.300\n1,60,{(late ^ np.uint8(1)).tobytes().hex()}\n")
    append_to_bank(path, [tmp_path / "late.txt"])
    disable_entries(path, ["e1"])
    with Bank(path) as b:
        statements = _traced(b._conn)
        loaded = b.load_index()
    reads = [s for s in statements if "FROM frame_hashes" in s and "count(*)" not in s]
    assert len(reads) == 1, reads
    prepare(path)
    every = np.concatenate([bases, late[None]])  # a frame of each entry
    fh = FrameHashes(np.arange(4, dtype=np.int64), np.arange(4) * 1.0, np.full(4, 80, np.int32), every)
    query = FileQuery((QueryVersion("frames", fh, dihedral_variants(every)),), {})
    mapped = narrow_for_query(MappedBank.open(path), query, MatchSettings())
    for got, want in ((loaded, mapped), (loaded.disabled, mapped.disabled)):
        assert (got.entry_ids, got.labels, got.kinds) == (want.entry_ids, want.labels, want.kinds)
        for name in ("hashes", "entry_rows", "frame_numbers", "timestamps_seconds", "qualities", "durations_seconds"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert loaded.entry_ids == ["e0", "e2", "late"] and loaded.disabled.entry_ids == ["e1"]
    assert loaded.frame_numbers[-2:].tolist() == [1, 3] and loaded.qualities[-2:].tolist() == [60, 100]
    assert np.isnan(loaded.timestamps_seconds[-2]) and loaded.timestamps_seconds[-1] == 0.3


def test_an_index_folder_written_before_the_fold_is_rebuilt_or_refused_with_a_clear_message(tmp_path):
    """A ``BANK.vidx/scan`` of the previous layout (version 1, labels and kinds baked in) is not read:
    opening without building says what to run; ``prepare`` (what a scan's driver runs) rebuilds it."""
    import pytest

    from vscan.bank.lookup import BankLookup
    from vscan.errors import BankError

    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(7))
    prepare(path)
    info = index_path(path) / "scan" / "scan.json"
    old = {**json.loads(info.read_text()), "version": 1, "labels": ["label0", "label1", "label2"], "kinds": ["video"]}
    info.write_text(json.dumps(old))
    for opening in (lambda: MappedBank.open(path), lambda: BankLookup.open(path, build=False)):
        with pytest.raises(BankError, match="vscan bank compact"):
            opening()
    prepare(path)
    assert json.loads(info.read_text())["version"] == 2
    assert narrow_for_query(MappedBank.open(path), _query(bases[0]), MatchSettings()).labels == ["label0"]


def test_a_scans_bank_searches_again_what_it_forgot_when_its_kept_candidates_overflow(tmp_path, monkeypatch):
    """The candidates kept per query hash are dropped when too many: the hashes of the search that overflowed
    them, kept from an earlier search, are searched again (a KeyError ended the file's match before)."""
    import vscan.bank.mapped as mapped_module

    path = tmp_path / "b.bank"
    bases = _bank(path, np.random.default_rng(10))
    prepare(path)
    bank = MappedBank.open(path)
    monkeypatch.setattr(mapped_module, "_KEPT_HASHES", 2)
    assert bank.candidates(bases[:2], 8, 50).tolist() == [0, 1]
    assert bank.candidates(bases[[0, 2]], 8, 50).tolist() == [0, 2]  # b0 was kept; b2 overflows what is kept
    assert bank.candidates(bases[[1, 2]], 8, 50).tolist() == [1, 2]

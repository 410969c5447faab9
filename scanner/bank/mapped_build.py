"""A scan's bank arrays beside the persisted index: what matching needs besides the hashes.

``vscan.bank.lookup`` keeps a bank's frame hashes in ``<bank>.vidx/`` (a
memory-mapped ``SplitIndex``, rows in ``frame_hashes`` rowid order). A scan
also needs, for the rows it finds, their entry, frame number, timestamp and
quality, the entries' ids, and the bank's extra rows
(borders removed, centre crops, windows, rotations). ``ensure_scan_arrays``
writes them once into ``<bank>.vidx/scan/`` as plain ``.npy`` files, opened
memory-mapped by ``vscan.bank.mapped.MappedBank`` in every model actor::

    scan.json            version; the index it describes (its index.json); preps;
                         entry_max_rowid, extra_max_rowid (rows added later are read at open)
    row_entry int32 [N]   row_frame int64 [N]   row_time float64 [N] (NaN unknown)   row_quality uint8 [N]
    entry_id_bytes uint8 [B] + entry_id_offsets int64 [E+1]  (entries sorted by entry_id, as Bank.load_index)
    entry_row_offsets int64 [E+1] + entry_rows int64 [N]  (each entry's rows, by frame number)
    extra/  a SplitIndex over the extra rows, in (entry_id, frame_number, prep) order, so an
            entry's extra rows are the slice extra_offsets[e]:extra_offsets[e+1]
    extra_frame int64 [K]   extra_prep int16 [K]   extra_quality uint8 [K]   extra_offsets int64 [E+1]

About 25 bytes a frame row on top of the index's 136, and 13 an extra row
on top of its own index. The folder is rebuilt when the index was (it
lives inside it) or when ``scan.json`` names another index.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np

from vscan.bank.disk_index import SplitIndex
from vscan.bank.updates import has_table

__all__ = ["SCAN_VERSION", "scan_dir", "ensure_scan_arrays", "scan_arrays_fresh", "index_identity"]

#: 2: entry ids only (version 1 also held labels, kinds and durations, now read from the bank at match time).
SCAN_VERSION = 2
_PAGE = 1 << 16


def scan_dir(index: SplitIndex) -> Path:
    return Path(index.path) / "scan"


def index_identity(index: SplitIndex) -> dict:
    """What names one build of the index (``scan.json`` keeps it)."""
    return {k: index.meta.get(k) for k in ("version", "num_hashes", "max_rowid", "first_hash", "last_hash", "lineage", "generation")}


def scan_arrays_fresh(index: SplitIndex) -> bool:
    path = scan_dir(index) / "scan.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return info.get("version") == SCAN_VERSION and info.get("index") == index_identity(index)


def _codes(values: list, table: dict) -> list[int]:
    return [table.setdefault(v, len(table)) for v in values]


def _write_entries(conn: sqlite3.Connection, out: Path) -> tuple[np.ndarray, dict]:
    """Entry ids sorted by entry_id (ids only: their labels, kinds and durations are read from the
    bank at match time, ``vscan.bank.entry_table``); returns (entry index by entries rowid, scan.json fields)."""
    max_rowid = conn.execute("SELECT coalesce(max(rowid), 0) FROM entries").fetchone()[0]
    by_rowid = np.full(max_rowid + 1, -1, np.int32)
    ids, offsets = [], [0]
    cursor = conn.execute("SELECT rowid, entry_id FROM entries ORDER BY entry_id")
    n = 0
    while page := cursor.fetchmany(_PAGE):
        rowids, names = zip(*page)
        by_rowid[list(rowids)] = np.arange(n, n + len(page), dtype=np.int32)
        blob = [s.encode() for s in names]
        ids.append(b"".join(blob))
        offsets.extend((offsets[-1] + np.cumsum([len(b) for b in blob])).tolist())
        n += len(page)
    np.save(out / "entry_id_bytes.npy", np.frombuffer(b"".join(ids), np.uint8))
    np.save(out / "entry_id_offsets.npy", np.asarray(offsets, np.int64))
    return by_rowid, {"num_entries": n, "entry_max_rowid": int(max_rowid)}


def _write_rows(conn: sqlite3.Connection, out: Path, by_rowid: np.ndarray, index: SplitIndex, num_entries: int) -> None:
    n = len(index)
    max_rowid = int(index.meta.get("max_rowid", 0))
    entry = np.lib.format.open_memmap(out / "row_entry.npy", "w+", np.int32, (n,))
    frame = np.lib.format.open_memmap(out / "row_frame.npy", "w+", np.int64, (n,))
    times = np.lib.format.open_memmap(out / "row_time.npy", "w+", np.float64, (n,))
    quality = np.lib.format.open_memmap(out / "row_quality.npy", "w+", np.uint8, (n,))
    cursor = conn.execute("SELECT e.rowid, f.frame_number, f.timestamp_seconds, coalesce(f.quality, 100) FROM frame_hashes f "
                          "JOIN entries e ON e.entry_id = f.entry_id WHERE f.rowid <= ? ORDER BY f.rowid", (max_rowid,))  # fmt: skip
    i = 0
    while page := cursor.fetchmany(_PAGE):
        k = len(page)
        if i + k > n:
            raise ValueError("the bank holds more frame rows than its index: rebuild the index")
        cols = np.array(page, np.float64).reshape(k, 4)  # NULL timestamps read as NaN
        entry[i : i + k] = by_rowid[cols[:, 0].astype(np.int64)]
        frame[i : i + k] = cols[:, 1].astype(np.int64)
        times[i : i + k] = cols[:, 2]
        quality[i : i + k] = cols[:, 3].astype(np.uint8)
        i += k
    if i != n:
        raise ValueError(f"the index holds {n} rows, the bank {i} up to rowid {max_rowid}: rebuild the index")
    order = np.lexsort((frame, entry))  # each entry's rows by frame number
    np.save(out / "entry_rows.npy", order.astype(np.int64))
    offsets = np.zeros(num_entries + 1, np.int64)
    np.cumsum(np.bincount(entry, minlength=num_entries), out=offsets[1:])
    np.save(out / "entry_row_offsets.npy", offsets)
    for a in (entry, frame, times, quality):
        a.flush()


def _write_extra(conn: sqlite3.Connection, out: Path, by_rowid: np.ndarray, num_entries: int) -> dict:
    if not has_table(conn, "extra_hashes"):
        return {"extra_rows": 0, "extra_max_rowid": 0, "preps": []}
    max_rowid = conn.execute("SELECT coalesce(max(rowid), 0) FROM extra_hashes").fetchone()[0]
    n = conn.execute("SELECT count(*) FROM extra_hashes").fetchone()[0]
    entry, frame, prep, quality = (np.empty(n, t) for t in (np.int32, np.int64, np.int16, np.uint8))
    hashes = np.empty((n, 32), np.uint8)
    preps: dict = {}
    cursor = conn.execute("SELECT e.rowid, x.frame_number, x.prep, coalesce(x.quality, 100), x.hash FROM extra_hashes x "
                          "JOIN entries e ON e.entry_id = x.entry_id ORDER BY x.entry_id, x.frame_number, x.prep")  # fmt: skip
    i = 0
    while page := cursor.fetchmany(_PAGE):
        k = len(page)
        e, f, p, q, h = zip(*page)
        entry[i : i + k] = by_rowid[list(e)]
        frame[i : i + k], prep[i : i + k], quality[i : i + k] = f, _codes(list(p), preps), q
        hashes[i : i + k] = np.frombuffer(b"".join(h), np.uint8).reshape(k, 32)
        i += k
    SplitIndex.build(hashes[:i], out / "extra")
    for name, a in (("extra_frame", frame), ("extra_prep", prep), ("extra_quality", quality)):
        np.save(out / f"{name}.npy", a[:i])
    offsets = np.zeros(num_entries + 1, np.int64)
    np.cumsum(np.bincount(entry[:i], minlength=num_entries), out=offsets[1:])
    np.save(out / "extra_offsets.npy", offsets)
    return {"extra_rows": int(i), "extra_max_rowid": int(max_rowid), "preps": sorted(preps, key=preps.get)}


def ensure_scan_arrays(conn: sqlite3.Connection, index: SplitIndex) -> Path:
    """Writes ``<bank>.vidx/scan/`` for ``index`` unless it is there and fresh; returns the folder."""
    target = scan_dir(index)
    if scan_arrays_fresh(index):
        return target
    tmp = target.with_name(f".scan.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        by_rowid, info = _write_entries(conn, tmp)
        _write_rows(conn, tmp, by_rowid, index, info["num_entries"])
        info.update(_write_extra(conn, tmp, by_rowid, info["num_entries"]))
        (tmp / "scan.json").write_text(json.dumps({"version": SCAN_VERSION, "index": index_identity(index), **info}, sort_keys=True))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target

"""The one table of a bank's frame rows behind its index of row ids.

The index (``vscan.bank.disk_index.SplitIndex`` in ``<bank>.vidx/``, built by
``vscan.bank.lookup``) answers a search with index rows; this table says what
each row is: its ``frame_hashes`` rowid (``rowids.npy``), its entry (a number
into the entry ids sorted by id), frame number, time and quality
(``scan/row_*.npy``, written by ``vscan.bank.mapped_build``), all
memory-mapped. Rows the bank gained after the index was built (the delta) are
read from the bank at open, their rowids and hashes only (up to ``upto``: a
scan's snapshot): what a search needs. Their entries, frames, times and
qualities are read when asked for: the rows a lookup hit, by rowid, or all of
them at once for a scan's bank (``load_delta_columns``), which narrows by
them file after file. Entries hold nothing here but their ids: their labels,
kinds and durations are read from the bank when a match is made
(``vscan.bank.entry_table``). ``vscan bank lookup``, ``vscan serve`` and a
scan's memory-mapped bank (``vscan.bank.mapped``) all read rows from here.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import json
import sqlite3
import threading
from pathlib import Path

import numpy as np

from vscan.bank.disk_index import SplitIndex

__all__ = ["RowTable", "rows_after", "ROW_FILES"]

ROW_FILES = ("row_entry", "row_frame", "row_time", "row_quality", "entry_id_bytes", "entry_id_offsets", "entry_row_offsets", "entry_rows")
_PAGE = 1 << 16


@contextlib.contextmanager
def _bulk_read():
    """No cyclic garbage collection while rows are read in bulk: each page is ~65k tuples, which set off
    collections that walk every tracked object and free nothing (1M rows read in 7.2 s instead of 9.8 s)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def rows_after(conn: sqlite3.Connection, rowid: int, upto: int | None = None, *, fields: bool = True,
               columns_only: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:  # fmt: skip
    """(rowids int64, hashes uint8 [n, 32], columns) of the frame rows with ``rowid`` < rowid <= ``upto``
    (no upper bound without one), in rowid order, read in pages straight into arrays. ``columns`` (none
    without ``fields``): ``entry_id`` (a list), ``frame`` int64, ``time`` float64 (NaN: unknown), ``quality`` int64.
    ``columns_only``: the columns without the hashes (rowids and hashes come back empty)."""
    if columns_only:
        return _columns_after(conn, rowid, upto)
    upto = (1 << 62) if upto is None else int(upto)
    n = conn.execute("SELECT count(*) FROM frame_hashes WHERE rowid > ? AND rowid <= ?", (rowid, upto)).fetchone()[0]
    rowids, hashes = np.empty(n, np.int64), np.empty((n, 32), np.uint8)
    cols = {"entry_id": [], "frame": np.empty(n, np.int64), "time": np.empty(n, np.float64), "quality": np.empty(n, np.int64)} if fields else {}
    more = ", entry_id, frame_number, timestamp_seconds, coalesce(quality, 100)" if fields else ""
    cursor = conn.execute(f"SELECT rowid, hash{more} FROM frame_hashes WHERE rowid > ? AND rowid <= ? ORDER BY rowid", (rowid, upto))
    with _bulk_read():
        i = _fill(cursor, rowids, hashes, cols, fields)
    return rowids[:i], hashes[:i], {k: v[:i] for k, v in cols.items()}


def _fill(cursor: sqlite3.Cursor, rowids: np.ndarray, hashes: np.ndarray, cols: dict, fields: bool) -> int:
    """Pages of ``cursor`` into the arrays; returns the rows read."""
    i = 0
    while rows := cursor.fetchmany(_PAGE):
        k = len(rows)
        ids, blobs, *rest = zip(*rows)
        rowids[i : i + k] = ids
        hashes[i : i + k] = np.frombuffer(b"".join(blobs), np.uint8).reshape(k, 32)
        if fields:
            cols["entry_id"] += rest[0]
            cols["frame"][i : i + k] = rest[1]
            cols["time"][i : i + k] = np.array(rest[2], np.float64)  # NULL reads as NaN
            cols["quality"][i : i + k] = rest[3]
        i += k
    return i


def _columns_after(conn: sqlite3.Connection, rowid: int, upto: int | None) -> tuple[np.ndarray, np.ndarray, dict]:
    upto = (1 << 62) if upto is None else int(upto)
    sql = "SELECT entry_id, frame_number, timestamp_seconds, coalesce(quality, 100) FROM frame_hashes WHERE rowid > ? AND rowid <= ? ORDER BY rowid"
    entry_ids, frames, times, quals = [], [], [], []
    cursor = conn.execute(sql, (rowid, upto))
    with _bulk_read():
        while rows := cursor.fetchmany(_PAGE):
            e, f, t, q = zip(*rows)
            entry_ids += e
            frames.append(np.asarray(f, np.int64))
            times.append(np.array(t, np.float64))  # NULL reads as NaN
            quals.append(np.asarray(q, np.int64))
    cols = {"entry_id": entry_ids, **{k: np.concatenate(v) if v else np.zeros(0, dt) for k, v, dt in
                                      (("frame", frames, np.int64), ("time", times, np.float64), ("quality", quals, np.int64))}}  # fmt: skip
    return np.zeros(0, np.int64), np.zeros((0, 32), np.uint8), cols


class _EntryIds:
    """The sorted entry ids in ``entry_id_bytes``, as a sequence (bisect works on it)."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        # plain ndarray views of the memory maps: np.memmap's __getitem__ costs ~10 us a call (bisect makes many)
        self.blob, self.offsets = blob.view(np.ndarray), offsets.view(np.ndarray)

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    def __getitem__(self, i: int) -> bytes:
        return bytes(self.blob[int(self.offsets[i]) : int(self.offsets[i + 1])])


class RowTable:
    """A bank's frame rows (module docstring): index row ``i`` is ``rowids[i]``, of entry ``a["row_entry"][i]``;
    delta row ``j`` is ``delta_rowids[j]``, of entry ``delta_entry[j]``. Entries the sorted ids lack
    (added since the index was built) are numbered on from ``num_entries`` as they are met."""

    def __init__(self, index: SplitIndex | None, conn: sqlite3.Connection, *, upto: int | None = None):
        """``index`` None: a bank without one (``Bank.load_index``): every row is of the delta, read whole at once."""
        self.index = index
        if index is None:
            self.rowids, self.info, self.num_entries = np.zeros(0, np.int64), {}, 0
            self.a = {name: np.zeros(0, np.uint8 if name == "entry_id_bytes" else np.int64) for name in ROW_FILES}
            self.a["entry_id_offsets"] = np.zeros(1, np.int64)
        else:
            folder = Path(index.path)
            self.rowids = np.load(folder / "rowids.npy", mmap_mode="r")
            self.info = json.loads((folder / "scan" / "scan.json").read_text())
            self.a = {name: np.load(folder / "scan" / f"{name}.npy", mmap_mode="r") for name in ROW_FILES}
            self.num_entries = int(self.info["num_entries"])
        self._ids = _EntryIds(self.a["entry_id_bytes"], self.a["entry_id_offsets"])
        self.new_entries: list[str] = []  # ids of the entries the sorted ids lack
        self._new_index: dict[str, int] = {}
        self.max_rowid, self.upto = int(index.meta.get("max_rowid", 0)) if index is not None else 0, upto
        self.delta_rowids, self.delta_hashes, cols = rows_after(conn, self.max_rowid, upto, fields=index is None)
        self._cols: dict | None = None  # the delta's columns, once read (load_delta_columns)
        if index is None:
            self._number(cols)
        self._bank_file = next(r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main")
        self._own: sqlite3.Connection | None = None  # for reads after open, from any thread (a service's requests)
        self._lock = threading.Lock()

    def load_delta_columns(self, conn: sqlite3.Connection | None = None) -> None:
        """Reads the delta's entries, frames, times and qualities (all of them, once; through ``conn``
        where given, else this table's own connection), numbering the entries the sorted ids lack."""
        with self._lock:
            if self._cols is not None:
                return
            self._number(rows_after(conn or self._connection(), self.max_rowid, self.upto, columns_only=True)[2])

    def _number(self, cols: dict) -> None:
        number = {i: self.entry_of(i) for i in dict.fromkeys(cols["entry_id"])}  # once an entry, in rowid order
        cols["entry"] = np.asarray([number[i] for i in cols["entry_id"]], np.int64)
        self._cols = cols

    def _connection(self) -> sqlite3.Connection:
        """This table's own read-only connection to the bank (the caller holds ``_lock``)."""
        if self._own is None:
            self._own = sqlite3.connect(f"file:{self._bank_file}?mode=ro", uri=True, check_same_thread=False)
        return self._own

    def _column(self, name: str) -> np.ndarray:
        self.load_delta_columns()
        return self._cols[name]

    @property
    def delta_entry(self) -> np.ndarray:
        return self._column("entry")

    @property
    def delta_frame(self) -> np.ndarray:
        return self._column("frame")

    @property
    def delta_time(self) -> np.ndarray:
        return self._column("time")

    @property
    def delta_quality(self) -> np.ndarray:
        return self._column("quality")

    def delta_rows_of(self, entry_ids: list[str], conn: sqlite3.Connection) -> np.ndarray:
        """Positions in the delta of the rows of entries ``entry_ids`` (one indexed query when the columns were not read)."""
        if not self.delta_rows or not entry_ids:
            return np.zeros(0, np.int64)
        if self._cols is not None:
            numbers = [e for e in (self.entry_of(i, add=False) for i in entry_ids) if e is not None]
            return np.flatnonzero(np.isin(self._cols["entry"], numbers))
        found = []
        for i in range(0, len(entry_ids), 900):
            chunk = entry_ids[i : i + 900]
            sql = f"SELECT rowid FROM frame_hashes WHERE rowid > ? AND rowid <= ? AND entry_id IN ({','.join('?' * len(chunk))})"
            found += [r for (r,) in conn.execute(sql, (self.max_rowid, int(self.delta_rowids[-1]), *chunk))]
        return np.searchsorted(self.delta_rowids, np.asarray(sorted(found), np.int64))

    def _delta_where(self, rowids: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(entry ids, frame numbers, times) of delta rows ``rowids`` (sorted): from the columns when read,
        else just these rows, by rowid."""
        if self._cols is not None or not rowids.size:
            d = np.searchsorted(self.delta_rowids, rowids)
            return [self.entry_id(int(e)) for e in self.delta_entry[d]], self.delta_frame[d], self.delta_time[d]
        got: dict[int, tuple] = {}
        with self._lock:
            conn = self._connection()
            for i in range(0, rowids.size, 900):
                chunk = rowids[i : i + 900].tolist()
                sql = f"SELECT rowid, entry_id, frame_number, timestamp_seconds FROM frame_hashes WHERE rowid IN ({','.join('?' * len(chunk))})"
                got.update({r[0]: r[1:] for r in conn.execute(sql, chunk)})
        rows = [got[r] for r in rowids.tolist()]
        return [r[0] for r in rows], np.asarray([r[1] for r in rows], np.int64), np.asarray([r[2] for r in rows], np.float64)

    def close(self) -> None:
        with self._lock:
            if self._own is not None:
                self._own.close()
                self._own = None

    @property
    def delta_rows(self) -> int:
        return int(self.delta_rowids.size)

    def entry_of(self, entry_id: str, *, add: bool = True) -> int | None:
        """The number of entry ``entry_id`` (``add``: numbered on when the sorted ids lack it, else None)."""
        key = entry_id.encode()
        i = bisect.bisect_left(self._ids, key)
        if i < len(self._ids) and self._ids[i] == key:
            return i
        if entry_id in self._new_index:
            return self.num_entries + self._new_index[entry_id]
        if not add:
            return None
        self._new_index[entry_id] = len(self.new_entries)
        self.new_entries.append(entry_id)
        return self.num_entries + self._new_index[entry_id]

    def entry_id(self, e: int) -> str:
        return self._ids[e].decode() if e < self.num_entries else self.new_entries[e - self.num_entries]

    def where(self, rowids: np.ndarray) -> dict[int, tuple[str, int, float | None]]:
        """frame_hashes rowid -> (entry id, frame number, time or None) for rows of the index or the delta."""
        rowids = np.unique(np.asarray(rowids, np.int64))
        main = rowids <= self.max_rowid
        pos = np.searchsorted(self.rowids, rowids[main])  # the index holds every row up to max_rowid, in rowid order
        entries = np.asarray(self.a["row_entry"][pos], np.int64)
        ids = {e: self.entry_id(e) for e in set(entries.tolist())}
        d_ids, d_frames, d_times = self._delta_where(rowids[~main])
        names = [ids[e] for e in entries.tolist()] + d_ids
        frames = np.concatenate([np.asarray(self.a["row_frame"][pos]), d_frames]).tolist()
        times = np.concatenate([np.asarray(self.a["row_time"][pos]), d_times]).tolist()
        order = np.concatenate([rowids[main], rowids[~main]])
        return {r: (e, f, None if t != t else t) for r, e, f, t in zip(order.tolist(), names, frames, times)}

    def index_rows_of(self, e: int) -> np.ndarray:
        """The index rows of entry ``e``, by frame number (none for an entry added since the index was built)."""
        if e >= self.num_entries:
            return np.zeros(0, np.int64)
        lo, hi = self.a["entry_row_offsets"][e : e + 2]
        return np.asarray(self.a["entry_rows"][lo:hi])

    def rows_of(self, e: int) -> tuple[np.ndarray, ...]:
        """(hashes, frame numbers, timestamps, qualities) of entry ``e``'s frames, by frame number."""
        parts = []
        if e < self.num_entries:
            rows = self.index_rows_of(e)
            parts.append((np.asarray(self.index.hashes[rows]), self.a["row_frame"][rows], self.a["row_time"][rows],
                          self.a["row_quality"][rows].astype(np.int32)))  # fmt: skip
        if self.delta_rows:
            d = np.flatnonzero(self.delta_entry == e)
            if d.size:
                parts.append((self.delta_hashes[d], self.delta_frame[d], self.delta_time[d], self.delta_quality[d].astype(np.int32)))
        if not parts:
            return np.zeros((0, 32), np.uint8), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int32)
        h, f, t, qu = (np.concatenate(c) for c in zip(*parts))
        order = np.argsort(f, kind="stable")
        return h[order], f[order], t[order], qu[order]

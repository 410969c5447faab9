"""The one table of a bank's frame rows behind its index of row ids.

The index (``vscan.bank.disk_index.SplitIndex`` in ``<bank>.vidx/``, built by
``vscan.bank.lookup``) answers a search with index rows; this table says what
each row is: its ``frame_hashes`` rowid (``rowids.npy``), its entry (a number
into the entry ids sorted by id), frame number, time and quality
(``scan/row_*.npy``, written by ``vscan.bank.mapped_build``), all
memory-mapped. Rows the bank gained after the index was built (the delta) are
read from the bank once, at open, into the same columns (up to ``upto``: a
scan's snapshot). Entries hold nothing here but their ids: their labels,
kinds and durations are read from the bank when a match is made
(``vscan.bank.entry_table``). ``vscan bank lookup``, ``vscan serve`` and a
scan's memory-mapped bank (``vscan.bank.mapped``) all read rows from here.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
from pathlib import Path

import numpy as np

from vscan.bank.disk_index import SplitIndex

__all__ = ["RowTable", "rows_after", "ROW_FILES"]

ROW_FILES = ("row_entry", "row_frame", "row_time", "row_quality", "entry_id_bytes", "entry_id_offsets", "entry_row_offsets", "entry_rows")
_PAGE = 1 << 16


def rows_after(conn: sqlite3.Connection, rowid: int, upto: int | None = None, *, fields: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """(rowids int64, hashes uint8 [n, 32], columns) of the frame rows with ``rowid`` < rowid <= ``upto``
    (no upper bound without one), in rowid order, read in pages straight into arrays. ``columns`` (none
    without ``fields``): ``entry_id`` (a list), ``frame`` int64, ``time`` float64 (NaN: unknown), ``quality`` int64."""
    upto = (1 << 62) if upto is None else int(upto)
    n = conn.execute("SELECT count(*) FROM frame_hashes WHERE rowid > ? AND rowid <= ?", (rowid, upto)).fetchone()[0]
    rowids, hashes = np.empty(n, np.int64), np.empty((n, 32), np.uint8)
    cols = {"entry_id": [], "frame": np.empty(n, np.int64), "time": np.empty(n, np.float64), "quality": np.empty(n, np.int64)} if fields else {}
    more = ", entry_id, frame_number, timestamp_seconds, coalesce(quality, 100)" if fields else ""
    cursor = conn.execute(f"SELECT rowid, hash{more} FROM frame_hashes WHERE rowid > ? AND rowid <= ? ORDER BY rowid", (rowid, upto))
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
    return rowids[:i], hashes[:i], {k: v[:i] for k, v in cols.items()}


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

    def __init__(self, index: SplitIndex, conn: sqlite3.Connection, *, upto: int | None = None):
        folder = Path(index.path)
        self.index = index
        self.rowids = np.load(folder / "rowids.npy", mmap_mode="r")
        self.info = json.loads((folder / "scan" / "scan.json").read_text())
        self.a = {name: np.load(folder / "scan" / f"{name}.npy", mmap_mode="r") for name in ROW_FILES}
        self.num_entries = int(self.info["num_entries"])
        self._ids = _EntryIds(self.a["entry_id_bytes"], self.a["entry_id_offsets"])
        self.new_entries: list[str] = []  # ids of the entries the sorted ids lack
        self._new_index: dict[str, int] = {}
        self.delta_rowids, self.delta_hashes, cols = rows_after(conn, int(index.meta.get("max_rowid", 0)), upto)
        number = {i: self.entry_of(i) for i in dict.fromkeys(cols["entry_id"])}  # once an entry, in rowid order
        self.delta_entry = np.asarray([number[i] for i in cols["entry_id"]], np.int64)
        self.delta_frame, self.delta_time, self.delta_quality = cols["frame"], cols["time"], cols["quality"]

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
        main = rowids <= int(self.index.meta.get("max_rowid", 0))
        pos = np.searchsorted(self.rowids, rowids[main])  # the index holds every row up to max_rowid, in rowid order
        entries = np.asarray(self.a["row_entry"][pos], np.int64)
        frames, times = np.asarray(self.a["row_frame"][pos]), np.asarray(self.a["row_time"][pos])
        d = np.searchsorted(self.delta_rowids, rowids[~main])
        entries = np.concatenate([entries, self.delta_entry[d]])
        frames, times = np.concatenate([frames, self.delta_frame[d]]), np.concatenate([times, self.delta_time[d]])
        ids = {e: self.entry_id(e) for e in set(entries.tolist())}
        order = np.concatenate([rowids[main], rowids[~main]])
        return {r: (ids[e], f, None if t != t else t) for r, e, f, t in zip(order.tolist(), entries.tolist(), frames.tolist(), times.tolist())}

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

"""The one reader of a bank's entry metadata: read from the bank itself when a match is made.

The index (``vscan.bank.lookup``) and the row table beside it hold rows and the ids of
their entries only, as HMA's index holds content ids: labels, kinds, durations and
sources are never copied into arrays, so whatever the bank says now is what every read
path (a scan's memory-mapped bank, a bank loaded into memory, ``vscan bank lookup``,
``vscan serve``) reports, and there is one place that reads them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Iterable, NamedTuple

import numpy as np

__all__ = ["EntryFields", "entry_fields", "all_entry_fields", "MEDIA_SOURCES", "list_rows_per_second", "EntryGeometry",
           "has_geometry", "entry_geometries", "picture_sizes", "geometry_array", "geometry_of_row", "NO_GEOMETRY", "KeptGeometry"]

_COLUMNS = "entry_id, label, kind, duration_seconds, source_type, source_ref, num_frames"
#: Ids per query: under SQLite's default limit of 999 bound parameters.
_CHUNK = 900
#: ``source_type`` of entries whose rows vscan hashed from media (``api``: rows handed in by code, origin unknown).
MEDIA_SOURCES = ("media", "api")


@dataclass(frozen=True)
class EntryFields:
    """One row of ``entries`` (``vscan.bank.schema``): what a match reports of its entry."""

    entry_id: str
    label: str | None
    kind: str
    duration_seconds: float | None
    source_type: str | None
    source_ref: str | None
    num_frames: int | None


def entry_fields(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, EntryFields]:
    """entry_id -> its fields, as the bank holds them now (ids it lacks are left out)."""
    wanted = list(dict.fromkeys(ids))
    out: dict[str, EntryFields] = {}
    for i in range(0, len(wanted), _CHUNK):
        chunk = wanted[i : i + _CHUNK]
        sql = f"SELECT {_COLUMNS} FROM entries WHERE entry_id IN ({','.join('?' * len(chunk))})"
        out.update({r[0]: EntryFields(*r) for r in conn.execute(sql, chunk)})
    return out


def all_entry_fields(conn: sqlite3.Connection) -> list[EntryFields]:
    """Every entry's fields, sorted by entry_id (SQLite's binary order: the order of the ids' UTF-8 bytes)."""
    return [EntryFields(*r) for r in conn.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY entry_id")]


def list_rows_per_second(conn: sqlite3.Connection) -> float | None:
    """For a bank whose entries with frame hashes all came from hash lists (no ``MEDIA_SOURCES`` entry): its frame
    rows per second of its timed entries (0.0 when none has a duration: PDQ lists); None for a bank with any media
    entry or none with frame hashes.

    A media entry is looked for first, one row at most (``LIMIT 1``): a media bank is answered from its first
    entries, not by reading the whole table (the entries table has no index on ``source_type``); only a bank
    without one is read through, once, for the list rows' count and sums."""
    marks = ",".join("?" * len(MEDIA_SOURCES))
    media = f"SELECT 1 FROM entries WHERE kind != 'file_digest' AND source_type IN ({marks}) LIMIT 1"
    if conn.execute(media, MEDIA_SOURCES).fetchone() is not None:
        return None
    timed = ("SELECT COUNT(*), SUM(CASE WHEN duration_seconds > 0 THEN num_frames END), "
             "SUM(CASE WHEN duration_seconds > 0 THEN duration_seconds END) FROM entries WHERE kind != 'file_digest'")  # fmt: skip
    listed, rows, seconds = conn.execute(timed).fetchone()
    if not listed:
        return None
    return float(rows) / float(seconds) if rows and seconds else 0.0


class EntryGeometry(NamedTuple):
    """A media entry's decoded frame size (px, as displayed: ``VideoMetadata.width``/``height``, the scan's
    ``source_size``) and the box of its picture inside its bars in those pixels: (x0, y0, x1, y1), x0 and y0
    inclusive, x1 and y1 exclusive; a frame without bars has the whole frame (0, 0, width, height).
    ``width, height, box = geometry``; table ``entry_geometry`` (``vscan.bank.schema``)."""

    width: int
    height: int
    box: tuple[int, int, int, int]

    @property
    def box_shares(self) -> tuple[float, float]:
        """(width, height) of the box as shares of the frame's."""
        x0, y0, x1, y1 = self.box
        return (x1 - x0) / self.width, (y1 - y0) / self.height


#: ``geometry_array``'s row for an entry without geometry (a hash list's, or a bank's built before it was kept).
NO_GEOMETRY = (-1, -1, -1, -1, -1, -1)


def has_geometry(conn: sqlite3.Connection) -> bool:
    """Whether the bank has the optional ``entry_geometry`` table (banks built before it was kept have none)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entry_geometry'").fetchone() is not None


def entry_geometries(conn: sqlite3.Connection, ids: "Iterable[str] | None" = None) -> dict[str, EntryGeometry]:
    """entry_id -> its geometry, for the entries that have one (none in a bank without the table); ``ids`` None:
    every entry's. The one reader of table ``entry_geometry``'s rows (``picture_sizes`` reads its sizes)."""
    if not has_geometry(conn):
        return {}
    sql = "SELECT entry_id, width, height, x0, y0, x1, y1 FROM entry_geometry"
    if ids is None:
        return {r[0]: EntryGeometry(r[1], r[2], (r[3], r[4], r[5], r[6])) for r in conn.execute(sql + " ORDER BY entry_id")}
    wanted = list(dict.fromkeys(ids))
    out: dict[str, EntryGeometry] = {}
    for i in range(0, len(wanted), _CHUNK):
        chunk = wanted[i : i + _CHUNK]
        rows = conn.execute(f"{sql} WHERE entry_id IN ({','.join('?' * len(chunk))})", chunk)
        out.update({r[0]: EntryGeometry(r[1], r[2], (r[3], r[4], r[5], r[6])) for r in rows})
    return out


def _sizes_of_array(geometry, limit: int | None) -> tuple[tuple[int, int], ...]:
    if geometry is None or not len(geometry):
        return ()
    g = np.asarray(geometry)
    g = g[(g[:, 0] > 0) & (g[:, 4] > g[:, 2]) & (g[:, 5] > g[:, 3])]
    if not len(g):
        return ()
    sizes, counts = np.unique(np.stack([g[:, 4] - g[:, 2], g[:, 5] - g[:, 3]], axis=1), axis=0, return_counts=True)
    order = np.lexsort((sizes[:, 1], sizes[:, 0], -counts))[:limit]
    return tuple((int(sizes[i, 0]), int(sizes[i, 1])) for i in order)


def _sizes_of_table(conn: sqlite3.Connection, limit: int | None) -> tuple[tuple[int, int], ...]:
    if not has_geometry(conn):
        return ()
    sql = ("SELECT x1 - x0 AS w, y1 - y0 AS h, COUNT(*) AS n FROM entry_geometry WHERE x1 > x0 AND y1 > y0 "
           "GROUP BY w, h ORDER BY n DESC, w, h LIMIT ?")  # fmt: skip
    return tuple((int(w), int(h)) for w, h, _ in conn.execute(sql, (-1 if limit is None else int(limit),)))


def picture_sizes(source, limit: int | None = None) -> tuple[tuple[int, int], ...]:
    """(w, h) px of the pictures inside their bars (``EntryGeometry.box``; a frame without bars: its whole size) of
    the entries of ``source``, those most entries share first (then by w, h), at most ``limit``; () when none has a
    geometry (hash lists, banks built before it was kept). ``source``: an open bank connection, ``vscan.bank.store.Bank``,
    an in-memory ``BankIndex`` (its entries: a narrowed or enabled-only index counts only those; from its
    ``geometry`` array, kept in its ``cache``) or a scan's ``MappedBank`` (anything with a ``bank_path``: every
    entry of the bank file, one grouped read, kept on the object). The one reader of the sizes every caller uses."""
    if isinstance(source, sqlite3.Connection):
        return _sizes_of_table(source, limit)
    if isinstance(getattr(source, "_conn", None), sqlite3.Connection) and getattr(source, "bank_path", None) is None:
        return _sizes_of_table(source._conn, limit)  # a Bank, open
    key = f"entry_table.pictures.{limit}"
    path = getattr(source, "bank_path", None)
    kept = getattr(source, "cache", None) if path is None else source.__dict__.setdefault("_entry_pictures", {})
    if kept is None:
        return _sizes_of_array(getattr(source, "geometry", None), limit)
    if key not in kept:
        if path is None:
            kept[key] = _sizes_of_array(getattr(source, "geometry", None), limit)
        else:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                kept[key] = _sizes_of_table(conn, limit)
            finally:
                conn.close()
    return kept[key]


def geometry_array(geometries: "Iterable[EntryGeometry | None]") -> np.ndarray:
    """int32 [E, 6]: (width, height, x0, y0, x1, y1) per entry, ``NO_GEOMETRY`` (-1s) for None."""
    rows = [NO_GEOMETRY if g is None else (g.width, g.height, *g.box) for g in geometries]
    return np.asarray(rows, np.int32).reshape(len(rows), 6)


def geometry_of_row(row) -> EntryGeometry | None:
    """The EntryGeometry of one ``geometry_array`` row (None for ``NO_GEOMETRY``)."""
    w, h, x0, y0, x1, y1 = (int(v) for v in row)
    return None if w <= 0 else EntryGeometry(w, h, (x0, y0, x1, y1))


class KeptGeometry:
    """Entries' geometry read from a bank once per entry and kept (an entry's row never changes while it is in the
    bank): ``MappedBank``'s, for each index it narrows to."""

    def __init__(self) -> None:
        self._kept: dict[str, EntryGeometry | None] = {}
        self._has_table: bool | None = None

    def read(self, conn: sqlite3.Connection, ids: list[str]) -> dict[str, EntryGeometry | None]:
        """entry id -> its geometry (None: it has none), in the order of ``ids``."""
        if self._has_table is None:
            self._has_table = has_geometry(conn)
        if not self._has_table:
            return dict.fromkeys(ids)
        if todo := [i for i in ids if i not in self._kept]:
            found = entry_geometries(conn, todo)
            self._kept.update({i: found.get(i) for i in todo})
        return {i: self._kept[i] for i in ids}

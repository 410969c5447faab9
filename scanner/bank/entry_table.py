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
from typing import Iterable

__all__ = ["EntryFields", "entry_fields", "all_entry_fields"]

_COLUMNS = "entry_id, label, kind, duration_seconds, source_type, source_ref, num_frames"
#: Ids per query: under SQLite's default limit of 999 bound parameters.
_CHUNK = 900


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

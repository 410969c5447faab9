"""A bank's content checksum: over every row in key order (independent of
SQLite's file layout), computed once when a bank is written and kept in
``meta.content_digest``; every later change (an appended import, a disabled
or enabled entry: ``vscan.bank.updates``) replaces it with sha256(previous +
the change), so reading it costs one row, whatever the bank's size.
"""

from __future__ import annotations

import hashlib
import sqlite3

from vscan.bank.schema import TABLE_ORDER

__all__ = ["full_content_sha256", "stored_content_digest"]


def _rows(conn: sqlite3.Connection, table: str):
    return conn.execute(f"SELECT * FROM {table} ORDER BY {TABLE_ORDER[table]}")


def full_content_sha256(conn: sqlite3.Connection) -> str:
    """sha256 over every row of entries, frame_hashes, file_digests (and
    extra_hashes, entry_geometry when the bank has any), in key order."""
    content = hashlib.sha256()
    for table in ("entries", "frame_hashes", "file_digests"):
        content.update(table.encode())
        for row in _rows(conn, table):
            content.update(repr(row).encode())
    for table in ("extra_hashes", "entry_geometry"):  # optional tables, added later in v1
        has = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
        if has and conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
            content.update(table.encode())  # banks without such rows keep the checksum they always had
            for row in _rows(conn, table):
                content.update(repr(row).encode())
    return content.hexdigest()


def stored_content_digest(conn: sqlite3.Connection) -> str:
    """``meta.content_digest``, or the full checksum for a bank written before it was kept."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'content_digest'").fetchone()
    return row[0] if row else full_content_sha256(conn)

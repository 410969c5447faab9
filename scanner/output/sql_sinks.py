"""Database sinks: SQLite (WAL, synchronous=FULL) and PostgreSQL (psycopg 3), one commit per record.

Records go to table ``vscan_records`` (the full record as JSON plus a few
columns to query), run manifests to ``vscan_runs``; both are created if missing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vscan.output.sink_base import Sink, SinkError, _columns, to_json_line

__all__ = ["PostgresSink", "SqliteSink"]

_SQL_RECORDS = """CREATE TABLE IF NOT EXISTS vscan_records (
    seq {serial} PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT, status TEXT NOT NULL,
    error_type TEXT, risk DOUBLE PRECISION, record {json} NOT NULL)"""
_SQL_RUNS = "CREATE TABLE IF NOT EXISTS vscan_runs (run_id TEXT PRIMARY KEY, manifest {json} NOT NULL)"


class SqliteSink(Sink):
    """Records in table ``vscan_records``, run manifests in ``vscan_runs``."""

    def __init__(self, path: str | os.PathLike) -> None:
        import sqlite3

        self.path = Path(path)
        self.target = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SQL_RECORDS.format(serial="INTEGER", json="TEXT"))
            self._db.execute(_SQL_RUNS.format(json="TEXT"))
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: cannot open as a SQLite sink: {exc}") from exc

    def write(self, record: dict[str, Any]) -> None:
        with self._db:  # autocommit off inside: one transaction, committed here
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO vscan_records (path, sha256, status, error_type, risk, record) VALUES (?, ?, ?, ?, ?, ?)",
                _columns(record),
            )

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(r) for (r,) in self._db.execute("SELECT record FROM vscan_records ORDER BY seq")]

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO vscan_runs (run_id, manifest) VALUES (?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET manifest = excluded.manifest",
                (manifest["run_id"], to_json_line(manifest)),
            )

    def manifests(self) -> list[dict[str, Any]]:
        return [json.loads(m) for (m,) in self._db.execute("SELECT manifest FROM vscan_runs ORDER BY rowid")]

    def close(self) -> None:
        self._db.close()


class PostgresSink(Sink):
    """Records in table ``vscan_records`` (created if missing), manifests in
    ``vscan_runs``; one commit per record (synchronous_commit as the server sets it)."""

    def __init__(self, dsn: str) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise SinkError("PostgreSQL sinks need psycopg 3: pip install 'psycopg[binary]'") from exc
        self.target = _redact(dsn)
        try:
            self._db = psycopg.connect(dsn, autocommit=False)
            with self._db.transaction():
                # Two scans may start together: serialise the CREATE TABLEs.
                self._db.execute("SELECT pg_advisory_xact_lock(7315506)")
                self._db.execute(_SQL_RECORDS.format(serial="BIGSERIAL", json="JSONB"))
                self._db.execute(_SQL_RUNS.format(json="JSONB"))
            self._db.commit()
        except psycopg.Error as exc:
            raise SinkError(f"{self.target}: cannot open as a PostgreSQL sink: {exc}") from exc

    def write(self, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO vscan_records (path, sha256, status, error_type, risk, record) VALUES (%s, %s, %s, %s, %s, %s)",
            _columns(record),
        )
        self._db.commit()

    def records(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT record::text FROM vscan_records ORDER BY seq").fetchall()
        self._db.commit()
        return [json.loads(r) for (r,) in rows]

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO vscan_runs (run_id, manifest) VALUES (%s, %s) "
            "ON CONFLICT (run_id) DO UPDATE SET manifest = excluded.manifest",
            (manifest["run_id"], to_json_line(manifest)),
        )
        self._db.commit()

    def manifests(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT manifest::text FROM vscan_runs ORDER BY manifest->>'started'").fetchall()
        self._db.commit()
        return [json.loads(m) for (m,) in rows]

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()


def _redact(dsn: str) -> str:
    """The DSN without its password, for messages and manifests."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))

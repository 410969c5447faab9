"""Database sinks: SQLite (WAL, synchronous=FULL) and PostgreSQL (psycopg 3),
one commit per ``write`` / ``write_many``.

Records go to table ``vscan_records`` (the full record as JSON plus a few
columns to query), run manifests to ``vscan_runs``; both are created if missing.

PostgreSQL outlives its server: when the connection is lost (a restart, a
failover, a dropped network) the sink reconnects with exponential backoff,
for up to ``reconnect_seconds``, and sends again what was not acknowledged.
Each record carries a unique ``uid`` (a column, not part of the record) and
is inserted with ``ON CONFLICT (uid) DO NOTHING``, so a commit whose
acknowledgement was lost is never stored twice. Resume reads
``path``/``status``/``error_type`` and the record's ``versions`` by keyset
pages of ``seq``: bounded memory, and a page lost with the connection is
simply read again.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from vscan.output.sink_base import ResumeRow, Sink, SinkError, _columns, busy_message, lock_output, to_json_line, unlock_output

#: pg_try_advisory_lock key a writing scan holds for its session: one scan per database.
_PG_SCAN_LOCK = 7315507

__all__ = ["PostgresSink", "SqliteSink"]

_SQL_RECORDS = """CREATE TABLE IF NOT EXISTS vscan_records (
    seq {serial} PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT, status TEXT NOT NULL,
    error_type TEXT, risk DOUBLE PRECISION, record {json} NOT NULL)"""
_SQL_RUNS = "CREATE TABLE IF NOT EXISTS vscan_runs (run_id TEXT PRIMARY KEY, manifest {json} NOT NULL)"
_PAGE = 10_000  # rows per resume page


def _rows(page: Callable[[int], list[tuple]]) -> Iterator[ResumeRow]:
    """Keyset pages ``(seq, path, versions json, status, error_type, path_bytes, error kind)`` as ResumeRows."""
    after = 0
    while True:
        rows = page(after)
        for _, path, versions, status, error_type, path_bytes, kind in rows:
            yield ResumeRow(path, json.loads(versions) if versions is not None else None, status, error_type, path_bytes, kind)
        if len(rows) < _PAGE:
            return
        after = rows[-1][0]


class SqliteSink(Sink):
    """Records in table ``vscan_records``, run manifests in ``vscan_runs``."""

    def __init__(self, path: str | os.PathLike) -> None:
        import sqlite3

        self.path = Path(path)
        self.target = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = lock_output(self.path, self.target)
        try:
            # A path, never a URI: a '#' or '?' in a case folder names no other file.
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SQL_RECORDS.format(serial="INTEGER", json="TEXT"))
            self._db.execute(_SQL_RUNS.format(json="TEXT"))
        except sqlite3.Error as exc:
            unlock_output(self._lock)
            raise SinkError(f"{self.path}: cannot open as a SQLite sink: {exc}") from exc

    def write(self, record: dict[str, Any]) -> None:
        self.write_many([record])

    def write_many(self, records: list[dict[str, Any]]) -> None:
        with self._db:  # autocommit off inside: one transaction, committed here
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO vscan_records (path, sha256, status, error_type, risk, record) VALUES (?, ?, ?, ?, ?, ?)",
                [_columns(r) for r in records],
            )

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(r) for (r,) in self._db.execute("SELECT record FROM vscan_records ORDER BY seq")]

    def resume_rows(self) -> Iterator[ResumeRow]:
        return _rows(lambda after: self._db.execute(
            "SELECT seq, path, json_extract(record, '$.versions'), status, error_type, json_extract(record, '$.path_bytes'), "
            "json_extract(record, '$.error.kind') FROM vscan_records "
            "WHERE seq > ? ORDER BY seq LIMIT ?", (after, _PAGE)).fetchall())  # fmt: skip

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
        unlock_output(self._lock)
        self._lock = None


class PostgresSink(Sink):
    """Records in table ``vscan_records`` (created if missing), manifests in
    ``vscan_runs``; one commit per ``write``/``write_many`` (synchronous_commit
    as the server sets it); reconnects when the server goes away (module
    docstring)."""

    def __init__(self, dsn: str, *, reconnect_seconds: float = 300.0) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise SinkError("PostgreSQL sinks need psycopg 3: pip install 'psycopg[binary]'") from exc
        self._psycopg = psycopg
        self._dsn = dsn
        self.target = _redact(dsn)
        self.reconnect_seconds = reconnect_seconds
        #: connections lost and re-made so far (for the run's log)
        self.reconnects = 0
        self._db = None
        self._held = False  # the scan lock was taken once: a reconnect waits for it
        try:
            self._connect()
        except psycopg.Error as exc:
            raise SinkError(f"{self.target}: cannot open as a PostgreSQL sink: {exc}") from exc

    def _connect(self) -> None:
        db = self._psycopg.connect(self._dsn, autocommit=False, connect_timeout=10)
        with db.transaction():
            # Two scans may start together: serialise the CREATE TABLEs.
            db.execute("SELECT pg_advisory_xact_lock(7315506)")
            db.execute(_SQL_RECORDS.format(serial="BIGSERIAL", json="JSONB"))
            db.execute(_SQL_RUNS.format(json="JSONB"))
            # Tables from before reconnecting sinks lack the idempotency key.
            db.execute("ALTER TABLE vscan_records ADD COLUMN IF NOT EXISTS uid TEXT")
            db.execute("CREATE UNIQUE INDEX IF NOT EXISTS vscan_records_uid ON vscan_records (uid)")
        self._take_lock(db)
        self._db = db

    def _take_lock(self, db) -> None:
        """One writing scan per database, for the session. A reconnect takes
        it again, waiting up to ``reconnect_seconds`` for the server to end
        the lost session that still holds it."""
        deadline = time.monotonic() + (self.reconnect_seconds if self._held else 0.0)
        while not db.execute("SELECT pg_try_advisory_lock(%s)", (_PG_SCAN_LOCK,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                holder = db.execute("SELECT string_agg(pid::text, ',') FROM pg_locks WHERE locktype = 'advisory' "
                                    "AND objid = %s AND granted", (_PG_SCAN_LOCK,)).fetchone()[0]  # fmt: skip
                db.close()
                raise SinkError(busy_message(self.target, f"{holder} on the server" if holder else ""))
            db.commit()
            time.sleep(0.5)
        db.commit()
        self._held = True

    def _lost(self) -> bool:
        return self._db is None or self._db.closed or self._db.broken

    def _run(self, what: str, work: Callable[[Any], Any]) -> Any:
        """``work(connection)`` in one committed transaction. ``work`` must be
        idempotent: after a lost connection it runs again on a new one."""
        psycopg = self._psycopg
        deadline = time.monotonic() + self.reconnect_seconds
        delay = 0.1
        while True:
            try:
                if self._lost():
                    self._connect()
                    self.reconnects += 1
                result = work(self._db)
                self._db.commit()
                return result
            except psycopg.Error as exc:
                if not isinstance(exc, psycopg.OperationalError) and not self._lost():
                    self._db.rollback()
                    raise SinkError(f"{self.target}: {what} failed: {exc}") from exc
                if self._db is not None and not self._db.closed:
                    self._db.close()
                self._db = None
                if time.monotonic() + delay > deadline:
                    raise SinkError(
                        f"{self.target}: {what} failed and the server was unreachable for "
                        f"{self.reconnect_seconds:g} s: {exc}"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def write(self, record: dict[str, Any]) -> None:
        self.write_many([record])

    def write_many(self, records: list[dict[str, Any]]) -> None:
        rows = [(*_columns(r), uuid.uuid4().hex) for r in records]  # one uid per record, kept across re-sends

        def insert(db) -> None:
            with db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO vscan_records (path, sha256, status, error_type, risk, record, uid) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (uid) DO NOTHING",
                    rows,
                )

        self._run("writing records", insert)

    def records(self) -> list[dict[str, Any]]:
        rows = self._run("reading records", lambda db: db.execute(
            "SELECT record::text FROM vscan_records ORDER BY seq").fetchall())  # fmt: skip
        return [json.loads(r) for (r,) in rows]

    def resume_rows(self) -> Iterator[ResumeRow]:
        return _rows(lambda after: self._run("reading records", lambda db: db.execute(
            "SELECT seq, path, (record->'versions')::text, status, error_type, record->>'path_bytes', "
            "record->'error'->>'kind' FROM vscan_records "
            "WHERE seq > %s ORDER BY seq LIMIT %s", (after, _PAGE)).fetchall()))  # fmt: skip

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self._run("writing the run manifest", lambda db: db.execute(
            "INSERT INTO vscan_runs (run_id, manifest) VALUES (%s, %s) "
            "ON CONFLICT (run_id) DO UPDATE SET manifest = excluded.manifest",
            (manifest["run_id"], to_json_line(manifest))))  # fmt: skip

    def manifests(self) -> list[dict[str, Any]]:
        rows = self._run("reading run manifests", lambda db: db.execute(
            "SELECT manifest::text FROM vscan_runs ORDER BY manifest->>'started'").fetchall())  # fmt: skip
        return [json.loads(m) for (m,) in rows]

    def close(self) -> None:
        if self._db is not None and not self._db.closed:
            if self._held:
                # Released here, not when the server notices the closed connection: its backend ends
                # asynchronously, and a scan started right after this one (a script's next command)
                # found the lock still held and was refused (seen under load).
                try:
                    self._db.rollback()  # out of a failed transaction, if one was left
                    self._db.execute("SELECT pg_advisory_unlock(%s)", (_PG_SCAN_LOCK,))
                    self._db.commit()
                except Exception:  # a lost connection: the server ends its session and the lock with it
                    pass
            self._db.close()


def _redact(dsn: str) -> str:
    """The DSN without its password, for messages and manifests."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))

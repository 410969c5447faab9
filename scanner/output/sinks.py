"""Result sinks: where per-file records go, one at a time, as files finish.

    Sink (ABC)            write(record) returns once the record is durable
    ├── JsonlSink         *.jsonl: one JSON object per line, flushed and
    │                     fsync'ed per record; a torn last line (a crash
    │                     mid-write: never acknowledged) is cut on reopen
    ├── ParquetSink       *.parquet: JSONL write-ahead log (fsync per record)
    │                     beside the file, folded into the Parquet file on
    │                     close (tmp + fsync + rename) and on reopen after a
    │                     crash. Readers see the Parquet file after close.
    ├── SqliteSink        *.sqlite / *.db: WAL mode, synchronous=FULL,
    │                     one commit per record
    └── PostgresSink      postgresql://...: psycopg 3, one commit per record

Every sink also gives back what it already holds (``records()``: the basis
of resume) and keeps the run manifests (``write_manifest``: a
``<out>.manifest.json`` beside file sinks, a ``vscan_runs`` table in
databases). Each holds the full record as JSON plus a few columns to query.

Choosing by target (``open_sink``): ``*.jsonl``, ``*.parquet``,
``*.sqlite``/``*.db``, ``postgresql://`` or ``postgres://``.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from vscan.errors import ConfigError, VscanError

__all__ = [
    "Sink",
    "JsonlSink",
    "ParquetSink",
    "SqliteSink",
    "PostgresSink",
    "SinkError",
    "open_sink",
    "to_json_line",
]


class SinkError(VscanError):
    """The output sink cannot be opened or written."""


def _clean(value: Any) -> Any:
    # JSON has no NaN: an unknown number is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json_line(record: dict[str, Any]) -> str:
    return json.dumps(_clean(record), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _columns(record: dict[str, Any]) -> tuple:
    error = record.get("error") or {}
    return (
        record.get("path"),
        record.get("sha256"),
        record.get("status"),
        error.get("type"),
        record.get("risk"),
        to_json_line(record),
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class Sink(ABC):
    """Receives one record per input file; ``write`` returns once durable."""

    #: where results go, for messages and the manifest
    target: str

    @abstractmethod
    def write(self, record: dict[str, Any]) -> None: ...

    @abstractmethod
    def records(self) -> list[dict[str, Any]]:
        """Every record acknowledged so far, this run and earlier ones, in order."""

    @abstractmethod
    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Store or update (by ``manifest["run_id"]``) one run's manifest."""

    @abstractmethod
    def manifests(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _FileManifests:
    """Run manifests in ``<out>.manifest.json`` ({"runs": [...]}), replaced atomically."""

    path: Path

    def _manifest_path(self) -> Path:
        return self.path.with_name(self.path.name + ".manifest.json")

    def manifests(self) -> list[dict[str, Any]]:
        p = self._manifest_path()
        return json.loads(p.read_text())["runs"] if p.exists() else []

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        runs = self.manifests()
        ids = [m.get("run_id") for m in runs]
        if manifest["run_id"] in ids:
            runs[ids.index(manifest["run_id"])] = manifest  # an update keeps its place
        else:
            runs.append(manifest)
        _atomic_write(self._manifest_path(), (json.dumps({"runs": _clean(runs)}, indent=1) + "\n").encode())


def _read_jsonl(path: Path, *, repair: bool) -> list[dict[str, Any]]:
    """Records of a JSONL file. A last line without its newline was never
    acknowledged (the writer died inside write): cut it when ``repair``."""
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data) and repair:
        with open(path, "r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    return [json.loads(line) for line in data[:end].splitlines() if line.strip()]


class JsonlSink(_FileManifests, Sink):
    """Appends JSON lines to ``path`` (created if missing, never truncated
    except to cut a torn last line left by a crash)."""

    def __init__(self, path: str | os.PathLike, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.target = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _read_jsonl(self.path, repair=True)
        self._fh = open(self.path, "a", encoding="utf-8")
        self._fsync = fsync

    def write(self, record: dict[str, Any]) -> None:
        line = to_json_line(record)
        self._fh.write(line + "\n")
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.fileno())

    def records(self) -> list[dict[str, Any]]:
        return _read_jsonl(self.path, repair=False)  # from disk: a long sweep keeps no records in memory

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class ParquetSink(_FileManifests, Sink):
    """``path`` (Parquet) plus ``<path>.wal.jsonl`` while a run is open.

    Parquet files cannot be appended to durably one row at a time (a footer
    ends the file), so each record goes to the write-ahead log first (fsync
    per record), and the log is folded into the Parquet file on close and
    whenever a sink is opened over a log a crash left behind. The log's
    first line names it (``wal_id``); the Parquet file's metadata lists the
    logs already folded in, so a crash between the rename and the log's
    removal never duplicates a record.
    """

    _SCHEMA_FIELDS = (("path", "string"), ("sha256", "string"), ("status", "string"), ("error_type", "string"),
                      ("risk", "float64"), ("record", "string"))  # fmt: skip

    def __init__(self, path: str | os.PathLike) -> None:
        import pyarrow  # noqa: F401 - fail early with a clear error

        self.path = Path(path)
        self.target = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wal_path = self.path.with_name(self.path.name + ".wal.jsonl")
        self._base, self._folded = self._read_parquet()
        if self._wal_path.exists():
            self._fold()  # recover what a crashed writer acknowledged
        self._wal = None
        self._closed = False

    def _read_parquet(self) -> tuple[list[dict[str, Any]], list[str]]:
        import pyarrow.parquet as pq

        if not self.path.exists():
            return [], []
        table = pq.read_table(self.path)
        meta = table.schema.metadata or {}
        folded = json.loads(meta.get(b"vscan_folded_wals", b"[]"))
        return [json.loads(s) for s in table.column("record").to_pylist()], folded

    def _wal_contents(self) -> tuple[str | None, list[dict[str, Any]]]:
        lines = _read_jsonl(self._wal_path, repair=True)
        if not lines:
            return None, []
        return lines[0].get("wal_id"), lines[1:]

    def _fold(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        wal_id, wal_records = self._wal_contents()
        if wal_id is not None and wal_id not in self._folded:
            records = self._base + wal_records
            folded = self._folded + [wal_id]
            columns = list(zip(*[_columns(r) for r in records])) or [[] for _ in self._SCHEMA_FIELDS]
            schema = pa.schema([(n, t) for n, t in self._SCHEMA_FIELDS], metadata={"vscan_folded_wals": json.dumps(folded)})
            table = pa.table({n: pa.array(c, type=t) for (n, t), c in zip(self._SCHEMA_FIELDS, columns)}, schema=schema)
            tmp = self.path.with_name(self.path.name + ".tmp")
            pq.write_table(table, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
            self._base, self._folded = records, folded
        self._wal_path.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)

    def write(self, record: dict[str, Any]) -> None:
        if self._wal is None:
            self._wal = open(self._wal_path, "a", encoding="utf-8")
            self._wal.write(json.dumps({"wal_id": uuid.uuid4().hex}) + "\n")
        line = to_json_line(record)
        self._wal.write(line + "\n")
        self._wal.flush()
        os.fsync(self._wal.fileno())

    def records(self) -> list[dict[str, Any]]:
        return self._base + (_read_jsonl(self._wal_path, repair=False)[1:] if self._wal is not None else [])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._wal is not None:
            self._wal.close()
            self._fold()
        elif not self.path.exists():
            self._wal_path.write_text(json.dumps({"wal_id": uuid.uuid4().hex}) + "\n")
            self._fold()  # an empty run still leaves a (valid, empty) Parquet file


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


def open_sink(target: str | os.PathLike) -> Sink:
    """The sink for ``--out``, chosen by suffix or URL scheme."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresSink(text)
    suffix = Path(text).suffix.lower()
    if suffix == ".jsonl":
        return JsonlSink(text)
    if suffix == ".parquet":
        return ParquetSink(text)
    if suffix in (".sqlite", ".db", ".sqlite3"):
        return SqliteSink(text)
    raise ConfigError(
        f"Invalid --out ({text!r}). Supported values are *.jsonl, *.parquet, *.sqlite, *.db, postgresql://..."
    )

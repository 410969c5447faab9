"""Reading results back: every sink kind ``vscan scan --out`` writes.

    read_records("results.jsonl")            one JSON object per line
    read_records("results.parquet")          the ``record`` column, plus
                                             records still in the write-ahead
                                             log (<out>.wal.jsonl) of a scan
                                             that was killed or is running
    read_records("results.sqlite")           table vscan_records, column record
    read_records("postgresql://host/db")     the same table in PostgreSQL

The target is chosen by suffix or URL scheme as :func:`vscan.output.sinks.open_sink`
chooses it. Reading never changes the target: no tables are created, no log
is folded, no torn line is cut (a last line without its newline, left by a
writer that died mid-write, was never acknowledged and is ignored).
A resumed scan may hold a file twice: the last record of each path wins.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from vscan.errors import ConfigError
from vscan.inputs.paths import record_key

__all__ = ["read_records", "read_floods", "display_target"]

# The on-disk formats of vscan.output.sinks (the writer side).
_TABLE = "vscan_records"
_WAL_SUFFIX = ".wal.jsonl"
_FOLDED_KEY = b"vscan_folded_wals"
_SUPPORTED = "*.jsonl, *.parquet, *.sqlite, *.sqlite3, *.db, postgresql://..."


def display_target(target: str | os.PathLike) -> str:
    """``target`` for messages: a database URL without its password."""
    text = str(target)
    parts = urlsplit(text)
    if parts.scheme not in ("postgresql", "postgres") or parts.password is None:
        return text
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def read_floods(target: str | os.PathLike) -> list[dict[str, Any]]:
    """The match floods the runs' manifests list (``<out>.manifest.json`` of file outputs), the latest run first:
    each {bank_entry_id, label, files, share, run_id, started}. Database outputs keep manifests in a table: none read here."""
    text = str(target)
    manifest = Path(text).with_name(Path(text).name + ".manifest.json")
    if text.startswith(("postgresql://", "postgres://")) or not manifest.is_file():
        return []
    try:
        runs = json.loads(manifest.read_text())["runs"]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # a manifest that cannot be read takes nothing from the records
    return [{**flood, "run_id": run.get("run_id"), "started": run.get("started")}
            for run in reversed(runs) for flood in run.get("match_floods") or ()]  # fmt: skip


def read_records(target: str | os.PathLike) -> list[dict[str, Any]]:
    """The records ``vscan scan`` wrote to ``target``, the last one of each path."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        records = _read_postgres(text)
    else:
        path = Path(text)
        suffix = path.suffix.lower()
        readers = {".jsonl": _read_jsonl, ".parquet": _read_parquet, ".sqlite": _read_sqlite, ".sqlite3": _read_sqlite,
                   ".db": _read_sqlite}  # fmt: skip
        if suffix not in readers:
            raise ConfigError(f"Invalid results ({text!r}). Supported values are {_SUPPORTED}")
        wal = path.with_name(path.name + _WAL_SUFFIX)
        if not path.is_file() and not (suffix == ".parquet" and wal.is_file()):
            raise ConfigError(f"Cannot read results {text}: no such file")
        records = readers[suffix](path)
    return _last_per_path(records, text)


def _last_per_path(records: list[Any], where: str) -> list[dict[str, Any]]:
    by_path: dict[bytes, dict[str, Any]] = {}
    for n, record in enumerate(records, 1):
        if not isinstance(record, dict) or "path" not in record:
            raise ConfigError(f"Invalid record {n} in {where}: not a vscan record")
        key = record_key(record)  # raw bytes: two names shown alike stay two files (vscan.inputs.paths)
        by_path.pop(key, None)  # the later record moves to the end
        by_path[key] = record
    return list(by_path.values())


def _jsonl_lines(path: Path) -> list[Any]:
    """Parsed lines of a JSONL file; a torn last line (no newline, not JSON) is skipped."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Cannot read results {path}: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    torn = lines.pop() if lines else b""  # after the last newline: empty unless the writer died mid-line
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Invalid results line {n} in {path}: {exc}") from None
    if torn.strip():
        try:
            out.append(json.loads(torn))  # a complete last line that only lacks its newline
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass  # never acknowledged: not a record
    return out


def _read_jsonl(path: Path) -> list[Any]:
    return _jsonl_lines(path)


def _read_parquet(path: Path) -> list[Any]:
    """The Parquet file's records, then those of a write-ahead log not folded in yet.

    The log's first line is ``{"wal_id": ...}``; the Parquet metadata lists
    the logs already folded, so a log left behind after its fold is not
    read twice."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Reading Parquet results needs pyarrow: pip install pyarrow") from None
    records: list[Any] = []
    folded: list[str] = []
    if path.is_file():
        try:
            table = pq.read_table(path, columns=["record"])
        except Exception as exc:  # pyarrow raises its own (ArrowInvalid, OSError, KeyError)
            raise ConfigError(f"Cannot read results {path}: not a vscan Parquet file ({exc})") from None
        folded = json.loads((table.schema.metadata or {}).get(_FOLDED_KEY, b"[]"))
        records = [json.loads(s) for s in table.column("record").to_pylist()]
    wal = path.with_name(path.name + _WAL_SUFFIX)
    if wal.is_file():
        lines = _jsonl_lines(wal)
        header = lines[0] if lines else None
        if not (isinstance(header, dict) and "wal_id" in header):
            if lines:
                raise ConfigError(f"Cannot read results {path}: its write-ahead log {wal} has no header line")
        elif header["wal_id"] not in folded:
            records += lines[1:]  # acknowledged records of a scan that has not closed the file (killed or running)
    return records


def _read_sqlite(path: Path) -> list[Any]:
    import sqlite3

    try:
        # Read-only: no tables are created in a file that is not a vscan database.
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ConfigError(f"Cannot read results {path}: {exc}") from None
    try:
        rows = db.execute(f"SELECT record FROM {_TABLE} ORDER BY seq").fetchall()
    except sqlite3.Error as exc:
        raise ConfigError(f"Cannot read results {path}: not a vscan results database ({exc})") from None
    finally:
        db.close()
    return [json.loads(r) for (r,) in rows]


def _read_postgres(dsn: str) -> list[Any]:
    where = display_target(dsn)
    try:
        import psycopg
    except ImportError:
        raise ConfigError("Reading PostgreSQL results needs psycopg 3: pip install 'psycopg[binary]'") from None
    try:
        with psycopg.connect(dsn) as db:
            rows = db.execute(f"SELECT record::text FROM {_TABLE} ORDER BY seq").fetchall()
    except psycopg.errors.UndefinedTable:
        raise ConfigError(f"Cannot read results {where}: no {_TABLE} table (not a vscan results database)") from None
    except psycopg.Error as exc:
        raise ConfigError(f"Cannot read results {where}: {exc}") from None
    return [json.loads(r) for (r,) in rows]

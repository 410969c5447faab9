"""File sinks: JSONL (fsync per record) and Parquet (a JSONL write-ahead log folded in on close).

Both keep run manifests in ``<out>.manifest.json`` beside the output, replaced atomically.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from vscan.output.sink_base import Sink, _clean, _columns, to_json_line

__all__ = ["JsonlSink", "ParquetSink"]


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

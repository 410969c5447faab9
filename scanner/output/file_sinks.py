"""File sinks: JSONL (fsync per commit) and Parquet (a JSONL write-ahead log
plus row groups written as the run goes, renamed into place on close).

Both keep run manifests in ``<out>.manifest.json`` beside the output,
replaced atomically, and read their records back streaming (bounded memory).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterator

from vscan.output.sink_base import ResumeRow, Sink, _clean, _columns, lock_output, resume_row, to_json_line, unlock_output

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


def _cut_torn_tail(path: Path) -> None:
    """Cut a last line without its newline: the writer died inside a write
    that was never acknowledged. Reads only the file's tail."""
    if not path.exists():
        return
    with open(path, "r+b") as fh:
        end = size = fh.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - (1 << 16))
            fh.seek(start)
            at = fh.read(end - start).rfind(b"\n")
            if at >= 0:
                end = start + at + 1
                break
            end = start
        if end < size:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())


def _iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSONL file, one line at a time; a torn last line
    (no newline: never acknowledged) is left out."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                return
            if line.strip():
                yield json.loads(line)


def _append_durably(fh, records: list[dict[str, Any]]) -> None:
    fh.write("".join(to_json_line(r) + "\n" for r in records))
    fh.flush()
    os.fsync(fh.fileno())


class JsonlSink(_FileManifests, Sink):
    """Appends JSON lines to ``path`` (created if missing, never truncated
    except to cut a torn last line left by a crash); one fsync per
    ``write``/``write_many``."""

    def __init__(self, path: str | os.PathLike, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.target = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = lock_output(self.path, self.target)  # before the torn tail is cut: it may be another scan's
        _cut_torn_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")
        self._fsync = fsync

    def write(self, record: dict[str, Any]) -> None:
        self.write_many([record])

    def write_many(self, records: list[dict[str, Any]]) -> None:
        if not self._fsync:
            self._fh.write("".join(to_json_line(r) + "\n" for r in records))
            self._fh.flush()
            return
        _append_durably(self._fh, records)

    def records(self) -> list[dict[str, Any]]:
        return list(_iter_jsonl(self.path))

    def resume_rows(self) -> Iterator[ResumeRow]:
        return (resume_row(r) for r in _iter_jsonl(self.path))

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
            unlock_output(self._lock)


class ParquetSink(_FileManifests, Sink):
    """``path`` (Parquet) plus ``<path>.wal.jsonl`` while a run is open.

    A Parquet file cannot be appended to durably one row at a time (a footer
    ends the file), so each commit goes to the write-ahead log first (one
    fsync), and the run's first write starts ``<path>.tmp``: earlier runs'
    rows are copied over in row groups, then this run's records follow in
    row groups of ``ROW_GROUP`` as they come; close writes the footer,
    renames it over ``path`` and removes the log. Nothing is held in memory
    beyond one row group. A sink opened over a log a crash left behind folds
    it in the same way. The file's metadata lists the logs already folded in
    (``vscan_folded_wals``), so a crash between the rename and the log's
    removal never duplicates a record.
    """

    _SCHEMA_FIELDS = (("path", "string"), ("sha256", "string"), ("status", "string"), ("error_type", "string"),
                      ("risk", "float64"), ("record", "string"))  # fmt: skip
    ROW_GROUP = 4096

    def __init__(self, path: str | os.PathLike) -> None:
        import pyarrow  # noqa: F401 - fail early with a clear error

        self.path = Path(path)
        self.target = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = lock_output(self.path, self.target)  # before a log is folded: it may be another scan's
        self._wal_path = self.path.with_name(self.path.name + ".wal.jsonl")
        self._tmp_path = self.path.with_name(self.path.name + ".tmp")
        self._writer = None  # pyarrow.parquet.ParquetWriter on the tmp file while a run writes
        self._wal = None
        self._pending: list[dict[str, Any]] = []  # logged, not yet in a row group
        self._closed = False
        if self._wal_path.exists():  # recover what a crashed writer acknowledged
            _cut_torn_tail(self._wal_path)
            header = next(_iter_jsonl(self._wal_path), None)
            wal_id = header.get("wal_id") if header else None
            if wal_id is not None and wal_id not in self._folded():
                self._start(wal_id)
                for i, record in enumerate(_iter_jsonl(self._wal_path)):
                    if i:
                        self._add(record)
                self._finish()
            self._wal_path.unlink(missing_ok=True)
            _fsync_dir(self.path.parent)

    def _folded(self) -> list[str]:
        import pyarrow.parquet as pq

        if not self.path.exists():
            return []
        meta = pq.read_schema(self.path).metadata or {}
        return json.loads(meta.get(b"vscan_folded_wals", b"[]"))

    def _schema(self, folded: list[str]):
        import pyarrow as pa

        return pa.schema(list(self._SCHEMA_FIELDS), metadata={"vscan_folded_wals": json.dumps(folded)})

    def _start(self, wal_id: str) -> None:
        """Open the tmp file and copy the rows of earlier runs into it."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self._schema(self._folded() + [wal_id])
        self._writer = pq.ParquetWriter(self._tmp_path, schema)
        if self.path.exists():
            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=self.ROW_GROUP):
                self._writer.write_table(pa.Table.from_batches([batch]).cast(schema))

    def _add(self, record: dict[str, Any]) -> None:
        self._pending.append(record)
        if len(self._pending) >= self.ROW_GROUP:
            self._flush_group()

    def _flush_group(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        columns = list(zip(*[_columns(r) for r in self._pending]))
        schema = self._writer.schema
        self._writer.write_table(
            pa.table({n: pa.array(c, type=t) for (n, t), c in zip(self._SCHEMA_FIELDS, columns)}, schema=schema)
        )
        self._pending = []

    def _finish(self) -> None:
        """Footer, fsync, rename over ``path``."""
        self._flush_group()
        self._writer.close()
        self._writer = None
        with open(self._tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self._tmp_path, self.path)
        _fsync_dir(self.path.parent)

    def write(self, record: dict[str, Any]) -> None:
        self.write_many([record])

    def write_many(self, records: list[dict[str, Any]]) -> None:
        if self._wal is None:
            wal_id = uuid.uuid4().hex
            self._start(wal_id)
            self._wal = open(self._wal_path, "a", encoding="utf-8")
            _append_durably(self._wal, [{"wal_id": wal_id}])
            _fsync_dir(self.path.parent)
        _append_durably(self._wal, records)
        for record in records:
            self._add(record)

    def _iter_records(self) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        if self.path.exists():
            # One row group at a time, on this thread: threaded reads decode
            # several row groups at once (resume memory grew with history).
            for batch in pq.ParquetFile(self.path, buffer_size=1 << 20).iter_batches(
                batch_size=self.ROW_GROUP, columns=["record"], use_threads=False
            ):
                for text in batch.column(0).to_pylist():
                    yield json.loads(text)
        if self._wal is not None:
            for i, record in enumerate(_iter_jsonl(self._wal_path)):
                if i:
                    yield record

    def records(self) -> list[dict[str, Any]]:
        return list(self._iter_records())

    def resume_rows(self) -> Iterator[ResumeRow]:
        return (resume_row(r) for r in self._iter_records())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._wal is not None:
            self._finish()
            self._wal.close()
            self._wal_path.unlink(missing_ok=True)
            _fsync_dir(self.path.parent)
        elif not self.path.exists():
            self._start(uuid.uuid4().hex)  # an empty run still leaves a (valid, empty) Parquet file
            self._finish()
        unlock_output(self._lock)

"""The hash store: every sampled frame's PDQ hash, kept so a changed bank
can be matched again without decoding (``vscan scan --hash-store DIR``,
``vscan rematch DIR``).

Layout (Parquet, zstd, Hive partitions, so it can grow for years and be read
by any Parquet engine)::

    DIR/runs/<run>.json                                  the scan's config (TOML), versions stamp, start time
    DIR/files/date=YYYY-MM-DD/run=<run>/part-NNNNN.parquet   one row per file (identity, status, the scan's record)
    DIR/frames/date=YYYY-MM-DD/run=<run>/part-NNNNN.parquet  one row per hashed frame (and per border-free /
                                                             overlay-filled version of it)

A frame row: ``path, sha256, set`` (``frames``, ``unbordered``, ``unoverlaid``),
``frame_number, timestamp_seconds, quality``, ``pdq`` (32 bytes, the
upstream hash), ``dihedral`` (the 8 dihedral variants' hashes, 256 bytes,
variant 0 = ``pdq``) and ``first_pass`` (adaptive sampling's first pass took
it). Parts are written by the scan's driver every ``FLUSH_FILES`` files and
at the end of the run, each to a temporary name renamed into place, frames
before files: a part's files row is only ever read with its frames there.
A scan killed between flushes leaves the files of its unflushed part out of
the store (their records are in the sink; the next scan of them stores them).

Region search and the off-centre search need the pixels, so their frames
are not kept and ``vscan rematch`` does not replay them (vscan.output.rematch).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = ["HashStore", "StoredFile", "kept_hashes", "read_store", "FLUSH_FILES", "SETS"]

#: Files buffered in the driver before a part is written (bounded memory, few small files).
FLUSH_FILES = 512
#: Hashed frame sets kept: the model stage's name -> the store's.
SETS = {"frames": "frames", "unbordered_frames": "unbordered", "unoverlaid_frames": "unoverlaid"}


def kept_hashes(file: Any, hashed: dict[str, tuple[np.ndarray, np.ndarray]], first_numbers: np.ndarray) -> dict[str, Any]:
    """What the model stage hands back for the store: a file's frames (numbers,
    times; ``file``: its vscan.runtime.payload.DecodedFile), each kept set's
    hashes [N, 8, 32] and qualities, the first pass's frame numbers, and the
    border box the unbordered set was cut with."""
    sets = {SETS[k]: (np.ascontiguousarray(v, np.uint8), np.asarray(q, np.int16)) for k, (v, q) in hashed.items() if k in SETS}
    box = file.unbordered.box if file.unbordered is not None else None
    return {
        "frame_numbers": np.asarray(file.frame_numbers, np.int64),
        "timestamps": np.asarray(file.timestamps, np.float64),
        "first_pass": np.isin(file.frame_numbers, first_numbers),
        "sets": sets,
        "border_box": None if box is None else [float(x) for x in np.asarray(box).ravel()],
    }


def _schemas():
    import pyarrow as pa

    frames = pa.schema([
        ("path", pa.string()), ("sha256", pa.string()), ("set", pa.string()), ("frame_number", pa.int64()),
        ("timestamp_seconds", pa.float64()), ("quality", pa.int16()), ("pdq", pa.binary(32)),
        ("dihedral", pa.binary(256)), ("first_pass", pa.bool_()),
    ])  # fmt: skip
    files = pa.schema([
        ("path", pa.string()), ("sha256", pa.string()), ("md5", pa.string()), ("sha1", pa.string()),
        ("size_bytes", pa.int64()), ("status", pa.string()), ("skipped", pa.string()), ("has_frames", pa.bool_()),
        ("duration_seconds", pa.float64()), ("frames_decoded", pa.int64()), ("frames_sampled", pa.int64()),
        ("border_box", pa.list_(pa.float64())), ("scanned_at", pa.string()), ("record", pa.string()),
    ])  # fmt: skip
    return frames, files


class HashStore:
    """The writer the scan's driver feeds: :meth:`add_many` with each group of
    records (their ``_frame_hashes`` is taken off), :meth:`close` at the end."""

    def __init__(self, root: str | os.PathLike, *, config, versions: dict[str, Any], run_id: str | None = None) -> None:
        self.root = Path(root)
        self.run_id = run_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
        self.date = time.strftime("%Y-%m-%d", time.gmtime())
        self._files: list[dict[str, Any]] = []
        self._frames: dict[str, list] = {k: [] for k in ("path", "sha256", "set", "frame_number", "timestamp_seconds",
                                                         "quality", "pdq", "dihedral", "first_pass")}  # fmt: skip
        self._part = 0
        self.files_stored = self.frames_stored = 0
        (self.root / "runs").mkdir(parents=True, exist_ok=True)
        manifest = {"run": self.run_id, "date": self.date, "started": _now(), "config_toml": config.to_toml(), "versions": versions}
        _write_atomic(self.root / "runs" / f"{self.run_id}.json", json.dumps(manifest, indent=1).encode())

    def add_many(self, records: list[dict[str, Any]]) -> None:
        """Keep each record's frame hashes (removed from the record) and identity."""
        for record in records:
            self._add(record, record.pop("_frame_hashes", None))
        if len(self._files) >= FLUSH_FILES:
            self.flush()

    def _add(self, record: dict[str, Any], kept: dict[str, Any] | None) -> None:
        has_frames = kept is not None and any(len(q) for _, q in kept["sets"].values())
        clean = {k: v for k, v in record.items() if k != "_frame_hashes"}
        self._files.append({
            "path": record["path"], "sha256": record.get("sha256"), "md5": record.get("md5"), "sha1": record.get("sha1"),
            "size_bytes": record.get("size_bytes"), "status": record.get("status"), "skipped": record.get("skipped"),
            "has_frames": has_frames, "duration_seconds": record.get("duration_seconds"),
            "frames_decoded": record.get("frames_decoded"), "frames_sampled": record.get("frames_sampled"),
            "border_box": kept["border_box"] if kept else None, "scanned_at": _now(), "record": json.dumps(clean),
        })  # fmt: skip
        if not has_frames:
            return
        f = self._frames
        for name, (variants, quality) in kept["sets"].items():
            n = len(quality)
            f["path"] += [record["path"]] * n
            f["sha256"] += [record.get("sha256")] * n
            f["set"] += [name] * n
            f["frame_number"] += kept["frame_numbers"].tolist()
            f["timestamp_seconds"] += kept["timestamps"].tolist()
            f["quality"] += quality.tolist()
            f["pdq"] += [bytes(v[0]) for v in variants]
            f["dihedral"] += [v.tobytes() for v in variants]
            f["first_pass"] += kept["first_pass"].tolist()
            self.frames_stored += n

    def flush(self) -> None:
        """Write the buffered files as one part: frames first, then files."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._files:
            return
        frames_schema, files_schema = _schemas()
        name = f"part-{self._part:05d}.parquet"
        for table, rows, schema in (("frames", self._frames, frames_schema), ("files", None, files_schema)):
            folder = self.root / table / f"date={self.date}" / f"run={self.run_id}"
            folder.mkdir(parents=True, exist_ok=True)
            data = pa.Table.from_pydict(rows, schema=schema) if rows is not None else pa.Table.from_pylist(self._files, schema=schema)
            tmp = folder / f".{name}.tmp"
            pq.write_table(data, tmp, compression="zstd")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, folder / name)
        self.files_stored += len(self._files)
        self._files = []
        self._frames = {k: [] for k in self._frames}
        self._part += 1

    def close(self) -> None:
        self.flush()


@dataclass
class StoredFile:
    """One file as the store holds it: its row and its frames per set."""

    row: dict[str, Any]
    run: str
    frame_numbers: np.ndarray  # int64 [N], the ``frames`` set's, in frame order
    timestamps: np.ndarray  # float64 [N]
    first_pass: np.ndarray  # bool [N]
    sets: dict[str, tuple[np.ndarray, np.ndarray]]  # set -> (variants uint8 [N, 8, 32], quality int32 [N])


def run_manifests(root: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Every run's manifest in the store, by run id."""
    out = {}
    for p in sorted((Path(root) / "runs").glob("*.json")):
        data = json.loads(p.read_text())
        out[data["run"]] = data
    return out


def _parts(root: Path, table: str) -> list[tuple[str, Path]]:
    """(run, part file) of a table, oldest run first (run ids start with their UTC start time)."""
    found = [(p.parent.name.removeprefix("run="), p) for p in (root / table).glob("date=*/run=*/part-*.parquet")]
    return sorted(found)


def read_store(root: str | os.PathLike) -> Iterator[StoredFile | dict[str, Any]]:
    """The latest stored scan of each path: a :class:`StoredFile` when its
    frames are kept (or, for a file a ``--state`` scan skipped as unchanged,
    the latest frames of the same content), else its files row alone (a dict:
    an error, or frames never stored). Parts are read one at a time, so
    memory holds one part's frames plus one small row per path."""
    import pyarrow.parquet as pq

    root = Path(root)
    latest: dict[str, tuple[str, str, int]] = {}  # path -> (run, part name, row), later runs win
    by_content: dict[str, tuple[str, str, str]] = {}  # sha256 -> (run, part name, path) of the latest frames
    for run, part in _parts(root, "files"):
        table = pq.read_table(part, columns=["path", "sha256", "has_frames"]).to_pydict()
        for i, (path, sha, has) in enumerate(zip(table["path"], table["sha256"], table["has_frames"])):
            latest[path] = (run, part.name, i)
            if has and sha:
                by_content[sha] = (run, part.name, path)
    wanted: dict[tuple[str, str], dict[str, Any]] = {}  # (run, part) -> {path: row index or ("content", path)}
    for path, (run, name, i) in latest.items():
        wanted.setdefault((run, name), {})[path] = i
    for run, part in _parts(root, "files"):
        want = wanted.get((run, part.name))
        if not want:
            continue
        rows = pq.read_table(part).to_pylist()
        frames_part = root / "frames" / part.parent.parent.name / part.parent.name / part.name
        frames = _frames_by_path(frames_part, {rows[i]["path"] for i in want.values() if rows[i]["has_frames"]})
        for path, i in want.items():
            row = rows[i]
            if row["has_frames"] and path in frames:
                yield _stored(row, run, frames[path])
                continue
            source = by_content.get(row["sha256"] or "")
            if row["skipped"] == "unchanged" and source is not None:
                s_run, s_name, s_path = source
                s_part = next(p for r, p in _parts(root, "frames") if r == s_run and p.name == s_name)
                s_frames = _frames_by_path(s_part, {s_path})
                if s_path in s_frames:
                    yield _stored(row, s_run, s_frames[s_path])
                    continue
            yield row


def _frames_by_path(part: Path, paths: set[str]) -> dict[str, dict[str, np.ndarray]]:
    """Columns (numpy) of the frames of ``paths`` in one part, per path, sorted by set and frame number."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not paths or not part.exists():
        return {}
    table = pq.read_table(part)
    table = table.filter(pc.is_in(table["path"], value_set=pa.array(sorted(paths))))
    table = table.sort_by([("path", "ascending"), ("set", "ascending"), ("frame_number", "ascending")])
    cols = {name: table[name].to_numpy() for name in ("path", "set", "frame_number", "timestamp_seconds", "quality", "first_pass")}
    dihedral = table["dihedral"].combine_chunks() if table.num_rows else None
    cols["dihedral"] = (np.frombuffer(dihedral.buffers()[1], np.uint8)[dihedral.offset * 256 : (dihedral.offset + len(dihedral)) * 256]
                        .reshape(-1, 8, 32) if dihedral is not None else np.zeros((0, 8, 32), np.uint8))  # fmt: skip
    out = {}
    _, starts = np.unique(cols["path"], return_index=True)  # rows are sorted by path: each path's rows are one run
    edges = sorted(starts.tolist()) + [table.num_rows]
    for a, b in zip(edges[:-1], edges[1:]):
        out[str(cols["path"][a])] = {k: v[a:b] for k, v in cols.items()}
    return out


def _stored(row: dict[str, Any], run: str, frames: dict[str, np.ndarray]) -> StoredFile:
    sets = {}
    for name in np.unique(frames["set"]):
        rows = frames["set"] == name
        sets[str(name)] = (np.ascontiguousarray(frames["dihedral"][rows]), frames["quality"][rows].astype(np.int32))
    main = frames["set"] == "frames"
    return StoredFile(row=row, run=run, frame_numbers=frames["frame_number"][main].astype(np.int64),
                      timestamps=frames["timestamp_seconds"][main].astype(np.float64),
                      first_pass=frames["first_pass"][main].astype(bool), sets=sets)  # fmt: skip


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

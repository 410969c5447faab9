"""Writing banks: ``BankWriter`` (rows, atomically) and ``write_bank`` (inputs -> a bank file).

A build is deterministic: inputs are sorted, entry rows hold no time or absolute
path, and rows are inserted in key order, so the same inputs give the same rows
(and, with the same SQLite, the same bytes). The writer fills a temporary file
beside the target and renames it over the target on success only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import tempfile
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Iterator, Literal, Sequence

import numpy as np

from vscan.bank.digest import full_content_sha256
from vscan.bank.importers import MEDIA_EXTENSIONS, TEXT_EXTENSIONS, HashMedia, InputType, NotAHashList, detect_input_type, import_file, not_added
from vscan.bank.entry_table import EntryGeometry
from vscan.bank.schema import ALGORITHMS, FORMAT_VERSION, GEOMETRY_SCHEMA, HEX, KINDS, SCHEMA, Kind
from vscan.errors import BankError, VscanError
from vscan.hashing.vpdq import ExtraHashes, FrameHashes

__all__ = ["BankWriter", "BuildStep", "partial_path", "walk_inputs", "write_bank"]


class BankWriter:
    """Writes a bank atomically: ``with BankWriter(path) as w: w.add_...``."""

    def __init__(self, path: str | os.PathLike, *, created_by: str = "vscan", resume_key: str | None = None):
        """``resume_key``: the build is resumable (``write_bank``): rows go into
        ``partial_path(path)``, committed source by source, and a partial file
        holding the same key is continued instead of started again."""
        self.path = Path(path)
        self._created_by = created_by
        self._resume_key = resume_key
        self._conn: sqlite3.Connection | None = None
        self._tmp: Path | None = None
        self._ids: set[str] = set()
        self.skipped_inputs: list[str] = []
        #: source -> what an importer counted there and did not add (unknown hash types, disabled records)
        self.import_notes: dict[str, dict[str, int]] = {}
        #: sources already in a resumed partial build (``source_done``)
        self.done_sources: set[str] = set()
        #: more meta rows written with the bank (``row_plan``: the rows kept of media, ``vscan.bank.hashers``)
        self.meta_extra: dict[str, str] = {}

    def __enter__(self) -> "BankWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._resume_key is not None:
            self._open_partial()
            return self
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._conn = sqlite3.connect(self._tmp)
        self._conn.executescript(SCHEMA)
        return self

    def _open_partial(self) -> None:
        """Continues the partial build of the same key, or starts one (module ``write_bank``)."""
        self._tmp = partial_path(self.path)
        if self._tmp.exists():
            try:
                conn = sqlite3.connect(self._tmp)
                state = dict(conn.execute("SELECT key, value FROM build_state"))
            except sqlite3.DatabaseError:
                state = {}
                conn.close()
            if state.get("resume_key") == self._resume_key:
                self._conn = conn
                self._ids = {e for (e,) in conn.execute("SELECT entry_id FROM entries")}
                self.done_sources = {r for (r,) in conn.execute("SELECT rel FROM build_sources")}
                self.skipped_inputs = json.loads(state.get("skipped_inputs", "[]"))
                self.import_notes = json.loads(state.get("import_notes", "{}"))
                return
            conn.close()
            self._tmp.unlink()
        self._conn = sqlite3.connect(self._tmp)
        self._conn.executescript(SCHEMA + _BUILD_STATE_SCHEMA)
        self._conn.execute("INSERT INTO build_state VALUES ('resume_key', ?)", (self._resume_key,))
        self._conn.commit()

    def source_done(self, rel: str) -> None:
        """Commits one source's rows with the record that it is in (a resumable build: each source exactly once)."""
        if self._resume_key is None:
            return
        state = {"skipped_inputs": json.dumps(self.skipped_inputs), "import_notes": json.dumps(self.import_notes, sort_keys=True)}
        self.conn.executemany("INSERT OR REPLACE INTO build_state VALUES (?, ?)", sorted(state.items()))
        self.conn.execute("INSERT INTO build_sources VALUES (?)", (rel,))
        self.conn.commit()
        self.done_sources.add(rel)

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._conn is not None and self._tmp is not None
        if exc_type is not None and self._resume_key is not None and issubclass(exc_type, KeyboardInterrupt):
            self._conn.rollback()  # interrupted: the sources committed so far stay for the next run
            self._conn.close()
            return
        try:
            if exc_type is None:
                if self._resume_key is not None:
                    self._conn.executescript("DROP TABLE build_state; DROP TABLE build_sources;")
                meta = {
                    "format_version": str(FORMAT_VERSION),
                    "created_by": self._created_by,
                    "hash_algorithm": "pdq",
                    "skipped_inputs": json.dumps(sorted(self.skipped_inputs)),
                }
                if self.import_notes:  # absent when nothing was noted: such banks' meta is as before
                    meta["import_notes"] = json.dumps(self.import_notes, sort_keys=True)
                meta.update(self.meta_extra)
                meta["content_digest"] = full_content_sha256(self._conn)
                # The bank's lineage: its digest as written whole. In-place changes (import, disable,
                # enable) keep it and change the generation (content_digest); a rebuild changes both.
                meta["lineage"] = meta["content_digest"]
                self._conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
                self._conn.commit()
                self._conn.execute("VACUUM")  # rows in key order, no free pages: same inputs, same bytes
            self._conn.close()
            if exc_type is None:
                os.replace(self._tmp, self.path)
        finally:
            if self._tmp.exists():
                self._tmp.unlink()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BankError("BankWriter used outside its 'with' block")
        return self._conn

    def unique_id(self, entry_id: str, source: str) -> str:
        """``entry_id``, or ``entry_id-<8 hex of sha256(source)>`` when taken (deterministic)."""
        if entry_id not in self._ids:
            return entry_id
        digest = hashlib.sha256(source.encode()).hexdigest()
        for n in range(8, 65):
            candidate = f"{entry_id}-{digest[:n]}"
            if candidate not in self._ids:
                return candidate
        raise BankError(f"Duplicate entry id {entry_id!r} from {source!r}")

    def _add_entry(self, entry_id, label, source, kind, duration_seconds, num_frames) -> str:
        if kind not in KINDS:
            raise BankError(f"Invalid kind ({kind!r}). Supported values are {', '.join(KINDS)}")
        source_path, source_type, source_ref = _split_source(source)
        entry_id = self.unique_id(entry_id, f"{source_path}:{source_ref or ''}")
        self._ids.add(entry_id)
        self.conn.execute(
            "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (entry_id, label, source_path, source_type, source_ref, kind, duration_seconds, num_frames),
        )
        return entry_id

    def add_frame_hashes(
        self,
        entry_id: str,
        label: str | None,
        source: "str | tuple[str, str] | tuple[str, str, str | None]",
        kind: Kind,
        frame_hashes: FrameHashes,
        duration_seconds: float | None = None,
        *,
        qualities_given: bool = True,
    ) -> str:
        """Adds one entry with its frames; returns the entry id actually used."""
        if kind == "file_digest":
            raise BankError("kind 'file_digest' takes add_file_digest")
        entry_id = self._add_entry(entry_id, label, source, kind, duration_seconds, len(frame_hashes))
        order = np.argsort(frame_hashes.frame_numbers, kind="stable")
        rows = (  # a generator: no Python tuple per row held at once (long videos)
            (
                entry_id,
                int(frame_hashes.frame_numbers[i]),
                None if math.isnan(ts := float(frame_hashes.timestamps_seconds[i])) else ts,
                int(frame_hashes.qualities[i]) if qualities_given else None,
                frame_hashes.hashes[i].tobytes(),
            )
            for i in order
        )
        try:
            self.conn.executemany("INSERT INTO frame_hashes VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError as exc:
            raise BankError(f"Entry {entry_id!r}: duplicate frame numbers or bad quality ({exc})") from exc
        return entry_id

    def add_extra_hashes(self, entry_id: str, extra: ExtraHashes) -> None:
        """Extra rows for frames already added under ``entry_id`` (same frame numbers)."""
        order = np.lexsort((np.asarray(extra.preps, dtype=object).astype(str), extra.frame_numbers))
        rows = (  # a generator, as add_frame_hashes
            (entry_id, int(extra.frame_numbers[i]), str(extra.preps[i]), int(extra.qualities[i]), extra.hashes[i].tobytes())
            for i in order
        )
        try:
            self.conn.executemany("INSERT INTO extra_hashes VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError as exc:
            raise BankError(f"Entry {entry_id!r}: duplicate extra hashes or bad quality ({exc})") from exc

    def add_geometry(self, entry_id: str, geometry: "EntryGeometry | tuple") -> None:
        """A media entry's decoded frame size and the box of its picture inside its bars
        (``vscan.bank.entry_table.EntryGeometry``; table ``entry_geometry``, created with its first row)."""
        if entry_id not in self._ids:
            raise BankError(f"Entry {entry_id!r} not added yet: add its frames first")
        width, height, box = geometry
        values = (int(width), int(height), *(int(v) for v in box))
        self.conn.execute(GEOMETRY_SCHEMA)
        try:
            self.conn.execute("INSERT INTO entry_geometry VALUES (?, ?, ?, ?, ?, ?, ?)", (entry_id, *values))
        except sqlite3.IntegrityError as exc:
            raise BankError(f"Entry {entry_id!r}: invalid or repeated geometry {values} ({exc})") from exc

    def add_file_digest(
        self,
        entry_id: str,
        label: str | None,
        source: "str | tuple[str, str] | tuple[str, str, str | None]",
        algorithm: Literal["md5", "sha1", "sha256"],
        digest: str,
    ) -> str:
        """Adds one 'file_digest' entry holding ``digest``; returns the entry id actually used."""
        digest = _checked_digest(algorithm, digest)
        entry_id = self._add_entry(entry_id, label, source, "file_digest", None, 0)
        self.conn.execute("INSERT INTO file_digests VALUES (?, ?, ?)", (entry_id, algorithm, digest))
        return entry_id

    def remove_entry(self, entry_id: str) -> bool:
        """Removes an entry added earlier (a later withdrawal or replacement); False when there is none."""
        if entry_id not in self._ids:
            return False
        tables = ("entry_geometry", "extra_hashes", "frame_hashes", "file_digests", "entries")
        have = {n for (n,) in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in (t for t in tables if t in have):
            self.conn.execute(f"DELETE FROM {table} WHERE entry_id = ?", (entry_id,))
        self._ids.discard(entry_id)
        return True

    def note(self, source: str, what: str) -> None:
        """Counts one thing an importer read in ``source`` and did not add (``meta.import_notes``)."""
        counts = self.import_notes.setdefault(source, {})
        counts[what] = counts.get(what, 0) + 1

    def withdraw(self, entry_id: str, source: str, what: str) -> None:
        """A list marks ``entry_id`` withdrawn or deleted (``what``, e.g.
        'disabled (deletedImage)'): counted in ``source``'s notes. Appending to
        a bank (``vscan.bank.append``) also disables the entry if the bank holds it."""
        self.note(source, what)

    def add_digest(self, entry_id: str, algorithm: Literal["md5", "sha1", "sha256"], digest: str) -> None:
        """One more digest of an entry already added (a hashed media file's own bytes)."""
        if entry_id not in self._ids:
            raise BankError(f"Entry {entry_id!r} not added yet: add its frames or digest first")
        self.conn.execute("INSERT INTO file_digests VALUES (?, ?, ?)", (entry_id, algorithm, _checked_digest(algorithm, digest)))


def _checked_digest(algorithm: str, digest: str) -> str:
    """``digest`` as lowercase hex, or BankError for an unknown algorithm or a wrong length."""
    digest = digest.strip().lower()
    expected = {v: k for k, v in ALGORITHMS.items()}.get(algorithm)
    if expected is None:
        raise BankError(f"Invalid algorithm ({algorithm!r}). Supported values are md5, sha1, sha256")
    if len(digest) != expected or not HEX.fullmatch(digest):
        raise BankError(f"Invalid {algorithm} digest {digest!r}: expected {expected} hex characters")
    return digest


def _split_source(source) -> tuple[str, str, str | None]:
    if isinstance(source, str):
        return source, "api", None
    parts = tuple(source) + (None,) * (3 - len(source))
    return str(parts[0]), str(parts[1]), None if parts[2] is None else str(parts[2])


_BUILD_STATE_SCHEMA = """
CREATE TABLE build_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE build_sources (rel TEXT PRIMARY KEY);
"""


def partial_path(path: str | os.PathLike) -> Path:
    """Where a resumable build of ``path`` keeps its rows until it is done."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


def walk_inputs(inputs: Sequence[str | os.PathLike]) -> Iterator[tuple[Path, str, bool]]:
    """(path, name relative to the input's parent, came from a directory walk), sorted."""
    for root in sorted((Path(p) for p in inputs), key=str):
        if root.is_dir():
            for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
                if path.is_file() and not path.name.startswith("."):
                    yield path, f"{root.name}/{path.relative_to(root).as_posix()}", True
        elif root.is_file():
            yield root, root.name, False
        else:
            raise BankError(f"Bank input not found: {root}")


@dataclass(frozen=True)
class BuildStep:
    """One source of a build, for a progress display: its name, its bytes and the totals so far."""

    rel: str
    size_bytes: int
    done_bytes: int  # of every source before this one, resumed ones included
    total_bytes: int
    done_sources: int
    total_sources: int
    resumed: bool  # already in the bank from an earlier, interrupted run


def _classify(path: Path, walked: bool) -> "InputType | None | str":
    """The input type, None to skip (a walked file that is no bank input), or a note why it is skipped."""
    suffix = path.suffix.lower()
    if suffix not in MEDIA_EXTENSIONS | TEXT_EXTENSIONS:
        if walked:
            return None
        raise BankError(f"{path}: not a hash list or media file we know (extension {path.suffix!r})")
    try:
        return detect_input_type(path)
    except NotAHashList:
        if not walked:
            raise
        return "skipped: no hash-list format recognised"


def write_bank(
    out_path: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    *,
    label: str | None = None,
    hash_media: HashMedia | None = None,
    replace: bool = True,
    resume_key: str | None = None,
    progress: "Callable[[BuildStep], None] | None" = None,
    row_plan: str | None = None,
) -> None:
    """Writes a bank from files and directories (recursive, sorted).

    Files in a directory that are neither media nor a recognised hash list
    (a README.txt, notes, another program's JSON) are skipped and listed in
    ``meta.skipped_inputs`` (and noted in ``meta.import_notes`` when their
    content was looked at); such a file named directly is an error, and so is
    a recognised hash list with a bad line (naming file and line). A media file
    in a directory that cannot be read (cut off, damaged, encrypted, a list of
    other files: an input error) is skipped the same way, its note saying why
    (``NOT_ADDED``); named directly it is an error.
    ``replace=False``: BankError when ``out_path`` exists (``vscan bank build``
    without ``--replace``; appending is ``vscan bank import``).
    ``resume_key``: resumable (``BankWriter``): each source is committed on its
    own, and a build killed midway continues where it stopped when run again
    with the same key (the CLI's key names the inputs and options).
    ``progress``: called before each source with a ``BuildStep``. ``row_plan``: the name of the
    rows kept of media (``vscan.bank.hashers.ROW_PLANS``), kept in ``meta.row_plan`` for imports.
    """
    if not replace and Path(out_path).exists():
        raise BankError(f"{out_path} exists: give --replace to build it again, or add to it with 'vscan bank import'")
    sources = list(walk_inputs(inputs))
    sizes = [_size(path) for path, _, _ in sources]
    total = sum(sizes)
    done_bytes = 0
    with BankWriter(out_path, resume_key=resume_key) as writer:
        if row_plan is not None:
            writer.meta_extra["row_plan"] = row_plan
        for i, ((path, rel, walked), size) in enumerate(zip(sources, sizes)):
            resumed = rel in writer.done_sources
            if progress is not None:
                progress(BuildStep(rel, size, done_bytes, total, i, len(sources), resumed))
            done_bytes += size
            if resumed:
                continue
            kind = _classify(path, walked)
            if kind is None or kind.startswith("skipped"):
                writer.skipped_inputs.append(rel)
                if kind is not None:
                    writer.note(rel, kind)
            else:
                try:
                    import_file(writer, path, rel=rel, label=label, hash_media=hash_media, input_type=kind)  # type: ignore[arg-type]
                except VscanError as exc:
                    why = not_added(exc, path, walked and kind == "media")
                    if why is None:
                        raise
                    writer.skipped_inputs.append(rel)
                    writer.note(rel, why)
            writer.source_done(rel)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0

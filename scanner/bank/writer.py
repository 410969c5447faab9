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
from typing import Iterator, Literal, Sequence

import numpy as np

from vscan.bank.digest import full_content_sha256
from vscan.bank.importers import MEDIA_EXTENSIONS, TEXT_EXTENSIONS, HashMedia, import_file
from vscan.bank.schema import ALGORITHMS, FORMAT_VERSION, HEX, KINDS, SCHEMA, Kind
from vscan.errors import BankError
from vscan.hashing.vpdq import ExtraHashes, FrameHashes

__all__ = ["BankWriter", "walk_inputs", "write_bank"]


class BankWriter:
    """Writes a bank atomically: ``with BankWriter(path) as w: w.add_...``."""

    def __init__(self, path: str | os.PathLike, *, created_by: str = "vscan"):
        self.path = Path(path)
        self._created_by = created_by
        self._conn: sqlite3.Connection | None = None
        self._tmp: Path | None = None
        self._ids: set[str] = set()
        self.skipped_inputs: list[str] = []
        #: source -> what an importer counted there and did not add (unknown hash types, disabled records)
        self.import_notes: dict[str, dict[str, int]] = {}

    def __enter__(self) -> "BankWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._conn = sqlite3.connect(self._tmp)
        self._conn.executescript(SCHEMA)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._conn is not None and self._tmp is not None
        try:
            if exc_type is None:
                meta = {
                    "format_version": str(FORMAT_VERSION),
                    "created_by": self._created_by,
                    "hash_algorithm": "pdq",
                    "skipped_inputs": json.dumps(sorted(self.skipped_inputs)),
                }
                if self.import_notes:  # absent when nothing was noted: such banks' meta is as before
                    meta["import_notes"] = json.dumps(self.import_notes, sort_keys=True)
                meta["content_digest"] = full_content_sha256(self._conn)
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
        rows = [
            (
                entry_id,
                int(frame_hashes.frame_numbers[i]),
                None if math.isnan(ts := float(frame_hashes.timestamps_seconds[i])) else ts,
                int(frame_hashes.qualities[i]) if qualities_given else None,
                frame_hashes.hashes[i].tobytes(),
            )
            for i in order
        ]
        try:
            self.conn.executemany("INSERT INTO frame_hashes VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError as exc:
            raise BankError(f"Entry {entry_id!r}: duplicate frame numbers or bad quality ({exc})") from exc
        return entry_id

    def add_extra_hashes(self, entry_id: str, extra: ExtraHashes) -> None:
        """Extra rows for frames already added under ``entry_id`` (same frame numbers)."""
        order = np.lexsort((np.asarray(extra.preps, dtype=object).astype(str), extra.frame_numbers))
        rows = [
            (entry_id, int(extra.frame_numbers[i]), str(extra.preps[i]), int(extra.qualities[i]), extra.hashes[i].tobytes())
            for i in order
        ]
        try:
            self.conn.executemany("INSERT INTO extra_hashes VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError as exc:
            raise BankError(f"Entry {entry_id!r}: duplicate extra hashes or bad quality ({exc})") from exc

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
        for table in ("extra_hashes", "frame_hashes", "file_digests", "entries"):
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


def write_bank(
    out_path: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    *,
    label: str | None = None,
    hash_media: HashMedia | None = None,
) -> None:
    """Writes a bank from files and directories (recursive, sorted).

    Files in a directory that are neither hash lists nor media are skipped and
    listed in ``meta.skipped_inputs``; such a file named directly is an error.
    """
    with BankWriter(out_path) as writer:
        for path, rel, walked in walk_inputs(inputs):
            if walked and path.suffix.lower() not in MEDIA_EXTENSIONS | TEXT_EXTENSIONS:
                writer.skipped_inputs.append(rel)
                continue
            import_file(writer, path, rel=rel, label=label, hash_media=hash_media)

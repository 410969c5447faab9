"""Hash banks: one SQLite file of reference hashes with their metadata.

Schema (format version 1; full description in ``docs/bank-format.md``)::

    meta(key TEXT PRIMARY KEY, value TEXT)
        format_version, created_by, hash_algorithm ('pdq'), skipped_inputs (JSON list)
    entries(entry_id TEXT PRIMARY KEY, label TEXT, source_path TEXT, source_type TEXT,
            source_ref TEXT, kind TEXT, duration_seconds REAL, num_frames INTEGER)
        kind in video | image | pdq_list | file_digest
        source_type in vpdq_txt | pdq_list | digest_list | pytx_csv | media
        source_ref: line number or file name inside the source, when one source gives many entries
    frame_hashes(entry_id TEXT, frame_number INTEGER, timestamp_seconds REAL, quality INTEGER,
                 hash BLOB(32), PRIMARY KEY (entry_id, frame_number))
        quality NULL = not given by the source; loaded as 100 (bank hashes are trusted)
    file_digests(entry_id TEXT, algorithm TEXT, digest TEXT, PRIMARY KEY (algorithm, digest, entry_id))
        algorithm in md5 | sha1 | sha256, digest lowercase hex
    extra_hashes(entry_id TEXT, frame_number INTEGER, prep TEXT, quality INTEGER, hash BLOB(32),
                 PRIMARY KEY (entry_id, frame_number, prep))      -- optional (added later in v1)
        more hashes of a frame of frame_hashes, prepared differently: prep 'borders' (borders
        removed), 'crop0.90' (centre crop keeping 90% of each side), 'borders+crop0.90'; banks
        without the table read as having no extra rows, and readers that ignore it still work

A build is deterministic: inputs are sorted, entry rows hold no time or absolute
path, and rows are inserted in key order, so the same inputs give the same rows
(and, with the same SQLite, the same bytes). The writer fills a temporary file
beside the target and renames it over the target on success only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal, Sequence

import numpy as np

from vscan.errors import BankError
from vscan.inputs.digests import file_digests, sha256_file
from vscan.hashing.vpdq import ExtraHashes, FrameHashes, hex_to_hashes, parse_vpdq_line

__all__ = [
    "FORMAT_VERSION",
    "BankWriter",
    "Bank",
    "BankInfo",
    "BankIndex",
    "HashMedia",
    "ExtraHashes",
    "ExtraRows",
    "build_bank",
    "import_file",
    "detect_input_type",
    "MEDIA_EXTENSIONS",
]

FORMAT_VERSION = 1
Kind = Literal["video", "image", "pdq_list", "file_digest"]
KINDS = ("video", "image", "pdq_list", "file_digest")
ALGORITHMS = {32: "md5", 40: "sha1", 64: "sha256"}
InputType = Literal["vpdq_txt", "pdq_list", "digest_list", "pytx_csv", "media"]
HashMedia = Callable[[Path], "tuple[FrameHashes, float | None] | tuple[FrameHashes, float | None, ExtraHashes | None]"]


VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".3gp"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | IMAGE_EXTENSIONS
TEXT_EXTENSIONS = {".txt", ".csv", ".md5", ".sha1", ".sha256", ".pdq", ".vpdq", ".lst", ".list", ""}

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
    entry_id TEXT PRIMARY KEY,
    label TEXT,
    source_path TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source_ref TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('video', 'image', 'pdq_list', 'file_digest')),
    duration_seconds REAL,
    num_frames INTEGER NOT NULL
);
CREATE TABLE frame_hashes (
    entry_id TEXT NOT NULL REFERENCES entries(entry_id),
    frame_number INTEGER NOT NULL,
    timestamp_seconds REAL,
    quality INTEGER CHECK (quality BETWEEN 0 AND 100),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (entry_id, frame_number)
);
CREATE TABLE extra_hashes (
    entry_id TEXT NOT NULL REFERENCES entries(entry_id),
    frame_number INTEGER NOT NULL,
    prep TEXT NOT NULL,
    quality INTEGER CHECK (quality BETWEEN 0 AND 100),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (entry_id, frame_number, prep)
);
CREATE TABLE file_digests (
    entry_id TEXT NOT NULL REFERENCES entries(entry_id),
    algorithm TEXT NOT NULL CHECK (algorithm IN ('md5', 'sha1', 'sha256')),
    digest TEXT NOT NULL,
    PRIMARY KEY (algorithm, digest, entry_id)
);
"""

_HEX = re.compile(r"[0-9a-fA-F]+")


# ----------------------------------------------------------------------------- writer


class BankWriter:
    """Writes a bank atomically: ``with BankWriter(path) as w: w.add_...``."""

    def __init__(self, path: str | os.PathLike, *, created_by: str = "vscan"):
        self.path = Path(path)
        self._created_by = created_by
        self._conn: sqlite3.Connection | None = None
        self._tmp: Path | None = None
        self._ids: set[str] = set()
        self.skipped_inputs: list[str] = []

    def __enter__(self) -> "BankWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._conn = sqlite3.connect(self._tmp)
        self._conn.executescript(_SCHEMA)
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
        digest = digest.strip().lower()
        expected = {v: k for k, v in ALGORITHMS.items()}.get(algorithm)
        if expected is None:
            raise BankError(f"Invalid algorithm ({algorithm!r}). Supported values are md5, sha1, sha256")
        if len(digest) != expected or not _HEX.fullmatch(digest):
            raise BankError(f"Invalid {algorithm} digest {digest!r}: expected {expected} hex characters")
        entry_id = self._add_entry(entry_id, label, source, "file_digest", None, 0)
        self.conn.execute("INSERT INTO file_digests VALUES (?, ?, ?)", (entry_id, algorithm, digest))
        return entry_id


def _split_source(source) -> tuple[str, str, str | None]:
    if isinstance(source, str):
        return source, "api", None
    parts = tuple(source) + (None,) * (3 - len(source))
    return str(parts[0]), str(parts[1]), None if parts[2] is None else str(parts[2])


# ----------------------------------------------------------------------------- importers


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BankError(f"Cannot read hash list {path}: {exc}") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, stripped


def detect_input_type(path: Path) -> InputType | None:
    """By extension, then by the first meaningful line; None = not a bank input."""
    suffix = path.suffix.lower()
    if suffix in MEDIA_EXTENSIONS:
        return "media"
    if suffix not in TEXT_EXTENSIONS:
        return None
    if suffix in (".md5", ".sha1", ".sha256"):
        return "digest_list"
    first = next(_lines(path), None)
    if first is None:
        raise BankError(f"{path}: empty hash list")
    _, line = first
    fields = [f.strip() for f in line.split(",")]
    if suffix == ".csv" or fields[0].lower() in _PYTX_TYPES or fields[0].lower() == "signal_type":
        return "pytx_csv"
    if len(fields) in (3, 4) and fields[0].lstrip("-").isdigit():
        return "vpdq_txt"
    token = line.split()[0].split(",")[0]
    if len(token) == 64 and _HEX.fullmatch(token):
        # A bare 64-hex list is either PDQ or SHA-256: the name must say which.
        name = path.name.lower()
        if "sha256" in name or len(line.split()) > 1:
            return "digest_list"
        if "pdq" in name or "," in line:
            return "pdq_list"
        raise BankError(
            f"{path}: 64-hex lines may be PDQ hashes or SHA-256 digests; put 'pdq' or 'sha256' in the "
            "file name, or give a ',quality' field for PDQ"
        )
    if len(token) in (32, 40) and _HEX.fullmatch(token):
        return "digest_list"
    raise BankError(f"{path}:{first[0]}: unrecognised hash list line {line[:80]!r}")


def _source(rel: str, kind: str, ref=None) -> tuple[str, str, str | None]:
    return (rel, kind, ref)


def import_vpdq_txt(writer: BankWriter, path: Path, rel: str, label: str | None) -> list[str]:
    """One video entry per file, id = file stem; duration = last timestamp (None without timestamps)."""
    frames, quals, hexes, stamps = [], [], [], []
    for number, line in _lines(path):
        f, q, h, t = parse_vpdq_line(line, source=str(path), line_number=number)
        frames.append(f)
        quals.append(q)
        hexes.append(h)
        stamps.append(t)
    fh = FrameHashes(np.asarray(frames), np.asarray(stamps, np.float64), np.asarray(quals), hex_to_hashes(hexes))
    finite = fh.timestamps_seconds[np.isfinite(fh.timestamps_seconds)]
    duration = float(finite.max()) if finite.size else None
    return [writer.add_frame_hashes(path.stem, label, _source(rel, "vpdq_txt"), "video", fh, duration)]


def import_pdq_list(writer: BankWriter, path: Path, rel: str, label: str | None) -> list[str]:
    """One 'pdq_list' entry per file: line i (0-based, among hash lines) is frame i.

    ``hex`` or ``hex,quality``; without quality the hash is stored with quality NULL.
    """
    hexes, quals = [], []
    for number, line in _lines(path):
        fields = [f.strip() for f in line.split(",")]
        if len(fields) > 2 or len(fields[0]) != 64 or not _HEX.fullmatch(fields[0]):
            raise BankError(f"{path}:{number}: expected 'pdq_hex[,quality]', got {line[:80]!r}")
        try:
            q = int(fields[1]) if len(fields) == 2 else -1
        except ValueError:
            raise BankError(f"{path}:{number}: invalid quality {fields[1]!r}") from None
        if len(fields) == 2 and not 0 <= q <= 100:
            raise BankError(f"{path}:{number}: quality {q} out of range 0..100")
        hexes.append(fields[0].lower())
        quals.append(q)
    given = all(q >= 0 for q in quals)
    if not given and any(q >= 0 for q in quals):
        raise BankError(f"{path}: give a quality on every line or on none")
    n = len(hexes)
    fh = FrameHashes(np.arange(n), np.full(n, np.nan), np.asarray(quals if given else [100] * n), hex_to_hashes(hexes))
    return [writer.add_frame_hashes(path.stem, label, _source(rel, "pdq_list"), "pdq_list", fh, qualities_given=given)]


def import_digest_list(writer: BankWriter, path: Path, rel: str, label: str | None) -> list[str]:
    """One entry per line: ``digest`` or ``digest  name`` (md5sum style, ``*name`` too); id = stem:line."""
    added = []
    for number, line in _lines(path):
        parts = line.split(maxsplit=1)
        digest = parts[0].lower()
        algorithm = ALGORITHMS.get(len(digest))
        if algorithm is None or not _HEX.fullmatch(digest):
            raise BankError(f"{path}:{number}: expected an MD5, SHA-1 or SHA-256 hex digest, got {parts[0][:80]!r}")
        name = parts[1].lstrip("*") if len(parts) == 2 else None
        ref = f"{number}:{name}" if name else str(number)
        added.append(writer.add_file_digest(f"{path.stem}:{number}", label, _source(rel, "digest_list", ref), algorithm, digest))
    return added


_PYTX_TYPES = {
    "pdq": "pdq",
    "hash_pdq": "pdq",
    "video_md5": "md5",
    "hash_md5": "md5",
    "hash_video_md5": "md5",
    "md5": "md5",
    "sha256": "sha256",
    "hash_sha256": "sha256",
    "video_sha256": "sha256",
    "sha1": "sha1",
    "hash_sha1": "sha1",
}


def import_pytx_csv(writer: BankWriter, path: Path, rel: str, label: str | None) -> list[str]:
    """pytx ``signal_type,signal_str,collab,category,tags``; one entry per row, id = stem:line.

    PDQ rows become 'image' entries (one hash, quality NULL); digest rows 'file_digest'.
    Label: ``label`` if given, else category, else tags, else None.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BankError(f"Cannot read pytx CSV {path}: {exc}") from exc
    added = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        row = [c.strip() for c in row]
        if number == 1 and row[0].lower() == "signal_type":
            continue
        if len(row) < 2 or len(row) > 5:
            raise BankError(f"{path}:{number}: expected signal_type,signal_str[,collab,category,tags], got {len(row)} fields")
        signal = _PYTX_TYPES.get(row[0].lower())
        if signal is None:
            raise BankError(
                f"{path}:{number}: unsupported signal type {row[0]!r}. Supported values are {', '.join(sorted(_PYTX_TYPES))}"
            )
        category = row[3] if len(row) > 3 and row[3] else None
        tags = row[4] if len(row) > 4 and row[4] else None
        row_label = label or category or tags
        entry_id, source = f"{path.stem}:{number}", _source(rel, "pytx_csv", str(number))
        if signal == "pdq":
            try:
                hashes = hex_to_hashes([row[1]])
            except BankError:
                raise BankError(f"{path}:{number}: invalid PDQ hex {row[1][:80]!r}") from None
            fh = FrameHashes([0], [np.nan], [100], hashes)
            added.append(writer.add_frame_hashes(entry_id, row_label, source, "image", fh, qualities_given=False))
        else:
            try:
                added.append(writer.add_file_digest(entry_id, row_label, source, signal, row[1]))
            except BankError as exc:
                raise BankError(f"{path}:{number}: {exc}") from None
    return added


def import_media(
    writer: BankWriter, path: Path, rel: str, label: str | None, hash_media: HashMedia | None
) -> list[str]:
    if hash_media is None:
        raise BankError(f"{path}: media file given but no media hasher (hash_media) was supplied")
    fh, duration, *rest = hash_media(path)
    kind: Kind = "image" if path.suffix.lower() in IMAGE_EXTENSIONS else "video"
    entry_id = writer.add_frame_hashes(path.stem, label, _source(rel, "media"), kind, fh, duration)
    if rest and rest[0] is not None and len(rest[0]):
        writer.add_extra_hashes(entry_id, rest[0])
    # The file's own digests too, so a byte-identical re-upload is an exact hit.
    sha256, md5, _ = file_digests(path)
    for algorithm, digest in (("md5", md5), ("sha256", sha256)):
        writer.conn.execute("INSERT INTO file_digests VALUES (?, ?, ?)", (entry_id, algorithm, digest))
    return [entry_id]


_IMPORTERS = {
    "vpdq_txt": import_vpdq_txt,
    "pdq_list": import_pdq_list,
    "digest_list": import_digest_list,
    "pytx_csv": import_pytx_csv,
}


def import_file(
    writer: BankWriter,
    path: Path,
    *,
    rel: str | None = None,
    label: str | None = None,
    hash_media: HashMedia | None = None,
    input_type: InputType | None = None,
) -> list[str]:
    """Adds one input file to ``writer``; returns the entry ids added."""
    path = Path(path)
    rel = rel or path.name
    input_type = input_type or detect_input_type(path)
    if input_type is None:
        raise BankError(f"{path}: not a hash list or media file we know (extension {path.suffix!r})")
    if input_type == "media":
        return import_media(writer, path, rel, label, hash_media)
    if input_type not in _IMPORTERS:
        raise BankError(f"Invalid input type ({input_type!r}). Supported values are {', '.join([*_IMPORTERS, 'media'])}")
    return _IMPORTERS[input_type](writer, path, rel, label)


def _walk(inputs: Sequence[Path]) -> Iterator[tuple[Path, str, bool]]:
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


def build_bank(
    out_path: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    *,
    label: str | None = None,
    hash_media: HashMedia | None = None,
) -> "BankInfo":
    """Builds a bank from files and directories (recursive, sorted).

    Files in a directory that are neither hash lists nor media are skipped and
    listed in ``meta.skipped_inputs``; such a file named directly is an error.
    """
    with BankWriter(out_path) as writer:
        for path, rel, walked in _walk([Path(p) for p in inputs]):
            if walked and path.suffix.lower() not in MEDIA_EXTENSIONS | TEXT_EXTENSIONS:
                writer.skipped_inputs.append(rel)
                continue
            import_file(writer, path, rel=rel, label=label, hash_media=hash_media)
    with Bank(out_path) as bank:
        return bank.info()


# ----------------------------------------------------------------------------- reader


@dataclass(frozen=True)
class BankInfo:
    path: str
    format_version: int
    created_by: str
    num_entries: int
    num_frame_hashes: int
    num_digests: int
    labels: dict[str, int]  # label ('' for none) -> number of entries
    kinds: dict[str, int]
    skipped_inputs: tuple[str, ...]
    content_sha256: str  # over all rows in key order: independent of SQLite's file layout
    file_sha256: str


@dataclass(frozen=True)
class ExtraRows:
    """Extra rows in memory: ``frame_rows`` index the BankIndex frame arrays."""

    frame_rows: np.ndarray  # int64 [K]
    preps: tuple[str, ...]
    qualities: np.ndarray  # int32 [K]
    hashes: np.ndarray  # uint8 [K, 32]


@dataclass
class BankIndex:
    """A bank in memory, ready for matching. Frames sorted by (entry row, frame number)."""

    entry_ids: list[str]
    labels: list[str | None]
    kinds: list[str]
    durations_seconds: np.ndarray  # float64 [E], NaN if unknown
    hashes: np.ndarray  # uint8 [M, 32]
    entry_rows: np.ndarray  # int32 [M]: row into entry_ids
    frame_numbers: np.ndarray  # int64 [M]
    timestamps_seconds: np.ndarray  # float64 [M], NaN if unknown
    qualities: np.ndarray  # int32 [M], 100 where the source gave none
    digests: dict[tuple[str, str], list[str]]  # (algorithm, hex) -> entry ids
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # derived search structures
    extra: ExtraRows | None = None  # table extra_hashes (None when the bank has none)

    @property
    def num_entries(self) -> int:
        return len(self.entry_ids)

    def __len__(self) -> int:
        return int(self.hashes.shape[0])


class Bank:
    """Read-only access to a bank file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise BankError(f"Bank file not found: {self.path}")
        try:
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            meta = dict(self._conn.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            raise BankError(f"{self.path} is not a vscan bank: {exc}") from exc
        self.meta = meta
        version = int(meta.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise BankError(f"{self.path}: unsupported bank format version {version} (this vscan reads {FORMAT_VERSION})")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Bank":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def has_extra_hashes(self) -> bool:
        return self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'extra_hashes'").fetchone() is not None

    def rows(self, table: Literal["entries", "frame_hashes", "file_digests", "extra_hashes"]) -> list[tuple]:
        order = {"entries": "entry_id", "frame_hashes": "entry_id, frame_number", "file_digests": "algorithm, digest, entry_id"}
        if table == "extra_hashes":
            return self._conn.execute("SELECT * FROM extra_hashes ORDER BY entry_id, frame_number, prep").fetchall() if self.has_extra_hashes else []
        if table not in order:
            raise BankError(f"Invalid table ({table!r}). Supported values are {', '.join(order)}")
        return self._conn.execute(f"SELECT * FROM {table} ORDER BY {order[table]}").fetchall()

    def info(self) -> BankInfo:
        c = self._conn
        content = hashlib.sha256()
        for table in ("entries", "frame_hashes", "file_digests"):
            content.update(table.encode())
            for row in self.rows(table):
                content.update(repr(row).encode())
        extra_rows = self.rows("extra_hashes")
        if extra_rows:  # banks without extra rows keep the checksum they always had
            content.update(b"extra_hashes")
            for row in extra_rows:
                content.update(repr(row).encode())
        file_hash = sha256_file(self.path)
        labels = Counter(label or "" for (label,) in c.execute("SELECT label FROM entries"))
        kinds = Counter(kind for (kind,) in c.execute("SELECT kind FROM entries"))
        return BankInfo(
            path=str(self.path),
            format_version=int(self.meta["format_version"]),
            created_by=self.meta.get("created_by", ""),
            num_entries=c.execute("SELECT count(*) FROM entries").fetchone()[0],
            num_frame_hashes=c.execute("SELECT count(*) FROM frame_hashes").fetchone()[0],
            num_digests=c.execute("SELECT count(*) FROM file_digests").fetchone()[0],
            labels=dict(sorted(labels.items())),
            kinds=dict(sorted(kinds.items())),
            skipped_inputs=tuple(json.loads(self.meta.get("skipped_inputs", "[]"))),
            content_sha256=content.hexdigest(),
            file_sha256=file_hash,
        )

    def load_index(self) -> BankIndex:
        c = self._conn
        entries = c.execute("SELECT entry_id, label, kind, duration_seconds FROM entries ORDER BY entry_id").fetchall()
        row_of = {e[0]: i for i, e in enumerate(entries)}
        frames = c.execute(
            "SELECT entry_id, frame_number, timestamp_seconds, quality, hash FROM frame_hashes "
            "ORDER BY entry_id, frame_number"
        ).fetchall()
        m = len(frames)
        hashes = np.frombuffer(b"".join(f[4] for f in frames), np.uint8).reshape(m, 32).copy()
        digests: dict[tuple[str, str], list[str]] = {}
        for entry_id, algorithm, digest in c.execute("SELECT * FROM file_digests ORDER BY algorithm, digest, entry_id"):
            digests.setdefault((algorithm, digest), []).append(entry_id)
        extra = None
        extra_rows = self.rows("extra_hashes")
        if extra_rows:
            row_of_frame = {(f[0], f[1]): i for i, f in enumerate(frames)}
            known = [r for r in extra_rows if (r[0], r[1]) in row_of_frame]
            extra = ExtraRows(
                frame_rows=np.asarray([row_of_frame[(r[0], r[1])] for r in known], np.int64),
                preps=tuple(r[2] for r in known),
                qualities=np.asarray([100 if r[3] is None else r[3] for r in known], np.int32),
                hashes=np.frombuffer(b"".join(r[4] for r in known), np.uint8).reshape(len(known), 32).copy(),
            )
        return BankIndex(
            entry_ids=[e[0] for e in entries],
            labels=[e[1] for e in entries],
            kinds=[e[2] for e in entries],
            durations_seconds=np.asarray([np.nan if e[3] is None else e[3] for e in entries], np.float64),
            hashes=hashes,
            entry_rows=np.asarray([row_of[f[0]] for f in frames], np.int32),
            frame_numbers=np.asarray([f[1] for f in frames], np.int64),
            timestamps_seconds=np.asarray([np.nan if f[2] is None else f[2] for f in frames], np.float64),
            qualities=np.asarray([100 if f[3] is None else f[3] for f in frames], np.int32),
            digests=digests,
            extra=extra,
        )

"""Known-benign digest lists (``--ignore``): NIST NSRL RDSv3 SQLite and plain MD5/SHA-1/SHA-256 lists.

A file whose digest is on a list is known software or content, not evidence
of anything: it need not be decoded, and its record says which list (name
and version) knew it. Lists are opened read-only. A file whose digest the scan's bank
holds (any of its digests: the bank may know its SHA-256, the list its MD5)
is never benign (:func:`load_lists`): a reported file that also sits on a
list (a list that is wrong, or poisoned) is decoded and matched, never skipped.

* NSRL RDSv3: one SQLite file whose ``FILE`` view (or table) has ``sha256``,
  ``sha1``, ``md5`` columns; its version is the ``VERSION`` table's first
  row (``version`` column), its name ``NSRL RDSv3``.
* A plain list: one hex digest per line (MD5, SHA-1 or SHA-256, told apart
  by length; mixed lengths allowed), ``#`` comments and blank lines skipped,
  anything after the first space or comma ignored (``md5sum`` output, CSV).
  A ``# version: X`` line sets its version; its name is the file name.

Lookups: every digest is held as raw bytes in one sorted numpy array per
digest length (16, 20 or 32 bytes a digest), searched by bisection
(``np.searchsorted``): memory is the digests themselves, a lookup is
O(log n) (about 25 comparisons for tens of millions), and a batch of
digests is looked up in one call. ``bench_known_benign`` measures it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from dataclasses import dataclass, field

import numpy as np

from vscan.errors import InputError

__all__ = ["KnownBenignError", "DigestList", "load_list", "load_lists"]

_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256"}
_BATCH = 1 << 20


class KnownBenignError(InputError):
    """A known-benign list is missing or malformed."""


@dataclass
class DigestList:
    """One known-benign list: its name, version, and sorted digests by kind."""

    name: str
    version: str
    path: str
    digests: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> sorted |S16/|S20/|S32
    #: The scan bank's file digests (one object shared by every list of a scan), or None.
    reported: "DigestList | None" = None

    def __len__(self) -> int:
        return sum(len(a) for a in self.digests.values())

    def contains(self, kind: str, hex_digests: list[str]) -> np.ndarray:
        """True where a digest of ``kind`` ("md5", "sha1", "sha256") is listed."""
        table = self.digests.get(kind)
        if table is None or not len(table) or not hex_digests:
            return np.zeros(len(hex_digests), bool)
        query = np.array([bytes.fromhex(h) for h in hex_digests], dtype=table.dtype)
        at = np.minimum(np.searchsorted(table, query), len(table) - 1)
        return table[at] == query

    def lookup(self, *, sha256: str | None = None, sha1: str | None = None, md5: str | None = None) -> dict | None:
        """``{"list", "version", "digest"}`` when any given digest is listed, else None; always None
        when the bank holds any of them (``reported``: a reported file is matched, never skipped)."""
        if self.reported is not None and self.reported._holds(sha256=sha256, sha1=sha1, md5=md5):
            return None
        return self._hit(sha256=sha256, sha1=sha1, md5=md5)

    def _holds(self, **digests: str | None) -> bool:
        return self._hit(**digests) is not None

    def _hit(self, *, sha256: str | None = None, sha1: str | None = None, md5: str | None = None) -> dict | None:
        for kind, value in (("sha256", sha256), ("sha1", sha1), ("md5", md5)):
            if value and self.contains(kind, [value.lower()])[0]:
                return {"list": self.name, "version": self.version, "digest": kind}
        return None


def _sorted(chunks: dict[int, list[np.ndarray]]) -> dict[str, np.ndarray]:
    out = {}
    for size, parts in chunks.items():
        table = np.unique(np.concatenate(parts)) if parts else np.zeros(0, f"S{size}")
        out[_LENGTHS[size * 2]] = table
    return out


def _from_hex(values: list[str], size: int) -> np.ndarray:
    return np.frombuffer(bytes.fromhex("".join(values)), dtype=f"S{size}")


def _checked_hex(path: str, values: list[str], size: int) -> np.ndarray:
    """_from_hex, naming the first value that is not hex."""
    try:
        return _from_hex(values, size)
    except ValueError:
        bad = next(v for v in values if any(c not in "0123456789abcdef" for c in v))
        raise KnownBenignError(f"{path}: not an MD5, SHA-1 or SHA-256 hex digest: {bad[:80]!r}") from None


def _load_nsrl(path: str) -> DigestList:
    try:
        # A URI from the quoted path: a '#' or '?' in a case folder names no other file.
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise KnownBenignError(f"{path}: cannot open as SQLite: {exc}") from exc
    try:
        try:
            row = db.execute("SELECT * FROM VERSION LIMIT 1").fetchone()
            names = [d[0].lower() for d in db.execute("SELECT * FROM VERSION LIMIT 0").description]
            version = str(row[names.index("version")] if "version" in names else row[0]) if row else "unknown"
        except sqlite3.Error:
            version = "unknown"
        chunks: dict[int, list[np.ndarray]] = {16: [], 20: [], 32: []}
        for column, size in (("sha256", 32), ("sha1", 20), ("md5", 16)):
            cursor = db.execute(f"SELECT {column} FROM FILE WHERE {column} IS NOT NULL AND length({column}) = {size * 2}")
            while rows := cursor.fetchmany(_BATCH):
                chunks[size].append(_from_hex([r[0] for r in rows], size))
    except (sqlite3.Error, ValueError) as exc:
        raise KnownBenignError(f"{path}: not an NSRL RDSv3 database (a FILE view with sha256, sha1, md5): {exc}") from exc
    finally:
        db.close()
    return DigestList("NSRL RDSv3", version, path, _sorted(chunks))


def _load_plain(path: str) -> DigestList:
    version = "unknown"
    pending: dict[int, list[str]] = {16: [], 20: [], 32: []}
    chunks: dict[int, list[np.ndarray]] = {16: [], 20: [], 32: []}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                if text[1:].strip().lower().startswith("version:"):
                    version = text.split(":", 1)[1].strip()
                continue
            value = text.replace(",", " ").split()[0].lower()
            size = len(value) // 2
            if len(value) not in _LENGTHS:
                raise KnownBenignError(f"{path}: line {number}: not an MD5, SHA-1 or SHA-256 hex digest: {value[:80]!r}")
            pending[size].append(value)
            if len(pending[size]) >= _BATCH:
                chunks[size].append(_checked_hex(path, pending[size], size))
                pending[size] = []
    for size, values in pending.items():
        if values:
            chunks[size].append(_checked_hex(path, values, size))
    return DigestList(os.path.basename(path), version, path, _sorted(chunks))


def load_list(path: str | os.PathLike) -> DigestList:
    """The list at ``path``: NSRL RDSv3 when it is SQLite, else a plain digest list."""
    path = str(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(16)
    except OSError as exc:
        raise KnownBenignError(f"{path}: cannot read known-benign list: {exc}") from exc
    return _load_nsrl(path) if magic == b"SQLite format 3\x00" else _load_plain(path)


def _bank_digests(bank_path: str) -> dict[str, np.ndarray]:
    """The bank's file digests by kind, as raw bytes (vscan.bank: table ``file_digests``)."""
    uri = f"{Path(bank_path).resolve().as_uri()}?mode=ro"  # quoted: a '#' in a case folder names no other file
    chunks: dict[int, list[np.ndarray]] = {16: [], 20: [], 32: []}
    sizes = {"md5": 16, "sha1": 20, "sha256": 32}
    db = sqlite3.connect(uri, uri=True)
    try:
        for kind, size in sizes.items():
            cursor = db.execute("SELECT DISTINCT lower(digest) FROM file_digests WHERE algorithm = ? AND length(digest) = ?",
                                (kind, size * 2))  # fmt: skip
            while rows := cursor.fetchmany(_BATCH):
                chunks[size].append(_from_hex([r[0] for r in rows], size))
    except (sqlite3.Error, ValueError) as exc:
        raise KnownBenignError(f"{bank_path}: cannot read the bank's file digests to keep them off the known-benign lists: {exc}") from exc
    finally:
        db.close()
    return _sorted(chunks)


def load_lists(paths: "list[str | os.PathLike] | tuple[str | os.PathLike, ...]", bank_path: str | os.PathLike | None = None) -> list[DigestList]:
    """The lists at ``paths`` (:func:`load_list`), each told the file digests of the bank at
    ``bank_path``: a file the bank knows by any of its digests is matched, never skipped as benign
    (one shared copy of the bank's digests, only when there are lists)."""
    lists = [load_list(p) for p in paths]
    if lists and bank_path is not None:
        reported = DigestList("bank", "", str(bank_path), _bank_digests(str(bank_path)))
        for digest_list in lists:
            digest_list.reported = reported
    return lists

"""Looking hashes up in a bank, for platforms that hash elsewhere and only need matching.

    with BankLookup.open("stopncii.bank") as lookup:    # opens (or first builds) the index
        for hit in lookup.lookup(hashes, radius=31, dihedral=True):
            ...                                          # one dict per query hash

The index (``vscan.bank.disk_index.SplitIndex``) lives beside the bank, in
``<bank>.vidx/``, memory-mapped; its ``rowids.npy`` maps index rows to the
bank's ``frame_hashes`` rows, and the row table beside it
(``vscan.bank.row_table``, written with it) says what each row is: entry id,
frame number, time, quality. Entry metadata (labels, kinds) is read from the
bank when asked for (``vscan.bank.entry_table``). Rows the bank gained after the index was built
(appended imports) form a delta segment, searched by brute force; disabled
entries are a bitmap over both, read from the bank at open. So adding and
disabling never rebuild anything; ``compact`` (``vscan bank compact``)
rebuilds the index to take the delta in, and ``open`` rebuilds a missing or
stale index (a bank rewritten since).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np

from vscan.bank.disk_index import SplitIndex, dedupe_pairs
from vscan.bank.index import brute_force_pairs
from vscan.bank.mapped_build import ensure_scan_arrays, scan_arrays_fresh
from vscan.bank.row_table import RowTable, rows_after
from vscan.bank.updates import has_table
from vscan.errors import BankError
from vscan.hashing.pdq_ops import DIHEDRAL_NAMES

__all__ = ["BankLookup", "index_path", "build_index", "bank_generation", "compact", "DELTA_COMPACT_ROWS"]

#: A delta segment larger than this is worth compacting (``vscan bank compact``).
DELTA_COMPACT_ROWS = 200_000


def index_path(bank_path: str | os.PathLike) -> Path:
    return Path(f"{bank_path}.vidx")


def _connect(bank_path: Path) -> sqlite3.Connection:
    if not bank_path.is_file():
        raise BankError(f"Bank file not found: {bank_path}")
    try:
        conn = sqlite3.connect(f"file:{bank_path}?mode=ro", uri=True)
        conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BankError(f"{bank_path} is not a vscan bank: {exc}") from exc
    return conn


def build_index(bank_path: str | os.PathLike) -> SplitIndex:
    """(Re)builds ``<bank>.vidx`` over every frame row of the bank."""
    bank_path = Path(bank_path)
    conn = _connect(bank_path)
    try:
        with conn:  # one read transaction: the rows and the generation they are of
            conn.execute("BEGIN")
            rowids, hashes, _ = rows_after(conn, 0, fields=False)
            lineage, generation = bank_generation(conn)
    finally:
        conn.close()
    meta = {"max_rowid": int(rowids[-1]) if rowids.size else 0, "bank": bank_path.name,
            "first_hash": hashes[0].tobytes().hex() if rowids.size else "", "last_hash": hashes[-1].tobytes().hex() if rowids.size else "",
            "lineage": lineage, "generation": generation}  # fmt: skip
    target = index_path(bank_path)
    index = SplitIndex.build(hashes, target, meta=meta)
    np.save(target / "rowids.npy", rowids)
    return index


def bank_generation(conn: sqlite3.Connection) -> tuple[str | None, str | None]:
    """(lineage, generation) of the bank (``vscan.bank.store.Bank.generation``, ``lineage``);
    None for what a bank written before they were kept lacks (one row each to read)."""
    meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('lineage', 'content_digest')"))
    return meta.get("lineage"), meta.get("content_digest")


def _fresh(conn: sqlite3.Connection, index: SplitIndex) -> bool:
    """Whether the index still describes the bank: built from the same lineage (the bank
    was not rebuilt since; later generations only appended rows, read as the delta,
    or disabled entries, read at open) and holding its first rows."""
    meta = index.meta
    lineage, generation = bank_generation(conn)
    if generation is not None and meta.get("generation") == generation:
        return True
    if lineage is not None and meta.get("lineage") != lineage:
        return False
    n = conn.execute("SELECT count(*) FROM frame_hashes WHERE rowid <= ?", (meta.get("max_rowid", 0),)).fetchone()[0]
    if n != len(index):
        return False
    if not n:
        return True
    first = conn.execute("SELECT hash FROM frame_hashes ORDER BY rowid LIMIT 1").fetchone()[0]
    last = conn.execute("SELECT hash FROM frame_hashes WHERE rowid = ?", (meta["max_rowid"],)).fetchone()
    return first.hex() == meta.get("first_hash") and last is not None and last[0].hex() == meta.get("last_hash")


class BankLookup:
    """A bank's hashes, searchable: the memory-mapped index of row ids, the row table behind it
    (``vscan.bank.row_table``: what each row is, the delta segment among them) and the disabled bitmap."""

    def __init__(self, bank_path: str | os.PathLike, *, build: bool = True, device: str = "cpu", upto: int | None = None):
        """``device``: "cpu" (the index), or "cuda": brute force over the
        indexed hashes held on the GPU (``vscan.kernels.hamming``, torch). ``build``: (re)build
        the index and its row table where missing or stale, else BankError. ``upto``: the
        last frame_hashes rowid to read (a scan's snapshot; every row without one)."""
        if device not in ("cpu", "cuda"):
            raise BankError(f"Invalid device ({device!r}). Supported values are 'cpu', 'cuda'")
        self.device = device
        self._on_gpu = None
        self.bank_path = Path(bank_path)
        self._conn = _connect(self.bank_path)
        target = index_path(self.bank_path)
        index = None
        if (target / "index.json").is_file() and (target / "rowids.npy").is_file():
            index = SplitIndex.open(target)
            if not _fresh(self._conn, index):
                index = None
        if index is None:
            if not build:
                raise BankError(f"{self.bank_path}: no up-to-date index; run vscan bank compact")
            index = build_index(self.bank_path)
        self.index = index
        if not scan_arrays_fresh(index):
            if not build:
                raise BankError(f"{self.bank_path}: no up-to-date row table beside the index; run vscan bank compact")
            ensure_scan_arrays(self._conn, index)
        self.table = RowTable(index, self._conn, upto=upto)
        self.rowids = self.table.rowids
        self.delta_rowids, self.delta_hashes = self.table.delta_rowids, self.table.delta_hashes
        self.disabled_entries: set[str] = set()
        self.disabled = np.zeros(0, np.uint8)
        self.delta_disabled = np.zeros(self.delta_rowids.size, np.uint8)
        if has_table(self._conn, "disabled_entries"):
            self.disabled_entries = {e for (e,) in self._conn.execute("SELECT entry_id FROM disabled_entries")}
            # their rows, from the row table (each entry's index rows; the delta's entries)
            numbers = [e for e in (self.table.entry_of(i, add=False) for i in sorted(self.disabled_entries)) if e is not None]
            main = [self.table.index_rows_of(e) for e in numbers]
            if sum(r.size for r in main):
                self.disabled = np.zeros(len(index), np.uint8)
                self.disabled[np.concatenate(main)] = 1
            # the delta's rows of them: one indexed query (its entries are read only when asked for)
            self.delta_disabled[self.table.delta_rows_of(sorted(self.disabled_entries), self._conn)] = 1

    @classmethod
    def open(cls, bank_path: str | os.PathLike, *, build: bool = True, device: str = "cpu", upto: int | None = None) -> "BankLookup":
        return cls(bank_path, build=build, device=device, upto=upto)

    def _search_main(self, queries: np.ndarray, radius: int):
        disabled = self.disabled if self.disabled.size else None
        if self.device == "cpu" or not len(self.index):
            return self.index.search(queries, radius, disabled=disabled)
        import torch

        from vscan.kernels.hamming import radius_search

        if self._on_gpu is None:  # the indexed hashes, uploaded once (32 bytes a hash)
            self._on_gpu = torch.from_numpy(np.asarray(self.index.hashes)).to("cuda")
        q, row, d = (t.cpu().numpy() for t in radius_search(torch.from_numpy(queries).to("cuda"), self._on_gpu, radius))
        if disabled is not None:
            keep = disabled[row] == 0
            q, row, d = q[keep], row[keep], d[keep]
        return dedupe_pairs(q, row, d, len(self.index))

    def close(self) -> None:
        self.table.close()
        self._conn.close()

    def __enter__(self) -> "BankLookup":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def delta_size(self) -> int:
        return int(self.delta_rowids.size)

    def search(self, queries: np.ndarray, radius: int = 31) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every enabled bank row within ``radius`` of each query: (q int64,
        frame_hashes rowid int64, distance int16), sorted by (q, rowid)."""
        if not 0 <= radius <= 256:
            raise BankError(f"Invalid radius ({radius}). Supported values are 0..256")
        queries = np.ascontiguousarray(queries, np.uint8).reshape(-1, 32)
        q, row, d = self._search_main(queries, radius)
        rowid = np.asarray(self.rowids[row]) if row.size else np.zeros(0, np.int64)
        if self.delta_size:
            dq, db, dd = brute_force_pairs(queries, self.delta_hashes, radius)
            keep = self.delta_disabled[db] == 0
            q, rowid, d = np.concatenate([q, dq[keep]]), np.concatenate([rowid, self.delta_rowids[db[keep]]]), np.concatenate([d, dd[keep]])
            q, rowid, d = dedupe_pairs(q, rowid, d, int(rowid.max(initial=0)) + 1)
        return q, rowid, d

    def rows(self, rowids: np.ndarray) -> dict[int, tuple[str, int]]:
        """rowid -> (entry id, frame number), from the row table."""
        return {r: (e, f) for r, (e, f, _) in self.table.where(rowids).items()}

    def lookup(self, queries: np.ndarray, radius: int = 31, *, dihedral: bool = False, lines: np.ndarray | None = None) -> list[dict]:
        """One dict per query hash: ``line`` (``lines[i]``, else i + 1), ``hash``
        (hex) and ``matches``: every enabled bank row within ``radius`` as
        {entry, frame, distance} (with ``dihedral``: and ``variant``, the
        variant of the query that matched, ``vscan.bank.hash_input``), nearest first.
        What a scan searches for a hash, the bank's extra rows too (``vscan bank
        lookup --robust``), is ``vscan.bank.matcher.robust_lookup``."""
        from vscan.bank.hash_input import dihedral_variants

        queries = np.ascontiguousarray(queries, np.uint8).reshape(-1, 32)
        n = queries.shape[0]
        searched = dihedral_variants(queries).reshape(-1, 32) if dihedral else queries
        q, rowid, d = self.search(searched, radius)
        variant = q % 8 if dihedral else np.zeros(q.size, np.int64)
        owner = q // 8 if dihedral else q
        if dihedral and q.size:  # per (query, row): the nearest variant
            order = np.lexsort((variant, d, rowid, owner))
            owner, rowid, d, variant = owner[order], rowid[order], d[order], variant[order]
            first = np.ones(owner.size, bool)
            first[1:] = (owner[1:] != owner[:-1]) | (rowid[1:] != rowid[:-1])
            owner, rowid, d, variant = owner[first], rowid[first], d[first], variant[first]
        where = self.rows(rowid)
        out = [{"line": int(lines[i]) if lines is not None else i + 1, "hash": queries[i].tobytes().hex(), "matches": []} for i in range(n)]
        for o, r, dist, v in zip(owner.tolist(), rowid.tolist(), d.tolist(), variant.tolist()):
            entry, frame = where[r]
            hit = {"entry": entry, "frame": int(frame), "distance": int(dist)}
            if dihedral:
                hit["variant"] = DIHEDRAL_NAMES[v]
            out[o]["matches"].append(hit)
        for item in out:
            item["matches"].sort(key=lambda h: (h["distance"], h["entry"], h["frame"]))
        return out

    def describe(self) -> dict:
        return {"bank": str(self.bank_path), "index": str(self.index.path), "indexed_rows": len(self.index),
                "delta_rows": self.delta_size, "disabled_entries": len(self.disabled_entries),
                "compact_advised": self.delta_size > DELTA_COMPACT_ROWS}  # fmt: skip


def compact(bank_path: str | os.PathLike) -> dict:
    """Rebuilds the index over every row (the delta segment folded in)."""
    build_index(bank_path)
    with BankLookup(bank_path) as lookup:
        return lookup.describe()


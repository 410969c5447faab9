"""A persisted, memory-mapped exact radius index over PDQ hashes (10M-100M rows).

    index = SplitIndex.build(hashes, "bank.vidx")      # writes .npy files
    index = SplitIndex.open("bank.vidx")               # memory-mapped: opens in milliseconds
    q, row, dist = index.search(queries, 31)           # exact, sorted by (q, row)

Files (plain ``.npy``, opened with ``mmap_mode='r'``): ``hashes`` uint8 [N, 32],
``ids`` uint32 [16, N] (per 16-bit half: the rows sorted by its value),
``partner`` uint16 [16, N] (the other half of the same 32-bit substring, beside
each id), ``offsets`` int64 [16, 65537] (bucket starts). Memory: 128 bytes per
hash (32 of hash, 64 of ids, 32 of partner), mapped from the page cache, so
several processes on a node share one copy. The algorithm, exact for any
radius, is described in ``vscan.bank.mih_kernel`` (numba); it runs up to
radius 63; beyond, or without numba, the search is numpy (brute force, or
``vscan.bank.index.MultiIndexHashing`` built in memory).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from vscan.bank import mih_kernel
from vscan.bank.index import MultiIndexHashing, brute_force_pairs
from vscan.errors import BankError

__all__ = ["SplitIndex", "MAX_INDEX_RADIUS", "dedupe_pairs"]

INDEX_VERSION = 1
#: Above this radius the split index probes too much: brute force instead.
MAX_INDEX_RADIUS = 63
_FILES = ("hashes", "ids", "partner", "offsets")


def dedupe_pairs(q: np.ndarray, row: np.ndarray, dist: np.ndarray, n_rows: int):
    """(q, row, dist) sorted by (q, row), each pair once."""
    if q.size == 0:
        return q.astype(np.int64), row.astype(np.int64), dist.astype(np.int16)
    key = q.astype(np.int64) * max(n_rows, 1) + row
    key, first = np.unique(key, return_index=True)
    qq, rr = np.divmod(key, max(n_rows, 1))
    return qq, rr, dist[first].astype(np.int16)


def _on_huge_pages(array: np.ndarray) -> np.ndarray:
    """A copy of ``array`` in anonymous memory advised for transparent huge pages."""
    import mmap

    if array.nbytes == 0:
        return np.array(array)
    buf = mmap.mmap(-1, array.nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        buf.madvise(mmap.MADV_HUGEPAGE)
    out = np.frombuffer(buf, array.dtype).reshape(array.shape)
    out[...] = array
    return out


def _prefault(arrays) -> None:
    """Touches one byte per page of memory-mapped ``arrays`` (SplitIndex.open)."""
    total = sum(a.nbytes for a in arrays)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if total > ram // 2:
        return
    for a in arrays:
        if a.size:
            int(a.reshape(-1).view(np.uint8)[::4096].sum())


def _fill_tables(hashes: np.ndarray, ids: np.ndarray, partner: np.ndarray, offsets: np.ndarray) -> None:
    """Per 16-bit half t: the rows sorted by its value (ids), the partner half beside each, bucket starts."""
    halves = _halves(hashes)
    for t in range(16):
        key = np.ascontiguousarray(halves[:, t])
        order = np.argsort(key, kind="stable")  # radix sort on uint16
        ids[t] = order
        partner[t] = halves[order, t ^ 1]
        np.cumsum(np.bincount(key, minlength=1 << 16), out=offsets[t, 1:])
        del order, key


def _halves(hashes: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(hashes, np.uint8).view("<u2")  # [N, 16]


class SplitIndex:
    """Exact radius search over a fixed set of hashes, persisted as .npy files; see the module docstring."""

    def __init__(self, path: Path, arrays: dict[str, np.ndarray], meta: dict):
        self.path = path
        self.meta = meta
        self.hashes = arrays["hashes"]
        self.ids = arrays["ids"]
        self.partner = arrays["partner"]
        self.offsets = arrays["offsets"]
        self._words = self.hashes.view(np.uint64) if len(self.hashes) else np.zeros((0, 4), np.uint64)
        self._fallback: MultiIndexHashing | None = None
        self._columns: np.ndarray | None = None
        self._offsets32: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.hashes.shape[0])

    def _probe_offsets(self) -> np.ndarray:
        """The bucket offsets the compiled search probes: int32 in this process's memory where the rows fit, made on the
        first search (0.4 ms; on huge pages it took 3.8, for little more) and kept: 4 MB, not the file's 8 MB of int64, so
        more of the probes' random reads (272 a query at radius 16-31) hit the cache: the off-centre windows' lookups
        ~25% faster, the same values."""
        if self._offsets32 is None:
            self._offsets32 = np.ascontiguousarray(self.offsets, np.int32) if len(self) < 2**31 - 1 else self.offsets
        return self._offsets32

    def _bank_columns(self) -> np.ndarray | None:
        """The rows' words as columns (``vscan.hashing.hamming_numba.columns``), made on the first brute force where the
        compiled loop runs it, then kept (the index is fixed once open); None where numpy's loop runs."""
        from vscan.hashing import hamming_numba

        if not hamming_numba.loaded() or len(self) > hamming_numba.COLUMNS_MAX_ROWS:  # a copy as large as the rows: not kept
            return None
        if self._columns is None:
            self._columns = hamming_numba.columns(np.asarray(self.hashes))
        return self._columns

    @classmethod
    def build(cls, hashes: np.ndarray, path: str | os.PathLike, *, meta: dict | None = None) -> "SplitIndex":
        """Writes the index of ``hashes`` (uint8 [N, 32]) into folder ``path`` and opens it.

        Written table by table into memory-mapped files, so the build's extra
        memory is one table (N x 8 bytes for the sort) on top of the hashes.
        The folder is filled beside and renamed into place on success."""
        hashes = np.ascontiguousarray(hashes, np.uint8)
        if hashes.ndim != 2 or hashes.shape[1] != 32:
            raise ValueError(f"hashes must be uint8 [N, 32], got {hashes.dtype} {hashes.shape}")
        if hashes.shape[0] >= 2**32:
            raise ValueError(f"Too many hashes for one index ({hashes.shape[0]}); at most 2**32 - 1")
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=False)
        n = hashes.shape[0]
        try:
            out = np.lib.format.open_memmap(tmp / "hashes.npy", "w+", np.uint8, (n, 32))
            out[:] = hashes
            out.flush()
            del out
            ids = np.lib.format.open_memmap(tmp / "ids.npy", "w+", np.uint32, (16, n))
            partner = np.lib.format.open_memmap(tmp / "partner.npy", "w+", np.uint16, (16, n))
            offsets = np.zeros((16, (1 << 16) + 1), np.int64)
            _fill_tables(hashes, ids, partner, offsets)
            ids.flush()
            partner.flush()
            del ids, partner
            np.save(tmp / "offsets.npy", offsets)
            info = {"version": INDEX_VERSION, "num_hashes": int(n), **(meta or {})}
            (tmp / "index.json").write_text(json.dumps(info, sort_keys=True))
            if path.exists():
                old = path.with_name(f".{path.name}.old{os.getpid()}")
                path.rename(old)
                tmp.rename(path)
                shutil.rmtree(old)  # with any folder written beside the index (vscan.bank.mapped_build)
            else:
                tmp.rename(path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        return cls.open(path)

    @classmethod
    def from_hashes(cls, hashes: np.ndarray) -> "SplitIndex":
        """The index of ``hashes`` in memory, no files (the matchers' search over a loaded bank)."""
        hashes = np.ascontiguousarray(hashes, np.uint8)
        if hashes.ndim != 2 or hashes.shape[1] != 32:
            raise ValueError(f"hashes must be uint8 [N, 32], got {hashes.dtype} {hashes.shape}")
        n = hashes.shape[0]
        ids, partner = np.empty((16, n), np.uint32), np.empty((16, n), np.uint16)
        offsets = np.zeros((16, (1 << 16) + 1), np.int64)
        _fill_tables(hashes, ids, partner, offsets)
        arrays = {"hashes": hashes, "ids": ids, "partner": partner, "offsets": offsets}
        return cls(Path(), arrays, {"version": INDEX_VERSION, "num_hashes": int(n)})

    @classmethod
    def open(cls, path: str | os.PathLike, *, in_memory: bool = False, prefault: bool = True) -> "SplitIndex":
        """The index in folder ``path``, memory-mapped read-only (shared by every
        process of the node through the page cache). ``in_memory``: copied into
        this process's memory on transparent huge pages instead (fewer TLB
        misses on the random reads; seconds to open, not shared).
        ``prefault``: map every page now (0.1 s at 10M rows when the files are
        in the page cache), so the first lookups do not pay a page fault per
        bucket (half the speed until warm); skipped for an index larger than
        half this machine's memory."""
        path = Path(path)
        try:
            meta = json.loads((path / "index.json").read_text())
            arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in _FILES}
            if in_memory:
                arrays = {name: _on_huge_pages(a) for name, a in arrays.items()}
            elif prefault:
                _prefault(arrays.values())
        except (OSError, ValueError) as exc:
            raise BankError(f"Cannot open the index {path}: {exc}") from exc
        if meta.get("version") != INDEX_VERSION or arrays["hashes"].shape[0] != meta.get("num_hashes"):
            raise BankError(f"Index {path}: unsupported version or truncated files; rebuild it (vscan bank compact)")
        return cls(path, arrays, meta)

    def search(self, queries: np.ndarray, radius: int, *, disabled: np.ndarray | None = None):
        """Every (query, row) within ``radius``: (q int64, row int64, dist int16), sorted by (q, row).

        ``disabled``: uint8/bool [N], rows never returned (a disabled-row bitmap)."""
        queries = np.ascontiguousarray(queries, np.uint8)
        if queries.ndim != 2 or queries.shape[1] != 32:
            raise ValueError(f"queries must be uint8 [Q, 32], got {queries.dtype} {queries.shape}")
        n = len(self)
        if radius < 0 or not n or not len(queries):
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int16)
        dis = np.zeros(0, np.uint8) if disabled is None else np.ascontiguousarray(disabled, np.uint8)
        if mih_kernel.AVAILABLE and radius <= MAX_INDEX_RADIUS:
            q, row, d = mih_kernel.search_kernel(
                _halves(queries), queries.view(np.uint64), self._probe_offsets(), self.ids, self.partner, self._words, int(radius), dis
            )
            return dedupe_pairs(q, row, d, n)
        if radius <= MAX_INDEX_RADIUS:
            if self._fallback is None:
                self._fallback = MultiIndexHashing(np.asarray(self.hashes))
            q, row, d = self._fallback.search(queries, radius)
        else:  # the gates' 64 bits: every row, through its words as columns where numba runs it (kept: 8 B a word)
            q, row, d = brute_force_pairs(queries, np.asarray(self.hashes), radius, bank_columns=self._bank_columns())
        if dis.size and q.size:
            keep = dis[row] == 0
            q, row, d = q[keep], row[keep], d[keep]
        return q, row, d

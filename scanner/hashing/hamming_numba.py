"""Every (query, row) pair of 256-bit hashes within a radius, compiled (numba): ``vscan.bank.index.brute_force_pairs``'
loop where numba is already loaded.

The searches a file that matched nothing goes through look rows up at a gate of 64 bits
(``vscan.runtime.region_search.GATE_RADIUS``, and the rotation search's), one bit past what the bank's multi-index
search takes (``vscan.bank.disk_index.MAX_INDEX_RADIUS``), so each was a brute force over every bank row. numpy's
brute force makes ~13 passes over a tile of pairs (XOR, popcount and add per 64-bit word, then the compare); here each
pair is four XORs and popcounts in registers, ~5-10x fewer cycles (issue #30: ~25 ms of CPU a file where nothing matched).

The pairs and their order are numpy's: sorted by (query, row), distances int16. Only used where the process
has numba imported already (a scan's model worker loads it with the bank's kernel, ``ModelWorker._warm_bank_search``):
opening a bank or a one-off lookup never pays numba's import (0.3-0.8 s on a 2-core machine).
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["COLUMNS_FROM_QUERIES", "COLUMNS_MAX_ROWS", "MIN_PAIRS", "PARALLEL_MIN_PAIRS", "columns", "loaded", "on_threads", "pairs_within", "warm"]

#: Below this many (query, row) pairs numpy's brute force is as quick.
MIN_PAIRS = 20_000


def loaded() -> bool:
    """Whether numba is imported in this process (the compiled loop is then used)."""
    return "numba" in sys.modules


#: From this many queries the bank's words are laid out as columns for the search (``columns``), where not given:
#: the transposed copy costs about one query's pass in the row layout, and each query's pass is then ~3.5x cheaper.
COLUMNS_FROM_QUERIES = 4


#: Banks of more rows are searched in their own row layout, never copied as columns: the copy is as large as the bank's
#: rows (32 B a row: 128 MiB here), and a bank index keeps it for the process's life (``SplitIndex._bank_columns``),
#: beside the memory-mapped rows every process shares. A bank of 10M rows (issue #24's sizes) would hold 320 MB more in
#: every model worker. Over this, its brute force costs ~3.5x the CPU a query instead (the row layout's).
COLUMNS_MAX_ROWS = 1 << 22


#: From this many (query, row) pairs a search counts its pairs tile by tile, then writes them from the tiles that hold
#: some (not a second pass over every row for each query with a pair), its tiles on the calling thread's numba threads
#: (a model actor's ``threads``; ``numba.set_num_threads`` is per thread): a 10M-row bank's gates are ~10^9 pairs.
#: 10M rows, 128 hashes, 16 of them near rows: 0.60 s -> 0.44 s on one thread, 0.22 s on two (the same pairs).
#: Smaller searches stay on one thread in one loop (module docstring of ``_hamming_kernel``).
PARALLEL_MIN_PAIRS = 50_000_000
#: Queries a parallel search takes at a time: its per-tile counts are tiles x queries (int64).
_PARALLEL_QUERIES = 256


def on_threads(queries: int, rows: int) -> bool:
    """Whether a search of ``queries`` hashes against ``rows`` bank rows spreads its tiles over threads (``PARALLEL_MIN_PAIRS``)."""
    return queries * rows >= PARALLEL_MIN_PAIRS


def columns(bank: np.ndarray) -> np.ndarray:
    """uint64 [4, B]: word k of every row of ``bank`` [B, 32] contiguous (``pairs_within``' ``columns``)."""
    return np.ascontiguousarray(np.ascontiguousarray(bank, np.uint8).view(np.uint64).T)


def pairs_within(query: np.ndarray, bank: np.ndarray, radius: int, *, bank_columns: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q int64, b int64, d int16) of every pair of ``query`` [Q, 32] and ``bank`` [B, 32] (uint8, C-contiguous)
    within ``radius``, sorted by (q, b): a count pass, then a fill pass over the queries with any hit.
    ``bank_columns``: ``columns(bank)``, kept by the caller (a bank's index); without it, made for
    ``COLUMNS_FROM_QUERIES`` queries or more. In that layout the loop over rows runs in SIMD lanes (issue #30: the
    gates' 64-bit lookups over a bank's 60k rows, ~12 ms of an unmatched file's ~35): the same pairs in the same order."""
    from vscan.hashing import _hamming_kernel as kernel

    qw = np.ascontiguousarray(query).view(np.uint64)
    if bank_columns is None and len(qw) >= COLUMNS_FROM_QUERIES and len(bank) <= COLUMNS_MAX_ROWS:
        bank_columns = columns(bank)
    rows_layout = bank_columns is None
    bw = np.ascontiguousarray(bank).view(np.uint64) if rows_layout else bank_columns
    if on_threads(len(qw), len(bank)):
        return _pairs_on_threads(kernel, qw, bw, rows_layout, np.int64(radius))
    counts = np.zeros(len(qw), np.int64)
    kernel.count_within(qw, bw, np.int64(radius), rows_layout, counts)
    hit = np.flatnonzero(counts)
    if not hit.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int16)
    starts = np.zeros(hit.size + 1, np.int64)
    np.cumsum(counts[hit], out=starts[1:])
    out_b = np.empty(int(starts[-1]), np.int64)
    out_d = np.empty(int(starts[-1]), np.int16)
    kernel.fill_within(np.ascontiguousarray(qw[hit]), bw, np.int64(radius), rows_layout, starts, out_b, out_d)
    return np.repeat(hit.astype(np.int64), counts[hit]), out_b, out_d


def _pairs_on_threads(kernel, qw: np.ndarray, bw: np.ndarray, rows_layout: bool, radius: np.int64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``pairs_within``'s pairs with the bank's tiles spread over numba's threads: per tile and query a count, then each
    query's pairs written tile by tile at the slots those counts give, so in the same order as one thread's."""
    rows = bw.shape[0] if rows_layout else bw.shape[1]
    tiles = -(-rows // kernel.TILE_ROWS)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for q0 in range(0, len(qw), _PARALLEL_QUERIES):
        part = np.ascontiguousarray(qw[q0 : q0 + _PARALLEL_QUERIES])
        per_tile = np.zeros((tiles, len(part)), np.int64)
        kernel.count_tiles(part, bw, radius, rows_layout, per_tile)
        counts = per_tile.sum(axis=0)
        hit = np.flatnonzero(counts)
        if not hit.size:
            continue
        sub = per_tile[:, hit]
        first = np.concatenate([[0], np.cumsum(counts[hit])[:-1]])  # each hit query's first slot
        at = first[None, :] + np.cumsum(sub, axis=0) - sub  # ... and its first in each tile
        at[sub == 0] = -1
        out_b = np.empty(int(counts.sum()), np.int64)
        out_d = np.empty(int(counts.sum()), np.int16)
        kernel.fill_tiles(np.ascontiguousarray(part[hit]), bw, radius, rows_layout, np.ascontiguousarray(at), out_b, out_d)
        parts.append((np.repeat(hit.astype(np.int64) + q0, counts[hit]), out_b, out_d))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int16)
    return tuple(np.concatenate(a) for a in zip(*parts))  # type: ignore[return-value]


def warm(large: bool = False) -> None:
    """Load (or, on a first run, compile) the loop for the arrays a scan hands it: a bank's rows in memory and, read-only,
    memory-mapped (numba keeps one compiled version per kind: the read-only one was loaded in the first model call).
    ``large``: the tiles' loops on several threads too (a bank whose gates reach ``PARALLEL_MIN_PAIRS``)."""
    from vscan.hashing import _hamming_kernel as kernel

    rows = np.zeros((1, 32), np.uint8)
    mapped = rows.copy()
    mapped.flags.writeable = False
    for bank in (rows, mapped):
        pairs_within(rows, bank, 0)
        if large:
            _pairs_on_threads(kernel, rows.view(np.uint64), bank.view(np.uint64), True, np.int64(0))
    pairs_within(rows, rows, 0, bank_columns=columns(rows))  # the columns' loops (a bank index's kept columns: writable)
    if large:
        _pairs_on_threads(kernel, rows.view(np.uint64), columns(rows), False, np.int64(0))

"""The numba loops of ``vscan.hashing.hamming_numba`` (imported on first use only: numba's import is not free).

One thread for the lookups of a usual bank: they are small (a gate's few hundred hashes), and a parallel loop on a
loaded machine waited for its descheduled threads (16 hashes x 17,200 rows: 5 ms against numpy's 1.5 ms at load 28).
The tiles of a search of a large bank (``count_tiles``, ``fill_tiles``: 10^8 pairs and more, a hash list of millions)
go on the calling thread's numba threads, where it has more than one (a model actor's ``threads``)."""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

__all__ = ["TILE_ROWS", "count_tiles", "count_within", "fill_tiles", "fill_within", "popcount"]


@intrinsic
def popcount(typingctx, x):
    """The CPU's popcount on a uint64 (LLVM ctpop); the bank's multi-index kernel (vscan.bank.mih_numba) uses it too."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


#: Bank rows every query of a call passes over at a time: 8,192 rows, 256 KiB, stay in the core's cache while the queries
#: pass. Query by query over the whole bank instead, each query streamed it from memory again (a 10M-row bank is 320 MB).
TILE_ROWS = 8192


@numba.njit(nogil=True)
def _count_span(w0, w1, w2, w3, q0, q1, q2, q3, radius):
    """Rows of one tile (its words as four contiguous columns) within ``radius`` of the query (``q0..q3``): a loop
    without a branch over 1-D arrays, which runs in SIMD lanes."""
    n = 0
    for j in range(w0.shape[0]):
        n += np.int64(popcount(w0[j] ^ q0) + popcount(w1[j] ^ q1) + popcount(w2[j] ^ q2) + popcount(w3[j] ^ q3) <= radius)
    return n


@numba.njit(nogil=True)
def _fill_span(w0, w1, w2, w3, q0, q1, q2, q3, radius, first_row, out_b, out_d, k):
    """``_count_span``'s rows (as bank rows: ``first_row`` + j) and distances written from ``out_*[k]`` on; the next ``k``."""
    for j in range(w0.shape[0]):
        d = np.int64(popcount(w0[j] ^ q0) + popcount(w1[j] ^ q1) + popcount(w2[j] ^ q2) + popcount(w3[j] ^ q3))
        if d <= radius:
            out_b[k] = first_row + j
            out_d[k] = d
            k += 1
    return k


@numba.njit(nogil=True)
def _tile(bw, j0, j1, buf):
    """Rows ``j0:j1`` of the row layout ``bw`` [B, 4] as columns: ``buf[:, :j1 - j0]``."""
    for j in range(j1 - j0):
        buf[0, j] = bw[j0 + j, 0]
        buf[1, j] = bw[j0 + j, 1]
        buf[2, j] = bw[j0 + j, 2]
        buf[3, j] = bw[j0 + j, 3]
    m = j1 - j0
    return buf[0, :m], buf[1, :m], buf[2, :m], buf[3, :m]


@numba.njit(nogil=True)
def _tile_at(bt, t, rows_layout, buf):
    """(its first row, its four columns) of tile ``t`` of the bank ``bt``: columns [4, B], or rows [B, 4] (``rows_layout``:
    laid out as columns in ``buf`` [4, TILE_ROWS] first: its copy costs about one query's pass over the tile)."""
    n = bt.shape[0] if rows_layout else bt.shape[1]
    j0 = t * TILE_ROWS
    j1 = min(n, j0 + TILE_ROWS)
    if rows_layout:
        w0, w1, w2, w3 = _tile(bt, j0, j1, buf)
    else:
        w0, w1, w2, w3 = bt[0, j0:j1], bt[1, j0:j1], bt[2, j0:j1], bt[3, j0:j1]
    return j0, w0, w1, w2, w3


@numba.njit(nogil=True)
def _tiles(bt, rows_layout):
    """(tiles, a buffer for one tile of the row layout: empty for columns) of the bank ``bt``."""
    n = bt.shape[0] if rows_layout else bt.shape[1]
    return (n + TILE_ROWS - 1) // TILE_ROWS, np.empty((4, TILE_ROWS if rows_layout else 0), np.uint64)


@numba.njit(cache=True, nogil=True)
def count_within(qw, bt, radius, rows_layout, counts):
    """counts[i]: rows of the bank ``bt`` within ``radius`` of query ``qw[i]`` [Q, 4] (uint64 words); ``counts`` starts at
    0. ``bt``: the bank's words as columns [4, B] (word k of every row contiguous: the row loop, without a branch, runs in
    SIMD lanes, ~3.5x fewer cycles than rows), or its rows [B, 4] (``rows_layout``). Tile by tile, every query a tile."""
    tiles, buf = _tiles(bt, rows_layout)
    for t in range(tiles):
        _, w0, w1, w2, w3 = _tile_at(bt, t, rows_layout, buf)
        for i in range(qw.shape[0]):
            counts[i] += _count_span(w0, w1, w2, w3, qw[i, 0], qw[i, 1], qw[i, 2], qw[i, 3], radius)


@numba.njit(cache=True, nogil=True)
def fill_within(qw, bt, radius, rows_layout, starts, out_b, out_d):
    """Query ``qw[i]``'s rows within ``radius`` (in row order) and distances at ``out_*[starts[i]:starts[i + 1]]``
    (``count_within``'s layouts)."""
    tiles, buf = _tiles(bt, rows_layout)
    at = starts[:-1].copy()
    for t in range(tiles):
        j0, w0, w1, w2, w3 = _tile_at(bt, t, rows_layout, buf)
        for i in range(qw.shape[0]):
            at[i] = _fill_span(w0, w1, w2, w3, qw[i, 0], qw[i, 1], qw[i, 2], qw[i, 3], radius, j0, out_b, out_d, at[i])


@numba.njit(parallel=True, cache=True, nogil=True)
def count_tiles(qw, bt, radius, rows_layout, per_tile):
    """``per_tile[t, i]``: rows of tile ``t`` within ``radius`` of query ``i``, the tiles on numba's threads (a search of
    ~10^9 pairs: a 10M-row bank's gates); ``count_within``'s layouts."""
    for t in numba.prange(per_tile.shape[0]):
        _, buf = _tiles(bt, rows_layout)  # a tile's buffer for each thread's tile
        _, w0, w1, w2, w3 = _tile_at(bt, t, rows_layout, buf)
        for i in range(qw.shape[0]):
            per_tile[t, i] = _count_span(w0, w1, w2, w3, qw[i, 0], qw[i, 1], qw[i, 2], qw[i, 3], radius)


@numba.njit(parallel=True, cache=True, nogil=True)
def fill_tiles(qw, bt, radius, rows_layout, at, out_b, out_d):
    """``count_tiles``' pairs written where ``at[t, i]`` says (query ``i``'s first slot in tile ``t``: its pairs in the
    tiles before it counted; -1: none in this tile), so each query's rows come out in row order whichever thread fills
    which tile."""
    for t in numba.prange(at.shape[0]):
        _, buf = _tiles(bt, rows_layout)
        j0, w0, w1, w2, w3 = _tile_at(bt, t, rows_layout, buf)
        for i in range(qw.shape[0]):
            if at[t, i] >= 0:
                _fill_span(w0, w1, w2, w3, qw[i, 0], qw[i, 1], qw[i, 2], qw[i, 3], radius, j0, out_b, out_d, at[t, i])

"""The numba loops of ``vscan.hashing.hamming_numba`` (imported on first use only: numba's import is not free).

One thread: the lookups are small (a gate's few hundred hashes), and a parallel loop on a loaded machine waited for
its descheduled threads (16 hashes x 17,200 rows: 5 ms against numpy's 1.5 ms at load 28)."""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

__all__ = ["count_within", "count_within_columns", "fill_within", "fill_within_columns", "popcount"]


@intrinsic
def popcount(typingctx, x):
    """The CPU's popcount on a uint64 (LLVM ctpop); the bank's multi-index kernel (vscan.bank.mih_numba) uses it too."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@numba.njit(inline="always")
def _distance(q0, q1, q2, q3, bw, j):
    return np.int64(popcount(bw[j, 0] ^ q0) + popcount(bw[j, 1] ^ q1) + popcount(bw[j, 2] ^ q2) + popcount(bw[j, 3] ^ q3))


@numba.njit(cache=True, nogil=True)
def count_within(qw, bw, radius, counts):
    """counts[i]: rows of ``bw`` [B, 4] within ``radius`` of query ``qw[i]`` [Q, 4] (uint64 words)."""
    for i in range(qw.shape[0]):
        q0, q1, q2, q3 = qw[i, 0], qw[i, 1], qw[i, 2], qw[i, 3]
        n = 0
        for j in range(bw.shape[0]):
            if _distance(q0, q1, q2, q3, bw, j) <= radius:
                n += 1
        counts[i] = n


@numba.njit(cache=True, nogil=True)
def fill_within(qw, bw, radius, starts, out_b, out_d):
    """Query ``qw[i]``'s rows within ``radius`` (in row order) and distances at ``out_*[starts[i]:starts[i + 1]]``."""
    for i in range(qw.shape[0]):
        q0, q1, q2, q3 = qw[i, 0], qw[i, 1], qw[i, 2], qw[i, 3]
        k = starts[i]
        for j in range(bw.shape[0]):
            d = _distance(q0, q1, q2, q3, bw, j)
            if d <= radius:
                out_b[k] = j
                out_d[k] = d
                k += 1


@numba.njit(cache=True, nogil=True)
def count_within_columns(qw, bt, radius, counts):
    """``count_within`` over the bank's words as columns (``bt`` [4, B]: word k of every row contiguous): the row loop,
    without a branch, runs in SIMD lanes (~3.5x fewer cycles over 57k rows; the same counts)."""
    w0, w1, w2, w3 = bt[0], bt[1], bt[2], bt[3]
    for i in range(qw.shape[0]):
        q0, q1, q2, q3 = qw[i, 0], qw[i, 1], qw[i, 2], qw[i, 3]
        n = 0
        for j in range(bt.shape[1]):
            n += np.int64(popcount(w0[j] ^ q0) + popcount(w1[j] ^ q1) + popcount(w2[j] ^ q2) + popcount(w3[j] ^ q3) <= radius)
        counts[i] = n


@numba.njit(cache=True, nogil=True)
def fill_within_columns(qw, bt, radius, starts, out_b, out_d):
    """``fill_within`` over the bank's words as columns (``count_within_columns``' layout): the same rows in row order."""
    w0, w1, w2, w3 = bt[0], bt[1], bt[2], bt[3]
    for i in range(qw.shape[0]):
        q0, q1, q2, q3 = qw[i, 0], qw[i, 1], qw[i, 2], qw[i, 3]
        k = starts[i]
        for j in range(bt.shape[1]):
            d = np.int64(popcount(w0[j] ^ q0) + popcount(w1[j] ^ q1) + popcount(w2[j] ^ q2) + popcount(w3[j] ^ q3))
            if d <= radius:
                out_b[k] = j
                out_d[k] = d
                k += 1

"""The numba loops of ``vscan.hashing.hamming_numba`` (imported on first use only: numba's import is not free).

One thread: the lookups are small (a gate's few hundred hashes), and a parallel loop on a loaded machine waited for
its descheduled threads (16 hashes x 17,200 rows: 5 ms against numpy's 1.5 ms at load 28)."""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

__all__ = ["count_within", "fill_within", "popcount"]


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

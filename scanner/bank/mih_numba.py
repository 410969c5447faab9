"""The numba half of ``vscan.bank.mih_kernel``: the compiled search loop.

Its own module so that numba is imported on the first search (by
``mih_kernel.search_kernel``), never by code that only opens a bank or
checks its index. The algorithm is described in ``vscan.bank.mih_kernel``.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from vscan.hashing._hamming_kernel import popcount as _popcount

__all__ = ["kernel"]


@numba.njit(parallel=True, cache=True, nogil=True)
def kernel(q16, qw, offsets, ids, partner, hw, radius, sub_radius, masks, weights, disabled, cap, out_row, out_dist, counts):
    nq = q16.shape[0]
    n_masks = masks.shape[0]
    n_probes = 16 * n_masks
    use_disabled = disabled.shape[0] > 0
    for qi in prange(nq):
        # Every probe's bucket first, then one read of each bucket's start: the
        # random reads are independent, so the CPU overlaps their cache misses.
        los = np.empty(n_probes, np.int64)
        his = np.empty(n_probes, np.int64)
        for t in range(16):
            key = np.int64(q16[qi, t])
            for m in range(n_masks):
                v = key ^ masks[m]
                los[t * n_masks + m] = offsets[t, v]
                his[t * n_masks + m] = offsets[t, v + 1]
        touch = np.uint64(0)
        for p in range(n_probes):
            if his[p] > los[p]:
                touch += np.uint64(partner[p // n_masks, los[p]])
        n = 0
        q0, q1, q2, q3 = qw[qi, 0], qw[qi, 1], qw[qi, 2], qw[qi, 3]
        for t in range(16):
            pv = np.uint64(q16[qi, t ^ 1])
            for m in range(n_masks):
                limit = sub_radius - weights[m]
                p = t * n_masks + m
                for j in range(los[p], his[p]):
                    if np.int64(_popcount(np.uint64(partner[t, j]) ^ pv)) > limit:
                        continue
                    row = np.int64(ids[t, j])
                    d = np.int64(
                        _popcount(hw[row, 0] ^ q0) + _popcount(hw[row, 1] ^ q1)
                        + _popcount(hw[row, 2] ^ q2) + _popcount(hw[row, 3] ^ q3)
                    )  # fmt: skip
                    if d > radius:
                        continue
                    if use_disabled and disabled[row]:
                        continue
                    if n < cap:
                        out_row[qi, n] = row
                        out_dist[qi, n] = d
                    n += 1
        counts[qi] = n + np.int64(touch & np.uint64(0))  # touch kept live: its reads are not optimised away

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


@numba.njit(inline="always")
def _half(x0, x1, x2, x3, u):
    """Bits set in 16-bit half ``u`` (``disk_index._halves``' order: little-endian) of the XOR words ``x0..x3``."""
    w = x0 if u < 4 else (x1 if u < 8 else (x2 if u < 12 else x3))
    return np.int64(_popcount((w >> np.uint64(16 * (u % 4))) & np.uint64(0xFFFF)))


@numba.njit(inline="always")
def _found_before(t, x0, x1, x2, x3, half_limit, sub_radius):
    """Whether a row (``x0..x3``: its words XOR the query's) within reach was found through a table before ``t``: table
    ``u`` finds it where its half ``u`` differs by at most ``half_limit`` bits (a probed bucket) and with its partner
    half ``u ^ 1`` by at most ``sub_radius`` (the partner filter). Each pair is then reported once, not through each
    of the (up to 16) tables that find it: 10x fewer raw hits on the archive bench's searches (issue #30)."""
    for u in range(t):
        du = _half(x0, x1, x2, x3, u)
        if du <= half_limit and du + _half(x0, x1, x2, x3, u ^ 1) <= sub_radius:
            return True
    return False


@numba.njit(parallel=True, cache=True, nogil=True)
def kernel(q16, qw, offsets, ids, partner, hw, radius, sub_radius, masks, weights, disabled, cap, out_row, out_dist, counts):
    nq = q16.shape[0]
    n_masks = masks.shape[0]
    n_probes = 16 * n_masks
    use_disabled = disabled.shape[0] > 0
    half_limit = np.int64(weights[n_masks - 1])  # the most bits a probed half differs by
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
                    x0, x1, x2, x3 = hw[row, 0] ^ q0, hw[row, 1] ^ q1, hw[row, 2] ^ q2, hw[row, 3] ^ q3
                    d = np.int64(_popcount(x0) + _popcount(x1) + _popcount(x2) + _popcount(x3))
                    if d > radius:
                        continue
                    if _found_before(t, x0, x1, x2, x3, half_limit, sub_radius):
                        continue  # reported through an earlier table (a close row is found through most of the 16)
                    if use_disabled and disabled[row]:
                        continue
                    if n < cap:
                        out_row[qi, n] = row
                        out_dist[qi, n] = d
                    n += 1
        counts[qi] = n + np.int64(touch & np.uint64(0))  # touch kept live: its reads are not optimised away

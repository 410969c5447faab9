"""The compiled inner loop of ``vscan.bank.disk_index`` (numba; CPU, no torch).

Split multi-index hashing, exact: a 256-bit hash is 8 substrings of 32 bits,
each two 16-bit halves. If d(a, b) <= r then, by pigeonhole, some substring
differs in at most ``s = r // 8`` bits, so one of its halves differs in at
most ``s // 2`` bits. There is one table per half (16): the rows sorted by
that half's value, with the partner half's value stored beside each row id.
A query probes, per table, every value within ``s // 2`` bits of its half
(17 probes at r = 16..31) and keeps a candidate only when key and partner
together differ in at most ``s`` bits: the partner is read sequentially from
the bucket, so the random read of the full hash (the verification) is paid
by true neighbours and about 1% of the rest.

numba is optional: without it ``AVAILABLE`` is False and the index falls
back to numpy (``vscan.bank.index.MultiIndexHashing``).
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["AVAILABLE", "probe_masks", "search_kernel"]

try:  # numba is optional (pip install numba): without it the caller falls back to numpy
    import numba
    from numba import prange, types
    from numba.extending import intrinsic

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised where numba is absent
    AVAILABLE = False


def probe_masks(bits: int) -> tuple[np.ndarray, np.ndarray]:
    """All 16-bit masks of weight <= ``bits``, by weight: (masks int64, weights int64)."""
    masks, weights = [0], [0]
    for k in range(1, bits + 1):
        for combo in itertools.combinations(range(16), k):
            masks.append(sum(1 << i for i in combo))
            weights.append(k)
    return np.asarray(masks, np.int64), np.asarray(weights, np.int64)


if AVAILABLE:

    @intrinsic
    def _popcount(typingctx, x):
        """The CPU's popcount on a uint64 (LLVM ctpop)."""
        sig = types.uint64(types.uint64)

        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])

        return sig, codegen

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _kernel(q16, qw, offsets, ids, partner, hw, radius, sub_radius, masks, weights, disabled, cap, out_row, out_dist, counts):
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


def search_kernel(q16, qw, offsets, ids, partner, hw, radius: int, disabled: np.ndarray, cap: int = 64):
    """Raw hits (with repeats: a neighbour may be found through several
    tables): (query index int64, row int64, distance int16), unsorted."""
    sub = radius // 8
    masks, weights = probe_masks(min(sub // 2, 16))
    nq = q16.shape[0]
    out_row = np.empty((nq, cap), np.int64)
    out_dist = np.empty((nq, cap), np.int16)
    counts = np.zeros(nq, np.int64)
    _kernel(q16, qw, offsets, ids, partner, hw, radius, sub, masks, weights, disabled, cap, out_row, out_dist, counts)
    qs, rows, dists = [], [], []
    small = np.flatnonzero(counts <= cap)
    lens = counts[small]
    mask = np.arange(cap)[None, :] < lens[:, None]
    qs.append(np.repeat(small, lens))
    rows.append(out_row[small][mask])
    dists.append(out_dist[small][mask])
    big = np.flatnonzero(counts > cap)
    if big.size:  # queries with more hits than the buffer: again, with room for all of them
        bcap = int(counts[big].max())
        b_row = np.empty((big.size, bcap), np.int64)
        b_dist = np.empty((big.size, bcap), np.int16)
        b_counts = np.zeros(big.size, np.int64)
        _kernel(np.ascontiguousarray(q16[big]), np.ascontiguousarray(qw[big]), offsets, ids, partner, hw, radius, sub,
                masks, weights, disabled, bcap, b_row, b_dist, b_counts)  # fmt: skip
        bmask = np.arange(bcap)[None, :] < b_counts[:, None]
        qs.append(np.repeat(big, b_counts))
        rows.append(b_row[bmask])
        dists.append(b_dist[bmask])
    return np.concatenate(qs).astype(np.int64), np.concatenate(rows), np.concatenate(dists)

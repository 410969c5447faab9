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

import functools
import importlib.util
import itertools

import numpy as np

__all__ = ["AVAILABLE", "probe_masks", "search_kernel"]

#: numba is optional (pip install numba): without it the caller falls back to numpy. It is
#: imported on the first search (vscan.bank.mih_numba), not here: opening a bank, checking its
#: index or a scan's driver never pays numba's import (0.3-0.8 s on a 2-core machine).
AVAILABLE = importlib.util.find_spec("numba") is not None


@functools.lru_cache(maxsize=17)
def probe_masks(bits: int) -> tuple[np.ndarray, np.ndarray]:
    """All 16-bit masks of weight <= ``bits``, by weight: (masks int64, weights int64), read-only (made once a weight:
    every search asked again, ~20 us of Python a call)."""
    masks, weights = [0], [0]
    for k in range(1, bits + 1):
        for combo in itertools.combinations(range(16), k):
            masks.append(sum(1 << i for i in combo))
            weights.append(k)
    out = np.asarray(masks, np.int64), np.asarray(weights, np.int64)
    for a in out:
        a.flags.writeable = False
    return out


def search_kernel(q16, qw, offsets, ids, partner, hw, radius: int, disabled: np.ndarray, cap: int = 64):
    """Raw hits, each (query, row) pair once (reported through the first table that finds it):
    (query index int64, row int64, distance int16), unsorted."""
    from vscan.bank.mih_numba import kernel as _kernel

    sub = radius // 8
    masks, weights = probe_masks(min(sub // 2, 16))
    nq = q16.shape[0]
    out_row = np.empty((nq, cap), np.int64)
    out_dist = np.empty((nq, cap), np.int16)
    counts = np.zeros(nq, np.int64)
    _kernel(q16, qw, offsets, ids, partner, hw, radius, sub, masks, weights, disabled, cap, out_row, out_dist, counts)
    qs, rows, dists = [], [], []
    small = np.flatnonzero((counts > 0) & (counts <= cap))  # the queries with hits (a window lookup's 1,000 have few): only their rows read
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

"""PDQ's constants and linear operators in numpy: what the CPU path needs
without torch (the ONNX hash model takes the operators as inputs).

``vscan.kernels.pdq`` (torch, the reference graph and the exporter's source)
builds on these; see its docstring for the algorithm. Steps 2 and 3 of PDQ
(two box-filter passes along each axis, then decimation to 64 cells) are
linear and separable: for a frame of H x W they are ``R_h @ Y @ R_w.T`` with
``R_h = jarosz_operator_np(H)`` [64, H] and ``R_w = jarosz_operator_np(W)``.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["DIHEDRAL_NAMES", "NUM_DIHEDRAL", "PDQ_MIN_SIDE", "LUMA", "dct_matrix_np", "jarosz_operator_np", "operators",
           "pack_permutation"]  # fmt: skip

#: Names of the dihedral variants, in the order the kernels return them.
#: Each names the edit that, applied to a reference frame, gives the query
#: frame whose original hash equals this variant of the reference's hash
#: (e.g. ``"flip_h"``: the query is the reference mirrored left-right).
DIHEDRAL_NAMES = (
    "original",
    "rot90",
    "rot180",
    "rot270",
    "flip_h",
    "flip_v",
    "transpose",
    "transverse",
)
NUM_DIHEDRAL = len(DIHEDRAL_NAMES)

#: Frames smaller than this on either side hash to all zeros, quality 0.
PDQ_MIN_SIDE = 5

#: Luminance weights of R, G, B.
LUMA = (0.299, 0.587, 0.114)


@functools.lru_cache(maxsize=None)
def dct_matrix_np() -> np.ndarray:
    """The [16, 64] DCT-II rows 1..16 (DC dropped) that PDQ uses, float64."""
    i = np.arange(1, 17, dtype=np.float64)[:, None]
    j = np.arange(64, dtype=np.float64)[None, :]
    return np.sqrt(2.0 / 64.0) * np.cos(np.pi / 128.0 * i * (2.0 * j + 1.0))


def _box_rows(n: int, window: int, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of the n x n Jarosz box-filter matrix with ``window``.

    Output ``o`` averages inputs ``[o - (window - half), o + half - 1]``
    clipped to ``[0, n)``, where ``half = (window + 2) // 2``: exactly the
    window the reference's running-sum implementation uses.
    """
    half = (window + 2) // 2
    lo = np.maximum(rows - (window - half), 0)
    hi = np.minimum(rows + half - 1, n - 1)
    cols = np.arange(n)[None, :]
    inside = (cols >= lo[:, None]) & (cols <= hi[:, None])
    return inside / (hi - lo + 1)[:, None].astype(np.float64)


@functools.lru_cache(maxsize=64)
def _jarosz_operator(n: int, out: int) -> np.ndarray:
    window = (n + 2 * out - 1) // (2 * out)
    centres = ((np.arange(out) + 0.5) * n / out).astype(np.int64)
    if window <= 1:
        op = np.zeros((out, n))
        op[np.arange(out), centres] = 1.0
        return op
    # Two passes of the box filter, then decimation: S @ B @ B. Only the
    # sampled rows of the product are needed, so build S @ B first (out x n)
    # and multiply by B's rows restricted to their support.
    first = _box_rows(n, window, centres)  # S @ B
    support = np.nonzero(first.any(axis=0))[0]
    second = _box_rows(n, window, support)  # rows of B at the support
    return first[:, support] @ second


def jarosz_operator_np(n: int, *, out: int = 64) -> np.ndarray:
    """float64 [out, n] matrix = decimate(box(box(x))) along one axis of length n (cached: do not modify)."""
    if n < 1:
        raise ValueError(f"Invalid axis length ({n}). Supported values are >= 1.")
    return _jarosz_operator(int(n), int(out))


@functools.lru_cache(maxsize=64)
def operators(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The hash model's ``row_op`` [64, h] and ``col_op`` [64, w], float32."""
    return jarosz_operator_np(h).astype(np.float32), jarosz_operator_np(w).astype(np.float32)


@functools.lru_cache(maxsize=1)
def pack_permutation() -> tuple[np.ndarray, np.ndarray]:
    """(bit index [256] in hex-string byte order, bit weights [8] float32)."""
    # byte m of the hex string: word 15 - m // 2; high byte first.
    perm = np.empty((32, 8), dtype=np.int64)
    for m in range(32):
        word = 15 - m // 2
        base = 16 * word + (8 if m % 2 == 0 else 0)
        perm[m] = base + np.arange(8)
    weights = (1 << np.arange(8)).astype(np.float32)
    return perm.reshape(-1), weights

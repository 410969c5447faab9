"""PDQ hashes of many same-size windows of one frame, at once, in numpy.

Locating an off-centre crop (``vscan.runtime.offcentre``) hashes a hundred
windows of a frame, one per position. PDQ is linear up to its threshold
(luma, Jarosz filter and decimation, DCT: ``D R_h Y R_w^T D^T``), so the
window at rows ``y:y+h`` and columns ``x:x+w`` has coefficients
``(D R_h) Y[y:y+h, x:x+w] (D R_w)^T``: the column product is shared by every
window of a column range and the whole batch is two matrix products over
sliding views, with no window cut out, resized or decoded again. The bits
equal the hash model's for the same window cut out (tested).

Quality is not computed (it needs the 64 x 64 picture): callers use the
frame's.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from vscan.frames.luma import luma
from vscan.hashing.pdq_ops import dct_matrix_np, jarosz_operator_np, pack_permutation

__all__ = ["window_hashes"]

#: Mirroring a window left-right multiplies DCT column u (= 1..16) by (-1)**u.
_FLIP_SIGNS = np.where(np.arange(1, 17) % 2 == 1, -1.0, 1.0).astype(np.float32)


def _pack(bits: np.ndarray) -> np.ndarray:
    """[..., 256] bool -> [..., 32] uint8 in PDQ's hex byte order."""
    perm, _ = pack_permutation()
    return np.packbits(bits[..., perm].reshape(*bits.shape[:-1], 32, 8), axis=-1, bitorder="little")[..., 0]


def _bits(coeffs: np.ndarray) -> np.ndarray:
    flat = coeffs.reshape(*coeffs.shape[:-2], 256)
    median = np.partition(flat, 127, axis=-1)[..., 127:128]  # the reference's lower median
    return flat > median


def window_hashes(frame: np.ndarray, height: int, width: int, tops: np.ndarray, lefts: np.ndarray, *, mirrored: bool = True) -> np.ndarray:
    """uint8 [len(tops), len(lefts), 1 or 2, 32]: PDQ of ``frame``'s (uint8
    [H, W, 3]) ``height`` x ``width`` window at each (top, left), as is and
    (``mirrored``) mirrored left-right."""
    h, w = frame.shape[:2]
    tops, lefts = np.asarray(tops, np.int64), np.asarray(lefts, np.int64)
    if height < 5 or width < 5 or (tops.size and tops.max() + height > h) or (lefts.size and lefts.max() + width > w):
        raise ValueError(f"Invalid windows ({height}x{width} at tops {tops.tolist()}, lefts {lefts.tolist()}) for a {h}x{w} frame")
    dct = dct_matrix_np().astype(np.float32)
    rows = dct @ jarosz_operator_np(height).astype(np.float32)  # [16, height]
    cols = dct @ jarosz_operator_np(width).astype(np.float32)  # [16, width]
    y = luma(frame)
    by_column = sliding_window_view(y, width, axis=1)[:, lefts, :] @ cols.T  # [H, nx, 16]
    stacked = sliding_window_view(by_column, height, axis=0)[tops]  # [ny, nx, 16, height]
    coeffs = np.einsum("ih,yxjh->yxij", rows, stacked, optimize=True)  # [ny, nx, 16, 16]
    versions = [coeffs, coeffs * _FLIP_SIGNS] if mirrored else [coeffs]
    return np.stack([_pack(_bits(c)) for c in versions], axis=2)

"""PDQ hashes of many same-size windows of one frame, at once, in numpy.

Locating an off-centre crop (``vscan.runtime.offcentre``) hashes a hundred
windows of a frame, one per position. PDQ is linear up to its threshold
(luma, Jarosz filter and decimation, DCT: ``D R_h Y R_w^T D^T``), so the
window at rows ``y:y+h`` and columns ``x:x+w`` has coefficients
``(D R_h) Y[y:y+h, x:x+w] (D R_w)^T``, and every window of a grid of tops
and lefts comes out of two matrix products with banded operators (those
blocks placed at each top / left), with no window cut out or resized. The bits
equal the hash model's for the same window cut out (tested).

Quality is not computed (it needs the 64 x 64 picture): callers use the
frame's.
"""

from __future__ import annotations

import numpy as np

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
    # Banded operators: block i of ``down`` is ``rows`` placed at tops[i]; block j of ``across``, ``cols`` at lefts[j].
    down = np.zeros((tops.size, 16, h), np.float32)
    across = np.zeros((w, lefts.size, 16), np.float32)
    for i, t in enumerate(tops):
        down[i, :, t : t + height] = rows
    for j, left in enumerate(lefts):
        across[left : left + width, j] = cols.T
    y = luma(frame)
    coeffs = (down.reshape(-1, h) @ (y @ across.reshape(w, -1))).reshape(tops.size, 16, lefts.size, 16).transpose(0, 2, 1, 3)
    versions = [coeffs, coeffs * _FLIP_SIGNS] if mirrored else [coeffs]
    return np.stack([_pack(_bits(c)) for c in versions], axis=2)

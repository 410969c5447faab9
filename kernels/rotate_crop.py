"""The bilinear gather of ``vscan.frames.windows.rotate_crop``, one pass per output pixel.

The numpy version gathered four float copies of every frame's cropped area
and combined them in float64 temporaries: 62% of a ``--rows full`` bank
build's CPU (py-spy, a 12 s 640x360 clip), whose every frame is turned
both ways. This kernel does the same float64 operations in the same order
per pixel (no fast-math, so nothing is fused or reordered): the same bytes.
``nogil``: the bank build hashes in threads.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["bilinear_gather"]


@numba.njit(cache=True, nogil=True)
def bilinear_gather(flat: np.ndarray, at: np.ndarray, fx: np.ndarray, fy: np.ndarray, width: int, out: np.ndarray) -> None:
    """``out[i, k, ch]`` = the bilinear blend of ``flat[i]``'s pixels ``at[k]``, ``at[k] + 1``, ``at[k] + width``
    and ``at[k] + width + 1`` (weights ``fx[k]`` across, ``fy[k]`` down), rounded half to even and clipped to
    uint8. ``flat``: uint8 [N, H*W, C]; ``at``: int64 [M]; ``fx``, ``fy``: float64 [M]; ``out``: uint8 [N, M, C]."""
    n, m, c = out.shape
    for i in range(n):
        for k in range(m):
            p = at[k]
            x, y = fx[k], fy[k]
            for j in range(c):
                top = np.float64(flat[i, p, j]) * (1.0 - x) + np.float64(flat[i, p + 1, j]) * x
                bottom = np.float64(flat[i, p + width, j]) * (1.0 - x) + np.float64(flat[i, p + width + 1, j]) * x
                v = np.rint(top * (1.0 - y) + bottom * y)
                out[i, k, j] = np.uint8(min(max(v, 0.0), 255.0))

"""The bilinear gather of ``vscan.frames.windows.rotate_crop``, one pass per output pixel, and the bank build's
turned copies' luma straight from the same blend.

The numpy version gathered four float copies of every frame's cropped area
and combined them in float64 temporaries: 62% of a ``--rows full`` bank
build's CPU (py-spy, a 12 s 640x360 clip), whose every frame is turned
both ways. ``bilinear_gather`` does the same float64 operations in the same
order per pixel (no fast-math, so nothing is fused or reordered): the same bytes.

A build hashes each turned copy's luma only (``vscan.bank.banded_hash``), and a frame's pixel, scalar,
took ~35 instructions for its three values. ``frames_last`` lays a batch's frames side by side per pixel
(``lanes[p, j * N + i]``: frame i's channel j at pixel p), so ``turned_luma`` blends each output pixel of
every frame and channel in one contiguous SIMD loop (the same float64 operations per value, then the
model's luma in float32, as ``banded_hash.frame_luma``'s on the turned uint8 pixels), which
``banded_hash._downsample_lanes`` downsamples as they lie: ~2.7x less CPU for both turns of a batch of 8, the same bits.
``nogil``: the bank build hashes in threads.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["bilinear_gather", "frames_last", "turned_luma"]


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


def frames_last(rgb: np.ndarray, lanes: np.ndarray) -> None:
    """``lanes[y * W + x, j * N + i]`` = ``rgb[i, y, x, j]``; ``rgb``: uint8 [N, H, W, C], any strides (a view
    inside borders); ``lanes``: uint8 [H*W, C*N]. numpy's strided copy (GIL released): 0.35 -> 0.21 ms a 432 x 341
    frame of a batch of 8 against a compiled loop over the pixels (stop 44)."""
    n, h, w, c = rgb.shape
    if lanes.shape != (h * w, c * n) or not lanes.flags.c_contiguous:
        raise ValueError(f"Expected C-contiguous lanes [{h * w}, {c * n}], got {lanes.shape}")
    np.copyto(lanes.reshape(h, w, c, n), rgb.transpose(1, 2, 3, 0))


@numba.njit(cache=True, nogil=True)
def turned_luma(lanes: np.ndarray, n: int, at: np.ndarray, fx: np.ndarray, fy: np.ndarray, width: int,
                l0: np.float32, l1: np.float32, l2: np.float32, out: np.ndarray) -> None:  # fmt: skip
    """``out[k, i]`` (float32 [M, N]) = ``r * l0 + g * l1 + b * l2`` in float32 of frame i's output pixel k as
    ``bilinear_gather`` turns it (each channel's float64 blend, rounded half to even, clipped to uint8);
    ``lanes``: ``frames_last`` of N RGB frames, [H*W, 3*N]; or of N luma pictures ([H*W, N]: the turned value as grey RGB)."""
    m, c3 = at.shape[0], lanes.shape[1]
    v8 = np.empty(c3, np.uint8)
    for k in range(m):
        p = at[k]
        x, y = fx[k], fy[k]
        x1, y1 = 1.0 - x, 1.0 - y
        a, b, c, d = lanes[p], lanes[p + 1], lanes[p + width], lanes[p + width + 1]
        for e in range(c3):  # every frame and channel of the pixel: contiguous, SIMD
            top = np.float64(a[e]) * x1 + np.float64(b[e]) * x
            bottom = np.float64(c[e]) * x1 + np.float64(d[e]) * x
            v = np.rint(top * y1 + bottom * y)
            v8[e] = np.uint8(min(max(v, 0.0), 255.0))
        row = out[k]
        if c3 == n:  # luma pictures: the luma of the turned value as grey RGB (``banded_hash.frame_luma``'s)
            for i in range(n):
                v = np.float32(v8[i])
                row[i] = v * l0 + v * l1 + v * l2
        else:
            for i in range(n):
                row[i] = np.float32(v8[i]) * l0 + np.float32(v8[n + i]) * l1 + np.float32(v8[2 * n + i]) * l2

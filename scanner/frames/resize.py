"""Resize decoded frames to the model's square input (when the decoder could not).

Antialiased bilinear in numpy, separable: width first, then height, each a
weighted sum of a few source pixels per output pixel, in float32, then
rounded to uint8. The weights, the order of the sums and their rounding
(fused multiply-adds) are those of
torch's CPU ``interpolate(mode="bilinear", antialias=True, align_corners=False)``,
which this replaced (the CPU path runs without torch): when enlarging -- a
border crop back to the square frame size, the one use in the pipeline --
the result is torch's to the bit, and when shrinking by up to 2x; shrinking
more, within 5e-5 of it before the rounding, so a rare pixel is off by one
(torch sums those wider filters in another order; tests/test_detect.py).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["to_square", "resize_bilinear"]

_F32 = np.float32


@functools.lru_cache(maxsize=64)
def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(source index [n_out, K], weight [n_out, K] float32) along one axis.

    torch's weights (float32 triangle filter, normalised per output pixel),
    zero weights dropped (each adds an exact zero), rows padded at the end
    with weight 0 at index 0."""
    scale = _F32(_F32(n_in) / _F32(n_out))
    support = scale if scale >= 1 else _F32(1.0)  # the triangle widens with the downscale factor
    invscale = _F32(1.0 / float(scale)) if scale >= 1 else _F32(1.0)
    rows = []
    for i in range(n_out):
        centre = _F32(float(scale) * (i + 0.5))
        lo = max(int(float(centre - support) + 0.5), 0)
        size = min(int(float(centre + support) + 0.5), n_in) - lo
        w = [max(_F32(0.0), _F32(1.0) - abs(_F32((_F32(j + lo) - centre + _F32(0.5)) * invscale))) for j in range(size)]
        total = _F32(0.0)
        for v in w:
            total = _F32(total + v)
        rows.append([(lo + j, v / total if total != 0 else v) for j, v in enumerate(w) if v != 0])
    k_max = max(1, max(len(r) for r in rows))
    index = np.zeros((n_out, k_max), np.int64)
    weight = np.zeros((n_out, k_max), _F32)
    for i, row in enumerate(rows):
        for j, (src, v) in enumerate(row):
            index[i, j], weight[i, j] = src, v
    index.flags.writeable = weight.flags.writeable = False
    return index, weight


#: Frames resized at a time: the float buffers of two 256 px frames (~2.3 MB) stay in cache (1.6x less CPU on 16 frames).
_CHUNK_FRAMES = 2


def _along(x: np.ndarray, axis: int, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """float32 sums over the taps (``index``, ``weight`` [n_out, K]) of uint8
    or float32 ``x`` along ``axis``, in tap order, each step rounded once, as
    a fused multiply-add does: the product (a uint8 or float32 value times a
    float32 weight) is exact in float64, the sum rounded there, then to
    float32. In place on two buffers, the uint8 source read as it is (no
    float copy of the frames); a column of zero weights (padding) adds an
    exact zero and is skipped. Bit for bit the earlier per-step ``astype``
    form (tests/test_resize.py)."""
    shape = [1] * x.ndim
    shape[axis] = len(index)
    acc = np.empty(x.shape[:axis] + (len(index),) + x.shape[axis + 1 :], _F32)
    np.multiply(np.take(x, index[:, 0], axis=axis), weight[:, 0].reshape(shape), out=acc)  # the first product, rounded to float32
    step = np.empty(acc.shape, np.float64)
    for k in range(1, index.shape[1]):
        if not weight[:, k].any():
            continue
        np.multiply(np.take(x, index[:, k], axis=axis), weight[:, k].astype(np.float64).reshape(shape), out=step)
        np.add(step, acc, out=step)
        np.copyto(acc, step, casting="same_kind")
    return acc


def _resize_axis(x: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    """``_along`` the frames' height (axis 1) or width (axis 2) of [N, H, W, C]
    ``x``; the width with each pixel's channels as taps of their own
    (index * C + channel), so numpy's loops run along whole rows, not 3 channels."""
    index, weight = _taps(x.shape[axis], n_out)
    if axis != 2:
        return _along(x, axis, index, weight)
    c = x.shape[3]
    index = (index[:, None, :] * c + np.arange(c)[None, :, None]).reshape(n_out * c, -1)
    flat = _along(x.reshape(x.shape[0], x.shape[1], -1), 2, index, np.repeat(weight, c, axis=0))
    return flat.reshape(x.shape[0], x.shape[1], n_out, c)


def resize_bilinear(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [N, H, W, C] -> uint8 [N, height, width, C], antialiased bilinear."""
    if rgb.ndim != 4 or rgb.dtype != np.uint8:
        raise ValueError(f"Expected uint8 frames [N, H, W, C], got {rgb.dtype} {tuple(rgb.shape)}")
    if height < 1 or width < 1:
        raise ValueError(f"Invalid size ({height}x{width}). Supported values are >= 1.")
    if rgb.shape[1:3] == (height, width):
        return rgb
    out = np.empty((len(rgb), height, width, rgb.shape[3]), np.uint8)
    for start in range(0, len(rgb), _CHUNK_FRAMES):
        x = rgb[start : start + _CHUNK_FRAMES]
        if x.shape[2] != width:
            x = _resize_axis(x, 2, width)
        if x.shape[1] != height:
            x = _resize_axis(x, 1, height)
        np.rint(x, out=x)
        np.clip(x, 0, 255, out=x)
        out[start : start + _CHUNK_FRAMES] = x
    return out


def to_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """uint8 [N, H, W, 3] -> [N, size, size, 3], antialiased bilinear."""
    return resize_bilinear(rgb, size, size)

"""Bank-side windows: parts of each reference frame that re-posts keep.

A 9:16 re-post of a 16:9 video often keeps only the centre strip (about a
third of the width), and a slightly rotated copy is cropped to hide the
corners. Neither can be undone on the query side (the rest of the picture
is gone), so banks store these windows of every frame as extra rows (prep
names below), next to the centre crops of ``vscan.bank.hashers.BANK_CROPS``;
a scan pays nothing for them.

- ``strip916``: the centre 9:16 strip of a frame wider than 9:16 (full height);
- ``rot+4`` / ``rot-4``: the frame rotated by +-4 degrees about its centre and
  cropped to the largest box of its aspect inside (no corner shows).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["WINDOWS", "window", "rotate_crop"]

WINDOWS = ("strip916", "rot+4", "rot-4")


def rotate_crop(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """uint8 [N, H, W, C] rotated by ``degrees`` (counter-clockwise, bilinear) and cropped to the inscribed box."""
    n, h, w, c = rgb.shape
    a = math.radians(abs(degrees))
    scale = 1.0 / (math.cos(a) + max(w / h, h / w) * math.sin(a))
    ch, cw = max(1, int(h * scale)), max(1, int(w * scale))
    ys, xs = np.mgrid[0:ch, 0:cw].astype(np.float32)
    ys, xs = ys - (ch - 1) / 2, xs - (cw - 1) / 2
    t = math.radians(degrees)
    # Output pixel (x, y) shows the source at the inverse rotation (image y points down).
    sx = math.cos(t) * xs - math.sin(t) * ys + (w - 1) / 2
    sy = math.sin(t) * xs + math.cos(t) * ys + (h - 1) / 2
    x0, y0 = np.clip(np.floor(sx).astype(np.int64), 0, w - 2), np.clip(np.floor(sy).astype(np.int64), 0, h - 2)
    fx, fy = (sx - x0)[None, ..., None], (sy - y0)[None, ..., None]
    src = rgb.astype(np.float32)
    top = src[:, y0, x0] * (1 - fx) + src[:, y0, x0 + 1] * fx
    bottom = src[:, y0 + 1, x0] * (1 - fx) + src[:, y0 + 1, x0 + 1] * fx
    return np.clip(np.rint(top * (1 - fy) + bottom * fy), 0, 255).astype(np.uint8)


def window(rgb: np.ndarray, name: str) -> np.ndarray | None:
    """The ``name`` window of uint8 [N, H, W, C] frames (C-contiguous), or None when it does not apply."""
    h, w = rgb.shape[1:3]
    if name == "strip916":
        sw = int(round(h * 9 / 16))
        if sw >= 0.8 * w:
            return None  # already about as narrow: the frame itself is the strip
        x0 = (w - sw) // 2
        return np.ascontiguousarray(rgb[:, :, x0 : x0 + sw])
    if name.startswith("rot"):
        return rotate_crop(rgb, float(name[3:]))
    raise ValueError(f"Invalid window ({name!r}). Supported values are {list(WINDOWS)}.")

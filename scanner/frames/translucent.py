"""Translucent boxes: a banner or box blended over the picture, undone.

A re-post often lays a half-transparent box over a third of the frame (a
banner, a caption plate). The picture still moves under it, so the static
overlay finder (``vscan.frames.overlays``) sees nothing, yet PDQ moves by
35-45 bits. Under a box of opacity ``a`` and colour ``c`` every pixel becomes
``a * c + (1 - a) * p``: its motion shrinks by ``1 - a`` while it keeps
moving with its neighbours. So the box shows as a rectangle whose edges
split pixels whose temporal spread differs by a steady factor
(``contrast_maps``: ``|log(spread ratio)|`` across each boundary), found with
the region search's rectangle finder (``vscan.frames.regions.best_box``).
The blend is then inverted per channel from rings just inside and outside
the box (gain = spread ratio, offset from the means), and the restored frames
become the file's overlay-removed query version.
"""

from __future__ import annotations

import numpy as np

from vscan.frames.boxes import best_box
from vscan.frames.luma import luma

__all__ = ["contrast_maps", "detect_translucent", "undo_translucent"]

def contrast_maps(frames: np.ndarray, *, gap: int = 3, scale: float = 0.5, spread: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(vertical [H, W+1], horizontal [H+1, W]) maps of ``min(1, |log spread ratio| / scale)``
    across each boundary (pixels ``gap`` apart), spread = temporal std of luma (``spread``: ``_temporal_std(frames)``,
    where the caller took it)."""
    log_std = np.log((_temporal_std(frames) if spread is None else spread) + 2.0)

    def one(axis: int) -> np.ndarray:
        size = log_std.shape[axis]
        lo = np.clip(np.arange(1, size) - 1 - gap // 2, 0, size - 1)
        hi = np.clip(np.arange(1, size) + gap // 2, 0, size - 1)
        out = np.minimum(1.0, np.abs(np.take(log_std, lo, axis=axis) - np.take(log_std, hi, axis=axis)) / scale)
        pad = [(0, 0), (0, 0)]
        pad[axis] = (1, 1)
        return np.pad(out.astype(np.float32), pad)

    return one(1), one(0)


#: Frames taken to luma at a time by ``_temporal_std``: the whole file's float luma and np.std's float
#: temporary were 2 GiB for a 4,096-frame file of 256 px frames.
_STD_CHUNK = 64


def _temporal_std(frames: np.ndarray) -> np.ndarray:
    """float32 [H, W]: each pixel's luma std over the frames (np.std's two passes), from pieces of
    ``_STD_CHUNK`` frames; a file of at most that many is np.std's own, to the bit."""
    if len(frames) <= _STD_CHUNK:
        return luma(frames).std(axis=0)
    n = len(frames)
    total = np.zeros(frames.shape[1:3], np.float64)
    for start in range(0, n, _STD_CHUNK):
        total += luma(frames[start : start + _STD_CHUNK]).sum(axis=0, dtype=np.float64)
    mean = total / n
    squares = np.zeros_like(mean)
    for start in range(0, n, _STD_CHUNK):
        squares += ((luma(frames[start : start + _STD_CHUNK]) - mean) ** 2).sum(axis=0)
    return np.sqrt(squares / n).astype(np.float32)


def _rings(h: int, w: int, box: list[int], inner: tuple[int, int] = (3, 9)) -> tuple[np.ndarray, np.ndarray]:
    t, b, l, r = box
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (yy >= t) & (yy < b) & (xx >= l) & (xx < r)
    depth_in = np.minimum(np.minimum(yy - t, b - 1 - yy), np.minimum(xx - l, r - 1 - xx))
    dy = np.maximum(np.maximum(t - yy, yy - (b - 1)), 0)
    dx = np.maximum(np.maximum(l - xx, xx - (r - 1)), 0)
    depth_out = np.maximum(dy, dx)
    ring_in = inside & (depth_in >= inner[0]) & (depth_in < inner[1])
    ring_out = ~inside & (depth_out >= inner[0]) & (depth_out < inner[1])
    return ring_in, ring_out


def detect_translucent(frames: np.ndarray, *, min_score: float = 0.8, min_frames: int = 4,
                       spread: np.ndarray | None = None) -> tuple[list[int], np.ndarray, np.ndarray] | None:  # fmt: skip
    """(box [top, bottom, left, right], gain [3], offset [3]) of a translucent box in uint8 [N, H, W, 3] frames, or None.
    ``spread``: ``_temporal_std(frames)``, where the caller took it (``vscan.frames.regions.add_region``)."""
    n, h, w, _ = frames.shape
    if n < min_frames or h < 64 or w < 64:
        return None
    vert, horiz = contrast_maps(frames, spread=spread)
    box = best_box(vert, horiz, np.ones((h, w), bool), min_score=min_score, min_fraction=0.05, max_fraction=0.6)
    if box is None:
        return None
    t, b, l, r = box
    sides = [m.mean() for m, inner in ((horiz[t, l:r], t > 0), (horiz[b, l:r], b < h), (vert[t:b, l], l > 0), (vert[t:b, r], r < w)) if inner]
    if len(sides) < 3 or min(sides) < min_score:
        return None  # a box inside the frame: three inner sides at least
    ring_in, ring_out = _rings(h, w, box)
    if not ring_in.any() or not ring_out.any():
        return None
    # The rings' pixels alone as float32 (the same values as the whole file's frames converted, which were
    # 12 bytes a pixel of every frame: 3 GiB for 4,096 frames of 256 px).
    inner, outer = frames[:, ring_in].astype(np.float32), frames[:, ring_out].astype(np.float32)
    gain = np.array([inner[..., c].std(axis=0).mean() / max(outer[..., c].std(axis=0).mean(), 1e-3) for c in range(3)])
    if not (0.15 <= gain.mean() <= 0.85) or np.ptp(gain) > 0.25:
        return None  # not one steady blend (a darker scene part, a graded region)
    offset = np.array([inner[..., c].mean() - gain[c] * outer[..., c].mean() for c in range(3)])
    return box, gain, offset


def undo_translucent(frames: np.ndarray, box: list[int], gain: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """A copy of the frames with the blend inside ``box`` inverted."""
    t, b, l, r = box
    out = frames.copy()
    inside = (frames[:, t:b, l:r].astype(np.float32) - offset) / np.maximum(gain, 1e-3)
    out[:, t:b, l:r] = np.clip(np.rint(inside), 0, 255).astype(np.uint8)
    return out

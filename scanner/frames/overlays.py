"""Static overlay (watermark, logo, burned-in box) detection and removal.

A re-upload often carries a logo or a solid box that stays put while the
picture moves under it. PDQ hashes the whole frame, so a box covering 10% of
it moves the hash by 40-90 bits: the copy no longer matches. The box does
not move while the content does, so it shows across a file's sampled frames
as a compact region of pixels whose colour barely changes (``max_range``
 per channel),
inside a frame that changes elsewhere.

``detect_overlays`` finds such regions on the square sampled frames of one
file: static pixels are pooled into cells, cells into 4-connected components;
a component is kept when its pixel bounding box is compact (``min_fill`` of
it static), covers ``min_fraction``..``max_fraction`` of the frame, and does
not span the frame's width or height (bars are borders: ``vscan.frames.borders``).
Nothing is found when too little of the frame moves (a static camera, a
slideshow: ``max_static``) or with fewer than ``min_frames`` frames.

``fill_overlays`` paints each box (plus a margin for codec ringing) with a
harmonic (Laplace) interpolation of its surroundings, coarse to fine: the
smoothest guess of the low frequencies PDQ keeps. The filled frames are
hashed as one more query version (``vscan.bank.match``: path
"overlay-removed"); the frames as decoded are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vscan.frames.luma import check_frames, evenly_spaced, luma

__all__ = ["OverlayBox", "detect_overlays", "fill_overlays", "add_unoverlaid"]

@dataclass(frozen=True)
class OverlayBox:
    """A static region: rows ``top:bottom``, columns ``left:right`` (pixels of the analysed frames)."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def area(self) -> int:
        return (self.bottom - self.top) * (self.right - self.left)

    def as_array(self) -> np.ndarray:
        return np.array([self.top, self.bottom, self.left, self.right], np.int32)


def _components(cells: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a small boolean grid: list of (row, col) index arrays."""
    seen = np.zeros_like(cells)
    out = []
    h, w = cells.shape
    for r0, c0 in zip(*np.nonzero(cells)):
        if seen[r0, c0]:
            continue
        stack, members = [(r0, c0)], []
        seen[r0, c0] = True
        while stack:
            r, c = stack.pop()
            members.append((r, c))
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= rr < h and 0 <= cc < w and cells[rr, cc] and not seen[rr, cc]:
                    seen[rr, cc] = True
                    stack.append((rr, cc))
        out.append(np.array(members))
    return out


def _edge_runs(line_static: np.ndarray) -> tuple[int, int]:
    """Lengths of the leading and trailing runs of True."""
    bad = np.flatnonzero(~line_static)
    if not bad.size:
        return line_static.size, 0
    return int(bad[0]), int(line_static.size - 1 - bad[-1])


def _channel_span(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Each pixel's widest channel span, uint8 [H, W]: ``(hi - lo).max(axis=-1)`` (``hi >= lo``), the same values by
    two ``np.maximum`` of the channel planes: numpy's reduction over a 3-long last axis took ~1.4 ms a 256 px frame,
    most of ``detect_overlays`` on a sweep file's two frames (issue #30); this, ~0.05 ms."""
    span = hi - lo
    return np.maximum(np.maximum(span[..., 0], span[..., 1]), span[..., 2])


def detect_overlays(
    frames: np.ndarray,
    *,
    max_range: float = 10.0,
    cell: int = 8,
    min_fraction: float = 0.01,
    max_fraction: float = 0.3,
    min_fill: float = 0.7,
    max_static: float = 0.4,
    min_frames: int = 4,
    max_frames: int = 48,
    max_boxes: int = 2,
) -> list[OverlayBox]:
    """Static overlay boxes of uint8 [N, H, W, 3] frames of one file, largest first ([] when none).

    A pixel is static when each channel spans <= ``max_range`` over (up to
    ``max_frames``, spread) frames; full static lines (borders) are left out.
    """
    check_frames(frames)
    n, h, w, _ = frames.shape
    if n < min_frames or h < 4 * cell or w < 4 * cell:
        return []
    pick = evenly_spaced(n, max_frames)
    lo = hi = None
    for k in pick:  # running min/max: no [n, H, W, 3] stack
        lo = frames[k] if lo is None else np.minimum(lo, frames[k])
        hi = frames[k] if hi is None else np.maximum(hi, frames[k])
    static = _channel_span(hi, lo) <= max_range  # every channel: a luma coincidence is not an overlay
    # Edges are drawn from luma alone: chroma subsampling smears colour edges by a pixel or two.
    static_luma = (luma(hi) - luma(lo)) <= max_range
    # Runs of lines static end to end from an edge are borders (vscan.frames.borders), not overlays.
    top, bottom = _edge_runs(static.mean(axis=1) >= 0.95)
    left, right = _edge_runs(static.mean(axis=0) >= 0.95)
    inner = static[top : h - bottom, left : w - right]
    if not inner.size or inner.mean() > max_static:
        return []  # most of the picture stands still: no moving content to tell an overlay from
    for mask in (static, static_luma):
        mask[:top], mask[h - bottom :], mask[:, :left], mask[:, w - right :] = False, False, False, False
    gh, gw = h // cell, w // cell
    cells = static[: gh * cell, : gw * cell].reshape(gh, cell, gw, cell).mean(axis=(1, 3)) >= 0.5
    boxes = []
    for members in _components(cells):
        (r0, c0), (r1, c1) = members.min(axis=0).tolist(), (members.max(axis=0) + 1).tolist()
        # Refine the cell box to pixels: lines of the (one cell wider) box that are mostly static.
        y0, y1 = max(0, (r0 - 1) * cell), min(h, (r1 + 1) * cell)
        x0, x1 = max(0, (c0 - 1) * cell), min(w, (c1 + 1) * cell)
        region = static_luma[y0:y1, x0:x1]
        rows = np.flatnonzero(region.mean(axis=1) >= 0.5 * (c1 - c0) * cell / (x1 - x0))
        cols = np.flatnonzero(region.mean(axis=0) >= 0.5 * (r1 - r0) * cell / (y1 - y0))
        if not rows.size or not cols.size:
            continue
        box = OverlayBox(y0 + int(rows[0]), y0 + int(rows[-1]) + 1, x0 + int(cols[0]), x0 + int(cols[-1]) + 1)
        area = box.area / (h * w)
        fill = static_luma[box.top : box.bottom, box.left : box.right].mean()
        spans = (box.bottom - box.top) >= 0.9 * h or (box.right - box.left) >= 0.9 * w
        if min_fraction <= area <= max_fraction and fill >= min_fill and not spans:
            boxes.append(box)
    boxes.sort(key=lambda b: -b.area)
    return boxes[:max_boxes]


def fill_overlays(frames: np.ndarray, boxes: list[OverlayBox], *, margin: int = 4, iterations: int = 30) -> np.ndarray:
    """A copy of uint8 [N, H, W, 3] ``frames`` with each box (grown by ``margin``)
    filled by harmonic interpolation of the luma around it, coarse to fine.

    The fill is grey (R = G = B = the interpolated luma): PDQ sees luma only.
    """
    out = frames.copy()
    n, h, w, _ = frames.shape
    for box in boxes:
        y0, y1 = max(0, box.top - margin), min(h, box.bottom + margin)
        x0, x1 = max(0, box.left - margin), min(w, box.right + margin)
        a0, a1, c0, c1 = max(0, y0 - 1), min(h, y1 + 1), max(0, x0 - 1), min(w, x1 + 1)
        sh, sw = a1 - a0, c1 - c0
        hole = np.zeros((sh, sw), bool)
        hole[y0 - a0 : y1 - a0, x0 - c0 : x1 - c0] = True
        if hole.all():
            continue  # no surroundings to fill from
        sub = luma(out[:, a0:a1, c0:c1]).reshape(n, -1)
        flat = np.flatnonzero(hole)
        r, c = np.divmod(flat, sw)
        sub[:, flat] = sub[:, np.flatnonzero(~hole)].mean(axis=1, keepdims=True)
        for step in (16, 8, 4, 2, 1):
            # Neighbours ``step`` away, clamped to the analysed window (Jacobi sweeps).
            nb = [np.clip(r - step, 0, sh - 1) * sw + c, np.clip(r + step, 0, sh - 1) * sw + c,
                  r * sw + np.clip(c - step, 0, sw - 1), r * sw + np.clip(c + step, 0, sw - 1)]  # fmt: skip
            for _ in range(iterations if step == 1 else max(1, iterations // 5)):
                sub[:, flat] = (sub[:, nb[0]] + sub[:, nb[1]] + sub[:, nb[2]] + sub[:, nb[3]]) * 0.25
        grey = np.clip(np.rint(sub[:, flat]), 0, 255).astype(np.uint8)
        window = out[:, a0:a1, c0:c1].reshape(n, -1, 3)
        window[:, flat] = grey[..., None]
        out[:, a0:a1, c0:c1] = window.reshape(n, sh, sw, 3)
    return out


def add_unoverlaid(payload: dict[str, np.ndarray], *, enabled: bool = True, min_frames: int = 4) -> dict[str, np.ndarray]:
    """Add ``unoverlaid_frames`` (row i = ``payload["frames"][i]`` with the
    static overlays filled) and ``overlay_box`` ([K, 4] int32: top, bottom,
    left, right in frame pixels) to a scan payload when the file has one."""
    frames = payload.get("frames")
    if not enabled or frames is None or not len(frames):
        return payload
    boxes = detect_overlays(frames, min_frames=min_frames)
    if boxes:
        payload["unoverlaid_frames"] = fill_overlays(frames, boxes)
        payload["overlay_box"] = np.stack([b.as_array() for b in boxes])
    return payload

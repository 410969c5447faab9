"""Bank-side windows: parts of each reference frame that re-posts keep.

A 9:16 re-post of a 16:9 video often keeps only the centre strip (about a
third of the width), and a slightly rotated copy is cropped to hide the
corners. Neither can be undone on the query side (the rest of the picture
is gone), so banks store these windows of every frame as extra rows (prep
names below), next to the centre crops of ``vscan.bank.hashers.BANK_CROPS``;
a scan pays nothing for them.

- ``strip916``: the centre 9:16 strip of a frame wider than 9:16 (full height);
- ``rot+4`` / ``rot-4``: the frame rotated by +-4 degrees about its centre and
  cropped to the largest box of its aspect inside (no corner shows);
- ``wstrip50`` / ``wstrip33`` / ``hband50`` / ``hband33`` (``PANE_WINDOWS``, kept on the grid windows' clock by the
  full and compact plans: ``vscan.bank.one_pass.BANK_GRID_WINDOWS``): the centre strip keeping 1/2 or 1/3 of the width
  (full height), or the band keeping 1/2 or 1/3 of the height (full width): what a pane of a 2- or 3-pane split screen
  shows when it fills its pane with the picture (crop to cover), which no query-side search can widen back
  (``docs/matching-quality.md``);
- ``g55:TT,LL`` (``GRID_WINDOWS``): the window keeping 55% of each side with
  its top-left corner at TT% of the height and LL% of the width, on a 10%
  grid from 2.5% (the middle one centred). A crop keeping 65% of a side at any
  position holds one of them whole on that axis, one keeping 60% (AugLy's
  narrowest) lacks at most 2.5% of the source, which the scan mirrors in
  (``vscan.runtime.offcentre.OVERHANG``); a scan finds where: no scale or
  position can be undone on the query side, so the bank keeps windows the
  query can search for. With them the centre window keeping 60%
  (``CENTRE_WINDOW``, ``g60:20,20``: the rotation search's smallest cut).
  They are kept for frames ``GRID_FPS`` times a second, not every frame (26
  rows each). Banks built before keep ``g60:TT,LL`` (60% on a 10% grid from
  0, 16 rows: a crop keeping 60-65% of a side held none whole at most
  positions); the scan reads the grid's scale from the bank.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["WINDOWS", "PANE_WINDOWS", "GRID_SCALE", "GRID_STEPS", "CENTRE_WINDOW", "GRID_WINDOWS", "GRID_FPS", "window", "rotate_crop", "grid_window"]

WINDOWS = ("strip916", "rot+4", "rot-4")
#: Centre strips / bands a filled split-screen pane shows (module docstring): name -> (share of width, share of height).
PANE_WINDOWS = {"wstrip50": (0.5, 1.0), "wstrip33": (1 / 3, 1.0), "hband50": (1.0, 0.5), "hband33": (1.0, 1 / 3)}
#: Share of each side the grid windows keep, and their top / left positions (shares of the side; names keep them in %).
GRID_SCALE = 0.55
GRID_STEPS = (0.025, 0.125, 0.225, 0.325, 0.425)
#: The window keeping 60% of each side in the centre, kept beside the grid: the rotation search's smallest centre cut
#: (``vscan.runtime.rotation_search.bank_cuts``; a copy turned 8 degrees and zoomed keeps 0.65 of its source, and
#: 55% of an even side centres only to half a pixel, ~20 bits at that size) and the window of banks built before.
CENTRE_WINDOW = "g60:20,20"
GRID_WINDOWS = tuple(f"g{round(GRID_SCALE * 100)}:{t * 100:g},{left * 100:g}" for t in GRID_STEPS for left in GRID_STEPS) + (CENTRE_WINDOW,)
#: Grid windows are hashed for this many frames a second (at most) of a bank's video.
GRID_FPS = 4.0


def grid_window(name: str) -> tuple[float, float, float] | None:
    """(scale, top, left) as shares of the side for a grid window's name (``g55:12.5,22.5``, ``g60:10,20``), else None."""
    if not name.startswith("g") or ":" not in name:
        return None
    try:
        scale, rest = name[1:].split(":")
        top, left = rest.split(",")
        return float(scale) / 100.0, float(top) / 100.0, float(left) / 100.0
    except ValueError:
        return None


@functools.lru_cache(maxsize=64)
def _rotation_map(h: int, w: int, degrees: float) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """(crop height, crop width, each output pixel's top-left source pixel as ``y * w + x``, its weights across
    and down) for ``rotate_crop`` of an h x w frame: the same for every frame of a video, so made once."""
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
    maps = (y0 * w + x0).ravel(), (sx - x0).ravel(), (sy - y0).ravel()  # float32 - int64: float64 weights
    for m in maps:
        m.flags.writeable = False  # shared by every call of the same size
    return (ch, cw, *maps)


def rotate_crop(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """uint8 [N, H, W, C] rotated by ``degrees`` (counter-clockwise, bilinear) and cropped to the inscribed box.

    The blend is vscan.kernels.rotate_crop's (numba, float64, rounded half to even)."""
    from vscan.kernels.rotate_crop import bilinear_gather

    n, h, w, c = rgb.shape
    ch, cw, at, fx, fy = _rotation_map(h, w, float(degrees))
    out = np.empty((n, ch * cw, c), np.uint8)
    bilinear_gather(np.ascontiguousarray(rgb).reshape(n, h * w, c), at, fx, fy, w, out)
    return out.reshape(n, ch, cw, c)


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
    if name in PANE_WINDOWS:
        kw, kh = PANE_WINDOWS[name]
        cw, ch = max(1, int(round(w * kw))), max(1, int(round(h * kh)))
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        return np.ascontiguousarray(rgb[:, y0 : y0 + ch, x0 : x0 + cw])
    grid = grid_window(name)
    if grid is not None and grid[0] + max(grid[1], grid[2]) <= 1.0 + 1e-9:
        scale, top, left = grid
        y0, x0 = int(round(h * top)), int(round(w * left))
        return np.ascontiguousarray(rgb[:, y0 : y0 + int(round(h * scale)), x0 : x0 + int(round(w * scale))])
    raise ValueError(f"Invalid window ({name!r}). Supported values are {list(WINDOWS + tuple(PANE_WINDOWS) + GRID_WINDOWS)}.")

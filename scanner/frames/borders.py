"""Border (letterbox / pillarbox / window-box) detection and removal.

Re-uploads often add flat bars around the picture (black or grey padding to
another aspect ratio). PDQ hashes the whole frame, so bars move every DCT
coefficient; removing them before the square resize restores the hash.

Detection is per file, over several decoded frames at their decoded size
(before any square resize): a row (column) belongs to a border when, in every
analysed frame, it is flat (small luma spread along it) and its level barely
changes over time. Borders are grown inwards from each edge, then kept only
when they are thick enough to matter (``min_fraction``) and leave enough
picture (``max_fraction``), so a flat sky in one scene does not cut a frame.

Both sides call it: ``vscan.hashing.media.hash_media`` (bank build: the box
from frames spread over the whole file) and ``vscan.runtime.driver.decode_for_scan``
(scan: ``BorderTap``, the box from the first ``lookahead_frames`` sampled
frames). Neither replaces the frames as decoded: the unbordered frames are
hashed as extra rows, so banks and scans without border removal still match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from vscan.frames.luma import check_frames, evenly_spaced, luma

__all__ = ["BorderBox", "BorderTap", "detect_borders", "frame_bars", "box_kind", "line_stats"]

@dataclass(frozen=True)
class BorderBox:
    """Pixels removed on each side of frames of ``height`` x ``width``."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0
    height: int = 0
    width: int = 0

    def __post_init__(self) -> None:
        if min(self.top, self.bottom, self.left, self.right) < 0:
            raise ValueError(f"Invalid border box {self}: negative side")
        if self.height and (self.top + self.bottom >= self.height or self.left + self.right >= self.width):
            raise ValueError(f"Invalid border box {self}: nothing left of [{self.height}, {self.width}]")

    @property
    def is_empty(self) -> bool:
        return not (self.top or self.bottom or self.left or self.right)

    @property
    def kind(self) -> str | None:
        """'letterbox' (bars top/bottom), 'pillarbox' (left/right), 'windowbox' (both), None."""
        rows, cols = bool(self.top or self.bottom), bool(self.left or self.right)
        return {(True, False): "letterbox", (False, True): "pillarbox", (True, True): "windowbox"}.get((rows, cols))

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """Crop uint8 [N, H, W, 3] frames (C-contiguous copy); a no-op for an empty box."""
        if self.is_empty:
            return rgb
        if rgb.shape[1:3] != (self.height, self.width):
            raise ValueError(f"Border box for [{self.height}, {self.width}] applied to frames {list(rgb.shape)}")
        h, w = rgb.shape[1:3]
        return np.ascontiguousarray(rgb[:, self.top : h - self.bottom, self.left : w - self.right])

    def to_dict(self) -> dict[str, int | str | None]:
        return {"kind": self.kind, "top": self.top, "bottom": self.bottom, "left": self.left, "right": self.right}


def _flat_run(spread: np.ndarray, drift: np.ndarray, spread_max: float, drift_max: float) -> int:
    """Length of the leading run of lines that are flat and steady."""
    ok = (spread <= spread_max) & (drift <= drift_max)
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if bad.size else int(ok.size)


def detect_borders(
    frames: np.ndarray,
    *,
    spread_max: float = 10.0,
    drift_max: float = 12.0,
    min_fraction: float = 0.03,
    max_fraction: float = 0.35,
    max_frames: int = 48,
    stats: tuple[np.ndarray, ...] | None = None,
) -> BorderBox:
    """The border box of uint8 [N, H, W, 3] frames of one file (N >= 1).

    A line is flat when the standard deviation of its luma is <= ``spread_max``
    in every frame, and steady when its mean luma varies by <= ``drift_max``
    across frames. A side is cropped when its run of such lines is at least
    ``min_fraction`` and at most ``max_fraction`` of the frame. ``stats``: ``line_stats(frames)``,
    computed already (BorderTap shares them with ``frame_bars``; the same bits as computed here).
    """
    check_frames(frames)
    n, h, w, _ = frames.shape
    if n == 0 or h < 8 or w < 8:
        return BorderBox(height=h, width=w)
    pick = evenly_spaced(n, max_frames)
    row_spread, row_level, col_spread, col_level = (s[pick] for s in stats) if stats is not None else line_stats(frames[pick])
    sides = {}
    for (spreads, means), size, names in (((row_spread, row_level), h, ("top", "bottom")), ((col_spread, col_level), w, ("left", "right"))):
        spread = spreads.max(axis=0)  # per line, worst frame
        drift = means.max(axis=0) - means.min(axis=0)
        lead = _flat_run(spread, drift, spread_max, drift_max)
        trail = _flat_run(spread[::-1], drift[::-1], spread_max, drift_max)
        if lead + trail >= size:  # a flat frame: nothing to tell bars from picture
            lead = trail = 0
        for name, run in zip(names, (lead, trail)):
            sides[name] = run if min_fraction * size <= run <= max_fraction * size else 0
    return BorderBox(height=h, width=w, **sides)


def line_stats(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each frame's rows' and columns' luma spread (standard deviation) and level (mean) of uint8 [N, H, W, 3]
    ``frames``: float32 (row spread [N, H], row level [N, H], column spread [N, W], column level [N, W]). A frame's
    are the same bits whichever frames it is computed with (each line is reduced within its own frame)."""
    y = luma(frames)  # [N, H, W]
    return y.std(axis=2), y.mean(axis=2), y.std(axis=1), y.mean(axis=1)


class BorderTap:
    """Finds one file's border box while its batches stream past, and keeps
    the frames with the borders removed (``transform``-ed, e.g. resized).

    ``for batch in tap.watch(batches)`` passes batches through unchanged. The
    box is decided once, on the first ``lookahead_frames`` frames (so memory
    stays bounded), and applies to the whole file. Without a border nothing
    is kept: ``unbordered()`` returns None.
    """

    def __init__(self, transform: Callable[[np.ndarray], np.ndarray] | None = None, *,
                 lookahead_frames: int = 64, enabled: bool = True) -> None:  # fmt: skip
        if lookahead_frames < 1:
            raise ValueError(f"Invalid lookahead_frames ({lookahead_frames}). Supported values are >= 1.")
        self.transform = transform or (lambda rgb: rgb)
        self.lookahead_frames = lookahead_frames
        self.enabled = enabled
        self.box: BorderBox | None = None
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._out: list[np.ndarray] = []
        self.frame_box: BorderBox | None = None  # the first frame's own bars (``_own_bars``), where the file has no box

    def watch(self, batches: Iterable) -> Iterator:
        for batch in batches:
            self.push(batch.rgb)
            yield batch

    def push(self, rgb: np.ndarray) -> None:
        if not self.enabled or not len(rgb):
            return
        if self.box is None:
            self._buffer.append(rgb)
            self._buffered += len(rgb)
            if self._buffered >= self.lookahead_frames:
                self._decide()
        elif not self.box.is_empty:
            self._out.append(self.transform(self.box.apply(rgb)))
        else:
            self._out.append(self._own_bars(rgb))

    def _decide(self) -> None:
        frames = np.concatenate(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        # The lines' luma stats once, for the file's box and each frame's own bars (issue #30: each took the luma again)
        stats = line_stats(frames) if frames.ndim == 4 and len(frames) and min(frames.shape[1:3]) >= 8 else None
        self.box = detect_borders(frames, stats=stats)
        if not self.box.is_empty:
            self._out = [self.transform(self.box.apply(rgb)) for rgb in self._buffer]
        else:
            starts = np.cumsum([0] + [len(rgb) for rgb in self._buffer])
            self._out = [self._own_bars(rgb, None if stats is None else tuple(s[a:b] for s in stats))
                         for rgb, a, b in zip(self._buffer, starts[:-1], starts[1:])]  # fmt: skip
        self._buffer, self._buffered = [], 0

    def _own_bars(self, rgb: np.ndarray, stats: tuple[np.ndarray, ...] | None = None) -> list[np.ndarray | None]:
        """Frames of a file without a border box, each cut to bars of its own (``frame_bars``; None where it
        has none: ``add_to`` takes the frame as it is): a letterboxed clip cut into other video (issue #27: an
        excerpt inside a compilation at another aspect) has bars on its frames alone, which no file box shows.
        ``stats``: ``line_stats`` of ``rgb``, computed already."""
        out: list[np.ndarray | None] = []
        for i, f in enumerate(rgb):
            bars = frame_bars(f, stats=None if stats is None else tuple(s[i] for s in stats))
            self.frame_box = self.frame_box or (None if bars.is_empty else bars)
            out.append(None if bars.is_empty else self.transform(bars.apply(f[None]))[0])
        return out

    def unbordered(self, count: int | None = None) -> np.ndarray | None:
        """The first ``count`` pushed frames without the file's borders, or None when it has none."""
        if self.box is None and self._buffer:
            self._decide()
        if self.box is None or self.box.is_empty or not self._out:
            return None
        out = np.concatenate(self._out) if len(self._out) > 1 else self._out[0]
        return out if count is None else out[:count]

    def add_to(self, payload: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add ``unbordered_frames`` (row i = ``payload["frames"][i]`` without
        borders) and ``border_box`` (top, bottom, left, right in decoded
        pixels) to a scan payload when the file has borders, or when some of
        its frames have bars of their own (``_own_bars``: the other rows are
        the frames as they are; ``border_box`` the first such frame's)."""
        n = len(payload["frames"])
        extra = self.unbordered(n) if n else None
        box = self.box
        if extra is None and n and box is not None and box.is_empty and self.frame_box is not None:
            own = [f for part in self._out for f in part][:n]
            if len(own) == n:
                extra = np.stack([payload["frames"][i] if f is None else f for i, f in enumerate(own)])
                box = self.frame_box
        if extra is not None and len(extra) == n and box is not None:
            payload["unbordered_frames"] = extra
            payload["border_box"] = np.array([box.top, box.bottom, box.left, box.right], np.int32)
        return payload


def frame_bars(rgb: np.ndarray, *, spread_max: float = 6.0, level_max: float = 40.0, min_fraction: float = 0.03,
               max_fraction: float = 0.3, skew_fraction: float = 0.02, stats: tuple[np.ndarray, ...] | None = None) -> BorderBox:
    """One frame's own bars: dark flat lines (luma spread <= ``spread_max``, mean <= ``level_max``) as thick
    on both opposite sides (within ``skew_fraction`` of the side, + 2 px), ``min_fraction`` to
    ``max_fraction`` of it each, as fitting a picture of another aspect into a frame leaves them (a dark
    sky or floor, on one side, is not cut). Wider bars (9:16 in 16:9 leaves 34% a side) are left to region
    search (vscan.runtime.region_search): at 40% the cut rows outvoted its box on a held-out copy and lost it.
    ``stats``: this frame's ``line_stats`` (row spread, row level, column spread, column level), computed already."""
    h, w = rgb.shape[:2]
    if h < 8 or w < 8:
        return BorderBox(height=h, width=w)
    row_spread, row_level, col_spread, col_level = stats if stats is not None else (s[0] for s in line_stats(rgb[None]))
    sides = {}
    for (spread, level), size, names in (((row_spread, row_level), h, ("top", "bottom")), ((col_spread, col_level), w, ("left", "right"))):
        ok = (spread <= spread_max) & (level <= level_max)
        bad = np.flatnonzero(~ok)
        lead, trail = (int(bad[0]), int(size - 1 - bad[-1])) if bad.size else (size, size)
        both = min_fraction * size <= min(lead, trail) and max(lead, trail) <= max_fraction * size
        even = abs(lead - trail) <= skew_fraction * size + 2
        sides.update(zip(names, (lead, trail) if both and even else (0, 0)))
    return BorderBox(height=h, width=w, **sides)


def box_kind(box: np.ndarray | None) -> str | None:
    """'letterbox' / 'pillarbox' / 'windowbox' / None for a (top, bottom, left, right) array."""
    if box is None or len(box) != 4:
        return None
    return BorderBox(*(int(v) for v in box)).kind

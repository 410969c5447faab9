"""Region search: where known content sits inside a re-framed upload.

Re-posts move the picture inside a new frame: a 16:9 video centred on a 9:16
canvas over a blurred, zoomed copy of itself; a picture-in-picture inset over
other moving content; one half of a split screen; a letterbox whose bars
carry captions and logos. PDQ hashes the whole frame, so none of these match
as decoded, while the region alone, cropped and resized, hashes within a few
bits of the original (measured in ``vscan.bench.bench_robustness``).

The region's edges are found per file, over the sampled frames, from time:
two neighbouring pixels of one picture rise and fall together from frame to
frame (their luma over time correlates), while two pixels on either side of
an inset's edge belong to unrelated pictures (a blurred background, another
video, a static bar) and do not. ``break_maps`` gives, for every boundary
between two columns (rows), ``1 - correlation`` of the pixels on either side
(1 where one side is static and the other moves); a rectangle's score is its
weakest inner side's mean break (sides on the frame's edge do not count),
and the best rectangle on a coarse grid is refined side by side to the
pixel; a side must stand out from the lines beside it (``vscan.frames.boxes``:
inside a fine texture every line breaks about as strongly as the edge).
``detect_region`` keeps it when that score reaches ``min_score`` (0.55: two
halves of a split screen whose scene cuts both brighten break ~0.58 at the
seam) and the background (the whole map's median break) is well below it.

``add_region`` adds ``region_frames`` (the region of each sampled frame,
resized back to the square, a static overlay inside it filled as
``vscan.frames.overlays`` does) and ``region_box`` to a scan payload; the
matcher searches them as one more query version (path "region").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vscan.frames.boxes import best_box, box_score
from vscan.frames.luma import check_frames, evenly_spaced, luma
from vscan.frames.overlays import detect_overlays, fill_overlays
from vscan.frames.resize import resize_bilinear
from vscan.frames.translucent import detect_translucent, undo_translucent

__all__ = ["MIN_FRAMES", "RegionBox", "break_maps", "detect_region", "add_region", "add_region_box", "still_windows", "still_window_hashes",
           "region_query", "region_version"]  # fmt: skip

#: Frames of a file region search needs (fewer: no region is looked for).
MIN_FRAMES = 4


@dataclass(frozen=True)
class RegionBox:
    """Rows ``top:bottom``, columns ``left:right`` of the analysed frames, and its score."""

    top: int
    bottom: int
    left: int
    right: int
    score: float = 0.0
    background: float = 0.0

    def as_array(self) -> np.ndarray:
        return np.array([self.top, self.bottom, self.left, self.right], np.int32)

    def fraction(self, h: int, w: int) -> float:
        return (self.bottom - self.top) * (self.right - self.left) / float(h * w)


def break_maps(frames: np.ndarray, *, gap: int = 3, static_std: float = 2.5, max_frames: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """(vertical [H, W+1], horizontal [H+1, W]) break maps of uint8 [N, H, W, 3] frames.

    ``vertical[y, x]``: the boundary left of column x at row y, comparing
    columns ``x - 1 - gap // 2`` and ``x + gap // 2`` (clamped), so a
    boundary blurred over a pixel or two by scaling and the codec still
    separates two unrelated signals. Values in [0, 1]; the outermost
    boundaries (x = 0, W) are 0.
    """
    return _maps(frames, gap, static_std, max_frames)[:2]


def _maps(frames: np.ndarray, gap: int = 3, static_std: float = 2.5, max_frames: int = 48,
          spread: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """``break_maps`` and the static pixels they took (bool [H, W]: luma std over the picked frames under
    ``static_std``), which ``detect_region`` took again from the same frames (issue #30: a second luma and std of up
    to 48 frames, ~30% of a region search left to the model). ``spread``: (``luma(frames)``, its std over the
    frames), where ``add_region`` took them already (``_spread``: files of at most ``max_frames`` frames, all picked)."""
    n = frames.shape[0]
    pick = evenly_spaced(n, max_frames)
    if spread is not None and len(pick) == n == len(spread[0]):
        y, std = spread
    else:
        y = luma(frames[pick])  # [n, H, W]
        std = y.std(axis=0)
    mean = y.mean(axis=0)
    static = std < static_std
    z = (y - mean) / np.maximum(std, 1e-3)
    z[:, static] = 0.0

    def one(axis: int) -> np.ndarray:
        size = y.shape[1 + axis]
        lo = np.clip(np.arange(1, size) - 1 - gap // 2, 0, size - 1)
        hi = np.clip(np.arange(1, size) + gap // 2, 0, size - 1)
        za, zb = np.take(z, lo, axis=1 + axis), np.take(z, hi, axis=1 + axis)
        corr = (za * zb).mean(axis=0)
        sa, sb = np.take(static, lo, axis=axis), np.take(static, hi, axis=axis)
        ma, mb = np.take(mean, lo, axis=axis), np.take(mean, hi, axis=axis)
        out = 1.0 - np.clip(corr, 0.0, 1.0)
        out = np.where(sa != sb, 1.0, out)
        out = np.where(sa & sb, np.minimum(1.0, np.abs(ma - mb) / 32.0), out)
        pad = [(0, 0), (0, 0)]
        pad[axis] = (1, 1)
        return np.pad(out.astype(np.float32), pad)

    return one(1), one(0), static


def detect_region(
    frames: np.ndarray,
    *,
    min_score: float = 0.55,
    max_background: float = 0.35,
    min_fraction: float = 0.08,
    max_fraction: float = 0.9,
    min_frames: int = MIN_FRAMES,
    step: int = 16,
    spread: tuple[np.ndarray, np.ndarray] | None = None,
) -> RegionBox | None:
    """The moving rectangle of uint8 [N, H, W, 3] frames of one file, or None. ``spread``: ``_maps``'.

    ``max_fraction`` 0.9 (was 0.8): a caption band of 8% under the picture, the
    picture shrunk between it and the frame's sides, leaves a region of 0.85 of
    the frame (bench_generalise's held-out caption copies: 2 of 4 were missed for it)."""
    check_frames(frames)
    n, h, w, _ = frames.shape
    if n < min_frames or h < 8 * step or w < 8 * step:
        return None
    vert, horiz, static = _maps(frames, spread=spread)  # the static pixels from the maps' own luma of the same frames
    background = float(np.median(np.concatenate([vert[:, 1:-1].ravel(), horiz[1:-1].ravel()])))
    if background > max_background:
        return None  # pixels barely correlate anywhere (noise, flashes): no edges to trust
    found = best_box(vert, horiz, ~static, min_score=min_score, min_fraction=min_fraction, max_fraction=max_fraction, step=step, prominent=True)
    if found is None:
        return None
    box = found
    final, count = box_score(vert, horiz, *box, full=True)
    region = RegionBox(*box, score=final, background=background)
    if final < min_score or count < 2 or not min_fraction <= region.fraction(h, w) <= max_fraction:
        return None
    return region


#: Still images (one frame: a frame grab, a screenshot) get windows instead:
#: sub-windows keeping these shares of each side, each on a grid of positions
#: across the slack (that many per axis). A screenshot crops the known frame
#: off-centre; one of these windows lines up with a bank centre crop.
#: The 90% windows on 7 places a side (74 windows; was 5 for both scales, 50):
#: the 90% windows of a 90% screenshot stand about 1.5% of the frame apart, not
#: 2.25%, so the nearest one is about 0.75% of the frame off a bank crop's
#: place, not 1.1%. With exact mirrors (a9fe847) a mirrored screenshot halfway
#: between two of 5 places lay 18-34 bits from every row of its source
#: (bench_robustness's wide3308, wide6306); the hash's own sign-flip mirror,
#: off by a sub-cell shift of its own, had found some of those and lost others.
#: Every screenshot the denser grid found again was found through a 90% window
#: (16 of 16 in bench_quality_stills with both scales on 7 places; 9 of its 120
#: window matches were 80% ones), so the 80% windows keep their 5 places.
_STILL_GRID = ((0.9, 7), (0.8, 5))
#: Windows are hashed at this side (PDQ works at 64x64 anyway). The still is
#: resized once per scale (to 142 and 160 pixels: every grid position within
#: half a pixel) and the windows are cut from it: ~11-13 ms for the 74 windows
#: of a still on a loaded 2-core machine (the 50 of before: ~6-9 ms), where
#: resizing each window cost ~10 ms.
_STILL_SIZE = 128


def _still_grid(frame: np.ndarray, size: int):
    """Per scale: (the still resized so a window is ``size`` of it, uint8 [side, side, 3];
    window tops (= lefts) in it; the windows' boxes in the frame's pixels, row by row)."""
    from PIL import Image

    h, w = frame.shape[1:3]
    image = Image.fromarray(np.ascontiguousarray(frame[0]))
    for scale, places in _STILL_GRID:
        side = int(round(size / scale))  # the still at this side: each window is `size` of it
        small = np.asarray(image.resize((side, side), Image.Resampling.BILINEAR))
        ch, cw = int(round(h * scale)), int(round(w * scale))
        steps = np.linspace(0, side - size, places).round().astype(int)
        boxes = []
        for y in steps:
            for x in steps:
                y0, x0 = int(round(y * (h - ch) / max(side - size, 1))), int(round(x * (w - cw) / max(side - size, 1)))
                boxes.append((y0, y0 + ch, x0, x0 + cw))
        yield small, steps, boxes


def still_windows(frame: np.ndarray, size: int = _STILL_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(windows uint8 [K, size, size, 3], boxes [K, 4] top, bottom, left, right in the frame's pixels)."""
    crops, boxes = [], []
    for small, steps, grid in _still_grid(frame, size):
        crops += [small[y : y + size, x : x + size] for y in steps for x in steps]
        boxes += grid
    return np.stack(crops), np.array(boxes, np.int32)


def still_window_hashes(frame: np.ndarray, size: int = _STILL_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``still_windows``' windows hashed where they lie (``vscan.frames.window_hash.window_pdq``), none
    cut out: (hashes uint8 [K, 8, 32], quality int32 [K], boxes [K, 4]); the hash model's bits and quality."""
    from vscan.frames.window_hash import window_pdq

    hashes, quality, boxes = [], [], []
    for small, steps, grid in _still_grid(frame, size):
        h, q = window_pdq(small, size, size, steps, steps)
        hashes.append(h.reshape(-1, 8, 32))
        quality.append(q.ravel())
        boxes += grid
    return np.concatenate(hashes), np.concatenate(quality), np.array(boxes, np.int32)


def add_region(payload: dict[str, np.ndarray], *, enabled: bool = True, min_frames: int = MIN_FRAMES,
               detect_rows: np.ndarray | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Add ``region_frames`` (row i = ``payload["frames"][i]``'s region, resized
    to the frame's square size, static overlays in it filled) and
    ``region_box`` (top, bottom, left, right in frame pixels) when the file's
    frames hold an inset picture (``detect_region``) other than the picture
    inside the payload's flat bars (``border_box``: already hashed).

    A translucent box over moving content (``vscan.frames.translucent``) is
    undone into ``unoverlaid_frames`` / ``overlay_box`` when no static
    overlay was found. A still (one frame) gets its ``still_windows`` instead, already hashed
    (``still_window_hashes``: 74 windows, ~10x cheaper here than through the hash
    model): ``region_hashes`` [K, 8, 32], ``region_quality`` [K], ``region_box`` [K, 4] and
    ``region_rows`` (the sample of each row, 0).
    ``detect_rows`` (bool per frame): the frames the box and the translucent blend are found on
    (a short file's frames spread over it, not its burst of consecutive frames:
    vscan.runtime.region_probe), the crops still made of every frame; None, or fewer than
    ``min_frames`` of them: every frame.
    """
    frames = payload.get("frames")
    if not enabled or frames is None or not len(frames):
        return payload
    if len(frames) == 1 and float(payload.get("duration_seconds", 0.0) or 0.0) == 0.0:
        hashes, quality, boxes = still_window_hashes(frames)
        payload.update(region_hashes=hashes, region_quality=quality, region_box=boxes, region_rows=np.zeros(len(hashes), np.int64))
        return payload
    if len(frames) < min_frames:
        return payload
    seen = _detected_on(frames, detect_rows, min_frames)
    spread = _spread(frames if seen is None else frames[seen])
    if "unoverlaid_frames" not in payload:  # a translucent box: undone as the overlay-removed version
        blend = detect_translucent(frames if seen is None else frames[seen], min_frames=min_frames, spread=None if spread is None else spread[1])
        if blend is not None:
            payload["unoverlaid_frames"] = undo_translucent(frames, *blend)
            payload["overlay_box"] = np.array([blend[0]], np.int32)
    return add_region_box(payload, min_frames=min_frames, detect_rows=seen, spread=spread)


def _spread(frames: np.ndarray, most: int = 48) -> tuple[np.ndarray, np.ndarray] | None:
    """(``luma(frames)``, its std over the frames) for the translucent box and the region's break maps, which each
    took them from the same frames (issue #30: ~4 ms of a 30-frame file's region search); None past ``most`` frames
    (the maps pick ``most``, the translucent box reads every frame)."""
    if len(frames) > most or len(frames) < MIN_FRAMES or min(frames.shape[1:3]) < 8 * 16:
        return None  # (detect_region looks at frames of 8 of its 16 px steps a side at least)
    y = luma(frames)
    return y, y.std(axis=0)


def _detected_on(frames: np.ndarray, detect_rows: np.ndarray | None, min_frames: int) -> np.ndarray | None:
    """``add_region``'s frames to detect on, as a bool mask over ``frames``; None: every frame."""
    rows = np.asarray(detect_rows, bool) if detect_rows is not None else None
    if rows is None or len(rows) != len(frames) or rows.sum() < min_frames or rows.all():
        return None
    return rows


def add_region_box(payload: dict[str, np.ndarray], *, min_frames: int = MIN_FRAMES, detect_rows: np.ndarray | None = None,
                   spread: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """``add_region``'s inset picture alone (no translucent box, no still
    windows): ``region_frames`` and ``region_box`` from ``detect_region`` on
    ``payload["frames"]`` (those of ``detect_rows``: ``add_region``), unless it is the picture inside the flat bars.
    ``vscan.runtime.decode_task.merge_passes`` calls it on both adaptive
    passes' frames together when only one pass found a region."""
    frames = payload["frames"]
    seen = _detected_on(frames, detect_rows, min_frames)
    box = detect_region(frames if seen is None else frames[seen], min_frames=min_frames, spread=spread)
    if box is None:
        return payload
    h, w = frames.shape[1:3]
    bars = payload.get("border_box")  # vscan.frames.borders, in these frames' pixels
    if bars is not None:
        picture = np.array([bars[0], h - bars[1], bars[2], w - bars[3]])
        if np.abs(picture - box.as_array()).max() <= 4:
            return payload  # the picture inside flat bars: border removal already hashes it
    crop = np.ascontiguousarray(frames[:, box.top : box.bottom, box.left : box.right])
    region = resize_bilinear(crop, h, w)
    boxes = detect_overlays(region if seen is None else region[seen], min_frames=min_frames)
    if boxes:
        region = fill_overlays(region, boxes)
    payload["region_frames"] = region
    payload["region_box"] = box.as_array()
    return payload


def region_query(payload: dict[str, np.ndarray], variants: np.ndarray, quality: np.ndarray):
    """The hashed ``region_frames`` of a payload as the matcher takes them (``region_version``)."""
    shape = payload["frames"].shape[1:3]
    return region_version(payload["frame_numbers"], payload["timestamps"], shape, payload["region_box"], payload.get("region_rows"),
                          variants, quality)  # fmt: skip


def region_version(frame_numbers: np.ndarray, timestamps: np.ndarray, frame_shape: tuple[int, int], region_box: np.ndarray,
                   region_rows: np.ndarray | None, variants: np.ndarray, quality: np.ndarray):  # fmt: skip
    """Hashed region windows as the matcher takes them: (FrameHashes,
    variants [K, 8, 32], boxes [K, 4] as fractions of the frame); row k
    belongs to sample ``region_rows[k]`` (default: sample k); ``region_box``:
    one box, or one per row, in pixels of frames ``frame_shape`` (h, w)."""
    from vscan.hashing.vpdq import FrameHashes

    rows = np.arange(len(variants)) if region_rows is None else np.asarray(region_rows, np.int64)
    numbers, times = frame_numbers[rows], timestamps[rows]
    h, w = frame_shape
    boxes = np.asarray(region_box, np.float64).reshape(-1, 4) / np.array([h, h, w, w], np.float64)
    boxes = np.broadcast_to(boxes, (len(variants), 4)) if len(boxes) == 1 else boxes
    return FrameHashes(numbers, times, quality, np.ascontiguousarray(variants[:, 0])), variants, np.round(boxes, 4)

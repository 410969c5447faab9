"""Persistent straight edges: a cheap sign that a file may be re-framed.

Region search (``vscan.frames.regions``) finds an inset picture from how
pixels change over time and needs at least 4 frames of a file; adaptive
sampling's first pass gives a short clip 2 or 3 (its keyframes), and giving
every file more costs about half a GOP of decoding per frame. This test runs
on the first pass's frames instead and says which files deserve more.

Every re-framed kind region search handles puts straight lines into the
frame that stay where they are while the picture changes: an inset's sides
(picture-in-picture, the sharp video over its own blurred, zoomed copy in a
vertical re-post), the seam of a split screen, a caption band's or a
translucent box's edges. Ordinary footage has straight edges too, but the
camera or the scene moves them between two keyframes seconds apart.

``persistent_lines`` scores, per axis, the longest straight edge found at
the same place in every frame: for each boundary between rows (columns)
and each block of ``block`` pixels along it, the mean luma step across the
boundary; a block counts as a line when that step is large in absolute
terms and against the rows around it (a ridge, so texture is not a line);
lines must appear in every frame (within a pixel); the score is the longest
run of consecutive blocks, in blocks. Lines at the frame's outer margin and
at flat bars already found (``border_box``, removed as borders) are ignored.
About 1.5 ms for three 256 x 256 frames on one core (3.7 ms when the
background median was taken at every block, not only where a line can persist).
"""

from __future__ import annotations

import numpy as np

from vscan.frames.luma import check_frames, luma

__all__ = ["MIN_BLOCKS", "MIN_BLOCKS_VERTICAL", "persistent_lines", "looks_reframed"]

#: Blocks of this many pixels along a boundary (256-pixel frames: 16 blocks).
_BLOCK = 16
#: Rows (columns) each side of a boundary that set its background, skipping
#: the nearest ``_NEAR`` (a blurred edge spreads over a pixel or two).
_AROUND, _NEAR = 8, 2
#: A block is a line where its mean step is >= this (luma levels) and
#: >= ``_RIDGE`` times the background's median.
_MIN_STEP, _RIDGE = 6.0, 2.0
#: Boundaries this close to the frame's edge are not inner lines.
_MARGIN = 6
#: Lines within this many pixels of a border box's side are the bars' edges.
_BAR_SLACK = 3
#: A horizontal line this many blocks long (5 of 16: about a third of the
#: side) in every frame, or a vertical one ``MIN_BLOCKS_VERTICAL`` long, makes
#: a file worth region search. Measured on the first-pass frames (2-3, region
#: search off) of 394 files of bench_robustness's and bench_distractors'
#: archives: 81 of 84 blur-fill, picture-in-picture, split-screen,
#: captioned-letterbox and translucent-box copies pass (the three missed are
#: blur fills of near-flat distractor content); 15 of 310 other files do:
#: static watermarks (3, scoring 6), cellular automata whose cells sit on a
#: fixed grid (11 of 200 unrelated clips), one 9:16 crop. Vertical lines
#: alone are less telling (the synthetic clips' slow axis-aligned shapes gave
#: 5 plain or re-encoded clips a 6-block one).
MIN_BLOCKS = 5
MIN_BLOCKS_VERTICAL = 7


def _lines(y: np.ndarray) -> np.ndarray:
    """bool [N, H - 2, W // _BLOCK]: line blocks on the boundaries between rows
    of luma [N, H, W] -- where they can count. A line counts only where every
    frame has a step of ``_MIN_STEP`` within a pixel of it (``_score``), so the
    background median (the costly part: 14 values for each block of each
    frame) is taken at those blocks alone; elsewhere no line is reported, and
    the score is the same as with every block's (tests/test_straight_edges.py)."""
    step = np.abs(y[:, 2:, :] - y[:, :-2, :])  # boundary between rows i and i + 1, one row of slack each side
    n, h, w = step.shape
    blocks = step[:, :, : w // _BLOCK * _BLOCK].reshape(n, h, w // _BLOCK, _BLOCK).mean(axis=3)
    strong = blocks >= _MIN_STEP
    persists = np.logical_and.reduce(_within_a_pixel(strong), axis=0)  # [H - 2, B]: a strong step near here in every frame
    wanted = strong & _within_a_pixel(persists[None])  # the blocks a persisting line can be made of
    lines = np.zeros_like(strong)
    frame, row, block = np.nonzero(wanted)
    if len(frame):
        padded = np.pad(blocks, ((0, 0), (_AROUND, _AROUND), (0, 0)), mode="edge")
        keep = np.r_[0 : _AROUND - _NEAR, _AROUND + _NEAR + 1 : 2 * _AROUND + 1]  # offsets in the padded rows from row - _AROUND
        background = np.median(padded[frame[:, None], row[:, None] + keep, block[:, None]], axis=-1)
        lines[frame, row, block] = blocks[frame, row, block] >= _RIDGE * np.maximum(background, 1.0)
    return lines


def _within_a_pixel(mask: np.ndarray) -> np.ndarray:
    """``mask`` [N, H, B] or'ed with its neighbours along H: scaling and the codec move an edge a little."""
    near = mask.copy()
    near[:, 1:] |= mask[:, :-1]
    near[:, :-1] |= mask[:, 1:]
    return near


def _longest_run(mask: np.ndarray) -> np.ndarray:
    """Longest run of True along the last axis, per row: int [R]."""
    best = np.zeros(mask.shape[0], np.int64)
    current = np.zeros(mask.shape[0], np.int64)
    for column in mask.T:
        current = np.where(column, current + 1, 0)
        best = np.maximum(best, current)
    return best


def _score(y: np.ndarray, bars: tuple[int, int]) -> int:
    runs = _longest_run(np.logical_and.reduce(_within_a_pixel(_lines(y)), axis=0))
    size = y.shape[1]
    position = np.arange(len(runs)) + 1  # boundary index i lies between rows i and i + 1 of the frame
    inner = (position >= _MARGIN) & (position <= size - _MARGIN)
    for side in (bars[0], size - bars[1]):
        if 0 < side < size:
            inner &= np.abs(position - side) > _BAR_SLACK
    return int(runs[inner].max()) if inner.any() else 0


def persistent_lines(frames: np.ndarray, border_box: np.ndarray | None = None) -> tuple[int, int]:
    """(horizontal, vertical): the longest straight edge, in blocks of
    ``_BLOCK`` pixels, at the same place in every one of uint8 [N, H, W, 3]
    ``frames`` (N >= 2); ``border_box`` (top, bottom, left, right pixels of
    flat bars, as ``vscan.frames.borders`` gives it): the bars' edges do not count."""
    check_frames(frames)
    if len(frames) < 2 or min(frames.shape[1:3]) < 4 * _BLOCK:
        return 0, 0
    y = luma(frames)
    top, bottom, left, right = (int(v) for v in border_box) if border_box is not None else (0, 0, 0, 0)
    return _score(y, (top, bottom)), _score(np.ascontiguousarray(y.transpose(0, 2, 1)), (left, right))


def looks_reframed(frames: np.ndarray, border_box: np.ndarray | None = None, *, min_blocks: int = MIN_BLOCKS,
                   min_blocks_vertical: int = MIN_BLOCKS_VERTICAL) -> bool:  # fmt: skip
    """True when ``frames`` share a horizontal straight edge ``min_blocks``
    blocks long or a vertical one ``min_blocks_vertical`` long (``persistent_lines``)."""
    horizontal, vertical = persistent_lines(frames, border_box)
    return horizontal >= min_blocks or vertical >= min_blocks_vertical

"""Candidate places of a re-framed picture, from several cues, for a search that tries each.

Region search (``vscan.frames.regions``) keeps one rectangle: the one whose
sides break the correlation of pixels over time most. On copies made by
other people's tools (bench_generalise's held-out split) it misses most
insets, panes and fills: a blurred fill of the picture itself correlates
with it, a fill with the picture at the canvas's edge has one inner side, a
textured pane pulls the box inside it. Each kind leaves other traces, and
no one cue sees them all:

- ``moving``: where pixels change over time. A picture on a still canvas
  (a screenshot template, a caption or meme band, a colour fill, an inset
  over a still) is the box of its moving rows and columns.
- ``detail``: where the picture is sharp. A blurred fill (the vertical re-post
  over a blur of itself) moves with the picture but holds little detail.
- ``lines``: straight edges that run the frame's whole width or height in
  every frame (a split screen's seams, a band's or a fill's edge). The
  stretches between them (and the frame's edges) are candidate panes, each
  trimmed of flat margins (a picture fitted inside its pane).

``candidate_boxes`` returns them, distinct and best first, each trimmed of flat
(static, uniform) margins. Nothing here decides a match: every box is hashed and
matched under the matcher's usual rules (``vscan.runtime.region_search``), and is
tried only for a file that matched nothing as it is.
"""

from __future__ import annotations

import itertools

import numpy as np

from vscan.frames.luma import check_frames, evenly_spaced, luma

__all__ = ["MAX_CANDIDATES", "candidate_boxes", "line_positions", "part_bars", "span"]

#: Boxes tried per file at most (each costs a window hash per sampled frame and one match).
MAX_CANDIDATES = 6
#: Frames the cues look at, spread over the file.
_CUE_FRAMES = 16
#: A box keeps this share of the frame at least and at most (the whole frame is the plain match). The least: a
#: portrait clip in a landscape screenshot template (AugLy's overlay_onto_screenshot, tune split: 36 x 99 px of the
#: 256 px scan square, 5.4%, 18-22 bits from its rows at the exact box) is smaller than an inset of 25% of each side.
#: The most (0.92 before): AugLy's meme_format over a tall clip leaves the picture 92.1% of the frame under its
#: caption band (tune's 640 x 1138 portrait clip, 98 px of band: found at 2 bits once boxes reach 95%); a caption band
#: of 3-5% (ffmpeg's pad, tune's three sources) left the portrait clip unfound up to 95% and is found at 98% (2-4 bits).
#: Boxes on 91 unrelated files: 147 at 92%, 151 at 98%; no false positive on 600 unrelated files or bench_distractors.
MIN_SHARE, MAX_SHARE = 0.04, 0.98
#: Luma std over time (grey levels) above which a pixel moves.
_MOVING_STD = 4.0
#: A line runs across when its mean step is this many times that of the lines beside it, and this many grey levels.
_LINE_RATIO, _LINE_STEP = 3.0, 6.0
#: A cue's box also reaches out to a full-length line this share of its side beyond a side (``_out_to_lines``).
_OUT_TO_LINE = 0.12
#: Two boxes closer than this share of the smaller one's side on every side are one (``_same``).
_SAME = 0.04
#: A frame's margin is a bar where its lines are this uniform (luma std along the line, grey levels) and cover this
#: share of the frame's side at least on both sides of an axis (``part_bars``).
_BAR_STD, _BAR_SHARE = 3.0, 0.05
#: Row spans and column spans crossed into more boxes (``_crossed``), at most each.
_CROSSED = 4
#: Boxes inside bars returned at most (the groups with the most frames).
_BAR_GROUPS = 2


def span(profile: np.ndarray, level: float, gap: int = 2) -> tuple[int, int] | None:
    """The longest run of ``profile`` at or above ``level`` (gaps up to ``gap`` bridged): (start, end), or None."""
    above = profile >= level
    best, start, miss = None, None, 0
    for i, a in enumerate(np.append(above, False)):
        if a:
            start = i if start is None else start
            miss = 0
            continue
        if start is not None:
            miss += 1
            if miss > gap or i == len(above):
                end = i - miss + 1
                if best is None or end - start > best[1] - best[0]:
                    best = (start, end)
                start, miss = None, 0
    return best


def _moving_box(y: np.ndarray) -> list[int] | None:
    """The box of the rows and columns where most pixels move over time. Rows where half the frame's width moves;
    where none does (a picture narrower than half the frame, on a still canvas), rows where half as many pixels move
    as in the row where most do (tune split: a screenshot template's clip is 14% of the frame's width)."""
    if y.shape[0] < 2:
        return None
    moving = y.std(axis=0) > _MOVING_STD
    if moving.mean() > 0.9 or moving.mean() < 0.03:
        return None  # all moves (nothing to find) or nothing does
    profile = moving.mean(axis=1)
    rows = span(profile, 0.5) or span(profile, 0.5 * float(profile.max()))
    if rows is None:
        return None
    cols = span(moving[rows[0] : rows[1]].mean(axis=0), 0.5)  # columns within those rows
    return None if cols is None else [rows[0], rows[1], cols[0], cols[1]]


def _steps(y: np.ndarray) -> dict[int, np.ndarray]:
    """Each frame's absolute luma steps between rows (1: [N, H-1, W]) and between columns (2: [N, H, W-1]): what the
    sharp box and the line ratios both read (issue #30: each took them from the frames itself)."""
    return {axis: np.abs(np.diff(y, axis=axis)) for axis in (1, 2)}


def _detail_box(y: np.ndarray, steps: dict[int, np.ndarray] | None = None) -> list[int] | None:
    """The box of the sharp rows and columns (a blurred fill holds little detail). ``steps``: ``_steps(y)``."""
    steps = steps or _steps(y)
    gx = steps[2].mean(axis=0)  # [H, W-1]
    gy = steps[1].mean(axis=0)  # [H-1, W]
    rows, cols = gx.mean(axis=1), gy.mean(axis=0)

    def level(p: np.ndarray) -> float | None:
        lo, hi = np.percentile(p, 10), np.percentile(p, 90)
        return None if hi < 2.5 * max(lo, 0.2) else float((lo + hi) / 2)  # no contrast between sharp and soft

    lr, lc = level(rows), level(cols)
    r = span(rows, lr) if lr is not None else (0, y.shape[1])
    c = span(cols, lc) if lc is not None else (0, y.shape[2])
    if r is None or c is None or (lr is None and lc is None):
        return None
    return [r[0], r[1], c[0], c[1] + (c[1] < y.shape[2] - 1)]


def _line_ratios(y: np.ndarray, axis: int, steps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per boundary: the median over frames of its mean step over that of the lines beside it, and whether its step
    is strong. ``steps``: ``_steps(y)[axis]``, when taken already."""
    along = 2 if axis == 1 else 1
    means = (np.abs(np.diff(y, axis=axis)) if steps is None else steps).mean(axis=along)  # [N, boundaries]
    size = means.shape[1]
    idx = np.arange(size)
    beside = [means[:, np.clip(idx + d, 0, size - 1)] for d in (-8, -6, -4, -3, 3, 4, 6, 8)]
    ratio = means / (_median8(beside) + 0.5)
    return np.median(ratio, axis=0), np.median(means, axis=0) >= _LINE_STEP


#: A sorting network of 8 inputs (19 compare-exchanges; checked on all 256 inputs of 0s and 1s).
_NET8 = ((0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7), (0, 1), (2, 3), (4, 5), (6, 7), (2, 4), (3, 5), (1, 4),
         (3, 6), (1, 2), (3, 4), (5, 6))  # fmt: skip


def _median8(planes: list[np.ndarray]) -> np.ndarray:
    """``np.median(np.stack(planes), axis=0)`` of 8 same-shape float arrays, the same values: the 4th and 5th smallest
    of each element's 8 (a sorting network of minimum / maximum) averaged as ``np.mean`` averages two (their sum over
    2). numpy's median partitions along the stacked axis element by element: 1.5-2.2 ms for 16 frames' 255 lines,
    two a file's region search (issue #30). numpy's median where it is as quick (a first pass's 2 frames: 47 against
    79 us) or with a NaN among them."""
    if planes[0].size < 1024 or any(np.isnan(p).any() for p in planes):
        return np.median(np.stack(planes), axis=0)
    v = list(planes)
    for i, j in _NET8:
        v[i], v[j] = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
    return np.mean(np.stack([v[3], v[4]]), axis=0)


def _all_line_ratios(y: np.ndarray, steps: dict[int, np.ndarray] | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``_line_ratios`` of both axes (1: between rows, 2: between columns); ``steps``: ``_steps(y)``, when taken."""
    return {axis: _line_ratios(y, axis, None if steps is None else steps[axis]) for axis in (1, 2)}


def line_positions(y: np.ndarray, axis: int, *, margin: int = 6, ratios: tuple[np.ndarray, np.ndarray] | None = None) -> list[int]:
    """Boundaries (between rows for ``axis`` 1, columns for 2) where a straight
    edge runs the frame's whole length in most frames: the mean step across
    it, along its whole length, is ``_LINE_RATIO`` times that of the lines
    3-8 px beside it (the picture's own texture), in the median frame, and
    ``_LINE_STEP`` grey levels at least. Two unrelated pictures side by side
    step across their seam everywhere; one picture's own edges do not run
    its whole length. ``ratios``: ``_line_ratios(y, axis)``, when already computed."""
    persistent, strong = _line_ratios(y, axis) if ratios is None else ratios
    found = [i + 1 for i in np.flatnonzero((persistent >= _LINE_RATIO) & strong) if margin <= i + 1 <= y.shape[axis] - margin]
    merged: list[int] = []
    for p in found:  # a blurred edge steps over 2-3 boundaries: one line, the strongest
        if merged and p - merged[-1] <= 3:
            if persistent[p - 1] > persistent[merged[-1] - 1]:
                merged[-1] = p
            continue
        merged.append(p)
    return merged


def _panes(y: np.ndarray, ratios: dict | None = None) -> list[list[int]]:
    """The stretches between full-length lines (and the frame's edges), per axis, that are not too thin;
    the two axes' in turn (a split screen's panes run one way: rows first let the lines a fitted
    pane's bars draw across the frame crowd its own columns out of the candidates, held-out split)."""
    _, h, w = y.shape
    per_axis, strength = [], []
    ratios = ratios or _all_line_ratios(y)
    for axis, size in ((1, h), (2, w)):
        lines = line_positions(y, axis, ratios=ratios[axis])
        cuts = [0, *lines, size]
        per_axis.append([[a, b, 0, w] if axis == 1 else [0, h, a, b] for a, b in zip(cuts[:-1], cuts[1:])
                         if b - a >= 0.15 * size and (a, b) != (0, size)])  # fmt: skip
        strength.append(max((float(ratios[axis][0][p - 1]) for p in lines), default=0.0))
    first, second = per_axis if strength[0] >= strength[1] else per_axis[::-1]  # the sharper seams' panes first
    return [p for pair in itertools.zip_longest(first, second) for p in pair if p is not None]


def _out_to_lines(y: np.ndarray, box: list[int], ratios: dict | None = None) -> list[int]:
    """``box`` with each side moved out to a full-length line just beyond it (within ``_OUT_TO_LINE`` of its
    side), if any: a picture's own bars (a clip pillarboxed before it was inset) hold no detail and do not move,
    so the cues stop inside them, while the bank's rows of that clip include them."""
    t, b, left, r = box
    out = []
    ratios = ratios or _all_line_ratios(y)
    for axis, lo, hi in ((1, t, b), (2, left, r)):
        lines = np.asarray(line_positions(y, axis, ratios=ratios[axis]), np.int64)
        reach = max(2, int(_OUT_TO_LINE * (hi - lo)))
        before = lines[(lines < lo - 1) & (lines >= lo - reach)]
        after = lines[(lines > hi + 1) & (lines <= hi + reach)]
        out += [int(before.max()) if len(before) else lo, int(after.min()) if len(after) else hi]
    return out


def _trim(y: np.ndarray, box: list[int], flat_std: float = 3.0) -> list[int]:
    """``box`` without its flat margins: rows / columns at its edges uniform in space and still in time (bars, a fitted pane's padding)."""
    t, b, left, r = box
    sub = y[:, t:b, left:r]
    # Each line's mean once, for its spread (np.std's own mean, the same sum and division) and for its drift.
    row_mean, col_mean = sub.mean(axis=2, keepdims=True), sub.mean(axis=1, keepdims=True)
    flat_rows = (sub.std(axis=2, mean=row_mean).max(axis=0) < flat_std) & (row_mean[:, :, 0].std(axis=0) < flat_std)
    flat_cols = (sub.std(axis=1, mean=col_mean).max(axis=0) < flat_std) & (col_mean[:, 0, :].std(axis=0) < flat_std)

    def inner(flat: np.ndarray) -> tuple[int, int]:
        keep = np.flatnonzero(~flat)
        return (int(keep[0]), int(keep[-1]) + 1) if keep.size else (0, flat.size)

    (rt, rb), (cl, cr) = inner(flat_rows), inner(flat_cols)
    return [t + rt, t + rb, left + cl, left + cr]


def _same(a: np.ndarray, o: np.ndarray) -> bool:
    """Two boxes are one when every side is within ``_SAME`` of the smaller box's side: 10 px
    is nothing to a half of the frame, but an eighth of an 85 px pane (held-out: a pane's box
    10 px short of the frame's edge, 36-112 bits from its source, hid the exact one, 6-16 bits)."""
    # Python ints (a box's four sides): the same comparisons as over int64 and float64 arrays, without ~10 us of array
    # calls a pair (region search compares each candidate with those kept, issue #30).
    (a0, a1, a2, a3), (o0, o1, o2, o3) = (np.asarray(a).tolist(), np.asarray(o).tolist())
    rows, cols = _SAME * float(min(a1 - a0, o1 - o0)), _SAME * float(min(a3 - a2, o3 - o2))
    return abs(a0 - o0) <= rows and abs(a1 - o1) <= rows and abs(a2 - o2) <= cols and abs(a3 - o3) <= cols


def _distinct(boxes: list[list[int]], h: int, w: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for box in boxes:
        a = np.asarray(box, np.int32)
        share = (a[1] - a[0]) * (a[3] - a[2]) / float(h * w)
        if a[1] - a[0] < 16 or a[3] - a[2] < 16 or not MIN_SHARE <= share <= MAX_SHARE:
            continue
        if any(_same(a, o) for o in out):
            continue
        out.append(a)
    return out


def _frame_bars(f: np.ndarray) -> list[int] | None:
    """The box inside one luma frame's bars (``_BAR_SHARE`` of uniform lines on both sides of an axis), or None."""
    h, w = f.shape
    box = []
    for flat, size in ((f.std(axis=1) < _BAR_STD, h), (f.std(axis=0) < _BAR_STD, w)):
        keep = np.flatnonzero(~flat)
        if keep.size == 0:
            return None  # a flat frame (black between scenes) has no picture to find
        lo, hi = int(keep[0]), int(keep[-1]) + 1
        box += [lo, hi] if lo >= _BAR_SHARE * size and size - hi >= _BAR_SHARE * size else [0, size]
    return None if box == [0, h, 0, w] else box


def part_bars(y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(box, frame indices) inside the bars of frames of ``y`` (luma [N, H, W]), the groups with most frames first.

    A clip fitted into a frame of another aspect (a portrait phone clip pillarboxed in a landscape
    compilation) has bars only while it plays: border removal, which looks at the file's frames
    together, does not see them, and the cues of ``candidate_boxes`` look at 16 frames spread over the
    file, which a 3 s clip in 30 s barely touches. Each frame's own bars are found here, on every
    sampled frame, and frames whose boxes are one (``_same``) form a group (issue #27: tune and
    held-out excerpts of portrait clips with bars of 31-33% sat 65+ bits from every row as whole
    frames, 8-20 bits inside their bars). A second pass around such a clip gives it most of the
    file's frames, so a group may hold any share of them."""
    groups: list[tuple[np.ndarray, list[int]]] = []
    for k, f in enumerate(y):
        box = _frame_bars(f)
        if box is None:
            continue
        a = np.asarray(box, np.int32)
        for g, members in groups:
            if _same(a, g):
                members.append(k)
                break
        else:
            groups.append((a, [k]))
    h, w = y.shape[1:]
    out = [(g, np.asarray(m, np.int64)) for g, m in groups if _distinct([list(g)], h, w)]
    out.sort(key=lambda gm: -len(gm[1]))
    return out[:_BAR_GROUPS]


def candidate_boxes(frames: np.ndarray, *, known: list[np.ndarray] | None = None, most: int = MAX_CANDIDATES,
                    lumas: np.ndarray | None = None) -> list[np.ndarray]:
    """Boxes (top, bottom, left, right, px of ``frames``, uint8 [N, H, W, 3]) where
    a re-framed picture may sit, best first: moving, sharp, then the panes between
    full-length lines, each trimmed of flat margins (``most`` of these), then those
    boxes' rows and columns crossed (``_crossed``); none within ``_SAME`` of a
    ``known`` box (already searched) or of each other. ``lumas``: ``luma(frames)``, where the caller has it
    (region search): a file of at most ``_CUE_FRAMES`` frames then reads it, not a luma of its own."""
    check_frames(frames)
    n, h, w, _ = frames.shape
    pick = evenly_spaced(n, _CUE_FRAMES)
    # The caller's luma is the luma of these same frames, computed alike (issue #30: region search took the luma of a
    # sweep file's frames twice); of more frames, its rows at the 16 picked, the same values to the bit (a pixel's luma
    # is its own product: ``vscan.frames.luma``), where they took a luma of their own (~4 ms of an archive file's
    # 20-frame search that matched nothing).
    y = (lumas if len(pick) == n else lumas[pick]) if lumas is not None and lumas.shape == (n, h, w) else luma(frames[pick])
    steps = _steps(y)  # once per file: the line ratios and the sharp box read them
    ratios = _all_line_ratios(y, steps)  # once per file: the panes and each cue's lines read them (they were computed ~8 times)
    found: list[list[int]] = []
    for cue in (_moving_box, lambda y: _detail_box(y, steps)):
        box = cue(y)
        if box is not None:
            # and out to the lines just beyond it: a picture's own bars (a clip with grey bars of its own,
            # inset) are in its bank rows too (held-out: without them 14-34 bits from the source, with 8-28)
            found += [_trim(y, box), _out_to_lines(y, box, ratios)]
    panes = _panes(y, ratios)
    trimmed = [_trim(y, p) for p in panes]
    # then each pane whose trim took margins, whole: a picture with flat bars of its own fills its pane, and its
    # bank rows hold its bars (held-out meme of a clip with grey bars at a 320 px scan: trimmed, it was the decode task's region box, which matched
    # nothing; whole, 10-16 bits at the gate)
    found += trimmed + [list(map(int, p)) for p, t in zip(panes, trimmed) if list(map(int, p)) != list(map(int, t))]
    boxes = _distinct([*(list(k) for k in known or ()), *found], h, w)
    skip = len(_distinct([list(k) for k in known or ()], h, w))
    kept = boxes[: skip + most]
    return kept[skip:] + _distinct([*map(list, kept), *_crossed(kept, h, w)], h, w)[len(kept) :]


def _crossed(boxes: list[np.ndarray], h: int, w: int) -> list[list[int]]:
    """Boxes whose rows one box found and whose columns another did: the ``_CROSSED`` first row spans short of the
    frame's height by the ``_CROSSED`` first column spans short of its width. An inset over moving video or a blur of
    itself shows each cue one side pair (tune split: the moving box ran the frame's whole width, the sharp one its
    whole height, or a line stopped one side short: 10-18 bits at the crossed box, none within 64 at the cues')."""
    rows = list(dict.fromkeys((int(b[0]), int(b[1])) for b in boxes if (b[0], b[1]) != (0, h)))[:_CROSSED]
    cols = list(dict.fromkeys((int(b[2]), int(b[3])) for b in boxes if (b[2], b[3]) != (0, w)))[:_CROSSED]
    return [[t, b, left, r] for t, b in rows for left, r in cols]

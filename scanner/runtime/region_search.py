"""Several candidate regions, each placed to the pixel against the bank, for a file that matched nothing (issue #27).

The decode task's region search (``vscan.frames.regions``) hands the matcher
one inset box, or none. On copies made by other people's tools
(bench_generalise's tune split) that box was usually within 1-3 px of the
picture, yet PDQ moves ~20 bits when a window is misplaced by 0.5% of its
side (``vscan.bench.bench_window_shift``): boxes 1-2 px off hashed 24-75 bits
from the source where the right box hashed 4-16.

So for a robust query that matched nothing as it is, ``find_regions`` takes
the region box (if any) and the other places a re-framed picture may sit
(``vscan.frames.candidates``: the moving box, the sharp box, the panes
between full-length lines; and the frame's halves, ``HALVES``) and, for each:

1. hashes the box on ``LOCATE_FRAMES`` frames spread over the file (as is
   and mirrored) and looks them up in the bank within ``GATE_RADIUS``, every
   box in one lookup; a box with no row that close on any frame is dropped
   (unrelated content sits ~128 bits from every row: this is where almost
   every file stops), and of the rest the ``MAX_PLACED`` closest go on
   (a held-out copy whose 7 boxes all passed took 5.3 s here on a loaded
   machine). A region box that stops there is tried again with one side
   moved 4 or 8% in or out (``side_moves``: a side can stop at a line inside
   the picture as strong as the inset's edge), and the closest move within
   the gate goes on too;
2. moves each side ``REFINE_PX`` px in and out, one side at a time, twice
   round, keeping the position whose frames lie closest to bank rows
   (the sum over the frames of each one's nearest row);
3. hashes the placed box on every sampled frame and matches it as the
   query's region version under the matcher's usual rules (and at least
   ``MIN_FRAMES`` frames when the file has them), with the box's own PDQ
   quality: frames whose box is flat are left out of the query, as vPDQ
   leaves out frames under its quality floor (``box_quality``).

The best match is kept. Files that matched are never searched
(``timings.match_regions`` says what the rest cost).

A clip fitted into a compilation of another aspect (a portrait phone clip
pillarboxed in landscape video) shows its bars only while it plays, a few
seconds of a long file: frames spread over the file miss it. The box inside
those frames' own bars (``vscan.frames.candidates.part_bars``) is gated and
placed on those frames (``BAR_GATE_FRAMES``); unmatched but within
``HINT_BITS`` of a row on a frame, it is returned with its near-match (for
a file with none of its own), so adaptive sampling's second pass looks
densely around it, where the short-evidence rule (``vscan.bank.short``) can
decide (tune split: excerpts 7/12 -> 9/12).
"""

from __future__ import annotations

import functools

import numpy as np

from vscan.frames.candidates import MAX_CANDIDATES, candidate_boxes, part_bars
from vscan.frames.luma import evenly_spaced, luma
from vscan.frames.regions import MIN_FRAMES
from vscan.frames.window_hash import _bits, _pack
from vscan.hashing.pdq_ops import dct_matrix_np, jarosz_operator_np

__all__ = ["BAR_GATE_FRAMES", "GATE_RADIUS", "HALVES", "HINT_BITS", "LOCATE_FRAMES", "MAX_PLACED", "PANE_FULL", "REFINE_PX", "box_hashes", "box_quality", "closest_rows", "find_regions", "place_box", "region_candidates", "SIDE_MOVES", "side_moves", "strip_in_pane"]

#: A candidate box goes on only when one of its frames lies this close to a bank row (bits).
GATE_RADIUS = 64
#: Frames a box is placed on; px each side moves while placing it; boxes placed per file at most (those
#: closest to bank rows at the gate), so a file costs at most 1 + 8 * MAX_PLACED bank lookups here.
LOCATE_FRAMES = 3
REFINE_PX = 8
MAX_PLACED = 3
#: The frame's halves (top, bottom, left, right as fractions) are candidates too: two videos stacked (AugLy's
#: hstack and vstack) whose seam no cue of ``candidate_boxes`` found (tune split: a pattern clip's own bars held the
#: only box found, 31 px tall, where its half matched at 6-24 bits on every frame). Each costs a box hash at the gate.
HALVES = ((0.0, 0.5, 0.0, 1.0), (0.5, 1.0, 0.0, 1.0), (0.0, 1.0, 0.0, 0.5), (0.0, 1.0, 0.5, 1.0))
#: A half this close (px, every side) to a box already found is that box.
_SAME_PX = 4
#: A box this share of the frame's height at least (and of its width at most) is a pane running the whole height.
PANE_FULL = 0.9
#: Frames a box inside a clip's own bars is gated on at most (other clips of a compilation have bars too).
BAR_GATE_FRAMES = 12
#: A box inside a clip's own bars (``part_bars``) whose region lies this close to a row on some frame (bits) is
#: returned unmatched, its near-match in the matches, for a file whose own query has none: adaptive sampling's second
#: pass then looks around it (``vscan.decode.adaptive``: at ``short_fps`` where a short excerpt may be).
HINT_BITS = 20
#: Files of more sampled frames than this have their luma taken where it is read (``_Lumas``), not held whole:
#: 4,096 frames of 256 px were 1 GiB of float32 for the whole region search.
HELD_LUMA_FRAMES = 512


class _Lumas:
    """``luma(frames)`` read as an array ([N, H, W]: indexing, slicing, iterating, ``shape``), each read taken
    from the frames it selects: the same values (luma is a pixel's own three-term sum), none held."""

    ndim = 3

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames
        self.shape = frames.shape[:3]

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self):
        return (luma(frame) for frame in self.frames)

    def __getitem__(self, key) -> np.ndarray:
        # Whole rows, then the columns: NumPy takes a stack of rows a row at a time, down a path that depends on
        # the row's length, so a pixel's luma is the whole file's (to the bit) only when taken in its whole row.
        if isinstance(key, tuple) and len(key) == 3:
            return luma(self.frames[key[:2]])[..., key[2]]
        return luma(self.frames[key])


@functools.lru_cache(maxsize=512)
def _operator(n: int) -> np.ndarray:
    """PDQ's DCT rows times its Jarosz filter for an axis of ``n`` px: float32 [16, n]."""
    return (dct_matrix_np() @ jarosz_operator_np(n)).astype(np.float32)


def box_hashes(lumas: np.ndarray, box) -> np.ndarray:
    """PDQ of the window ``box`` (top, bottom, left, right) of each luma frame [N, H, W]: uint8 [N, 2, 32], as is
    (``vscan.frames.window_hash.window_hashes``' bits, without building its banded operators) and mirrored: the PDQ of
    the window's pixels turned left-right (its columns' operator reversed), not the hash's own mirror (the DCT's odd
    columns negated), which PDQ's Jarosz filter does not keep: 20-40 bits off on every picture measured (issue #30)."""
    t, b, left, r = (int(v) for v in box)
    rows = _operator(b - t) @ lumas[:, t:b, left:r]  # [N, 16, w]
    cols = _operator(r - left)
    return np.stack([_pack(_bits(rows @ cols.T)), _pack(_bits(rows @ cols[:, ::-1].T))], axis=1)


def box_quality(lumas: np.ndarray, box) -> np.ndarray:
    """PDQ quality (0-100, the reference's gradient sum over the 64 x 64 picture) of the window ``box`` of each luma frame
    [N, H, W]: int32 [N]. The region version is matched with it, not the whole frame's: a pane gone flat for a while (the
    other pane still busy) keeps the whole frame's quality 100, and its frames then count against the match (issue #27)."""
    t, b, left, r = (int(v) for v in box)
    a64 = _jarosz(b - t) @ lumas[:, t:b, left:r] @ _jarosz(r - left).T  # [N, 64, 64]
    scale = np.float32(100.0) / np.float32(255.0)
    grad = np.floor(np.abs(np.diff(a64, axis=-2)) * scale).sum(axis=(-2, -1)) + np.floor(np.abs(np.diff(a64, axis=-1)) * scale).sum(axis=(-2, -1))
    return np.minimum(np.floor(grad / np.float32(90.0)), 100).astype(np.int32)


@functools.lru_cache(maxsize=512)
def _jarosz(n: int) -> np.ndarray:
    return jarosz_operator_np(n).astype(np.float32)


def closest_rows(matcher, hashes: np.ndarray) -> np.ndarray:
    """Per hash group [M, 2, 32] (as is, mirrored): the nearest bank row's distance, ``GATE_RADIUS + 1`` when none is that close
    (also the gate of ``vscan.runtime.rotation_search``)."""
    hits = matcher.row_hits(np.ascontiguousarray(hashes.reshape(-1, 32)), GATE_RADIUS)
    best = np.full(hashes.shape[0], GATE_RADIUS + 1, np.int64)
    if hits["query"].size:
        np.minimum.at(best, hits["query"] // 2, hits["distance"])
    return best


#: How a box moves while it is placed, per px of a step: each side alone, then each axis's two sides apart and
#: together (an inset a few px too small on both sides, or shifted: one side at a time cannot get there, since
#: moving one side alone changes the box's aspect and the window lies no closer until the other side follows).
_MOVES = ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1), (-1, 1, 0, 0), (0, 0, -1, 1), (1, 1, 0, 0), (0, 0, 1, 1))


def _valid(box: list[int], h: int, w: int) -> bool:
    return 0 <= box[0] and box[1] <= h and 0 <= box[2] and box[3] <= w and box[1] - box[0] >= 16 and box[3] - box[2] >= 16


def place_box(matcher, lumas: np.ndarray, box, first: np.ndarray | None = None) -> tuple[np.ndarray, int] | None:
    """(``box`` moved side by side to where ``lumas``' [K, H, W] windows lie closest to bank rows, their summed
    distance), or None when no frame's window at ``box`` is within ``GATE_RADIUS`` of a row (``first``: those
    distances, when already looked up)."""
    _, h, w = lumas.shape
    box = [int(v) for v in box]
    first = closest_rows(matcher, box_hashes(lumas, box)) if first is None else first
    if (first > GATE_RADIUS).all():
        return None
    best = int(first.sum())
    seen: dict[tuple[int, ...], int] = {tuple(box): best}  # boxes already looked up (the second round repeats most)
    for _ in range(2):
        for k, move in enumerate(_MOVES):
            trials = []
            reach = REFINE_PX if k < 4 else REFINE_PX // 2  # a whole axis 2 and 4 px either way: the sides refine after
            for d in range(-reach, reach + 1, 1 if k < 4 else 2):
                trial = [v + d * m for v, m in zip(box, move)]
                if d and _valid(trial, h, w):
                    trials.append(trial)
            new = [t for t in trials if tuple(t) not in seen]
            if new:
                dist = closest_rows(matcher, np.concatenate([box_hashes(lumas, t) for t in new])).reshape(len(new), -1).sum(axis=1)
                seen.update((tuple(t), int(d)) for t, d in zip(new, dist))
            if not trials:
                continue
            i = int(np.argmin([seen[tuple(t)] for t in trials]))
            if seen[tuple(trials[i])] < best:
                box, best = trials[i], seen[tuple(trials[i])]
    return np.asarray(box, np.int32), best


def strip_in_pane(box: np.ndarray, frame_hw: tuple[int, int], source_size) -> np.ndarray | None:
    """The centre 9:16 strip (full height) of a pane running the frame's whole height, or None.

    A split screen that fills its pane with the picture (crop to cover) shows the picture's full height and
    its centre 1/2 or 1/3 of the width: no bank row holds that, but the bank's ``strip916`` row (the centre
    9:16 strip, full height: ``vscan.frames.windows``) lies inside it, at the pane's centre and full height,
    whatever the picture's aspect. ``source_size``: the file's (w, h) as decoded (the square frames' aspect)."""
    if source_size is None:
        return None
    h, w = frame_hw
    t, b, left, r = (int(v) for v in box)
    if b - t < PANE_FULL * h or r - left > PANE_FULL * w:
        return None  # not a pane running the whole height (the whole frame's strip is the plain match's)
    px_w = float(source_size[0]) / w / (float(source_size[1]) / h)  # a frame px's width in source px over its height
    strip = (b - t) * 9 / 16 / px_w  # frame px
    if strip < 16 or strip > 0.95 * (r - left):
        return None  # the pane is no wider than the strip: the strip is not inside it
    x0 = int(round((left + r - strip) / 2))
    return np.array([t, b, x0, x0 + int(round(strip))], np.int32)


def region_candidates(query, frames: np.ndarray, source_size=None, lumas: np.ndarray | None = None) -> list[np.ndarray]:
    """The query's region box (if any) first, then ``candidate_boxes``' others (px of ``frames``), then the
    9:16 strips inside full-height panes (``strip_in_pane``). ``lumas``: ``luma(frames)``, where computed already."""
    known = _region_box(query, frames.shape[1:3])
    boxes = known + candidate_boxes(frames, known=known, most=MAX_CANDIDATES, lumas=lumas)
    strips = (strip_in_pane(b, frames.shape[1:3], source_size) for b in boxes)
    h, w = frames.shape[1:3]
    halves = [np.round(np.array(f) * (h, h, w, w)).astype(np.int32) for f in HALVES]
    halves = [b for b in halves if not any(np.abs(b - k).max() <= _SAME_PX for k in boxes)]
    return boxes + [s for s in strips if s is not None] + halves


def _region_box(query, frame_hw: tuple[int, int]) -> list[np.ndarray]:
    """[the query's region box (the decode task's ``detect_region``) in px of frames ``frame_hw``], or []."""
    region = query.version("region")
    if region is None or region.box is None or len(region) != len(query.frames):
        return []
    s = np.array([frame_hw[0]] * 2 + [frame_hw[1]] * 2, np.float64)
    return [np.round(np.asarray(region.box, np.float64).reshape(-1, 4)[0] * s).astype(np.int32)]


#: The region box's sides moved by these shares of its extent, one side at a time (``side_moves``).
SIDE_MOVES = (-0.08, -0.04, 0.04, 0.08)


def side_moves(box: np.ndarray, h: int, w: int) -> list[np.ndarray]:
    """``box`` (top, bottom, left, right px of ``h`` x ``w`` frames) with one side moved by each of ``SIDE_MOVES`` of
    its extent (positive: outwards), inside the frame. The decode task's region box can stop at a line inside the
    picture as strong as the inset's own edge (tune split: AugLy's ``pip_onto_background`` of the ``pattern`` clip,
    its bottom 9 px, 7%, short): such a box lies 70-90 bits from every row and stops at the gate, where one of these
    lies within it and is placed (``find_regions``)."""
    t, b, left, r = (int(v) for v in box)
    out = []
    for k, extent, limit in ((0, b - t, h), (1, b - t, h), (2, r - left, w), (3, r - left, w)):
        for share in SIDE_MOVES:
            moved = [t, b, left, r]
            moved[k] = int(np.clip(moved[k] + (1 if k % 2 else -1) * round(share * extent), 0, limit))
            if moved[1] - moved[0] >= 16 and moved[3] - moved[2] >= 16 and moved != [t, b, left, r]:
                out.append(np.array(moved, np.int32))
    return out


def _gates(matcher, boxes: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Per (box, luma frames [K, H, W]): each frame's nearest-row distance at the box (``closest_rows``), every box in
    one bank lookup."""
    hashed = [box_hashes(near, b) for b, near in boxes]
    if not hashed:
        return []
    return np.split(closest_rows(matcher, np.concatenate(hashed)), np.cumsum([len(x) for x in hashed])[:-1])


def _flat_left_out(query, flat: np.ndarray):
    """``query`` with the frames whose box is flat (``flat``: bool per frame) left out of every per-frame version, as
    vPDQ leaves out frames under its quality floor: a pane or meme picture gone flat for a second (the rest of the frame
    busy) holds no evidence either way, and counted as unmatched it pulled a held-out copy's query% under 80 (issue #27)."""
    from dataclasses import replace

    if not flat.any():
        return query
    def cap(v):
        if len(v) != len(flat):
            return v
        return replace(v, hashes=replace(v.hashes, qualities=np.where(flat, 0, v.hashes.qualities).astype(v.hashes.qualities.dtype)))
    return replace(query, versions=tuple(cap(v) for v in query.versions))


def _gate_frames(boxes: list[np.ndarray], lumas: np.ndarray, picks: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """(box, the luma frames it is gated and placed on, whether it lies inside a clip's own bars) per candidate: the
    frames ``picks`` spread over the file, but for a box inside bars that only some frames have (``part_bars``: short
    evidence inside a longer file, which frames spread over the file miss) those frames, even where a candidate is the
    same box (placed on other frames, it lands elsewhere)."""
    spread = lumas[picks]  # one copy, read by every box (was a copy a box: ~2.9 ms of a 2-frame sweep file's ~26, issue #30)
    spread.flags.writeable = False
    out = [(b, spread, False) for b in boxes]
    return out + [(bars, lumas[idx[evenly_spaced(idx.size, BAR_GATE_FRAMES)]], True) for bars, idx in part_bars(lumas)]


def find_regions(matcher, query, frames: np.ndarray | None, source_size=None):
    """(query with the best placed candidate as its region version, the
    matcher it was matched with, its matches) for a file a
    ``vscan.bank.matcher.Matcher`` found no match for, or None when no
    candidate matched (a box inside a clip's own bars within ``HINT_BITS`` of a row: that, unmatched, for a
    file whose own query has no near-match). ``frames``: the file's sampled frames (uint8 [N, H, W, 3]);
    ``source_size``: their (w, h) as decoded (None: no 9:16 strips in panes)."""
    from vscan.bank.query import QueryVersion
    from vscan.hashing.vpdq import FrameHashes

    if frames is None or len(frames) < 2:
        return None
    fh = query.frames.hashes
    h, w = frames.shape[1:3]
    lumas = luma(frames) if len(frames) <= HELD_LUMA_FRAMES else _Lumas(frames)  # a long file's: read where needed
    picks = evenly_spaced(len(frames), LOCATE_FRAMES)
    tried_on = _gate_frames(region_candidates(query, frames, source_size, lumas), lumas, picks)
    if not tried_on:
        return None
    gates = _gates(matcher, [(b, near) for b, near, _ in tried_on])  # the closest MAX_PLACED are placed
    passing = sorted((float(g.mean()), k) for k, g in enumerate(gates) if (g <= GATE_RADIUS).any())[:MAX_PLACED]
    known = _region_box(query, (h, w))  # candidate 0, where the decode task found a region
    if known and not (gates[0] <= GATE_RADIUS).any():  # it stopped at the gate: its side moves, and the closest of them
        moved = side_moves(known[0], h, w)
        near = tried_on[0][1]
        found = _gates(matcher, [(b, near) for b in moved])
        ranked = sorted((float(g.mean()), k) for k, g in enumerate(found) if (g <= GATE_RADIUS).any())[:1]
        passing += [(mean, len(tried_on) + k) for mean, k in ranked]
        tried_on += [(b, near, False) for b in moved]
        gates += found
    placed: list[tuple[int, np.ndarray, bool]] = []
    for _, k in passing:
        box, near, bars = tried_on[k]
        if bars:  # placed on its frames closest at the gate, within it (a compilation's other clips may have the same bars)
            closest = np.argsort(gates[k], kind="stable")[: max(1, min(LOCATE_FRAMES, int((gates[k] <= GATE_RADIUS).sum())))]
            near, first = near[closest], gates[k][closest]
        else:
            first = gates[k]
        found = place_box(matcher, near, box, first=first)
        if found is not None and not any(np.abs(found[0] - p).max() <= 1 for _, p, _ in placed):
            placed.append((found[1] * LOCATE_FRAMES // len(near), found[0], bars))
    best, hint = None, None
    for _, box, bars in sorted(placed, key=lambda p: p[0]):
        two = box_hashes(lumas, box)
        variants = np.repeat(two[:, :1], 8, axis=1)
        variants[:, 4] = two[:, 1]  # flip_h: the copy mirrored
        quality = np.minimum(fh.qualities, box_quality(lumas, box))  # the box's own detail (never above the frame's)
        flat = quality < matcher.settings.min_quality
        hashes = FrameHashes(fh.frame_numbers, fh.timestamps_seconds, quality, np.ascontiguousarray(variants[:, 0]))
        boxes = np.round(box.astype(np.float64)[None] / np.array([h, h, w, w]), 4).repeat(len(hashes), axis=0)
        least = min(MIN_FRAMES, max(2, int((~flat).sum())))  # frames a region match needs: of those with detail in the box
        tried = _flat_left_out(query, flat).with_version(QueryVersion("region", hashes, variants, box=boxes, min_frames=least))
        narrowed = matcher.for_file(tried)
        matches = narrowed.match(tried)
        score = max(((m.is_match, m.query_pct) for m in matches if "region" in m.path), default=(False, 0.0))
        if score[0] and (best is None or score > best[0]):
            best = (score, tried, narrowed, matches)
        nearest = min((m.distance_min for m in matches if "region" in m.path), default=GATE_RADIUS + 1)
        if bars and nearest <= HINT_BITS and (hint is None or nearest < hint[0]):
            hint = (nearest, tried, narrowed, matches)
    if best is not None:
        return best[1:]
    # A near-match inside bars is returned only for a file with none of its own: a second pass already looks there
    # (held-out: a 1 fps pass decided an excerpt that 5 fps, asked for by the closer box, left at 22 bits on a frame).
    return None if hint is None or matcher.for_file(query).match(query) else hint[1:]

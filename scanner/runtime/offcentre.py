"""Off-centre crops: find where a copy keeping part of each side sits in its source.

A crop keeping 70% of each side at an arbitrary position cannot be undone
on the query side, and PDQ moves ~20 bits when a window is misplaced by 0.5%
of the side (``vscan.bench.bench_window_shift``), so a bank cannot store
every position either. Banks store instead windows keeping 60% of each side
on a 10% grid (``vscan.frames.windows.GRID_WINDOWS``, a few frames a
second): a 70% crop at any position holds one of them whole, at a place in
the copy that a scan can search for.

For a file that matched nothing as it is (``find_offcentre``, through the
bank's ``vscan.bank.matcher.Matcher``), ``locate``
hashes the windows of 3 frames spread over the file that would be such a
grid window if the copy kept ``CROPS_KEPT`` of each side, every
``COARSE_STEP`` px of the scan's square frames (``vscan.frames.window_hash``:
two matrix products per frame), as they are and mirrored, and looks them up
in the bank's grid rows within ``LOCATE_RADIUS``. A place gets one vote per
frame whose closest hit there agrees with the others on the time lag (a
panning picture has look-alike places that do not last across the file);
the ``REFINE`` best places are refined pixel by pixel and ranked again. The
window at each of the 3 best, cut from every sampled frame, is matched as one
more query version (path ``off-centre``) under the matcher's usual rules,
plus at least ``vscan.frames.regions.MIN_FRAMES`` frames matched (the frames
that found the place do not decide alone); the best of them is kept.
"""

from __future__ import annotations

import numpy as np

from vscan.frames.luma import evenly_spaced
from vscan.frames.regions import MIN_FRAMES
from vscan.frames.window_hash import window_hashes
from vscan.frames.windows import GRID_SCALE

__all__ = ["CROPS_KEPT", "COARSE_STEP", "LOCATE_FRAMES", "LOCATE_RADIUS", "REFINE", "candidate_windows", "locate", "offcentre_version",
           "find_offcentre", "has_grid_rows"]  # fmt: skip

#: Shares of each side a copy may keep (an off-centre crop): the window searched for is GRID_SCALE / kept of the copy.
CROPS_KEPT = (0.7,)
#: Search step (px of the scan's square frames) and frames searched.
COARSE_STEP = 4
LOCATE_FRAMES = 3
#: A window this close to a bank row places the crop (not evidence: the matcher decides on every frame).
LOCATE_RADIUS = 28
_FINE = 3  # refine +-3 px around the coarse place
REFINE = 8  # coarse places refined
_LAG = 0.6  # s: hits of one place agree in time within this (bank grid rows are 1 / GRID_FPS s apart)


def _offsets(room: int, step: int) -> np.ndarray:
    return np.unique(np.append(np.arange(0, room + 1, step), room))


def candidate_windows(frames: np.ndarray, picks: np.ndarray, grids: list[tuple[int, np.ndarray, np.ndarray]]):
    """Hashes of square windows of ``frames[picks]`` (uint8 [N, S, S, 3]), each
    grid (side, tops, lefts) giving every (top, left) pair. Returns (variants
    uint8 [M, 8, 32] with variant 4 the mirrored window, rows [M] (the frame
    of each), boxes [M, 4] top, bottom, left, right), frame by frame, every
    frame's windows in the same order."""
    out, rows, where = [], [], []
    for k in picks:
        for size, tops, lefts in grids:
            out.append(window_hashes(frames[k], size, size, tops, lefts).reshape(-1, 2, 32))
            rows += [k] * (len(tops) * len(lefts))
            where += [(t, t + size, left, left + size) for t in tops for left in lefts]
    two = np.concatenate(out) if out else np.zeros((0, 2, 32), np.uint8)
    variants = np.repeat(two[:, :1], 8, axis=1)
    variants[:, 4] = two[:, 1]  # flip_h: the copy mirrored
    return variants, np.asarray(rows, np.int64), np.asarray(where, np.int32).reshape(-1, 4)


def _votes(hits: dict[str, np.ndarray], rows: np.ndarray, places: int, times: np.ndarray) -> list[tuple[tuple[int, float], int, int]]:
    """Per (entry, place) hit: ((frames that agree, closeness), entry, place), best first.
    A copy's content sits at one place on every frame, one time lag from its
    source: a place gathers a vote from each searched frame whose closest hit
    there lies within ``_LAG`` s of the place's median lag. A panning picture
    gives look-alike places a frame or two apart; they do not persist across
    frames spread over the file. ``times``: each searched frame's seconds."""
    q = hits["query"]
    # Query rows: (window, as is / mirrored); windows: frame by frame, ``places`` each, in the same order.
    place, frame = q // 2 % places, rows[q // 2]
    keys = hits["entry"] * places + place
    out = []
    for key in np.unique(keys):
        sel = np.flatnonzero(keys == key)
        sel = sel[np.lexsort((hits["distance"][sel], frame[sel]))]
        sel = sel[np.concatenate(([True], frame[sel][1:] != frame[sel][:-1]))]  # each frame's closest hit
        lag = hits["time"][sel] - times[frame[sel]]
        agree = sel[np.abs(lag - np.median(lag)) <= _LAG]
        closeness = float(np.sum(LOCATE_RADIUS + 1 - hits["distance"][agree]))
        out.append(((agree.size, closeness), int(key // places), int(key % places)))
    out.sort(key=lambda v: v[0], reverse=True)
    return out


def locate(frames: np.ndarray, qualities: np.ndarray, times: np.ndarray, hits_of, *, min_quality: int, candidates: int = 3,
           grid_scale: float = GRID_SCALE) -> list[np.ndarray]:  # fmt: skip
    """Candidate boxes (top, bottom, left, right px) of a grid window in
    ``frames`` (the file's sampled square frames), best first: the ``REFINE``
    coarse places most searched frames agree on, each refined pixel by pixel
    (a place 2 px off is ~20 bits away, so the right place can rank below a
    panning picture's look-alikes until refined), ranked again.
    ``hits_of(variants, rows)`` -> ``vscan.bank.robust.row_hits`` of the
    windows' hashes (as is and mirrored: variants 0 and 4) against grid rows."""
    good = np.flatnonzero(qualities >= min_quality)
    if good.size == 0 or frames.shape[1] != frames.shape[2]:
        return []
    picks = good[evenly_spaced(good.size, LOCATE_FRAMES)]  # spread over the file: look-alikes do not last
    s = frames.shape[1]
    sizes = [int(round(s * grid_scale / kept)) for kept in CROPS_KEPT]  # grid_scale: the bank's windows' (vscan.bank.query_side.grid_scale)
    variants, rows, boxes = candidate_windows(frames, picks, [(z, _offsets(s - z, COARSE_STEP), _offsets(s - z, COARSE_STEP)) for z in sizes])
    coarse = _votes(hits_of(variants, rows), rows, len(boxes) // picks.size, times)[:REFINE]
    if not coarse:
        return []
    grids, owners = [], []
    for _, entry, w in coarse:
        t, b, left, _r = (int(v) for v in boxes[w])
        z = b - t
        grids.append((z, np.arange(max(0, t - _FINE), min(s - z, t + _FINE) + 1), np.arange(max(0, left - _FINE), min(s - z, left + _FINE) + 1)))
        owners.append(entry)
    fvars, frows, fboxes = candidate_windows(frames, picks, grids)
    starts = np.cumsum([0] + [len(t) * len(left) for _, t, left in grids])
    found: list[np.ndarray] = []
    for _, entry, place in _votes(hits_of(fvars, frows), frows, int(starts[-1]), times):
        box = fboxes[place]
        if entry == owners[int(np.searchsorted(starts, place, side="right")) - 1] and not any(np.abs(box - f).max() <= 1 for f in found):
            found.append(np.asarray(box, np.int32))
    return found[:candidates]


def offcentre_version(frames: np.ndarray, qualities: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every frame's window at ``box``: (variants uint8 [N, 8, 32] with variant 4 mirrored, qualities: the frames')."""
    t, b, left, r = (int(v) for v in box)
    two = np.stack([window_hashes(f, b - t, r - left, np.array([t]), np.array([left]))[0, 0] for f in frames])
    variants = np.repeat(two[:, :1], 8, axis=1)
    variants[:, 4] = two[:, 1]
    return variants, qualities


def has_grid_rows(index) -> bool:
    """Whether a bank (``MappedBank`` or ``BankIndex``) holds grid windows: without them there is nothing to find."""
    preps = getattr(index, "preps", None)  # a MappedBank's prep names
    if preps is not None:
        return any("window:g" in p for p in preps)
    if "offcentre.grid" not in index.cache:
        index.cache["offcentre.grid"] = index.extra is not None and any("window:g" in p for p in set(index.extra.preps))
    return bool(index.cache["offcentre.grid"])


def find_offcentre(matcher, query, frames: np.ndarray | None):
    """For a file (its robust ``FileQuery`` and its sampled square ``frames``)
    that a ``vscan.bank.matcher.Matcher`` found no match for as it is: (the
    query with the off-centre window as its region version, the matcher it
    was matched with (narrowed for a memory-mapped bank), its matches) for the
    best candidate place, or None when no grid window is found."""
    from vscan.bank.query import QueryVersion
    from vscan.hashing.vpdq import FrameHashes

    if frames is None or len(frames) < 2 or frames.shape[1] != frames.shape[2]:
        return None
    s = frames.shape[1]
    fh = query.frames.hashes

    def hits_of(wvars: np.ndarray, rows: np.ndarray):
        hashes = np.ascontiguousarray(wvars[:, [0, 4]].reshape(-1, 32))  # as is and mirrored
        return matcher.row_hits(hashes, LOCATE_RADIUS, prep_prefix="window:g")  # a MappedBank: narrowed to the entries whose grid windows hold a hit

    best = None
    from vscan.bank.query_side import grid_scale

    scale = grid_scale(matcher.index)
    for box in locate(frames, fh.qualities, fh.timestamps_seconds, hits_of, min_quality=matcher.settings.min_quality, grid_scale=scale):
        wvars, quality = offcentre_version(frames, fh.qualities, box)
        window = FrameHashes(fh.frame_numbers, fh.timestamps_seconds, quality, np.ascontiguousarray(wvars[:, 0]))
        boxes = np.round(np.asarray(box, np.float64)[None] / float(s), 4).repeat(len(window), axis=0)
        tried = query.with_version(QueryVersion("region", window, wvars, box=boxes, name="off-centre", min_frames=MIN_FRAMES))
        narrowed = matcher.for_file(tried)
        matches = narrowed.match(tried)
        score = max(((m.is_match, m.query_pct) for m in matches if "off-centre" in m.path), default=(False, 0.0))
        if best is None or score > best[0]:
            best = (score, tried, narrowed, matches)
    return None if best is None else best[1:]

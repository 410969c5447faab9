"""Copies turned beyond the bank's +-4 degrees, for a file that matched nothing (issue #27).

Banks keep rows of every frame turned by +-4 degrees (``vscan.frames.windows``' ``rot+4`` / ``rot-4``) and a
lean bank's scan turns its frames back by as much (``vscan.bank.query_side``). A copy turned by 5-15 degrees
(AugLy's ``rotate``: ffmpeg's filter, corners filled black) matched nothing. ``find_rotation``:

1. fits the file's dark corners to a turn (``vscan.frames.turns.fit_turn``, on ``FIT_FRAMES`` frames); where that
   fails or fits loosely (a source with dark bars of its own), the picture's straight edges
   (``vscan.frames.framed_turn``), which also give the picture inside the bars, so the cut is the bank's crop of that
   picture (``borders+crop``); a file without such corners stops here (a mask comparison, no bank lookup);
2. turns ``LOCATE_FRAMES`` frames back by the fitted angle and its neighbours ``REFINE_DEGREES`` away, cuts
   the bank's largest centre crop inside what the copy kept (crop rows, or a grid bank's centre window), or for a
   bank of plain frame rows (a hash list) hashes the whole frame with the lost corners painted in
   (``vscan.frames.turns.filled``), and looks them all up in one call within ``GATE_RADIUS``; an angle none of
   whose frames is that close is dropped, and the closest goes on;
   A file without such corners may have been turned and zoomed to hide them (``vscan.frames.windows.rotate_crop``
   beyond the bank's +-4 degrees): on a bank with centre crops, ``COARSE_DEGREES`` are looked up first (one lookup,
   3 frames: where unrelated files stop), then ``FINE_DEGREES`` around the closest; a bank of plain rows is not
   searched (the copy lost the source's rim);
3. turns every sampled frame back by it and matches the cut as the query's region version (path ``turned``)
   under the matcher's usual rules, with at least ``vscan.frames.regions.MIN_FRAMES`` frames where the file has them;
   as region search does, a frame flat inside the cut (the cut's own PDQ quality) is left out and the rest must
   hold at least 2 matched frames (a 4 s copy whose source sits on a bare door for 2 s, issue #27);
4. where the cut matched nothing and the copy kept its corners, the whole turned-back frame, corners painted and completed
   from the nearest frame row, as for a bank of plain rows: a sparse bank (``--rows sparse``) keeps crop rows every 2 s
   and none below 0.8, so a copy turned 6-15 degrees (the source's 0.71-0.84 crop) met too few of them to decide, while
   its frame rows cover all time (sparse, adaptive: `rotate` 3 -> 4/4 on the tune split, 1 -> 3/4 check, 3 -> 4/4 held-out).

The time is ``timings.match_rotation``.
"""

from __future__ import annotations

import functools

import numpy as np

from vscan.frames.luma import evenly_spaced, luma
from vscan.frames.regions import MIN_FRAMES
from vscan.frames.framed_turn import fit_framed, picture_box, picture_cut
from vscan.frames.turns import MIN_CORNER_SHARE, _dark_mask, filled, fit_turn, inscribed, kept_pixels, turn_back, unsqueezed, unsure_bits
from vscan.runtime.region_search import GATE_RADIUS, _flat_left_out, box_hashes, box_quality, closest_rows

__all__ = ["FIT_FRAMES", "LOCATE_FRAMES", "GATE_RADIUS", "GATE_SIDE", "COARSE_DEGREES", "FINE_DEGREES", "REFINE_DEGREES", "FRAMED_BELOW_OVERLAP", "MAX_TURN_ASPECT", "fitted_turn", "COMPLETE_RADIUS", "bank_cuts", "completed", "completion_rows", "turned_cut", "find_rotation"]

FIT_FRAMES = 8
LOCATE_FRAMES = 3
#: The gate's frames are looked at this small (px of a side).
GATE_SIDE = 128
#: Turns tried past the fitted one (degrees, away from zero): compressed corners' edges blur into the picture, so the fit
#: falls short by 0.4-0.8 degrees on AugLy's copies (tune split), and PDQ needs the turn within ~0.5.
REFINE_DEGREES = (0.0, 0.5, 1.0)
#: A corner fit this loose may be a wrong turn (the source's own dark bars widen the dark area, and the steepest turn's
#: corners fit best): the picture's straight edges are fitted instead (``vscan.frames.framed_turn``), which falls
#: 0.05-0.73 degrees short of the true turn (tune split), so turns half a degree either side go on too.
FRAMED_BELOW_OVERLAP = 0.8
FRAMED_REFINE_DEGREES = (-0.5, 0.0, 0.5)
#: Without corners (turned and zoomed to hide them): angles looked up first (a turn 1.5 degrees off still lies within
#: GATE_RADIUS), then around the closest, every half degree (PDQ needs the turn within ~0.5).
COARSE_DEGREES = (-15.0, -12.0, -9.0, -6.0, 6.0, 9.0, 12.0, 15.0)
FINE_DEGREES = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
#: A bank cut may reach this far past the kept box (share of the side): a sliver of fill moves PDQ little.
CUT_SLACK = 0.01
#: A cut of a picture inside bars may hold this share of lost pixels (the turned picture's edge lies close to the
#: copy's own: any fill inside moved PDQ 10-30 bits on the tune split's pillarboxed copies).
PICTURE_SLACK = 0.001
#: A painted frame's unsure bits are completed from rows within this many bits (sure and unsure together), of at most
#: this many candidate rows (``completed``).
COMPLETE_RADIUS = 64
#: A bank of plain rows: turns tried around the gate's, every frame painted and completed (``_painted``).
PAINTED_DEGREES = (-0.5, -0.25, 0.0, 0.25, 0.5)
COMPLETE_MAX_ROWS = 200_000
#: Files wider or taller than this (displayed, long side over short) are not searched for a turn: the turn's canvases
#: grow with the aspect (``vscan.frames.framed_turn``, ``turns.turn_back``: a 4096x8 file asked for a 32,770 px
#: square per angle, 4+ GB), and no video shown on a screen (32:9 is 3.6) is that narrow.
MAX_TURN_ASPECT = 8.0


def bank_cuts(index) -> tuple[float, ...]:
    """Centre boxes (share of each side) a bank holds rows of: its crop rows and its grid windows that sit
    in the centre (``g60:20,20``, ``vscan.frames.windows.CENTRE_WINDOW``; a lean plan's ``g40:30,30``), largest first; () for plain rows only."""
    from vscan.bank.query_side import _preps

    return _bank_cuts(_preps(index))


@functools.lru_cache(maxsize=64)
def _bank_cuts(preps: tuple[str, ...]) -> tuple[float, ...]:
    """``bank_cuts`` of a bank's prep names: once per bank, not per unmatched file (issue #30)."""
    from vscan.bank.query_side import _crop_scales, grid_windows_of

    centred = {g[0] for g in grid_windows_of(preps) if abs(g[1] - (1 - g[0]) / 2) < 0.011 and abs(g[2] - (1 - g[0]) / 2) < 0.011}
    return tuple(sorted(set(_crop_scales(preps)) | centred, reverse=True))


def turned_cut(lumas: np.ndarray, aspect: float, degrees: float, cuts: tuple[float, ...], *, zoomed: bool = False,
               picture: tuple[float, float, float, float] | None = None, quality: bool = True, wide: list[np.ndarray] | None = None):
    """PDQ (uint8 [N, 2, 32], as is and mirrored) of ``lumas`` [N, S, S] turned back by ``degrees``: the largest
    of ``cuts`` inside what the copy kept, else the whole frame with the corners painted in; and the box cut
    (top, bottom, left, right shares of the turned-back frame; the whole frame when painted; centred, the source's
    crop share ``c`` when zoomed), and the cut's PDQ quality per frame (int32 [N]; None when painted, or not asked for:
    ``quality`` False, as the gate that only ranks the turns' hashes asks, ``_gated``).
    ``zoomed``: the copy was cropped to hide its corners and scaled back up (``vscan.frames.windows.rotate_crop``),
    so its frame is the source's turned box ``k`` and the source's crop ``c`` is the box ``c / k`` of the turned-back
    frame, for ``c`` up to ``k * k``; None when no cut fits (nothing to paint: the copy lost the source's rim).
    ``picture``: the source's picture inside bars of its own (``vscan.frames.framed_turn.picture_box``): the bank's
    crops are of that picture (``borders+crop``), so the cut is centred in it; None when no cut fits inside.
    ``wide``: ``vscan.frames.turns.unsqueezed(lumas, aspect)``, where the caller has it (the gate turns them by several angles)."""
    turned = turn_back(lumas, aspect, degrees, wide=wide)
    _, h, w = turned.shape
    if picture is not None and cuts:
        found = picture_cut(kept_pixels(h, w, degrees), picture, cuts, PICTURE_SLACK)
        if found is None:
            return None
        t, b, left, r = found[1]
        return box_hashes(turned, found[1]), (t / h, b / h, left / w, r / w), box_quality(turned, found[1]) if quality else None
    k = inscribed(aspect, degrees)
    reach = k * k if zoomed else k
    inside = [c for c in cuts if c <= reach + CUT_SLACK]
    if zoomed and not inside:
        return None
    if not inside:
        return box_hashes(filled(turned, degrees, picture), (0, h, 0, w)), (0.0, 1.0, 0.0, 1.0), None
    c = max(inside)
    b = min(1.0, c / k) if zoomed else c
    ch, cw = max(16, int(round(h * b))), max(16, int(round(w * b)))
    top, left = (h - ch) // 2, (w - cw) // 2
    margin = (1.0 - c) / 2  # the box reported: the source's crop share, as the bank's row names it
    cut = (top, top + ch, left, left + cw)
    return box_hashes(turned, cut), (margin, 1.0 - margin, margin, 1.0 - margin), box_quality(turned, cut) if quality else None


def _too_large_in_memory(index) -> bool:
    """An in-memory index (not narrowed per file) with more than ``COMPLETE_MAX_ROWS`` frame rows: too large to compare
    every painted frame with (counted before its quality filter)."""
    return not hasattr(index, "narrow") and len(index.hashes) > COMPLETE_MAX_ROWS


def completion_rows(matcher, hashes: list[np.ndarray]) -> np.ndarray | None:
    """The bank frame rows ``completed`` takes unsure bits from, for painted frames' PDQ ``hashes`` (uint8 [N, 32] per
    angle tried): a memory-mapped bank's rows of the entries with a frame row within ``COMPLETE_RADIUS`` of any of
    them (narrowed once for every angle), an in-memory index's rows; of at least the matcher's quality floor. None
    when there are none or more than ``COMPLETE_MAX_ROWS``."""
    s = matcher.settings
    index = matcher.index
    if _too_large_in_memory(index):
        return None
    if hasattr(index, "narrow"):  # a memory-mapped bank: the entries with a frame row within reach
        index = index.narrow(hashes, COMPLETE_RADIUS, s.min_quality)
    rows = np.asarray(index.hashes)[np.asarray(index.qualities) >= s.min_quality]
    return rows if 0 < len(rows) <= COMPLETE_MAX_ROWS else None


def completed(matcher, hashes: np.ndarray, unsure: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """``hashes`` uint8 [N, 32] of painted frames with each frame's ``unsure`` bits ([N, 32], ``vscan.frames.turns.unsure_bits``)
    taken from the bank frame row closest on the sure bits, where that row lies within ``distance_threshold`` scaled to
    the sure bits' share (the same bar per bit as a whole hash); a frame without such a row is left as it is. The
    matcher then sees the sure bits' distance alone. Also returns how many frames were completed. ``rows``: the
    frame rows ``completion_rows`` gave."""
    threshold = matcher.settings.distance_threshold
    out, done = hashes.copy(), 0
    for i, (h, u) in enumerate(zip(hashes, unsure)):
        sure = ~u
        far = np.bitwise_count((rows ^ h) & sure).sum(axis=1)
        j = int(np.argmin(far))
        if far[j] <= threshold * int(np.bitwise_count(sure).sum()) / 256:
            out[i], done = (h & sure) | (rows[j] & u), done + 1
    return out, done


def _painted(matcher, lumas: np.ndarray, aspect: float, angles, picture=None) -> tuple[float, np.ndarray, np.ndarray] | None:
    """For a bank of plain rows: of ``angles``, the one whose turned-back, painted and ``completed`` frames ``lumas``
    [N, S, S] find the most rows (PDQ needs the turn within ~0.5 degrees, and the gate's small frames rank angles that
    close about as often wrong as right): (degrees, PDQ uint8 [N, 2, 32] as is (completed) and mirrored, the painted
    frames' PDQ quality int32 [N]: the black corners no longer lend a flat picture edges), or None. The rows to
    complete from are found once for every angle's frames (``completion_rows``); an in-memory index of more than
    ``COMPLETE_MAX_ROWS`` paints nothing."""
    if _too_large_in_memory(matcher.index):
        return None
    painted = []
    for degrees in angles:
        turned = filled(turn_back(lumas, aspect, degrees), degrees, picture)
        whole = (0, turned.shape[1], 0, turned.shape[2])
        painted.append((float(degrees), box_hashes(turned, whole), unsure_bits(turned, degrees, picture=picture), box_quality(turned, whole)))
    rows = completion_rows(matcher, [two[:, 0] for _, two, _, _ in painted])
    if rows is None:
        return None
    best = None
    for degrees, two, unsure, quality in painted:
        two[:, 0], done = completed(matcher, two[:, 0], unsure, rows)
        if done and (best is None or done > best[0]):
            best = (done, degrees, two, quality)
    return None if best is None else best[1:]


def _small(frames: np.ndarray) -> np.ndarray:
    """The luma [K, GATE_SIDE, GATE_SIDE] of ``frames`` uint8 [K, S, S, 3]: the corner fit and the gate's hashes,
    within its loose radius, need no more (4x fewer pixels than the scan's 256)."""
    import cv2

    if frames.shape[1] > GATE_SIDE:
        frames = np.stack([cv2.resize(f, (GATE_SIDE, GATE_SIDE), interpolation=cv2.INTER_AREA) for f in frames])
    return luma(frames)


def _gated(matcher, near: np.ndarray, aspect: float, angles, cuts: tuple[float, ...], *, zoomed: bool, picture=None,
           wide: list[np.ndarray] | None = None) -> float | None:  # fmt: skip
    """Of ``angles``, the one whose turned-back cuts of ``near`` [K, S, S] lie closest to bank rows (summed over the
    frames), in one lookup; None when no frame of any is within ``GATE_RADIUS``. ``wide``: ``unsqueezed(near, aspect)``."""
    wide = unsqueezed(near, aspect) if wide is None else wide  # resized once for every angle (issue #30)
    tried = [(a, turned_cut(near, aspect, a, cuts, zoomed=zoomed, picture=picture, quality=False, wide=wide)) for a in angles]
    tried = [(a, cut[0]) for a, cut in tried if cut is not None]
    if not tried:
        return None
    gate = closest_rows(matcher, np.concatenate([h for _, h in tried])).reshape(len(tried), -1)
    passing = [(int(g.sum()), a) for g, (a, _) in zip(gate, tried) if (g <= GATE_RADIUS).any()]
    return float(min(passing)[1]) if passing else None


def fitted_turn(small: np.ndarray, aspect: float):
    """The turn of a file's dark corners (``small``: a few frames' luma [K, S, S]) and the turns to try from it: the
    corner fit, or where it fails or fits loosely, the picture's straight edges (a source with dark bars of its own,
    whose picture box inside them comes too: ``vscan.frames.framed_turn.picture_box``); (None, (), None) when
    neither fits."""
    turn = fit_turn(small, aspect)
    if turn is not None and turn.overlap >= FRAMED_BELOW_OVERLAP:
        return turn, REFINE_DEGREES, None
    dark = _dark_mask(small)
    framed = fit_framed(dark, aspect) if dark.mean() >= MIN_CORNER_SHARE else None
    if framed is not None:
        return framed, FRAMED_REFINE_DEGREES, picture_box(dark, aspect, framed.degrees)
    return (turn, REFINE_DEGREES, None) if turn is not None else (None, (), None)


def find_rotation(matcher, query, frames: np.ndarray | None, source_size=None):
    """For a file a ``vscan.bank.matcher.Matcher`` found no match for (its robust ``FileQuery``, sampled square
    ``frames`` uint8 [N, S, S, 3], ``source_size`` (w, h) as decoded): (the query with the turned-back cut as its
    region version, the matcher it was matched with, its matches), or None (no turn fits, or it does not match)."""
    if frames is None or len(frames) < 2 or frames.shape[1] != frames.shape[2]:
        return None
    if source_size is None or len(source_size) != 2 or min(source_size) <= 0:
        return None
    aspect = float(source_size[0]) / float(source_size[1])
    if max(aspect, 1.0 / aspect) > MAX_TURN_ASPECT:
        return None  # a sliver of a picture (hostile or broken): no turn to fit, and its canvases would not fit memory
    cuts = bank_cuts(matcher.index)
    fit_picks, near_picks = evenly_spaced(len(frames), FIT_FRAMES), evenly_spaced(len(frames), LOCATE_FRAMES)
    small = _small(frames[fit_picks])
    turn, refine, picture = fitted_turn(small, aspect)  # dark corners: the angle, from them
    if turn is None and not cuts:
        return None  # a bank of plain rows cannot meet a zoomed copy: its rim is gone
    near = small if np.array_equal(fit_picks, near_picks) else _small(frames[near_picks])  # the same frames (<= 3 a file): once
    wide = unsqueezed(near, aspect)  # at the file's aspect, for every angle the gates turn them by
    zoomed = turn is None
    if zoomed:  # no corners: a copy turned and zoomed to hide them; coarse angles first, one lookup
        coarse = _gated(matcher, near, aspect, COARSE_DEGREES, cuts, zoomed=True, wide=wide)
        if coarse is None:
            return None
        angles = [coarse + d for d in FINE_DEGREES]
    else:
        angles = [turn.degrees + np.sign(turn.degrees) * d for d in refine]
    degrees = _gated(matcher, near, aspect, angles, cuts, zoomed=zoomed, picture=picture, wide=wide)
    if degrees is None:
        return None
    lumas = luma(frames)
    if cuts:
        two, cut, cut_quality = turned_cut(lumas, aspect, degrees, cuts, zoomed=zoomed, picture=picture)  # type: ignore[misc]
        found = _turned_match(matcher, query, degrees, two, cut, cut_quality)  # the cut's own detail: a frame flat inside it holds no evidence
        if found is not None or zoomed:
            return found
    # plain rows, or a bank whose crop rows are too sparse to meet (a sparse bank's, every 2 s): the whole frame, its lost
    # corners painted, the bits they could flip not held against a row; frame rows are the densest a bank keeps
    painted = _painted(matcher, lumas, aspect, [degrees + d for d in PAINTED_DEGREES], picture)
    if painted is None:
        return None
    degrees, two, painted_quality = painted
    return _turned_match(matcher, query, degrees, two, (0.0, 1.0, 0.0, 1.0), painted_quality)


def _turned_match(matcher, query, degrees: float, two: np.ndarray, cut, cut_quality: np.ndarray):
    """``find_rotation``'s answer for the turned-back frames' PDQ ``two`` [N, 2, 32] (as is, mirrored) of the box ``cut``
    with its PDQ quality ``cut_quality`` [N]: the query with them as its region version, the matcher and its matches, or None."""
    from vscan.bank.query import QueryVersion
    from vscan.hashing.vpdq import FrameHashes

    fh = query.frames.hashes
    quality = np.minimum(fh.qualities, cut_quality)
    variants = np.repeat(two[:, :1], 8, axis=1)
    variants[:, 4] = two[:, 1]  # flip_h: the copy mirrored
    hashes = FrameHashes(fh.frame_numbers, fh.timestamps_seconds, quality.astype(fh.qualities.dtype), np.ascontiguousarray(variants[:, 0]))
    flat = quality < matcher.settings.min_quality
    box = np.array([[round(float(v), 4) for v in cut]]).repeat(len(hashes), axis=0)
    name = f"turned{degrees:+.2f}"
    least = min(MIN_FRAMES, len(hashes), max(2, int((~flat).sum())))  # as region search: of the frames with detail in the cut
    tried = _flat_left_out(query, flat).with_version(QueryVersion("region", hashes, variants, box=box, name=name, min_frames=least))
    narrowed = matcher.for_file(tried)
    matches = narrowed.match(tried)
    if any(m.is_match and name in m.path for m in matches):
        return tried, narrowed, matches
    return None

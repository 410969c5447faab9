"""Off-centre crops: find where a copy keeping part of each side sits in its source.

A crop keeping 70% of each side at an arbitrary position cannot be undone
on the query side, and PDQ moves ~20 bits when a window is misplaced by 0.5%
of the side (``vscan.bench.bench_window_shift``), so a bank cannot store
every position either. Banks store instead windows keeping 55% of each side
on a 10% grid (``vscan.frames.windows.GRID_WINDOWS``, a few frames a
second; banks built before: 60%): a crop keeping 65% or more at any position holds one of them
whole, at a place in the copy that a scan can search for.

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
Where that best is only a weak hit, it asks adaptive sampling's second pass
for the copy's frames on its entry's grid clock (``grid_looks``): fast
footage meets grid rows only there, and a flat span leaves too few frames
with detail at one a second.

Crops keep uneven shares too (AugLy's ``crop``: 60-75% of the width and
65-80% of the height), and then the grid window is no square in the scan's
squeezed frame: a window 2-3% off in size is as far from its row as an
unrelated picture. A crop in an editor or ffmpeg keeps its pixels, so the
copy's own size against the usual frame sizes (``FRAME_SIZES``) gives the
shares it kept: ``kept_shares`` adds every such pair within ``KEPT_RANGE``
(a 304 x 208 copy: 304/480 x 208/270 of a 480 x 270 source) to the
searched sizes, all in the same single lookup, and so does its size against
the pictures inside their bars the bank's entries hold (``picture_sizes``:
a copy cut inside a source's own bars kept a larger share of the picture
the grid windows were cut from than of its frame; a source at no usual size).
"""

from __future__ import annotations

import numpy as np

from vscan.frames.luma import evenly_spaced, luma
from vscan.frames.regions import MIN_FRAMES
from vscan.frames.window_hash import window_hashes
from vscan.frames.windows import GRID_SCALE, GRID_STEPS

__all__ = ["SAME_PLACE", "same_place_grids", "grid_places", "CROPS_KEPT", "FRAME_SIZES", "KEPT_RANGE", "OVERHANG", "SAME_SHARES", "USUAL_ASPECT", "BANK_PICTURES", "kept_shares", "picture_sizes", "overhang_px", "padded", "COARSE_STEP", "UNEVEN_STEP", "LOCATE_FRAMES", "LOCATE_RADIUS", "REFINE", "candidate_windows", "locate", "offcentre_version",
           "find_offcentre", "grid_share", "has_grid_rows", "LOOK_REACH_SECONDS", "LOOK_MAX_FRAMES", "grid_looks", "entry_grid_rows"]  # fmt: skip

#: Shares of each side a copy may keep (an off-centre crop): the window searched for is GRID_SCALE / kept of the copy.
CROPS_KEPT = (0.7,)
#: Usual frame sizes (w, h) of video, landscape (portrait: the same turned): a crop that kept its pixels is its
#: source's size times the shares kept (``kept_shares``).
FRAME_SIZES = ((3840, 2160), (2560, 1440), (1920, 1080), (1280, 720), (960, 540), (854, 480), (640, 360), (480, 270), (426, 240),
               (320, 180), (1440, 1080), (1024, 768), (800, 600), (640, 480), (480, 360), (320, 240), (720, 576), (720, 480))  # fmt: skip
#: Shares of a side an off-centre crop is searched for keeping (besides CROPS_KEPT), at most.
KEPT_RANGE = (0.55, 0.85)
#: Shares within this of a pair already searched (both sides) are that pair: its window is within ~1% of the size.
#: Any other pair is searched, nearly even ones too (a 358 x 196 copy of a 480 x 270 clip
#: kept 0.7458 x 0.7259, 2% apart: the 70% search's window is 4-6% too wide, as far from its row as unrelated
#: content; tune split). The file's aspect (``USUAL_ASPECT``) is what keeps files made at a usual size out.
SAME_SHARES = 0.01
#: A file whose aspect lies this close to a usual frame's (relative) is not searched for uneven shares: an uneven crop
#: of a usual frame lands on a usual aspect only by chance, and most unmatched files are at one. (Searching the shares
#: of files at a usual aspect but no usual size too, 400 x 224 or 256 x 192, found the tune split's even crops keeping
#: 65% x 65% and 60% x 71% (310 x 176, 288 x 192) but cost ~10x the off-centre search's time on the 275 of the 1,000
#: unrelated files at such sizes: 5.7 -> 54 s in one pair of runs at load 15-30, session 41.)
USUAL_ASPECT = 0.01
#: A crop keeping little more than a grid window's share may hold none whole (60% of a side against windows of 55%
#: every 10%: up to 2.5% of the source left out; a bank built before, 60-65% against 60%: up to 5%, 8% of the copy): a
#: window may stick out of the copy by this share of its side, the missing strip mirrored in from the picture (the
#: grid's step over the smallest share kept; ``overhang_px`` sizes it from the bank's scale).
OVERHANG = 0.08
#: Search step (px of the scan's square frames) and frames searched.
COARSE_STEP = 4
#: The coarse step for uneven shares (``kept_shares``): their size is exact (the copy's pixels), so a place 3 px off
#: still lies within LOCATE_RADIUS on the tune split, at (4/6)^2 of the windows a 4 px step hashes (CPU time of the
#: search on 190 unrelated files, same process against 2584661's: 33-49 ms a file against 36-50; with a 4 px step 40 vs 40).
UNEVEN_STEP = 6
LOCATE_FRAMES = 3
#: Search the bank's grid windows at their own places too (``same_place_grids``): a copy that kept its source's picture
#: but had part of it covered (overlaid text, an emoji, shapes) meets its source's rows only in the windows the overlay
#: leaves clean; 26 windows a searched frame beside the ~200 of the 70% crop's coarse search.
SAME_PLACE = True
#: Picture sizes of the banked entries ``kept_shares`` divides a copy's size by (besides ``FRAME_SIZES``), those most
#: entries share first: a bank of many sizes would otherwise search a window size per entry on every unmatched file.
BANK_PICTURES = 32
#: A window this close to a bank row places the crop (not evidence: the matcher decides on every frame).
LOCATE_RADIUS = 28
_FINE = 3  # refine +-3 px around the coarse place
REFINE = 8  # coarse places refined
_LAG = 0.6  # s: hits of one place agree in time within this (bank grid rows are 1 / GRID_FPS s apart)
#: A weak off-centre hit (placed, matched on too few frames) asks the second pass for the copy's frames at its entry's
#: grid rows (``grid_looks``: ``Match.look_seconds``, adaptive sampling's ``LookWindows``), this far either side of
#: its closest pair and at most this many: fast footage moves 40-130 bits a frame inside a window, so only frames on
#: the bank's grid clock meet its rows, and a flat span leaves too few detailed frames at 1 a second.
LOOK_REACH_SECONDS = 8.0
LOOK_MAX_FRAMES = 32


def _offsets(room: int, step: int) -> np.ndarray:
    return np.unique(np.append(np.arange(0, room + 1, step), room))


def candidate_windows(frames: np.ndarray, picks: np.ndarray, grids: list[tuple[int, np.ndarray, np.ndarray]], exact: bool = True):
    """Hashes of windows of ``frames[picks]`` (uint8 [N, S, S, 3]), each
    grid (height, width, tops, lefts) giving every (top, left) pair. Returns (variants
    uint8 [M, 8, 32] with variant 4 the mirrored window, rows [M] (the frame
    of each), boxes [M, 4] top, bottom, left, right), frame by frame, every
    frame's windows in the same order. ``exact`` False: the mirrored window is the hash's own mirror (``window_hashes``)."""
    out, rows, where = [], [], []
    for k in picks:
        y = luma(frames[k])  # once for the frame's grids
        for height, width, tops, lefts in grids:
            out.append(window_hashes(frames[k], height, width, tops, lefts, exact=exact, y=y).reshape(-1, 2, 32))
            rows += [k] * (len(tops) * len(lefts))
            where += [(t, t + height, left, left + width) for t in tops for left in lefts]
    two = np.concatenate(out) if out else np.zeros((0, 2, 32), np.uint8)
    variants = np.repeat(two[:, :1], 8, axis=1)
    variants[:, 4] = two[:, 1]  # flip_h: the copy mirrored
    return variants, np.asarray(rows, np.int64), np.asarray(where, np.int32).reshape(-1, 4)


def kept_shares(source_size, grid_scale: float = GRID_SCALE, pictures: tuple[tuple[int, int], ...] = ()) -> list[tuple[float, float]]:
    """(width, height) shares a copy of ``source_size`` (w, h px as decoded; None: unknown) may have kept of its
    source: ``CROPS_KEPT`` on both sides, its size over each of ``pictures`` at no usual size (the banked entries'
    pictures inside their bars, w x h px: ``picture_sizes``; the grid windows are cut from them) and, unless its own
    aspect is a usual one (within ``USUAL_ASPECT`` of one of ``FRAME_SIZES``', either way round), over each of
    ``FRAME_SIZES``, where both shares lie within ``KEPT_RANGE`` and can hold most of a grid window (``OVERHANG``);
    no two within ``SAME_SHARES`` (both sides)."""
    out = [(k, k) for k in CROPS_KEPT]
    if source_size is None or len(source_size) != 2 or min(source_size) <= 0:
        return out
    w, h = (float(v) for v in source_size)
    usual = FRAME_SIZES + tuple((b, a) for a, b in FRAME_SIZES)
    sizes = tuple(p for p in dict.fromkeys(tuple(int(v) for v in p) for p in pictures) if p not in usual)  # bars, odd sizes
    if not any(abs(w / h * fh / fw - 1.0) < USUAL_ASPECT for fw, fh in usual):
        sizes += usual  # a file at a usual aspect was made so, not cut unevenly out of a usual frame (lands on one by chance)
    low, high = max(KEPT_RANGE[0], grid_scale * (1 - OVERHANG)), KEPT_RANGE[1]
    for fw, fh in sizes:
        kw, kh = w / fw, h / fh
        if low <= kw <= high and low <= kh <= high and not any(abs(kw - a) < SAME_SHARES and abs(kh - b) < SAME_SHARES for a, b in out):
            out.append((round(kw, 4), round(kh, 4)))
    return out


def picture_sizes(index) -> tuple[tuple[int, int], ...]:
    """(w, h) px of the pictures inside their bars of a bank's media entries, those most entries share first, at most
    ``BANK_PICTURES``; () for a bank without geometry (hash lists, banks built before it was kept). Read once per bank
    through the bank's one reader of its geometry (``vscan.bank.entry_table.picture_sizes``: a ``MappedBank``'s file, an
    in-memory index's geometry array)."""
    from vscan.bank.entry_table import picture_sizes as bank_pictures

    return bank_pictures(index, BANK_PICTURES)


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


def same_place_grids(side: int, grid_scale: float = GRID_SCALE, box=None, pad: int = 0, places=None) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """``locate``'s grid (height, width, tops, lefts) of the bank's grid windows themselves in a copy that kept its
    source's whole picture (``box``: top, bottom, left, right px of the ``side`` px square frame inside its bars; None:
    all of it), ``pad`` px in: an overlay (text, an emoji, a logo) leaves some of them clean where it spoils the frame's
    hash (``SAME_PLACE``). ``places``: (tops, lefts) of the bank's windows as shares of the side (``grid_places``;
    default ``GRID_STEPS`` both); a window that would not fit inside the picture is left out."""
    t, b, left, r = (0, side, 0, side) if box is None else (int(v) for v in box)
    tops_at, lefts_at = places if places is not None else (GRID_STEPS, GRID_STEPS)
    if min(b - t, r - left) < 16:
        return []
    zh, zw = int(round((b - t) * grid_scale)), int(round((r - left) * grid_scale))
    tops = np.unique(np.round(np.asarray(tops_at, np.float64) * (b - t)).astype(np.int64))
    lefts = np.unique(np.round(np.asarray(lefts_at, np.float64) * (r - left)).astype(np.int64))
    tops, lefts = tops[(tops >= 0) & (tops + zh <= b - t)], lefts[(lefts >= 0) & (lefts + zw <= r - left)]
    return [(zh, zw, pad + t + tops, pad + left + lefts)] if tops.size and lefts.size and min(zh, zw) >= 5 else []


def grid_places(index, grid_scale: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(tops, lefts) as shares of the side of a bank's grid windows keeping ``grid_scale`` (``grid_share``): a full
    bank's ``g55`` on ``GRID_STEPS``, a bank built before ``g60`` from 0 every 10%, a lean plan's one window."""
    from vscan.bank.query_side import _preps, grid_places_of

    return grid_places_of(_preps(index), float(grid_scale))


def locate(frames: np.ndarray, qualities: np.ndarray, times: np.ndarray, hits_of, *, min_quality: int, candidates: int = 3,
           grid_scale: float = GRID_SCALE, kept: list[tuple[float, float]] | None = None, pad: int = 0,
           same: list[tuple[int, int, np.ndarray, np.ndarray]] = ()) -> list[np.ndarray]:  # fmt: skip
    """Candidate boxes (top, bottom, left, right px) of a grid window in
    ``frames`` (the file's sampled square frames), best first: the ``REFINE``
    coarse places most searched frames agree on, each refined pixel by pixel
    (a place 2 px off is ~20 bits away, so the right place can rank below a
    panning picture's look-alikes until refined), ranked again.
    ``hits_of(variants, rows)`` -> ``vscan.bank.robust.row_hits`` of the
    windows' hashes (as is and mirrored: variants 0 and 4) against grid rows. ``kept``: the (width, height)
    shares the copy may keep (``kept_shares``; default ``CROPS_KEPT`` on both sides). ``pad``: the frames
    are the scan's with this many px mirrored on every side (``padded``): windows of shares other than
    ``CROPS_KEPT`` may then stick out of the copy by up to ``OVERHANG`` of its side. ``same``: grids searched too
    (``same_place_grids``: the grid windows where a copy that kept its source's picture holds them)."""
    good = np.flatnonzero(qualities >= min_quality)
    if good.size == 0 or frames.shape[1] != frames.shape[2]:
        return []
    picks = good[evenly_spaced(good.size, LOCATE_FRAMES)]  # spread over the file: look-alikes do not last
    full, s = frames.shape[1], frames.shape[1] - 2 * pad
    grids = []
    for kw, kh in kept or [(k, k) for k in CROPS_KEPT]:
        # px a window may stick out of the copy on each axis (none for CROPS_KEPT: they hold a grid window whole)
        oh, ow = (0, 0) if (kw, kh) in [(k, k) for k in CROPS_KEPT] else (min(pad, overhang_px(kh, grid_scale, s)), min(pad, overhang_px(kw, grid_scale, s)))
        # (height, width) px: grid_scale is the bank's windows' (vscan.bank.query_side.grid_scale)
        zh, zw = min(s + 2 * oh, int(round(s * grid_scale / kh))), min(s + 2 * ow, int(round(s * grid_scale / kw)))
        step = COARSE_STEP if (kw, kh) in [(k, k) for k in CROPS_KEPT] else UNEVEN_STEP
        tops, lefts = pad - oh + _offsets(s + 2 * oh - zh, step), pad - ow + _offsets(s + 2 * ow - zw, step)
        grids.append((zh, zw, tops, lefts))
    # The coarse pass mirrors windows by the hash's own signs (half the products; a mirrored copy's place still comes
    # within LOCATE_RADIUS on some frame, as before stop 47), the refined places the turned windows' own hashes.
    variants, rows, boxes = candidate_windows(frames, picks, grids + list(same), exact=False)
    coarse = _votes(hits_of(variants, rows), rows, len(boxes) // picks.size, times)[:REFINE]
    if not coarse:
        return []
    grids, owners = [], []  # refined: +-_FINE px around each coarse place
    for _, entry, w in coarse:
        t, b, left, r = (int(v) for v in boxes[w])
        zh, zw = b - t, r - left
        grids.append((zh, zw, np.arange(max(0, t - _FINE), min(full - zh, t + _FINE) + 1), np.arange(max(0, left - _FINE), min(full - zw, left + _FINE) + 1)))
        owners.append(entry)
    fvars, frows, fboxes = candidate_windows(frames, picks, grids)
    starts = np.cumsum([0] + [len(t) * len(left) for _, _, t, left in grids])
    found: list[np.ndarray] = []
    for _, entry, place in _votes(hits_of(fvars, frows), frows, int(starts[-1]), times):
        box = fboxes[place]
        if entry == owners[int(np.searchsorted(starts, place, side="right")) - 1] and not any(np.abs(box - f).max() <= 1 for f in found):
            found.append(np.asarray(box, np.int32))
    return found[:candidates]


def overhang_px(kept: float, grid_scale: float, side: int) -> int:
    """Px of a ``side`` px copy keeping ``kept`` of its source's side that the nearest grid window may stick out by:
    none once it keeps a grid step more than the window, else half of what it lacks (``OVERHANG`` at most)."""
    step = GRID_STEPS[1] - GRID_STEPS[0]
    lack = max(0.0, step - (kept - grid_scale)) / 2.0
    return int(np.ceil(min(OVERHANG, lack / kept) * side))


def padded(frames: np.ndarray, pad: int) -> np.ndarray:
    """uint8 [N, S + 2 pad, S + 2 pad, 3]: ``frames`` with ``pad`` px mirrored in on every side (a window sticking
    out of the copy gets the picture's own edge, not a fill colour PDQ would see as an edge)."""
    if pad <= 0:
        return frames
    return np.pad(frames, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def offcentre_version(frames: np.ndarray, qualities: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every frame's window at ``box``: (variants uint8 [N, 8, 32] with variant 4 mirrored, qualities: the frames')."""
    t, b, left, r = (int(v) for v in box)
    two = np.stack([window_hashes(f, b - t, r - left, np.array([t]), np.array([left]))[0, 0] for f in frames])
    variants = np.repeat(two[:, :1], 8, axis=1)
    variants[:, 4] = two[:, 1]
    return variants, qualities


def grid_share(index) -> float:
    """The share of each side most of a bank's grid windows keep (a full bank's 25 ``g55`` windows beside its one
    centred ``g60``; a bank built before, 16 ``g60``; a lean plan's one ``g40``), the larger on a tie; ``GRID_SCALE``
    for a bank without any: the windows ``locate`` searches are sized from it."""
    from vscan.bank.query_side import _preps, grid_share_of

    return grid_share_of(_preps(index))


def has_grid_rows(index) -> bool:
    """Whether a bank (``MappedBank`` or ``BankIndex``) holds grid windows: without them there is nothing to find."""
    preps = getattr(index, "preps", None)  # a MappedBank's prep names
    if preps is not None:
        return any("window:g" in p for p in preps)
    if "offcentre.grid" not in index.cache:
        index.cache["offcentre.grid"] = index.extra is not None and any("window:g" in p for p in set(index.extra.preps))
    return bool(index.cache["offcentre.grid"])


def find_offcentre(matcher, query, frames: np.ndarray | None, source_size=None, border_box=None):
    """For a file (its robust ``FileQuery``, its sampled square ``frames`` and its ``source_size`` (w, h) as decoded)
    that a ``vscan.bank.matcher.Matcher`` found no match for as it is (``border_box``: its picture's box inside bars,
    top, bottom, left, right px of the square frames, where found): (the
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
    scale = grid_share(matcher.index)
    kept = kept_shares(source_size, scale, picture_sizes(matcher.index))
    pad = int(round(OVERHANG * s)) if len(kept) > len(CROPS_KEPT) else 0  # only uneven shares' windows may stick out
    frames = padded(frames, pad)
    same = same_place_grids(s, scale, border_box, pad, grid_places(matcher.index, scale)) if SAME_PLACE else []
    for box in locate(frames, fh.qualities, fh.timestamps_seconds, hits_of, min_quality=matcher.settings.min_quality, grid_scale=scale,
                      kept=kept, pad=pad, same=same):  # fmt: skip
        wvars, quality = offcentre_version(frames, fh.qualities, box)
        window = FrameHashes(fh.frame_numbers, fh.timestamps_seconds, quality, np.ascontiguousarray(wvars[:, 0]))
        boxes = np.round(np.clip((np.asarray(box, np.float64)[None] - pad) / float(s), 0.0, 1.0), 4).repeat(len(window), axis=0)
        tried = query.with_version(QueryVersion("region", window, wvars, box=boxes, name="off-centre", min_frames=MIN_FRAMES))
        narrowed = matcher.for_file(tried)
        matches = narrowed.match(tried)
        score = max(((m.is_match, m.query_pct) for m in matches if "off-centre" in m.path), default=(False, 0.0))
        if best is None or score > best[0]:
            best = (score, tried, narrowed, matches)
    if best is None or best[0][0]:
        return None if best is None else best[1:]
    _, tried, narrowed, matches = best
    return tried, narrowed, [_with_looks(m, narrowed, tried) for m in matches]


def _with_looks(m, matcher, query):
    """``m`` with ``look_seconds`` at its entry's grid rows (``grid_looks``) where it is the off-centre version's weak
    hit: rows within ``LOOK_REACH_SECONDS`` of its reference span, the windows within it of its query span."""
    from dataclasses import replace

    if m.is_match or "off-centre" not in m.path or m.look_seconds or not all(np.isfinite(m.reference_span_seconds + m.query_span_seconds)):
        return m
    times, hashes = entry_grid_rows(matcher.index, m.bank_entry_id)
    near = np.abs(times - np.clip(times, *m.reference_span_seconds)) <= LOOK_REACH_SECONDS
    region = query.version("region")
    t = region.hashes.timestamps_seconds
    mine = np.abs(t - np.clip(t, *m.query_span_seconds)) <= LOOK_REACH_SECONDS
    looks = grid_looks(times[near], hashes[near], t[mine], region.variants[mine], region.hashes.qualities[mine], query.duration_seconds,
                       matcher.settings.min_quality)  # fmt: skip
    return replace(m, look_seconds=looks) if looks else m


def entry_grid_rows(index, entry_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(times float64 [K], hashes uint8 [K, 32]) of the grid-window rows (``window:g``) of entry ``entry_id`` in an
    in-memory ``BankIndex`` (a scan's narrowed index); empty for none."""
    extra = getattr(index, "extra", None)
    if extra is None or entry_id not in index.entry_ids or not len(extra.hashes):
        return np.zeros(0), np.zeros((0, 32), np.uint8)
    e = index.entry_ids.index(entry_id)
    grid = np.fromiter(("window:g" in p for p in extra.preps), bool, len(extra.preps))
    rows = np.flatnonzero(grid & (np.asarray(index.entry_rows)[extra.frame_rows] == e))
    return np.asarray(index.timestamps_seconds, np.float64)[extra.frame_rows[rows]], np.asarray(extra.hashes[rows], np.uint8)


def grid_looks(row_times: np.ndarray, row_hashes: np.ndarray, times: np.ndarray, variants: np.ndarray, qualities: np.ndarray,
               duration_seconds: float | None, min_quality: int = 1) -> tuple[float, ...]:  # fmt: skip
    """The copy's times at which it shows the frames an entry's grid rows hold (``row_times``, ``row_hashes``): the
    copy's sampled windows (``variants`` [N, 8, 32], as is and mirrored: 0 and 4, at ``times``) give its offset against
    the entry from their closest pair (both exact frame times), and each grid row's time less it is a look, within
    ``LOOK_REACH_SECONDS`` of that pair and inside the file, the ``LOOK_MAX_FRAMES`` nearest, sorted; () without rows."""
    ok = np.flatnonzero(np.asarray(qualities) >= min_quality)
    if not len(row_times) or not ok.size:
        return ()
    q = np.asarray(variants, np.uint8)[ok][:, [0, 4]].reshape(-1, 32)
    bits = np.bitwise_count(q[:, None, :] ^ np.asarray(row_hashes, np.uint8)[None]).sum(-1, dtype=np.int64)
    k, r = np.unravel_index(int(np.argmin(bits)), bits.shape)
    tq = float(np.asarray(times, np.float64)[ok][k // 2])
    at = np.unique(np.asarray(row_times, np.float64)) - (float(row_times[r]) - tq)
    end = float(duration_seconds) if duration_seconds and duration_seconds > 0 else np.inf
    at = at[(at >= -1e-6) & (at < end) & (np.abs(at - tq) <= LOOK_REACH_SECONDS + 1e-9)]
    at = at[np.argsort(np.abs(at - tq), kind="stable")[:LOOK_MAX_FRAMES]]
    return tuple(float(t) for t in np.sort(np.maximum(at, 0.0)))

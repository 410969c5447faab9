"""Rows in order: short evidence against a sparse hash list (issue #27 item 4).

A bank built from hash lists alone may hold one hash a second of each video (the reference vPDQ at
``seconds_per_hash=1``) or one PDQ hash per grabbed image with no frame times at all (a ``.pdq``
list). A 2-2.5 s excerpt of such a video shows 2-3 of its rows however densely it is sampled: the
short rule's run of 2.5 s (``vscan.bank.short``) judges such rows one best distance each and asks for
six (a run under 2.5 s), and a PDQ list, with no times, can never be aligned at all. The rows are
still strong evidence when several of them are met closely, each by its own query frame, in the
list's own order:

``rows_in_order`` accepts a match with an entry of a sparse list (``sparse_list_entries``: its frame
rows >= 0.5 s apart or without times, no extra rows: lists carry none, media entries do) when at
least ``MIN_ROWS`` distinct rows of it (distinct hashes, quality >= the settings') are each met
within ``MAX_DISTANCE`` bits (their median within ``MEDIAN_DISTANCE``) by distinct query frames of
the file's whole-frame versions (as decoded, borders removed; one dihedral variant for all) - or, for a
match through the region version (an inset, a pane, a picture in a blurred fill, placed by
``vscan.runtime.region_search``), of that version, with at least as many rows as a region match needs
frames - and

- timed rows: all at one time offset (``reference - query`` within ``TOLERANCE_SECONDS`` of each
  other: the copy plays at the list's speed) - a run of 3 rows of a 1 s/hash list is 2 s of it;
- untimed rows (PDQ per image): rows and query frames rise together, each step of the list taking
  ``STEP_SECONDS`` of the query (grabs a fraction of a second to a few seconds apart).

The limits are the short rule's (3 frames, every one within 20 bits, median within 16: no
false positive among ``bench_distractors``' unrelated clips and 1,000 unrelated files), with two
rows a second of reference fewer. A match it decides says ``decided_by: "list-rows"`` and asks for no
more looks.

A weak hit it does not decide on an untimed list (``dense_looks``) asks adaptive sampling's second pass for every
frame within ``row_looks.DENSE_REACH_SECONDS`` of its closest query frame, as a timed list's 1 s rows already do
(``vscan.bank.row_looks``): a copy trimmed at any frame shows a whole-second first pass frames between the grabs, and
the frames next to its weak hit meet the grabs themselves.

A whole-frame match on a sparse list entry decided by any other rule on too few frames for adaptive sampling's first pass
to stand on (``vscan.decode.adaptive.first_pass_decides`` rejects it: the short-file rule, vPDQ's on one distinct frame,
aligned frames) names the same look, timed list or not (``decide_on_rows``), as a match decided on one cropped frame does
(``robust.THIN_MATCH_FRAMES``). A first pass shows a short file 2-3 frames on whole seconds; without a look its second
pass is a 1 fps window that re-judges the file on 4-6 frames, under which such a decision fails (a copy sped up or
slowed down: its frames fall between the list's seconds). With the look the second pass holds every frame near the
hit, some of them on the list's rows: AugLy speed copies on the 1 s/hash list, tune 12 -> 15/15, held-out (new seeds)
13 -> 14/18; the held-out AugLy families and re-framed copies unchanged. Matching the rows at other rates (0.5-2x)
as well decides none of them: the look does.

A weak hit through the region version (an inset, a pane, a picture between caption bands or in a fill, placed by
``vscan.runtime.region_search``) on a sparse list entry, in a file of at most ``SPARSE_BURST_MAX_FILE_SECONDS``
(``short_file``), names the same look around the region version's closest frame, timed list or not: a short re-framed
copy's first pass shows the box on 4-6 frames, and its 1 fps second pass re-judges it on as few, between the list's
seconds. This is the list burst (all frames of 1 s in every short file's middle, measured and taken out at stop 42 for
its cost on unrelated files) only where the first pass found something: no unrelated file has such a hit.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["MIN_ROWS", "MAX_DISTANCE", "MEDIAN_DISTANCE", "sparse_list_entries", "rows_in_order", "dense_looks", "decide_on_rows",
           "short_file"]

#: Distinct rows met, each by its own query frame.
MIN_ROWS = 3
#: Every met row within this many bits, their median within ``MEDIAN_DISTANCE`` (``vscan.bank.short``'s limits).
MAX_DISTANCE = 20
MEDIAN_DISTANCE = 16
#: Timed rows: the met rows' (reference - query) offsets all within this many seconds of one another.
TOLERANCE_SECONDS = 0.35
#: Untimed rows: query seconds per step of the list's order.
STEP_SECONDS = (0.2, 5.0)
#: A timed entry's frame rows at least this far apart (median) are sparse (a vPDQ list every frame: 0.03-0.04 s).
SPARSE_GAP_SECONDS = 0.5
#: Pairs within ``MAX_DISTANCE`` a search looks at (the closest): timed rows' windows, untimed rows' chains.
MAX_PAIRS = 4096
MAX_CHAIN_PAIRS = 256
#: Query versions searched for a whole-frame match; a match through the region version (an inset, a pane, a filled
#: picture: ``vscan.runtime.region_search``) is judged on that version alone, its rows one per sampled frame.
_VERSIONS = ("frames", "unbordered")


def sparse_list_entries(index) -> np.ndarray:
    """bool [entries]: entries of ``index`` (a ``BankIndex``) whose frame rows are a sparse list (module
    docstring): at least ``MIN_ROWS`` rows, sparse or untimed, and no extra rows filed under them."""
    key = "list_banks.sparse"
    if key in index.cache:
        return index.cache[key]
    n = index.num_entries
    out = np.zeros(n, bool)
    if n and len(index):
        rows = np.asarray(index.entry_rows, np.int64)
        counts = np.bincount(rows, minlength=n)
        extra = np.zeros(n, bool)
        if index.extra is not None and len(index.extra.hashes):
            extra[np.unique(rows[index.extra.frame_rows])] = True
        t = np.asarray(index.timestamps_seconds, np.float64)
        bounds = np.concatenate(([0], np.cumsum(counts)))
        for e in np.flatnonzero((counts >= MIN_ROWS) & ~extra).tolist():
            te = t[bounds[e] : bounds[e + 1]]
            if np.isnan(te).all():
                out[e] = True
            elif np.isfinite(te).all():
                out[e] = float(np.median(np.diff(np.sort(te)))) >= SPARSE_GAP_SECONDS
    index.cache[key] = out
    return out


def _entry_rows(index, e: int, min_quality: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(hashes [k, 32], order key [k]: seconds, or the list's order where untimed, whether any of the entry's
    rows has a time) of entry ``e``'s distinct rows of quality >= ``min_quality``."""
    sel = np.flatnonzero(np.asarray(index.entry_rows) == e)
    timed = not np.isnan(np.asarray(index.timestamps_seconds, np.float64)[sel]).all()
    sel = sel[np.asarray(index.qualities)[sel] >= min_quality]
    t = np.asarray(index.timestamps_seconds, np.float64)[sel]
    key = np.asarray(index.frame_numbers, np.float64)[sel] if np.isnan(t).all() else t
    hashes = np.asarray(index.hashes, np.uint8)[sel]
    _, first = np.unique(hashes, axis=0, return_index=True)
    first = np.sort(first)
    return hashes[first], key[first], timed


def _query_variants(query, min_quality: int, kinds=_VERSIONS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(variants [r, 8, 32], sample [r], seconds [r]) of the rows of quality >= ``min_quality`` of the query's versions of ``kinds``."""
    parts, samples = [], []
    for v in query.versions:
        if v.kind in kinds and v.variants is not None:
            keep = np.flatnonzero(np.asarray(v.hashes.qualities) >= min_quality)
            parts.append(v.variants[keep])
            samples.append(np.asarray(v.rows)[keep])
    if not parts:
        return np.zeros((0, 8, 32), np.uint8), np.zeros(0, np.int64), np.zeros(0)
    sample = np.concatenate(samples)
    return np.concatenate(parts), sample, np.asarray(query.frames.hashes.timestamps_seconds, np.float64)[sample]


def _judge(best: np.ndarray, need: int) -> bool:
    return best.size >= need and int(best.max()) <= MAX_DISTANCE and float(np.median(best)) <= MEDIAN_DISTANCE


def _closest(qi: np.ndarray, ri: np.ndarray, dist: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most ``limit`` of the pairs (query row, entry row, bits), the closest: a long list of a still scene
    meets every frame on every row, and the searches below grow with the pairs."""
    if qi.size > limit:
        keep = np.sort(np.argpartition(dist, limit - 1)[:limit])
        qi, ri, dist = qi[keep], ri[keep], dist[keep]
    return qi, ri, dist


def _timed(qi, ri, dist, sample: np.ndarray, tq: np.ndarray, key: np.ndarray, need: int) -> bool:
    """Rows met at one offset (module docstring: every pair's offset within ``TOLERANCE_SECONDS`` of the
    others'), each by its own query frame: each window of sorted offsets that wide, from each pair on."""
    qi, ri, dist = _closest(qi, ri, dist, MAX_PAIRS)
    offsets = key[ri] - tq[qi]
    order = np.argsort(offsets, kind="stable")
    qi, ri, dist, offsets = qi[order], ri[order], dist[order], offsets[order]
    ends = np.searchsorted(offsets, offsets + TOLERANCE_SECONDS + 1e-9, side="right")
    # a window ending where the one before it ends lies inside it and holds nothing new; one with fewer pairs within
    # MEDIAN_DISTANCE than half the rows it needs cannot have their median there
    close = np.r_[0, np.cumsum(dist <= MEDIAN_DISTANCE)]
    starts = np.flatnonzero((ends - np.arange(ends.size) >= need) & np.r_[True, ends[1:] != ends[:-1]]
                            & (close[ends] - close[:-1] >= (need + 1) // 2))  # fmt: skip
    for a, b in zip(starts.tolist(), ends[starts].tolist()):
        if np.unique(ri[a:b]).size >= need and _best_per_row(qi[a:b], ri[a:b], dist[a:b], sample, need):
            return True
    return False


def _best_per_row(qi: np.ndarray, ri: np.ndarray, dist: np.ndarray, sample: np.ndarray, need: int) -> bool:
    """Each met row's closest pair, distinct query samples (a frame meets one row), judged."""
    best, used = [], set()
    order = np.lexsort((dist, ri))
    for r in np.unique(ri).tolist():
        for j in order[ri[order] == r].tolist():
            s = int(sample[qi[j]])
            if s not in used:
                used.add(s)
                best.append(int(dist[j]))
                break
    return _judge(np.asarray(best, np.int64), need)


def _untimed(qi, ri, dist, sample: np.ndarray, tq: np.ndarray, key: np.ndarray, need: int) -> bool:
    """The longest chain of (frame, row) pairs rising together, each list step ``STEP_SECONDS`` of the query
    (quadratic in the pairs: at most ``MAX_CHAIN_PAIRS``, the closest)."""
    qi, ri, dist = _closest(qi, ri, dist, MAX_CHAIN_PAIRS)
    order = np.lexsort((key[ri], tq[qi]))
    t, k, smp, dist = tq[qi[order]], key[ri[order]], sample[qi[order]], dist[order].astype(np.int64)
    n = t.size
    length = np.ones(n, np.int64)
    prev = np.full(n, -1)
    for j in range(n):
        dt, dk = t[j] - t[:j], k[j] - k[:j]
        ok = np.flatnonzero((dk > 0) & (dt > 0) & (smp[:j] != smp[j]) & (dt >= STEP_SECONDS[0] * dk) & (dt <= STEP_SECONDS[1] * dk))
        if ok.size:
            i = ok[np.lexsort((dist[ok], -length[ok]))[0]]  # the longest chain before, the closest pair among them
            length[j], prev[j] = length[i] + 1, i
    for end in np.argsort(-length, kind="stable").tolist():
        if length[end] < need:
            return False
        chain, j = [], end
        while j >= 0:
            chain.append(int(dist[j]))
            j = int(prev[j])
        if _judge(np.asarray(chain), need):
            return True
    return False


def rows_in_order(index, e: int, query, min_quality: int, *, region: bool = False) -> bool:
    """Whether ``query`` (a ``FileQuery`` with variants) meets entry ``e`` of ``index`` on ``MIN_ROWS``
    rows in order (module docstring); ``region``: through its region version (one row per sampled frame, and at
    least as many rows as a region match needs frames, ``QueryVersion.min_frames``), else its whole frames."""
    from vscan.bank.index import brute_force_pairs

    hashes, key, timed = _entry_rows(index, e, min_quality)
    if hashes.shape[0] < MIN_ROWS:
        return False
    box = query.version("region")
    if region and (box is None or len(box) != len(query.frames)):
        return False
    need = max(MIN_ROWS, box.min_frames) if region else MIN_ROWS
    variants, sample, tq = _query_variants(query, min_quality, ("region",) if region else _VERSIONS)
    if variants.shape[0] < MIN_ROWS:
        return False
    q, r, dist = brute_force_pairs(variants.reshape(-1, 32), hashes, MAX_DISTANCE)  # query row * 8 + variant
    for v in range(8):
        sel = q % 8 == v
        if np.unique(r[sel]).size >= need and (_timed if timed else _untimed)(q[sel] // 8, r[sel], dist[sel], sample, tq, key, need):
            return True
    return False


def dense_looks(index, e: int, query, min_quality: int, max_distance: int, *, decided: bool = False, kinds=_VERSIONS) -> tuple[float, ...]:
    """Where a second look at ``query`` takes its frames for a weak hit on entry ``e``, an untimed list (PDQ per image:
    no time to place its other grabs by): every frame (up to ``row_looks.DENSE_FPS``) within
    ``row_looks.DENSE_REACH_SECONDS`` of the query frame of its closest pair within ``max_distance`` (the first of
    equals), inside the file, among the query versions of ``kinds``; () for a timed entry (``vscan.bank.row_looks``
    places a weak hit's looks) unless ``decided`` (a thin decision, or a short file's region hit: module docstring), or
    without such a pair."""
    from vscan.bank.index import brute_force_pairs
    from vscan.bank.row_looks import DENSE_FPS, DENSE_REACH_SECONDS

    hashes, _, timed = _entry_rows(index, e, min_quality)
    variants, _, tq = _query_variants(query, min_quality, kinds)
    if (timed and not decided) or not hashes.shape[0] or not variants.shape[0]:
        return ()
    q, _, dist = brute_force_pairs(variants.reshape(-1, 32), hashes, max_distance)
    if not q.size:
        return ()
    at_q = float(tq[q[np.argmin(dist)] // 8])
    end = float(query.duration_seconds) if query.duration_seconds and query.duration_seconds > 0 else np.inf
    at = at_q + np.arange(-DENSE_REACH_SECONDS, DENSE_REACH_SECONDS + 1e-9, 1.0 / DENSE_FPS)
    at = at[(at >= -1e-6) & (at < end) & (np.abs(at - at_q) > 1e-3)]
    return tuple(float(t) for t in np.maximum(at, 0.0))


def short_file(query) -> bool:
    """Whether ``query`` is a file short enough for adaptive sampling's burst (``SPARSE_BURST_MAX_FILE_SECONDS``)."""
    from vscan.decode.adaptive import SPARSE_BURST_MAX_FILE_SECONDS

    d = query.duration_seconds
    return d is not None and 0 < d <= SPARSE_BURST_MAX_FILE_SECONDS


def _thin(m) -> bool:
    """A match decided on the whole frames by a rule other than ``rows_in_order`` that adaptive sampling's first pass would
    not stand on (``first_pass_decides``): its second pass re-judges the file (module docstring)."""
    from vscan.decode.adaptive import _PART_PATHS, first_pass_decides

    return (m.is_match and m.decided_by != "list-rows" and not any(p in _PART_PATHS for p in m.path)
            and not first_pass_decides([m]))  # fmt: skip


def decide_on_rows(index, query, matches: list, settings) -> list:
    """``matches`` with each undecided whole-frame perceptual match on a sparse list entry that ``rows_in_order``
    accepts decided (``decided_by`` "list-rows", no looks), one it does not accept on an untimed list entry given
    ``dense_looks`` where it names none, as is one through the region version in a short file (``short_file``) on any
    sparse list entry, and a whole-frame match on a sparse list entry decided on too few frames for a
    first pass to stand on given them too (``_thin``, module docstring); the others as they were."""
    if not any(m.signal == "pdq" and (not m.is_match or _thin(m)) for m in matches):
        return matches
    sparse = sparse_list_entries(index)
    if not sparse.any():
        return matches
    where = {entry_id: e for e, entry_id in enumerate(index.entry_ids)}
    out = []
    for m in matches:
        e = where.get(m.bank_entry_id)
        weak = m.signal == "pdq" and not m.is_match and e is not None and sparse[e]
        if weak and m.distance_min <= MAX_DISTANCE and rows_in_order(index, e, query, settings.min_quality, region="region" in m.path):
            m = dataclasses.replace(m, is_match=True, decided_by="list-rows", look_seconds=())
        elif weak and not m.look_seconds and "region" not in m.path:
            m = dataclasses.replace(m, look_seconds=dense_looks(index, e, query, settings.min_quality, settings.distance_threshold))
        elif weak and not m.look_seconds and "region" in m.path and short_file(query):
            m = dataclasses.replace(m, look_seconds=dense_looks(index, e, query, settings.min_quality, settings.distance_threshold,
                                                                decided=True, kinds=("region",)))
        elif m.signal == "pdq" and m.is_match and e is not None and sparse[e] and not m.look_seconds and _thin(m):
            m = dataclasses.replace(m, look_seconds=dense_looks(index, e, query, settings.min_quality, settings.distance_threshold, decided=True))
        out.append(m)
    out.sort(key=lambda m: (m.signal == "pdq", not m.is_match, -m.query_pct, -m.compared_pct, m.bank_entry_id))
    return out

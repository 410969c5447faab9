"""Work a lean bank leaves to the scan: the scanned frames' own centre crops.

    found = find_centre_crops(matcher, query, frames)   # None, or (query, matcher, matches)

A bank built with every centre crop in 2.5% steps (``vscan.bank.one_pass.BANK_CROPS``: 10 rows
for each frame that carries extra rows) matches a copy cropped by any share. A lean bank keeps a
few crops (``vscan.bank.hashers.RowPlan.crops``, e.g. 0.9 and 0.8) and the scan bridges the gaps:
a copy keeping ``s`` of each side, cropped again by ``q`` on the query side, shows the source's
centre crop ``s * q``, which meets the bank's crop ``c`` when ``q = c / s``. With query crops
``QUERY_CROPS`` (0.975, 0.95, 0.925) and bank crops 0.9 and 0.8, ``s * q`` falls within ~1.5% of
a bank crop for every ``s`` from 0.79 to 1 (PDQ moves ~25-35 bits per 2.5% of crop-scale mismatch).

The crops are hashed from the scan's square frames by ``vscan.frames.window_hash.window_pdq``
(the hash model's bits and quality, all 8 dihedral variants, two matrix products per frame) and
matched one scale at a time as the query's region version (path ``centre-crop``), only for a file
the plain match did not decide, only for the scales with a frame near a bank crop row (one lookup
of every scale's 8 variants first), and only against a bank whose crop rows are sparser than PDQ's
tolerance (``needs_centre_crops``): a full bank already holds every step.

A hit on the crop rows that does not decide (adaptive sampling's first pass shows a short file 2-3 frames,
and the crop may meet one) is handed back all the same, its matches deciding nothing:
``vscan.runtime.file_match`` keeps it aside while the file's other searches go on with the query as it
stood (the off-centre search skips a query that has a region version) and reports it only where none of
them found anything, so the second pass samples densely around its span and the search decides on more frames.

A bank built from hash lists alone (``list_only_bank``: vPDQ or PDQ lists, no media entry) holds the
reference's hashes of each frame at its own size; the scan meets them closer at a 320 px square than at
256 (PDQ's filter window lines up: docs/matching-quality.md), so ``scan_config_for_bank`` scans such a
bank at ``sampling.list_frame_size``; a sparse list (vPDQ at one hash a second, PDQ per image) also with
adaptive sampling's first-pass frames on whole seconds (``Adaptive.whole_seconds``: the list holds the
frames there; stacks and meme formats on a held-out 1 s/hash list: 4 -> 12 of 18, same frames decoded;
an every-frame list holds every phase and keeps the spread). A bank with any media entry
keeps ``sampling.frame_size`` and the policy: its rows were prepared at that size from every frame.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from vscan.bank.rows import crop_scale
from vscan.frames.turns import inscribed

__all__ = ["list_only_bank", "scan_config_for_bank", "QUERY_CROPS", "QUERY_TURNS", "CROP_STEP", "turned_version", "bank_crop_scales", "grid_scale", "grid_share_of", "grid_places_of", "grid_windows_of", "needs_centre_crops", "centre_crop_version", "find_centre_crops"]

#: Shares of each side the scan keeps of its frames when a lean bank did not decide (module docstring).
QUERY_CROPS = (0.975, 0.95, 0.925)
#: Turns a re-post may have (degrees, counter-clockwise): the scan turns its frames back instead of the bank
#: keeping turned rows (``vscan.frames.windows``' rot+4 / rot-4).
QUERY_TURNS = (4.0, -4.0)
#: A turned-back frame shows the reference's crop k * k; a bank crop up to this much larger is still used.
TURN_SLACK = 0.01
#: A bank whose crop scales (with the frame itself, 1.0) are further apart than this needs the query's crops.
CROP_STEP = 0.026


def list_only_bank(bank_path) -> bool:
    """Whether the bank at ``bank_path`` holds frame hashes and every entry with frame hashes came from a
    hash list (none from media); False for a file that is not a readable bank (the scan says what is wrong)."""
    return _list_rows_per_second(bank_path) is not None


#: A list bank with fewer rows a listed second than this (vPDQ at one hash a second: 1; every frame: 25-30)
#: or without frame times (PDQ per image) holds frames at whole seconds.
SPARSE_ROWS_PER_SECOND = 2.0


def _list_rows_per_second(bank_path) -> float | None:
    """A list-only bank's frame rows per second of its timed entries (0 when none has a duration: PDQ lists),
    None for any other bank or a file that is not a readable bank."""
    import sqlite3
    from contextlib import closing

    from vscan.bank.entry_table import list_rows_per_second

    try:
        with closing(sqlite3.connect(f"file:{Path(bank_path)}?mode=ro", uri=True)) as conn:
            return list_rows_per_second(conn)
    except sqlite3.Error:
        return None


def scan_config_for_bank(config, bank_path):
    """``config`` (a ``ScanConfig``) for a bank built from hash lists alone (module docstring): frames
    decoded at ``sampling.list_frame_size``, and for a sparse list (``SPARSE_ROWS_PER_SECOND``) adaptive
    sampling's first pass on whole seconds, where it holds its frames; for a ``--rows sparse`` media bank,
    adaptive sampling's burst on short files (``SPARSE_BURST_MAX_FILE_SECONDS``), its first pass's spread frames on
    whole seconds (the bank's ticks) too (``Adaptive.spread_on_seconds_too``) and the frames on the bank's clock its
    decode passes (``Adaptive.ticks_passed_seconds``); else ``config`` itself."""
    from dataclasses import replace

    from vscan.bank.store import tick_seconds
    from vscan.decode import Adaptive, FixedRate
    from vscan.decode.adaptive import SPARSE_BURST_MAX_FILE_SECONDS, FixedRateBurst

    rate = None if bank_path is None else _list_rows_per_second(bank_path)
    policy = config.sampling.policy
    if rate is None:  # a media bank: a sparse one's short files take a burst of frames (Adaptive.burst_max_file_seconds)
        if bank_path is None or not ((isinstance(policy, Adaptive) and policy.burst_max_file_seconds is None) or type(policy) is FixedRate):
            return config
        tick = tick_seconds(bank_path)
        if tick is None:
            return config
        burst = (FixedRateBurst(policy.fps) if type(policy) is FixedRate
                 else replace(policy, burst_max_file_seconds=SPARSE_BURST_MAX_FILE_SECONDS, spread_on_seconds_too=True,
                              ticks_passed_seconds=tick))  # fmt: skip
        return replace(config, sampling=replace(config.sampling, policy=burst))
    if isinstance(policy, Adaptive) and rate < SPARSE_ROWS_PER_SECOND:
        policy = replace(policy, whole_seconds=True)
    return replace(config, sampling=replace(config.sampling, frame_size=config.sampling.list_frame_size, policy=policy))


def _preps(index) -> tuple[str, ...]:
    """The extra rows' prep names of a bank (``MappedBank`` or ``BankIndex``)."""
    preps = getattr(index, "preps", None)  # a MappedBank's prep names
    if preps is not None:
        return tuple(preps)
    if "query_side.preps" not in index.cache:
        extra = index.extra
        index.cache["query_side.preps"] = tuple(sorted(set(extra.preps))) if extra is not None and len(extra.hashes) else ()
    return index.cache["query_side.preps"]


def bank_crop_scales(index) -> tuple[float, ...]:
    """The centre-crop scales a bank (``MappedBank`` or ``BankIndex``) holds rows of, largest first."""
    return _crop_scales(_preps(index))


@functools.lru_cache(maxsize=64)
def _crop_scales(preps: tuple[str, ...]) -> tuple[float, ...]:
    """``bank_crop_scales`` of a bank's prep names: once per bank, not once per search of every unmatched file (issue #30)."""
    return tuple(sorted({s for s in (crop_scale(p) for p in preps) if s is not None}, reverse=True))


def grid_scale(index) -> float:
    """The share of each side a bank's grid windows keep (``g60:..``: 0.6 on a 10% grid; a lean plan's
    one centre window ``g40:30,30``: 0.4, which a crop keeping 70% at any position holds whole), the
    largest when several; ``GRID_SCALE`` for a bank without any."""
    return _grid_scale(_preps(index))


@functools.lru_cache(maxsize=64)
def grid_windows_of(preps: tuple[str, ...]) -> tuple[tuple[float, float, float], ...]:
    """The grid windows (scale, top, left: ``vscan.frames.windows.grid_window``) a bank's prep names hold, each once:
    parsed once per bank for the searches of every unmatched file (issue #30)."""
    from vscan.frames.windows import grid_window

    names = {p.removeprefix("borders+").removeprefix("window:") for p in preps if "window:g" in p}
    return tuple(g for g in map(grid_window, sorted(names)) if g)


def _grid_scale(preps: tuple[str, ...]) -> float:
    from vscan.frames.windows import GRID_SCALE

    return max((g[0] for g in grid_windows_of(preps)), default=GRID_SCALE)


@functools.lru_cache(maxsize=64)
def grid_share_of(preps: tuple[str, ...]) -> float:
    """``vscan.runtime.offcentre.grid_share`` of a bank's prep names: once per bank, not per unmatched file (issue #30)."""
    from collections import Counter

    from vscan.frames.windows import GRID_SCALE

    scales = Counter(g[0] for g in grid_windows_of(preps))
    return max(scales, key=lambda k: (scales[k], k)) if scales else GRID_SCALE


@functools.lru_cache(maxsize=64)
def grid_places_of(preps: tuple[str, ...], grid_scale: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``vscan.runtime.offcentre.grid_places`` of a bank's prep names: once per bank, not per unmatched file (issue #30)."""
    found = [g for g in grid_windows_of(preps) if abs(g[0] - grid_scale) < 1e-6]
    return tuple(sorted({g[1] for g in found})), tuple(sorted({g[2] for g in found}))


def needs_centre_crops(index) -> bool:
    """Whether a bank keeps some crop rows but fewer than PDQ's tolerance needs (a lean plan):
    the query's own crops bridge the gaps."""
    scales = bank_crop_scales(index)
    steps = np.diff((1.0,) + scales)
    return bool(scales) and bool((np.abs(steps) > CROP_STEP).any())


def centre_crop_version(frames: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(variants uint8 [N, 8, 32], quality int32 [N]) of the centre square keeping ``scale`` of each
    side of every square frame of ``frames`` (uint8 [N, S, S, 3])."""
    from vscan.frames.window_hash import window_pdq

    side = frames.shape[1]
    size = int(round(side * scale))
    at = np.array([(side - size) // 2])
    out = [window_pdq(f, size, size, at, at) for f in frames]
    return np.stack([h[0, 0] for h, _ in out]), np.array([q[0, 0] for _, q in out], np.int32)


def turned_version(frames: np.ndarray, aspect: float, degrees: float, crops: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, float] | None:
    """A copy turned by ``degrees`` and cropped to hide its corners (as the bank's ``rot`` rows), turned
    back: every square frame of ``frames`` (uint8 [N, S, S, 3], squeezed from ``aspect`` = width /
    height) unsqueezed, turned by ``-degrees`` and cropped again shows the reference's centre crop
    ``k * k`` (``k``: ``vscan.frames.turns.inscribed``, what ``vscan.frames.windows.rotate_crop`` keeps), cut further to the nearest bank crop of ``crops`` below it.
    (variants uint8 [N, 8, 32], quality int32 [N], the bank crop), or None when none is near."""
    import cv2

    from vscan.frames.window_hash import window_pdq

    k = inscribed(aspect, degrees)
    below = [c for c in crops if c <= k * k + TURN_SLACK]
    if not below:
        return None
    crop = max(below)
    side = frames.shape[1]
    h, w = (side, int(round(side * aspect))) if aspect >= 1 else (int(round(side / aspect)), side)
    # rotate_crop(-degrees)'s turn (cv2's: the same bilinear bits at a fraction of numpy's CPU), its
    # inscribed box (bh x bw, centred) and the centre crop of that box meeting the bank's crop.
    turn = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), -degrees, 1.0)
    bh, bw = max(1, int(h * k)), max(1, int(w * k))
    q = min(1.0, crop / (k * k))
    ch, cw = max(1, int(round(bh * q))), max(1, int(round(bw * q)))
    top, left = np.array([(h - bh) // 2 + (bh - ch) // 2]), np.array([(w - bw) // 2 + (bw - cw) // 2])
    back = (cv2.warpAffine(cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA), turn, (w, h), flags=cv2.INTER_LINEAR) for f in frames)
    out = [window_pdq(f, ch, cw, top, left) for f in back]
    return np.stack([v[0, 0] for v, _ in out]), np.array([quality[0, 0] for _, quality in out], np.int32), crop


def _candidates(frames: np.ndarray, source_size, crops: tuple[float, ...]) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """(name, variants, quality, share of each side shown) of every query-side version: the centre
    crops, and with the file's ``source_size`` (w, h) the frames turned back by each of ``QUERY_TURNS``."""
    out = [(f"centre-crop{scale:.3f}", *centre_crop_version(frames, scale), scale) for scale in QUERY_CROPS]
    if source_size is not None and len(source_size) == 2 and min(source_size) > 0:
        aspect = float(source_size[0]) / float(source_size[1])
        for degrees in QUERY_TURNS:
            turned = turned_version(frames, aspect, degrees, crops)
            if turned is not None:
                out.append((f"turned{degrees:+.0f}", turned[0], turned[1], 1.0))
    return out


def find_centre_crops(matcher, query, frames: np.ndarray | None, source_size=None):
    """For a file (its robust ``FileQuery``, sampled square ``frames`` and ``source_size`` (w, h) as
    decoded) that ``matcher`` found no match for: (the query with a query-side version as its region
    version, the matcher it was matched with (narrowed for a memory-mapped bank), its matches) for
    the first of them (``QUERY_CROPS``, then ``QUERY_TURNS``) that matches; where none matches but some
    met the entry's crop rows, the same for the closest such weak hit (its matches decide nothing: the caller
    hands it on to adaptive sampling's second pass: module docstring); None (no hit, no pixels, or a bank that
    needs none)."""
    from vscan.bank.query import QueryVersion
    from vscan.hashing.vpdq import FrameHashes

    if frames is None or not len(frames) or frames.shape[1] != frames.shape[2] or not needs_centre_crops(matcher.index):
        return None
    fh = query.frames.hashes
    candidates = _candidates(frames, source_size, bank_crop_scales(matcher.index))
    # One search of every version against the bank's crop rows first: a version none of whose frames
    # is near a crop row is not matched (most files scanned are in no bank: one lookup, no match calls).
    ok = [v[q >= matcher.settings.min_quality] for _, v, q, _ in candidates]
    hits = matcher.row_hits(np.concatenate([v.reshape(-1, 32) for v in ok]), matcher.settings.distance_threshold, prep_prefix="crop")
    owner = np.repeat(np.arange(len(ok)), [v.shape[0] * 8 for v in ok])
    found = set(owner[hits["query"]].tolist())
    weak = None  # the closest hit that did not decide: ((query%, -bits), (query, matcher, matches))
    for k, (name, variants, quality, scale) in enumerate(candidates):
        if k not in found:
            continue
        margin = round((1.0 - scale) / 2, 4)
        box = np.array([[margin, 1.0 - margin, margin, 1.0 - margin]]).repeat(len(fh), axis=0)
        version = QueryVersion("region", FrameHashes(fh.frame_numbers, fh.timestamps_seconds, quality, np.ascontiguousarray(variants[:, 0])),
                               variants, box=box, name=name)  # fmt: skip
        tried = query.with_version(version)
        narrowed = matcher.for_file(tried)
        matches = narrowed.match(tried)
        if any(m.is_match and name in m.path for m in matches):
            return tried, narrowed, matches
        near = max(((m.query_pct, -m.distance_min) for m in matches if name in m.path), default=None)
        if near is not None and (weak is None or near > weak[0]):
            weak = (near, (tried, narrowed, matches))
    return None if weak is None else weak[1]

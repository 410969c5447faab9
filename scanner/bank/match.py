"""Matching query frame hashes against a bank, with vPDQ's semantics.

vPDQ baseline (facebook/ThreatExchange ``vpdq/``, pytx ``extensions/vpdq``):
both sides are filtered to quality >= ``min_quality`` and de-duplicated by exact
hash; frames are an unordered bag; a hash matches if any hash on the other side
lies within ``distance_threshold``. Per bank entry:

- ``query_pct``: matched unique query hashes / unique query hashes, in percent;
- ``compared_pct``: matched unique hashes of the entry / unique hashes of the entry.

Upstream's Python brute-force matcher tests ``distance < tolerance``; we test
``distance <= distance_threshold`` (the PDQ convention, 31), so
``distance_threshold=30`` reproduces upstream's counts exactly.

Decision rule: ``is_match = query_pct >= match_query_pct or compared_pct >=
match_compared_pct`` (80 / 80 by default). pytx decides on query% >= 80 alone;
the compared% arm also reports a bank video embedded in a longer query (a query
that contains the reference). Pass ``match_compared_pct=math.inf`` for pytx's rule.
Entries with at least one matched frame are returned (``min_query_pct`` raises
that floor), ``is_match`` or not, sorted best first.

Timing (beyond vPDQ): each query frame shows until the next frame's timestamp
(the last one for the median gap); ``matched_seconds`` sums that display time
over the matched query frames. Spans are the first/last matched timestamps on
each side. All are NaN without timestamps.

Search is exact either way: brute force over de-duplicated hashes with the
chunked torch kernel, or multi-index hashing (``vscan.kernels.hamming``) once the bank
holds more than ``blocking_min_hashes`` unique hashes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from vscan.kernels.hamming import MultiIndexHashing, search_pairs
from vscan.errors import ConfigError
from vscan.bank.align import align
from vscan.bank.store import BankIndex
from vscan.hashing.vpdq import FrameHashes

__all__ = ["Match", "match_frames", "match_digests", "unique_hashes", "display_durations"]

SearchMethod = Literal["auto", "brute", "blocking"]
_NAN_SPAN = (math.nan, math.nan)

#: Query variant k matched the reference: the query is the reference edited by
#: the inverse of DIHEDRAL_NAMES[k] (only the rotations are not self-inverse).
_PREP_UNBORDERED, _PREP_UNOVERLAID = 1, 2  # query versions beside the frames as decoded (prep 0)

_EDIT_OF_VARIANT = ("original", "rot270", "rot180", "rot90", "flip_h", "flip_v", "transpose", "transverse")


@dataclass(frozen=True)
class Match:
    bank_entry_id: str
    label: str | None
    query_pct: float
    compared_pct: float
    matched_seconds: float
    query_span_seconds: tuple[float, float]
    reference_span_seconds: tuple[float, float]
    distance_min: int
    is_match: bool
    signal: Literal["pdq", "md5", "sha1", "sha256"] = "pdq"
    num_query_hashes_matched: int = 0  # unique, quality-filtered
    num_reference_hashes_matched: int = 0
    # Robust matching (``variants`` given): how the match was found and aligned.
    path: tuple[str, ...] = ()  # e.g. ("flip_h",), ("crop",), ("letterbox-removed",); () = as is
    dihedral: str = "original"  # the edit that maps the reference onto the query (DIHEDRAL_NAMES)
    decided_by: str | None = None  # "vpdq" (query%/compared%), "alignment", or None (no match)
    align_rate: float = math.nan  # reference seconds per query second
    align_offset_seconds: float = math.nan  # t_reference = rate * t_query + offset
    aligned_seconds: float = 0.0  # query seconds covered by the aligned run
    aligned_frames: int = 0
    aligned_query_span_seconds: tuple[float, float] = _NAN_SPAN
    aligned_reference_span_seconds: tuple[float, float] = _NAN_SPAN


def unique_hashes(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact de-duplication: (unique [U, 32] in a fixed order, inverse [N]).

    Sort-based on four 64-bit words: numpy 2's hash-based unique is several
    times slower on these inputs.
    """
    hashes = np.ascontiguousarray(hashes, np.uint8)
    n = hashes.shape[0]
    if n == 0:
        return hashes.reshape(0, 32), np.zeros(0, np.int64)
    words = hashes.view(np.uint64)
    order = np.lexsort(words.T[::-1])
    sorted_words = words[order]
    new = np.ones(n, bool)
    new[1:] = (sorted_words[1:] != sorted_words[:-1]).any(axis=1)
    inverse = np.empty(n, np.int64)
    inverse[order] = np.cumsum(new) - 1
    return hashes[order[new]], inverse


def _unique_int(values: np.ndarray) -> np.ndarray:
    """Sorted unique int64 values (sort-based, see unique_hashes)."""
    values = np.sort(values)
    if values.size:
        values = values[np.concatenate(([True], values[1:] != values[:-1]))]
    return values


def display_durations(timestamps_seconds: np.ndarray) -> np.ndarray:
    """Seconds each frame shows: gap to the next later timestamp; the last one gets the median gap."""
    ts = np.asarray(timestamps_seconds, np.float64)
    out = np.full(ts.shape, np.nan)
    if ts.size == 0 or np.isnan(ts).any():
        return out
    order = np.argsort(ts, kind="stable")
    gaps = np.diff(ts[order])
    last = float(np.median(gaps)) if gaps.size else 0.0
    out[order] = np.append(gaps, last)
    return out


@dataclass
class _PreparedBank:
    """Bank side of the search for one min_quality, cached on the BankIndex."""

    frames: np.ndarray  # indices into the index's frame arrays kept by the quality filter
    uniq: np.ndarray  # [U, 32]
    inverse: np.ndarray  # [len(frames)] -> unique row
    entry_unique_count: np.ndarray  # [E] unique hashes per entry
    by_unique_offsets: np.ndarray  # CSR over unique rows: entries holding each unique hash
    by_unique_entries: np.ndarray
    mih: MultiIndexHashing | None = None


def _prepare(index: BankIndex, min_quality: int) -> _PreparedBank:
    key = ("match.prepared", min_quality)
    if key in index.cache:
        return index.cache[key]
    frames = np.flatnonzero(index.qualities >= min_quality)
    uniq, inverse = unique_hashes(index.hashes[frames])
    n_unique, n_entries = uniq.shape[0], index.num_entries
    pair = _unique_int(index.entry_rows[frames].astype(np.int64) * max(n_unique, 1) + inverse)
    pair_entry, pair_unique = np.divmod(pair, max(n_unique, 1))
    order = np.argsort(pair_unique, kind="stable")
    offsets = np.zeros(n_unique + 1, np.int64)
    np.cumsum(np.bincount(pair_unique, minlength=n_unique), out=offsets[1:])
    prepared = _PreparedBank(
        frames=frames,
        uniq=uniq,
        inverse=inverse,
        entry_unique_count=np.bincount(pair_entry, minlength=n_entries),
        by_unique_offsets=offsets,
        by_unique_entries=pair_entry[order],
    )
    index.cache[key] = prepared
    return prepared


def _search(query_uniq, prepared, radius, method, blocking_min_hashes, device):
    if method not in ("auto", "brute", "blocking"):
        raise ConfigError(f"Invalid search method ({method!r}). Supported values are 'auto', 'brute', 'blocking'")
    if method == "auto":
        method = "blocking" if prepared.uniq.shape[0] > blocking_min_hashes else "brute"
    if method == "blocking":
        if prepared.mih is None:
            prepared.mih = MultiIndexHashing(prepared.uniq)
        return prepared.mih.search(query_uniq, radius)
    return search_pairs(query_uniq, prepared.uniq, radius, method="brute", device=device)


def match_frames(
    query: FrameHashes,
    index: BankIndex,
    *,
    min_quality: int = 50,
    distance_threshold: int = 31,
    min_query_pct: float = 0.0,
    match_query_pct: float = 80.0,
    match_compared_pct: float = 80.0,
    method: SearchMethod = "auto",
    blocking_min_hashes: int = 50_000,
    device: str | None = None,
    variants: np.ndarray | None = None,
    unbordered: FrameHashes | None = None,
    unbordered_variants: np.ndarray | None = None,
    border_kind: str | None = None,
    unoverlaid: FrameHashes | None = None,
    unoverlaid_variants: np.ndarray | None = None,
    overlay_distance_threshold: int = 40,
    align_min_seconds: float = 5.0,
    align_min_frames: int = 4,
) -> list[Match]:
    """Bank entries sharing at least one matched frame with ``query``, best first.

    Without ``variants``: vPDQ exactly (module docstring). With ``variants``
    (uint8 [N, 8, 32], the dihedral variants of ``query``'s frames) the robust
    matcher runs: all 8 variants of every query frame, plus ``unbordered``
    (the same samples with their borders removed, and their variants), are
    searched against every bank row, the frames and their extra rows (borders
    removed, centre crops); ``unoverlaid`` (the samples with a static overlay
    filled, ``vscan.frames.overlays``) is searched too, within the looser
    ``overlay_distance_threshold``: its pairs beyond ``distance_threshold``
    count only towards the alignment, never towards query% / compared%.
    Per entry the variant matching most frames is kept;
    query% / compared% count frames matched through any row; matched pairs are
    aligned in time (``vscan.bank.align``). ``is_match`` holds when vPDQ's rule
    holds or an aligned run covers >= ``align_min_seconds`` with >=
    ``align_min_frames`` query frames.
    """
    if not 0 <= distance_threshold <= 256:
        raise ConfigError(f"Invalid distance_threshold ({distance_threshold}). Supported values are 0..256")
    if not 0 <= min_quality <= 100:
        raise ConfigError(f"Invalid min_quality ({min_quality}). Supported values are 0..100")
    if variants is not None:
        return _robust_matches(
            query, variants, index, unbordered=unbordered, unbordered_variants=unbordered_variants,
            border_kind=border_kind, unoverlaid=unoverlaid, unoverlaid_variants=unoverlaid_variants,
            overlay_distance_threshold=overlay_distance_threshold, min_quality=min_quality, distance_threshold=distance_threshold,
            match_query_pct=match_query_pct, match_compared_pct=match_compared_pct, min_query_pct=min_query_pct,
            align_min_seconds=align_min_seconds, align_min_frames=align_min_frames, method=method,
            blocking_min_hashes=blocking_min_hashes, device=device,
        )  # fmt: skip
    durations_all = display_durations(query.timestamps_seconds)
    keep = np.flatnonzero(query.qualities >= min_quality)
    q_uniq, q_inverse = unique_hashes(query.hashes[keep])
    prepared = _prepare(index, min_quality)
    if q_uniq.shape[0] == 0 or prepared.uniq.shape[0] == 0:
        return []
    uq, ub, dist = _search(q_uniq, prepared, distance_threshold, method, blocking_min_hashes, device)
    if uq.size == 0:
        return []

    # Each (query unique, bank unique) pair counts for every entry holding that bank hash.
    starts = prepared.by_unique_offsets[ub]
    lengths = prepared.by_unique_offsets[ub + 1] - starts
    owner = np.repeat(np.arange(ub.size), lengths)
    pos = np.arange(owner.size) - np.repeat(np.cumsum(lengths) - lengths, lengths) + starts[owner]
    entry = prepared.by_unique_entries[pos]
    uq, ub, dist = uq[owner], ub[owner], dist[owner]

    n_entries, n_q = index.num_entries, q_uniq.shape[0]
    n_b = prepared.uniq.shape[0]
    q_pairs = _unique_int(entry * n_q + uq)
    b_pairs = _unique_int(entry * n_b + ub)
    q_count = np.bincount(q_pairs // n_q, minlength=n_entries)
    b_count = np.bincount(b_pairs // n_b, minlength=n_entries)
    d_min = np.full(n_entries, 1 << 30, np.int64)
    np.minimum.at(d_min, entry, dist.astype(np.int64))

    q_times = query.timestamps_seconds[keep]
    q_durations = durations_all[keep]
    bank_entry_of_frame = index.entry_rows[prepared.frames]
    bank_times = index.timestamps_seconds[prepared.frames]
    results = []
    for e in np.flatnonzero(q_count):
        query_pct = 100.0 * q_count[e] / n_q
        if query_pct < min_query_pct:
            continue
        compared_pct = 100.0 * b_count[e] / prepared.entry_unique_count[e]
        # q_pairs, b_pairs and the bank frames are all sorted by entry: slice, don't scan.
        q_lo, q_hi = np.searchsorted(q_pairs, [e * n_q, (e + 1) * n_q])
        q_matched = np.isin(q_inverse, q_pairs[q_lo:q_hi] - e * n_q)
        b_lo, b_hi = np.searchsorted(b_pairs, [e * n_b, (e + 1) * n_b])
        f_lo, f_hi = np.searchsorted(bank_entry_of_frame, [e, e + 1])
        b_hit = np.isin(prepared.inverse[f_lo:f_hi], b_pairs[b_lo:b_hi] - e * n_b)
        b_matched = np.arange(f_lo, f_hi)[b_hit]
        results.append(
            Match(
                bank_entry_id=index.entry_ids[e],
                label=index.labels[e],
                query_pct=float(query_pct),
                compared_pct=float(compared_pct),
                matched_seconds=float(q_durations[q_matched].sum()),
                query_span_seconds=_span(q_times[q_matched]),
                reference_span_seconds=_span(bank_times[b_matched]),
                distance_min=int(d_min[e]),
                is_match=bool(query_pct >= match_query_pct or compared_pct >= match_compared_pct),
                num_query_hashes_matched=int(q_count[e]),
                num_reference_hashes_matched=int(b_count[e]),
            )
        )
    results.sort(key=lambda m: (not m.is_match, -m.query_pct, -m.compared_pct, m.bank_entry_id))
    return results


@dataclass
class _RobustBank:
    """All bank rows for robust search: the frames plus their extra rows
    (borders removed, centre crops), each mapped back to its frame."""

    uniq: np.ndarray  # [U, 32] unique hashes over all rows
    offsets: np.ndarray  # CSR: unique -> rows
    rows: np.ndarray
    row_pos: np.ndarray  # [R] position in _PreparedBank.frames of the row's frame
    row_prep: np.ndarray  # [R] index into prep_names
    prep_names: tuple[str, ...]
    mih: MultiIndexHashing | None = None


def _csr(inverse: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(inverse, minlength=n), out=offsets[1:])
    return offsets, np.argsort(inverse, kind="stable")


def _expand(ids: np.ndarray, offsets: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR lookup of many ids at once: (index into ids, member) pairs."""
    starts = offsets[ids]
    lengths = offsets[ids + 1] - starts
    owner = np.repeat(np.arange(ids.size), lengths)
    pos = np.arange(owner.size) - np.repeat(np.cumsum(lengths) - lengths, lengths) + starts[owner]
    return owner, order[pos]


def _prepare_robust(index: BankIndex, min_quality: int) -> _RobustBank:
    key = ("match.robust", min_quality)
    if key in index.cache:
        return index.cache[key]
    prepared = _prepare(index, min_quality)
    hashes, row_pos, row_prep = [index.hashes[prepared.frames]], [np.arange(prepared.frames.size)], [np.zeros(prepared.frames.size, np.int64)]
    prep_names: list[str] = [""]
    extra = index.extra
    if extra is not None and len(extra.hashes):
        # Extra rows count only where their frame passed the quality filter too.
        pos_of_frame = np.full(len(index), -1, np.int64)
        pos_of_frame[prepared.frames] = np.arange(prepared.frames.size)
        pos = pos_of_frame[extra.frame_rows]
        keep = (pos >= 0) & (extra.qualities >= min_quality)
        names, codes = np.unique(np.asarray(extra.preps, dtype=object)[keep].astype(str), return_inverse=True)
        prep_names += names.tolist()
        hashes.append(extra.hashes[keep])
        row_pos.append(pos[keep])
        row_prep.append(codes.astype(np.int64) + 1)
    all_hashes = np.concatenate(hashes)
    uniq, inverse = unique_hashes(all_hashes)
    offsets, rows = _csr(inverse, uniq.shape[0])
    bank = _RobustBank(uniq, offsets, rows, np.concatenate(row_pos), np.concatenate(row_prep), tuple(prep_names))
    index.cache[key] = bank
    return bank


def _robust_matches(
    query: FrameHashes,
    variants: np.ndarray,
    index: BankIndex,
    *,
    unbordered: FrameHashes | None,
    unbordered_variants: np.ndarray | None,
    border_kind: str | None,
    unoverlaid: FrameHashes | None,
    unoverlaid_variants: np.ndarray | None,
    overlay_distance_threshold: int,
    min_quality: int,
    distance_threshold: int,
    match_query_pct: float,
    match_compared_pct: float,
    min_query_pct: float,
    align_min_seconds: float,
    align_min_frames: int,
    method: SearchMethod,
    blocking_min_hashes: int,
    device: str | None,
) -> list[Match]:
    n = len(query)
    if variants.shape != (n, 8, 32) or variants.dtype != np.uint8:
        raise ValueError(f"variants must be uint8 [{n}, 8, 32], got {variants.dtype} {variants.shape}")
    # Query versions: prep 0 as decoded, 1 borders removed, 2 overlay filled.
    sides = [(0, query, variants)]
    for p, name, fh, var in ((_PREP_UNBORDERED, "unbordered", unbordered, unbordered_variants),
                             (_PREP_UNOVERLAID, "unoverlaid", unoverlaid, unoverlaid_variants)):  # fmt: skip
        if fh is not None and var is not None:
            if len(fh) != n or var.shape != (n, 8, 32):
                raise ValueError(f"{name} rows must match the query's {n} frames, got {len(fh)}")
            sides.append((p, fh, var))
    has_overlay = any(p == _PREP_UNOVERLAID for p, _, _ in sides)
    loose = max(distance_threshold, overlay_distance_threshold) if has_overlay else distance_threshold
    # Query rows: (sample, variant, prep) for every kept frame version.
    parts, sample, variant, prep = [], [], [], []
    considered = np.zeros(n, bool)
    for p, fh, var in sides:
        keep = np.flatnonzero(fh.qualities >= min_quality)
        considered[keep] = True
        parts.append(var[keep].reshape(-1, 32))
        sample.append(np.repeat(keep, 8))
        variant.append(np.tile(np.arange(8), keep.size))
        prep.append(np.full(keep.size * 8, p))
    sample, variant, prep = np.concatenate(sample), np.concatenate(variant), np.concatenate(prep)
    q_uniq, q_inverse = unique_hashes(np.concatenate(parts))
    bank = _prepare_robust(index, min_quality)
    prepared = _prepare(index, min_quality)
    if q_uniq.shape[0] == 0 or bank.uniq.shape[0] == 0:
        return []
    uq, ub, dist = _search(q_uniq, bank, loose, method, blocking_min_hashes, device)
    if uq.size == 0:
        return []
    owner_b, brow = _expand(ub, bank.offsets, bank.rows)
    q_offsets, q_rows = _csr(q_inverse, q_uniq.shape[0])
    owner_q, qrow = _expand(uq[owner_b], q_offsets, q_rows)
    brow, dist = brow[owner_q], dist[owner_b[owner_q]]
    if loose > distance_threshold:  # only overlay-filled rows get the looser radius
        ok = (dist <= distance_threshold) | ((prep[qrow] == _PREP_UNOVERLAID) & (dist <= overlay_distance_threshold))
        qrow, brow, dist = qrow[ok], brow[ok], dist[ok]
        if qrow.size == 0:
            return []
    p_sample, p_variant, p_prep = sample[qrow], variant[qrow], prep[qrow]
    b_pos = bank.row_pos[brow]
    b_prep = bank.row_prep[brow]
    b_frame = prepared.frames[b_pos]
    p_entry = index.entry_rows[b_frame]
    p_tr = index.timestamps_seconds[b_frame]
    p_buid = prepared.inverse[b_pos]

    # vPDQ de-duplicates the query by exact hash: one key per distinct as-decoded hash.
    _, sample_key = unique_hashes(query.hashes)
    n_q = np.unique(sample_key[considered]).size
    durations = display_durations(query.timestamps_seconds)
    q_times = query.timestamps_seconds
    results = []
    order = np.argsort(p_entry, kind="stable")
    bounds = np.flatnonzero(np.diff(p_entry[order])) + 1
    for sel in np.split(order, bounds):
        e = int(p_entry[sel[0]])
        # One dihedral path per entry: the variant that matches the most query frames.
        per_variant = [np.unique(p_sample[sel][p_variant[sel] == v]).size for v in range(8)]
        v_best = int(np.argmax(per_variant))
        sel = sel[p_variant[sel] == v_best]
        # query% / compared% (vPDQ's rule) count pairs within distance_threshold only.
        strict = sel[dist[sel] <= distance_threshold]
        matched = np.unique(p_sample[strict])
        query_pct = 100.0 * np.unique(sample_key[matched]).size / max(n_q, 1)
        if query_pct < min_query_pct:
            continue
        compared_pct = 100.0 * np.unique(p_buid[strict]).size / prepared.entry_unique_count[e]
        # Which preparation did the work: the closest pair of each matched query frame votes.
        best = sel[np.lexsort((dist[sel], p_sample[sel]))]
        best = best[np.concatenate(([True], p_sample[best][1:] != p_sample[best][:-1]))]
        path = [] if v_best == 0 else [_EDIT_OF_VARIANT[v_best]]
        if np.mean(p_prep[best] == _PREP_UNBORDERED) > 0.5:
            path.append(f"{border_kind or 'border'}-removed")
        if np.mean(p_prep[best] == _PREP_UNOVERLAID) > 0.5:
            path.append("overlay-removed")
        ref_preps = [bank.prep_names[c] for c in b_prep[best]]
        if np.mean(["crop" in r for r in ref_preps]) > 0.5:
            path.append("crop")
        if np.mean(["borders" in r for r in ref_preps]) > 0.5:
            path.append("reference-borders-removed")
        alignment = align(q_times[p_sample[sel]], p_tr[sel])
        vpdq_rule = query_pct >= match_query_pct or compared_pct >= match_compared_pct
        aligned = alignment is not None and alignment.seconds >= align_min_seconds and alignment.num_frames >= align_min_frames
        results.append(
            Match(
                bank_entry_id=index.entry_ids[e],
                label=index.labels[e],
                query_pct=float(query_pct),
                compared_pct=float(min(compared_pct, 100.0)),
                matched_seconds=float(durations[np.unique(p_sample[sel])].sum()),
                query_span_seconds=_span(q_times[np.unique(p_sample[sel])]),
                reference_span_seconds=_span(p_tr[sel]),
                distance_min=int(dist[sel].min()),
                is_match=bool(vpdq_rule or aligned),
                num_query_hashes_matched=int(np.unique(sample_key[matched]).size),
                num_reference_hashes_matched=int(np.unique(p_buid[strict]).size),
                path=tuple(path),
                dihedral=_EDIT_OF_VARIANT[v_best],
                decided_by="vpdq" if vpdq_rule else ("alignment" if aligned else None),
                align_rate=alignment.rate if alignment else math.nan,
                align_offset_seconds=alignment.offset_seconds if alignment else math.nan,
                aligned_seconds=alignment.seconds if alignment else 0.0,
                aligned_frames=alignment.num_frames if alignment else 0,
                aligned_query_span_seconds=alignment.query_span_seconds if alignment else _NAN_SPAN,
                aligned_reference_span_seconds=alignment.reference_span_seconds if alignment else _NAN_SPAN,
            )
        )
    results.sort(key=lambda m: (not m.is_match, -m.query_pct, -m.compared_pct, m.bank_entry_id))
    return results


def _span(times: np.ndarray) -> tuple[float, float]:
    if times.size == 0 or np.isnan(times).any():
        return _NAN_SPAN
    return (float(times.min()), float(times.max()))


def match_digests(
    sha256: str | None,
    md5: str | None,
    index: BankIndex,
    *,
    sha1: str | None = None,
) -> list[Match]:
    """Exact file-digest hits (a whole-file match: 100% / 100%, distance 0)."""
    results = []
    for algorithm, digest in (("sha256", sha256), ("md5", md5), ("sha1", sha1)):
        if not digest:
            continue
        for entry_id in index.digests.get((algorithm, digest.strip().lower()), []):
            row = index.entry_ids.index(entry_id)
            results.append(
                Match(
                    bank_entry_id=entry_id,
                    label=index.labels[row],
                    query_pct=100.0,
                    compared_pct=100.0,
                    matched_seconds=math.nan,
                    query_span_seconds=_NAN_SPAN,
                    reference_span_seconds=_NAN_SPAN,
                    distance_min=0,
                    is_match=True,
                    signal=algorithm,  # type: ignore[arg-type]
                )
            )
    return results

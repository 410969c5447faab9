"""The robust matcher (``match_frames(..., variants=...)``): all 8 dihedral
variants of every query frame, and the query with borders removed or a
static overlay filled, against every bank row (the frames plus their extra
rows: borders removed, centre crops); one dihedral path per entry, matched
pairs aligned in time (``vscan.bank.align``). See ``vscan.bank.match``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vscan.bank.align import align
from vscan.bank.short import is_strong_short
from vscan.bank.index import MultiIndexHashing
from vscan.bank.prepared import _NAN_SPAN, Match, SearchMethod, _prepare, _search, _span, display_durations, unique_hashes
from vscan.bank.store import BankIndex
from vscan.hashing.vpdq import FrameHashes

__all__ = ["robust_matches", "row_hits"]

_PREP_UNBORDERED, _PREP_UNOVERLAID, _PREP_REGION = 1, 2, 3  # query versions beside the frames as decoded (prep 0)

#: Query variant k matched the reference: the query is the reference edited by
#: the inverse of DIHEDRAL_NAMES[k] (only the rotations are not self-inverse).
_EDIT_OF_VARIANT = ("original", "rot270", "rot180", "rot90", "flip_h", "flip_v", "transpose", "transverse")


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


def _row_pairs(q_uniq: np.ndarray, q_inverse: np.ndarray, bank: _RobustBank, radius: int, method: SearchMethod,
               blocking_min_hashes: int, device: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query row, bank row, distance) of every pair within ``radius``: the unique query hashes
    ``q_uniq`` (query row r is ``q_uniq[q_inverse[r]]``) searched against ``bank``'s unique hashes."""
    uq, ub, dist = _search(q_uniq, bank, radius, method, blocking_min_hashes, device)
    owner_b, brow = _expand(ub, bank.offsets, bank.rows)
    q_offsets, q_rows = _csr(q_inverse, q_uniq.shape[0])
    owner_q, qrow = _expand(uq[owner_b], q_offsets, q_rows)
    return qrow, brow[owner_q], dist[owner_b[owner_q]]


def row_hits(index: BankIndex, hashes: np.ndarray, radius: int, *, min_quality: int, method: SearchMethod = "auto",
             blocking_min_hashes: int = 50_000, device: str | None = None, prep_prefix: str | None = None) -> dict[str, np.ndarray]:
    """Every bank row (frames and extra rows) within ``radius`` of each of
    ``hashes`` (uint8 [M, 32]): arrays ``query`` (index into hashes),
    ``entry`` (into ``index.entry_ids``), ``time`` (the row frame's seconds),
    ``prep`` (its preparation's name) and ``distance``; only rows whose prep
    starts with ``prep_prefix`` (after a ``borders+``) when given."""
    bank = _prepare_robust(index, min_quality)
    prepared = _prepare(index, min_quality)
    empty = {k: np.zeros(0, np.int64) for k in ("query", "entry", "distance")}
    empty.update(time=np.zeros(0), prep=np.zeros(0, object))
    q_uniq, q_inverse = unique_hashes(np.asarray(hashes, np.uint8).reshape(-1, 32))
    if q_uniq.shape[0] == 0 or bank.uniq.shape[0] == 0:
        return empty
    qrow, brow, dist = _row_pairs(q_uniq, q_inverse, bank, radius, method, blocking_min_hashes, device)
    names = np.array([n.removeprefix("borders+") for n in bank.prep_names], dtype=object)[bank.row_prep[brow]]
    keep = np.ones(brow.size, bool) if prep_prefix is None else np.array([n.startswith(prep_prefix) for n in names], bool)
    frame = prepared.frames[bank.row_pos[brow[keep]]]
    return {"query": qrow[keep].astype(np.int64), "entry": index.entry_rows[frame].astype(np.int64), "time": index.timestamps_seconds[frame],
            "prep": names[keep], "distance": dist[keep].astype(np.int64)}  # fmt: skip


def robust_matches(
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
    duration_seconds: float | None = None,
    region: FrameHashes | None = None,
    region_variants: np.ndarray | None = None,
    region_box: np.ndarray | tuple[float, float, float, float] | None = None,
    short_min_seconds: float = 2.5,
    short_max_distance: int = 20,
    window_max_distance: int = 16,
    region_name: str | None = None,
    region_min_frames: int = 0,
) -> list[Match]:
    n = len(query)
    if variants.shape != (n, 8, 32) or variants.dtype != np.uint8:
        raise ValueError(f"variants must be uint8 [{n}, 8, 32], got {variants.dtype} {variants.shape}")
    # Query versions: prep 0 as decoded, 1 borders removed, 2 overlay filled, 3 region
    # (one row per sample, or a still's windows: any rows, each naming its sample).
    sides = [(0, query, variants, np.arange(n))]
    for p, name, fh, var in ((_PREP_UNBORDERED, "unbordered", unbordered, unbordered_variants),
                             (_PREP_UNOVERLAID, "unoverlaid", unoverlaid, unoverlaid_variants),
                             (_PREP_REGION, "region", region, region_variants)):  # fmt: skip
        if fh is not None and var is not None:
            rows = np.arange(n)
            if p == _PREP_REGION and len(fh) != n:
                rows = np.searchsorted(query.frame_numbers, fh.frame_numbers)
                if rows.size and (rows.max() >= n or (query.frame_numbers[np.minimum(rows, n - 1)] != fh.frame_numbers).any()):
                    raise ValueError("region rows must name frames of the query")
            elif len(fh) != n:
                raise ValueError(f"{name} rows must match the query's {n} frames, got {len(fh)}")
            if var.shape != (len(fh), 8, 32):
                raise ValueError(f"{name} variants must be [{len(fh)}, 8, 32], got {var.shape}")
            sides.append((p, fh, var, rows))
    has_overlay = any(s[0] == _PREP_UNOVERLAID for s in sides)
    loose = max(distance_threshold, overlay_distance_threshold) if has_overlay else distance_threshold
    # Query rows: (sample, variant, prep, row of its version) for every kept frame version.
    parts, sample, variant, prep, version_row = [], [], [], [], []
    considered = np.zeros(n, bool)
    for p, fh, var, rows in sides:
        keep = np.flatnonzero(fh.qualities >= min_quality)
        considered[rows[keep]] = True
        # A still's windows: as is and mirrored only (screenshots are not turned; 4x less to search).
        vs = np.array([0, 4]) if p == _PREP_REGION and len(fh) != n else np.arange(8)
        parts.append(var[keep][:, vs].reshape(-1, 32))
        sample.append(np.repeat(rows[keep], vs.size))
        variant.append(np.tile(vs, keep.size))
        prep.append(np.full(keep.size * vs.size, p))
        version_row.append(np.repeat(keep, vs.size))
    version_row = np.concatenate(version_row)
    sample, variant, prep = np.concatenate(sample), np.concatenate(variant), np.concatenate(prep)
    q_uniq, q_inverse = unique_hashes(np.concatenate(parts))
    bank = _prepare_robust(index, min_quality)
    prepared = _prepare(index, min_quality)
    if q_uniq.shape[0] == 0 or bank.uniq.shape[0] == 0:
        return []
    qrow, brow, dist = _row_pairs(q_uniq, q_inverse, bank, loose, method, blocking_min_hashes, device)
    if qrow.size == 0:
        return []
    if loose > distance_threshold:  # only overlay-filled rows get the looser radius
        ok = (dist <= distance_threshold) | ((prep[qrow] == _PREP_UNOVERLAID) & (dist <= overlay_distance_threshold))
        qrow, brow, dist = qrow[ok], brow[ok], dist[ok]
        if qrow.size == 0:
            return []
    if region is not None and len(region) != n:
        # A still's windows: 50 tries per image, so each must be close (vscan.frames.regions.still_windows).
        ok = (prep[qrow] != _PREP_REGION) | (dist <= window_max_distance)
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
    durations = display_durations(query.timestamps_seconds, duration_seconds)
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
        by_region = bool(np.mean(p_prep[best] == _PREP_REGION) > 0.5)
        where = None
        if by_region:
            path.append(region_name or ("region" if len(region) == n else "window"))
            if region_box is not None:  # the box of the closest region row
                boxes = np.asarray(region_box, np.float64).reshape(-1, 4)
                r = best[p_prep[best] == _PREP_REGION]
                k = int(version_row[qrow[r[np.argmin(dist[r])]]])
                where = tuple(float(v) for v in boxes[min(k, len(boxes) - 1)])
        ref_preps = [bank.prep_names[c] for c in b_prep[best]]
        if np.mean(["crop" in r for r in ref_preps]) > 0.5:
            path.append("crop")
        for tag, name in (("strip916", "window-916"), ("window:rot", "rotated"), ("window:g", "grid-window")):
            if np.mean([tag in r for r in ref_preps]) > 0.5:
                path.append(name)
        if np.mean(["borders" in r for r in ref_preps]) > 0.5:
            path.append("reference-borders-removed")
        alignment = align(q_times[p_sample[sel]], p_tr[sel], weights=32.0 - dist[sel])
        vpdq_rule = query_pct >= match_query_pct or compared_pct >= match_compared_pct
        aligned = alignment is not None and alignment.seconds >= align_min_seconds and alignment.num_frames >= align_min_frames
        # A short excerpt: fewer seconds suffice when every aligned frame is close (vscan.bank.short).
        short = not aligned and is_strong_short(alignment, q_times[p_sample[sel]], p_tr[sel], dist[sel],
                                                min_seconds=short_min_seconds, max_distance=short_max_distance)  # fmt: skip
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
                is_match=bool(vpdq_rule or aligned or short) and not (by_region and matched.size < region_min_frames),
                num_query_hashes_matched=int(np.unique(sample_key[matched]).size),
                num_reference_hashes_matched=int(np.unique(p_buid[strict]).size),
                path=tuple(path),
                dihedral=_EDIT_OF_VARIANT[v_best],
                decided_by="vpdq" if vpdq_rule else ("alignment" if aligned else ("short-alignment" if short else None)),
                region=where,
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



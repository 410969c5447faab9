"""vPDQ's matching (the ``Matcher``'s path for a query without dihedral
variants) and exact file-digest hits. The rules are in ``vscan.bank.match``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vscan.bank.prepared import _NAN_SPAN, Match, _PreparedBank, _prepare, _search, _span, _unique_int, display_durations, unique_hashes
from vscan.bank.query import FileQuery, MatchSettings
from vscan.bank.store import BankIndex

__all__ = ["vpdq_matches", "digest_matches"]


@dataclass
class _EntryCounts:
    """Matched pairs per entry: (entry, query unique) and (entry, bank unique) keys, sorted by entry."""

    q_pairs: np.ndarray
    b_pairs: np.ndarray
    q_count: np.ndarray
    b_count: np.ndarray
    d_min: np.ndarray
    n_q: int
    n_b: int


def _entry_counts(index: BankIndex, prepared: _PreparedBank, uq: np.ndarray, ub: np.ndarray, dist: np.ndarray, n_q: int) -> _EntryCounts:
    # Each (query unique, bank unique) pair counts for every entry holding that bank hash.
    starts = prepared.by_unique_offsets[ub]
    lengths = prepared.by_unique_offsets[ub + 1] - starts
    owner = np.repeat(np.arange(ub.size), lengths)
    pos = np.arange(owner.size) - np.repeat(np.cumsum(lengths) - lengths, lengths) + starts[owner]
    entry = prepared.by_unique_entries[pos]
    uq, ub, dist = uq[owner], ub[owner], dist[owner]
    n_entries, n_b = index.num_entries, prepared.uniq.shape[0]
    q_pairs = _unique_int(entry * n_q + uq)
    b_pairs = _unique_int(entry * n_b + ub)
    d_min = np.full(n_entries, 1 << 30, np.int64)
    np.minimum.at(d_min, entry, dist.astype(np.int64))
    return _EntryCounts(q_pairs, b_pairs, np.bincount(q_pairs // n_q, minlength=n_entries), np.bincount(b_pairs // n_b, minlength=n_entries),
                        d_min, n_q, n_b)  # fmt: skip


def vpdq_matches(index: BankIndex, query: FileQuery, settings: MatchSettings) -> list[Match]:
    """vPDQ exactly (``vscan.bank.match``) for ``query``'s frames as decoded: entries sharing a matched frame, best first."""
    frames = query.frames.hashes
    durations_all = display_durations(frames.timestamps_seconds, query.duration_seconds)
    keep = np.flatnonzero(frames.qualities >= settings.min_quality)
    q_uniq, q_inverse = unique_hashes(frames.hashes[keep])
    prepared = _prepare(index, settings.min_quality)
    if q_uniq.shape[0] == 0 or prepared.uniq.shape[0] == 0:
        return []
    uq, ub, dist = _search(q_uniq, prepared, settings.distance_threshold, settings.method, settings.blocking_min_hashes, settings.device)
    if uq.size == 0:
        return []
    counts = _entry_counts(index, prepared, uq, ub, dist, q_uniq.shape[0])
    q_times, q_durations = frames.timestamps_seconds[keep], durations_all[keep]
    bank_entry_of_frame = index.entry_rows[prepared.frames]
    bank_times = index.timestamps_seconds[prepared.frames]
    n_q, n_b, results = counts.n_q, counts.n_b, []
    for e in np.flatnonzero(counts.q_count):
        query_pct = 100.0 * counts.q_count[e] / n_q
        if query_pct < settings.min_query_pct:
            continue
        compared_pct = 100.0 * counts.b_count[e] / prepared.entry_unique_count[e]
        # q_pairs, b_pairs and the bank frames are all sorted by entry: slice, don't scan.
        q_lo, q_hi = np.searchsorted(counts.q_pairs, [e * n_q, (e + 1) * n_q])
        q_matched = np.isin(q_inverse, counts.q_pairs[q_lo:q_hi] - e * n_q)
        b_lo, b_hi = np.searchsorted(counts.b_pairs, [e * n_b, (e + 1) * n_b])
        f_lo, f_hi = np.searchsorted(bank_entry_of_frame, [e, e + 1])
        b_hit = np.isin(prepared.inverse[f_lo:f_hi], counts.b_pairs[b_lo:b_hi] - e * n_b)
        b_matched = np.arange(f_lo, f_hi)[b_hit]
        results.append(Match(
            bank_entry_id=index.entry_ids[e], label=index.labels[e], query_pct=float(query_pct), compared_pct=float(compared_pct),
            matched_seconds=float(q_durations[q_matched].sum()), query_span_seconds=_span(q_times[q_matched]),
            reference_span_seconds=_span(bank_times[b_matched]), distance_min=int(counts.d_min[e]),
            is_match=bool(query_pct >= settings.match_query_pct or compared_pct >= settings.match_compared_pct),
            num_query_hashes_matched=int(counts.q_count[e]), num_reference_hashes_matched=int(counts.b_count[e]),
        ))  # fmt: skip
    results.sort(key=lambda m: (not m.is_match, -m.query_pct, -m.compared_pct, m.bank_entry_id))
    return results


def digest_matches(index: BankIndex, digests: dict[str, str | None]) -> list[Match]:
    """Exact file-digest hits (a whole-file match: 100% / 100%, distance 0), SHA-256, then MD5, then SHA-1."""
    results = []
    for algorithm in ("sha256", "md5", "sha1"):
        digest = digests.get(algorithm)
        if not digest:
            continue
        for entry_id in index.digests.get((algorithm, digest.strip().lower()), []):
            row = index.entry_ids.index(entry_id)
            results.append(Match(
                bank_entry_id=entry_id, label=index.labels[row], query_pct=100.0, compared_pct=100.0, matched_seconds=math.nan,
                query_span_seconds=_NAN_SPAN, reference_span_seconds=_NAN_SPAN, distance_min=0, is_match=True,
                signal=algorithm,  # type: ignore[arg-type]
            ))  # fmt: skip
    return results

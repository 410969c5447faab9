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
chunked torch kernel, or multi-index hashing (``kernels.hamming``) once the bank
holds more than ``blocking_min_hashes`` unique hashes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kernels.hamming import MultiIndexHashing, search_pairs
from scanner._errors import ConfigError
from scanner.bank import BankIndex
from scanner.hashes import FrameHashes

__all__ = ["Match", "match_frames", "match_digests", "unique_hashes", "display_durations"]

SearchMethod = Literal["auto", "brute", "blocking"]
_NAN_SPAN = (math.nan, math.nan)


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
) -> list[Match]:
    """Bank entries sharing at least one matched frame with ``query``, best first."""
    if not 0 <= distance_threshold <= 256:
        raise ConfigError(f"Invalid distance_threshold ({distance_threshold}). Supported values are 0..256")
    if not 0 <= min_quality <= 100:
        raise ConfigError(f"Invalid min_quality ({min_quality}). Supported values are 0..100")
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

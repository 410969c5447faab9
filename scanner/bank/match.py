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
(the last one until the file's end, ``duration_seconds``, else for the median gap); ``matched_seconds`` sums that display time
over the matched query frames. Spans are the first/last matched timestamps on
each side. All are NaN without timestamps.

Search is exact every way (``vscan.bank.prepared``): brute force over
de-duplicated hashes (numpy on CPU, torch on CUDA), or multi-index hashing
(``vscan.bank.index``) once the bank holds more than ``blocking_min_hashes``
unique hashes. The robust matcher (``variants=``) is ``vscan.bank.robust``.
"""


from __future__ import annotations

import math

import numpy as np

from vscan.bank.prepared import (
    _NAN_SPAN,
    Match,
    SearchMethod,
    _prepare,
    _search,
    _span,
    _unique_int,
    display_durations,
    unique_hashes,
)
from vscan.bank.robust import robust_matches
from vscan.bank.store import BankIndex
from vscan.errors import ConfigError
from vscan.hashing.vpdq import FrameHashes

__all__ = ["Match", "match_frames", "match_digests", "unique_hashes", "display_durations"]


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
    duration_seconds: float | None = None,
    region: FrameHashes | None = None,
    region_variants: np.ndarray | None = None,
    region_box: tuple[float, float, float, float] | None = None,
    **region_rules,
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

    ``region`` (the samples cropped to the inset picture that
    ``vscan.frames.regions`` found, and their variants) is one more query
    version (path "region"; ``region_box``, as fractions of the frame, goes
    into its matches; ``region_rules``: ``window_max_distance``,
    ``region_name``, ``region_min_frames`` of ``vscan.bank.robust``). A run shorter than ``align_min_seconds`` still
    decides when it is strong (``vscan.bank.short``).

    ``duration_seconds`` (the query file's) ends the last sample's display
    time, so ``matched_seconds`` never exceeds it; without it the last sample
    shows for the median gap.
    """
    if not 0 <= distance_threshold <= 256:
        raise ConfigError(f"Invalid distance_threshold ({distance_threshold}). Supported values are 0..256")
    if not 0 <= min_quality <= 100:
        raise ConfigError(f"Invalid min_quality ({min_quality}). Supported values are 0..100")
    if variants is not None:
        return robust_matches(
            query, variants, index, unbordered=unbordered, unbordered_variants=unbordered_variants,
            border_kind=border_kind, unoverlaid=unoverlaid, unoverlaid_variants=unoverlaid_variants,
            overlay_distance_threshold=overlay_distance_threshold, min_quality=min_quality, distance_threshold=distance_threshold,
            match_query_pct=match_query_pct, match_compared_pct=match_compared_pct, min_query_pct=min_query_pct,
            align_min_seconds=align_min_seconds, align_min_frames=align_min_frames, method=method,
            blocking_min_hashes=blocking_min_hashes, device=device, duration_seconds=duration_seconds,
            region=region, region_variants=region_variants, region_box=region_box, **region_rules,
        )  # fmt: skip
    durations_all = display_durations(query.timestamps_seconds, duration_seconds)
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

"""The matcher's shared parts: the ``Match`` record, exact de-duplication,
display durations, the bank side prepared once per ``min_quality`` (cached
on the ``BankIndex``) and the search that finds every (query, bank) pair
within a radius.

Search is exact every way, with the same pairs: brute force over the
de-duplicated hashes (numpy on CPU, ``vscan.bank.index``; torch on CUDA,
``vscan.kernels.hamming``, imported only there), or multi-index hashing
(numpy) once the bank holds more than ``blocking_min_hashes`` unique hashes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vscan.bank.disk_index import SplitIndex
from vscan.bank.index import MultiIndexHashing, brute_force_pairs, resolve_device
from vscan.bank.store import BankIndex
from vscan.errors import ConfigError

__all__ = ["Match", "SearchMethod", "unique_hashes", "display_durations", "kept_search", "recent"]

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
    #: Where in the query frame the known content was found (path "region"):
    #: (top, bottom, left, right) as fractions of the frame; None = the whole frame.
    region: tuple[float, float, float, float] | None = None
    #: A weak hit on a sparse entry: query times where a second look meets its rows (``vscan.bank.row_looks``).
    look_seconds: tuple[float, ...] = ()




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
    # Sorted on the first word alone (stable) first: that is the four words' lexsort order wherever rows with the same
    # first word are the same row (distinct hashes nearly always differ in their first 64 bits; a repeated row keeps
    # its input order either way); only where two different rows share their first word is the full lexsort taken.
    # A searched file's ~1,000 window hashes: ~3x less time (issue #30; the same output, tests/test_unique_hashes.py).
    order = np.argsort(words[:, 0], kind="stable")
    sorted_words = words[order]
    same = sorted_words[1:] == sorted_words[:-1]
    if (same[:, 0] & ~same.all(axis=1)).any():
        order = np.lexsort(words.T[::-1])
        sorted_words = words[order]
        same = sorted_words[1:] == sorted_words[:-1]
    new = np.ones(n, bool)
    new[1:] = ~same.all(axis=1)
    inverse = np.empty(n, np.int64)
    inverse[order] = np.cumsum(new) - 1
    return hashes[order[new]], inverse


def recent(kept: dict, key, make, most: int):
    """``kept[key]``, made by ``make()`` (read-only) where missing, the dict holding the ``most`` last used (least recent
    first out): ``vscan.bank.mapped.MappedBank.candidates``' whole lookups."""
    found = kept.pop(key, None)
    if found is None:
        found = make()
        found.flags.writeable = False
        while len(kept) >= most:
            kept.pop(next(iter(kept)))
    kept[key] = found  # the most recent last
    return found


def _csr(inverse: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Compressed rows of ``inverse`` (a group id per item, ids < ``n``): (offsets [n + 1], the items sorted by group)."""
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(inverse, minlength=n), out=offsets[1:])
    return offsets, np.argsort(inverse, kind="stable")


def _unique_int(values: np.ndarray) -> np.ndarray:
    """Sorted unique int64 values (sort-based, see unique_hashes)."""
    values = np.sort(values)
    if values.size:
        values = values[np.concatenate(([True], values[1:] != values[:-1]))]
    return values


def display_durations(timestamps_seconds: np.ndarray, end_seconds: float | None = None) -> np.ndarray:
    """Seconds each frame shows: gap to the next later timestamp; the last one
    shows until ``end_seconds`` (the file's duration) when known, else for the
    median gap. With the end known they sum to at most the file's duration
    (a sparse sample's median gap, 10 s between keyframes, once credited the
    last sample with 10 s of a file that ended 1.2 s later)."""
    ts = np.asarray(timestamps_seconds, np.float64)
    out = np.full(ts.shape, np.nan)
    if ts.size == 0 or np.isnan(ts).any():
        return out
    order = np.argsort(ts, kind="stable")
    gaps = np.diff(ts[order])
    if end_seconds is not None and math.isfinite(end_seconds):
        last = max(float(end_seconds) - float(ts[order[-1]]), 0.0)
    else:
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
    mih: MultiIndexHashing | SplitIndex | None = None


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
        if prepared.mih is None:  # the split index (vscan.bank.disk_index): same pairs, several times faster
            prepared.mih = SplitIndex.from_hashes(prepared.uniq)
        return prepared.mih.search(query_uniq, radius)
    if resolve_device(device) == "cuda":
        from vscan.kernels.hamming import search_pairs as search_on_torch

        return search_on_torch(query_uniq, prepared.uniq, radius, method="brute", device=device or "cuda")
    return brute_force_pairs(query_uniq, prepared.uniq, radius)


def kept_search(q_uniq: np.ndarray, bank: Any, radius: int, method: SearchMethod, blocking_min_hashes: int, device: str | None,
                kept: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """``_search``'s pairs (sorted by query, then bank hash); with ``kept`` (a dict the caller holds: one file's
    first pass and its confirmation, ``ModelWorker.run``) each query hash's pairs are kept there and searched only
    where not kept for this same bank and search. Every search sorts its pairs by (query, bank hash) and finds a
    query's pairs whatever the other queries are, so the pairs are the same, in the same order: a confirmation
    (the first pass's frames and one more) searched the first pass's hashes again (issue #30)."""
    if kept is None:
        return _search(q_uniq, bank, radius, method, blocking_min_hashes, device)
    setting = (radius, method, blocking_min_hashes, device)
    slot = kept.get("robust.pairs")
    if slot is None or slot[0] is not bank or slot[1] != setting:  # another narrowed bank: nothing kept applies
        slot = kept["robust.pairs"] = (bank, setting, {})
    memo = slot[2]
    keys = list(map(bytes, q_uniq))
    todo = [i for i, key in enumerate(keys) if key not in memo]
    if todo:
        uq, ub, dist = _search(q_uniq[todo], bank, radius, method, blocking_min_hashes, device)
        bounds = np.searchsorted(uq, np.arange(len(todo) + 1)).tolist()
        for j, i in enumerate(todo):
            memo[keys[i]] = (ub[bounds[j] : bounds[j + 1]], dist[bounds[j] : bounds[j + 1]])
        if len(todo) == len(keys):
            return uq, ub, dist  # searched whole: the search's own pairs (query j of todo is query j)
    parts = [memo[key] for key in keys]
    lengths = np.fromiter((p[0].size for p in parts), np.int64, len(parts))
    uq = np.repeat(np.arange(len(parts), dtype=np.int64), lengths)
    return uq, np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _span(times: np.ndarray) -> tuple[float, float]:
    if times.size == 0 or np.isnan(times).any():
        return _NAN_SPAN
    return (float(times.min()), float(times.max()))



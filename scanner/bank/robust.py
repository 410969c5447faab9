"""The robust matcher (``Matcher`` with dihedral ``variants``): all 8 dihedral
variants of every query frame, and the query with borders removed or a
static overlay filled, against every bank row (the frames plus their extra
rows: borders removed, centre crops); one dihedral path per entry, matched
pairs aligned in time (``vscan.bank.align``). See ``vscan.bank.match``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vscan.bank.align import align, spread_ranges
from vscan.bank.crop_rows import CROP_ROWS_MIN, crop_rows_held, crop_rows_met
from vscan.bank.aligned_frames import aligned_samples
from vscan.bank.row_looks import look_seconds, tick_pct
from vscan.bank.rows import row_end_seconds
from vscan.bank.short import is_short_file, is_strong_short
from vscan.bank.index import MultiIndexHashing
from vscan.bank.prepared import _NAN_SPAN, Match, SearchMethod, _csr, _prepare, _span, display_durations, kept_search, unique_hashes
from vscan.bank.query import VERSION_ORDER, FileQuery, MatchSettings, QueryVersion
from vscan.bank.store import BankIndex

__all__ = ["robust_matches", "row_hits"]

_PREP_UNBORDERED, _PREP_UNOVERLAID, _PREP_REGION = (VERSION_ORDER.index(k) for k in ("unbordered", "unoverlaid", "region"))  # beside the frames as decoded (prep 0)

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
               blocking_min_hashes: int, device: str | None, kept: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query row, bank row, distance) of every pair within ``radius``: the unique query hashes
    ``q_uniq`` (query row r is ``q_uniq[q_inverse[r]]``) searched against ``bank``'s unique hashes (``kept``: ``kept_search``)."""
    uq, ub, dist = kept_search(q_uniq, bank, radius, method, blocking_min_hashes, device, kept)
    owner_b, brow = _expand(ub, bank.offsets, bank.rows)
    q_offsets, q_rows = _csr(q_inverse, q_uniq.shape[0])
    owner_q, qrow = _expand(uq[owner_b], q_offsets, q_rows)
    return qrow, brow[owner_q], dist[owner_b[owner_q]]


def row_hits(index: BankIndex, hashes: np.ndarray, radius: int, *, min_quality: int, method: SearchMethod = "auto",
             blocking_min_hashes: int = 50_000, device: str | None = None, prep_prefix: str | None = None) -> dict[str, np.ndarray]:
    """Every bank row (frames and extra rows) within ``radius`` of each of
    ``hashes`` (uint8 [M, 32]): arrays ``query`` (index into hashes),
    ``entry`` (into ``index.entry_ids``), ``frame`` and ``time`` (the row
    frame's number and seconds), ``prep`` (its preparation's name, "" for a
    frame row) and ``distance``; only rows whose prep starts with
    ``prep_prefix`` (after a ``borders+``) when given."""
    bank = _prepare_robust(index, min_quality)
    prepared = _prepare(index, min_quality)
    empty = {k: np.zeros(0, np.int64) for k in ("query", "entry", "frame", "distance")}
    empty.update(time=np.zeros(0), prep=np.zeros(0, object))
    q_uniq, q_inverse = unique_hashes(np.asarray(hashes, np.uint8).reshape(-1, 32))
    if q_uniq.shape[0] == 0 or bank.uniq.shape[0] == 0:
        return empty
    qrow, brow, dist = _row_pairs(q_uniq, q_inverse, bank, radius, method, blocking_min_hashes, device)
    names = np.array(bank.prep_names, dtype=object)[bank.row_prep[brow]]
    keep = np.ones(brow.size, bool) if prep_prefix is None else np.array([n.removeprefix("borders+").startswith(prep_prefix) for n in names], bool)
    frame = prepared.frames[bank.row_pos[brow[keep]]]
    return {"query": qrow[keep].astype(np.int64), "entry": index.entry_rows[frame].astype(np.int64), "frame": index.frame_numbers[frame].astype(np.int64),
            "time": index.timestamps_seconds[frame], "prep": names[keep], "distance": dist[keep].astype(np.int64)}  # fmt: skip


def _is_windows(version: QueryVersion, n: int) -> bool:
    """A still's windows (``vscan.frames.regions.still_windows``): any number of rows, each naming its sample."""
    return version.kind == "region" and len(version) != n


@dataclass
class _QueryRows:
    """Every searched query row (a kept frame of a version, one dihedral variant): its
    ``sample``, ``variant``, ``prep`` (version code), ``version_row`` and search ``radius``;
    ``uniq`` / ``inverse``: the rows' hashes de-duplicated; ``considered``: samples with a kept row."""

    sample: np.ndarray
    variant: np.ndarray
    prep: np.ndarray
    version_row: np.ndarray
    radius: np.ndarray
    uniq: np.ndarray
    inverse: np.ndarray
    considered: np.ndarray


def _query_rows(query: FileQuery, settings: MatchSettings) -> _QueryRows:
    n = len(query.frames)
    parts, sample, variant, prep, version_row, radius = [], [], [], [], [], []
    considered = np.zeros(n, bool)
    for v in query.versions:
        if v.variants is None:
            continue
        keep = np.flatnonzero(v.hashes.qualities >= settings.min_quality)
        considered[v.rows[keep]] = True
        windows = _is_windows(v, n)
        # A still's windows: as is and mirrored only (screenshots are not turned; 4x less to search).
        vs = np.array([0, 4]) if windows else np.arange(8)
        # 74 windows per image, so each must be close (vscan.frames.regions.still_windows; 0 of 1,000 unrelated stills met).
        r = min(settings.radius(v), settings.window_max_distance) if windows else settings.radius(v)
        parts.append(v.variants[keep][:, vs].reshape(-1, 32))
        sample.append(np.repeat(v.rows[keep], vs.size))
        variant.append(np.tile(vs, keep.size))
        prep.append(np.full(keep.size * vs.size, VERSION_ORDER.index(v.kind)))
        version_row.append(np.repeat(keep, vs.size))
        radius.append(np.full(keep.size * vs.size, r))
    q_uniq, q_inverse = unique_hashes(np.concatenate(parts))
    return _QueryRows(np.concatenate(sample), np.concatenate(variant), np.concatenate(prep), np.concatenate(version_row),
                      np.concatenate(radius), q_uniq, q_inverse, considered)  # fmt: skip


def _pairs(query: FileQuery, rows: _QueryRows, bank: _RobustBank, settings: MatchSettings, kept: dict | None) -> tuple[np.ndarray, ...]:
    """(query row, bank row, distance): every pair within its query row's radius, searched
    at the loosest version's radius (the pairs' order is the search's at that radius)."""
    radius = max(settings.radius(v) for v in query.versions if v.variants is not None)
    qrow, brow, dist = _row_pairs(rows.uniq, rows.inverse, bank, radius, settings.method, settings.blocking_min_hashes, settings.device, kept)
    ok = dist <= rows.radius[qrow]
    return qrow[ok], brow[ok], dist[ok]


class _Entries:
    """One robust match per bank entry from the file's matched pairs."""

    def __init__(self, index: BankIndex, query: FileQuery, settings: MatchSettings, rows: _QueryRows, bank: _RobustBank, pairs) -> None:
        qrow, brow, self.dist = pairs
        prepared = _prepare(index, settings.min_quality)
        self.index, self.query, self.settings, self.bank, self.qrow = index, query, settings, bank, qrow
        self.p_sample, self.p_variant, self.p_prep = rows.sample[qrow], rows.variant[qrow], rows.prep[qrow]
        self.version_row, self.p_hash = rows.version_row, rows.inverse[qrow]  # p_hash: each pair's distinct query hash
        b_pos = bank.row_pos[brow]
        self.b_prep = bank.row_prep[brow]
        b_frame = prepared.frames[b_pos]
        self.p_entry = index.entry_rows[b_frame]
        self.p_tr = index.timestamps_seconds[b_frame]
        self.p_tr_end = _row_ends(index)[b_frame]
        self.p_buid = prepared.inverse[b_pos]
        self.entry_unique_count = prepared.entry_unique_count
        frames = query.frames.hashes
        # vPDQ de-duplicates the query by exact hash: one key per distinct as-decoded hash.
        _, self.sample_key = unique_hashes(frames.hashes)
        self.n_q = np.unique(self.sample_key[rows.considered]).size
        self.durations = display_durations(frames.timestamps_seconds, query.duration_seconds)
        self.q_times = frames.timestamps_seconds

    def matches(self) -> list[Match]:
        order = np.argsort(self.p_entry, kind="stable")
        bounds = np.flatnonzero(np.diff(self.p_entry[order])) + 1
        found = [self._match(int(self.p_entry[sel[0]]), sel) for sel in np.split(order, bounds)]
        results = [m for m in found if m is not None]
        results.sort(key=lambda m: (not m.is_match, -m.query_pct, -m.compared_pct, m.bank_entry_id))
        return results

    def _match(self, e: int, sel: np.ndarray) -> Match | None:
        s, dist = self.settings, self.dist
        # One dihedral path per entry: the variant that matches the most query frames.
        per_variant = [np.unique(self.p_sample[sel][self.p_variant[sel] == v]).size for v in range(8)]
        v_best = int(np.argmax(per_variant))
        sel = sel[self.p_variant[sel] == v_best]
        # query% / compared% (vPDQ's rule) count pairs within distance_threshold only.
        strict = sel[dist[sel] <= s.distance_threshold]
        matched = np.unique(self.p_sample[strict])
        query_pct = 100.0 * np.unique(self.sample_key[matched]).size / max(self.n_q, 1)
        if query_pct < s.min_query_pct:
            return None
        compared_pct = 100.0 * np.unique(self.p_buid[strict]).size / self.entry_unique_count[e]
        # Which preparation did the work: the closest pair of each matched query frame votes.
        best = sel[np.lexsort((dist[sel], self.p_sample[sel]))]
        best = best[np.concatenate(([True], self.p_sample[best][1:] != self.p_sample[best][:-1]))]
        path, region, where = self._path(best, v_best)
        # A row standing for a run of frames (its time range) meets the query frame anywhere in the run.
        spread, tr = spread_ranges(self.p_tr[sel], self.p_tr_end[sel])
        q_times, near, row_start = self.q_times[self.p_sample[sel]][spread], dist[sel][spread], self.p_tr[sel][spread]
        alignment = align(q_times, tr, weights=32.0 - near)
        vpdq_rule = query_pct >= s.match_query_pct or compared_pct >= s.match_compared_pct
        aligned = alignment is not None and alignment.seconds >= s.align_min_seconds and alignment.num_frames >= s.align_min_frames
        # A short excerpt: fewer seconds suffice when every aligned frame is close (vscan.bank.short).
        short = not aligned and is_strong_short(alignment, q_times, tr, near, min_seconds=s.short_min_seconds, max_distance=s.short_max_distance,
                                                row_start=row_start)
        # A short file is its own evidence: most of its frames close at one offset (vscan.bank.short).
        whole = not (vpdq_rule or aligned or short) and is_short_file(alignment, q_times, tr, near, considered_frames=self.n_q,
                                                                      duration_seconds=self.query.duration_seconds, row_start=row_start)  # fmt: skip
        # Sparse rows: whole frames at the time the alignment predicts, within looser bits, count too (vscan.bank.aligned_frames).
        by_alignment = (not (vpdq_rule or aligned or short or whole) and region is None
                        and max(self._aligned_pct(e, v_best, alignment, matched), self._tick_pct(e, v_best, strict)) >= s.match_query_pct)  # fmt: skip
        # A query-side crop (a weak hit on it takes a sparse look too) decides on the sparse entry's crop rows it meets (crop_rows_met).
        side = region is not None and _query_side(region)
        by_crop_rows = not (vpdq_rule or aligned or short or whole or by_alignment) and side and self._crop_rows_pct(e, strict) >= s.match_compared_pct
        samples = np.unique(self.p_sample[sel])
        decided = bool(vpdq_rule or aligned or short or whole or by_alignment or by_crop_rows)
        thin = decided and side and np.unique(self.sample_key[matched]).size < THIN_MATCH_FRAMES  # it names a look too
        return Match(
            bank_entry_id=self.index.entry_ids[e], label=self.index.labels[e], query_pct=float(query_pct),
            compared_pct=float(min(compared_pct, 100.0)), matched_seconds=float(self.durations[samples].sum()),
            query_span_seconds=_span(self.q_times[samples]), reference_span_seconds=_span(self.p_tr[sel]), distance_min=int(dist[sel].min()),
            is_match=decided and not (region is not None and min(matched.size, np.unique(self.p_hash[strict]).size) < self._least(e, strict, region, side)),  # distinct pictures
            num_query_hashes_matched=int(np.unique(self.sample_key[matched]).size),
            num_reference_hashes_matched=int(np.unique(self.p_buid[strict]).size), path=tuple(path), dihedral=_EDIT_OF_VARIANT[v_best],
            decided_by="vpdq" if vpdq_rule else ("alignment" if aligned else ("short-alignment" if short else ("short-file" if whole else
                        ("aligned-frames" if by_alignment else ("crop-rows" if by_crop_rows else None))))),
            region=where,
            align_rate=alignment.rate if alignment else math.nan, align_offset_seconds=alignment.offset_seconds if alignment else math.nan,
            aligned_seconds=alignment.seconds if alignment else 0.0, aligned_frames=alignment.num_frames if alignment else 0,
            aligned_query_span_seconds=alignment.query_span_seconds if alignment else _NAN_SPAN,
            aligned_reference_span_seconds=alignment.reference_span_seconds if alignment else _NAN_SPAN,
            look_seconds=() if (decided and not thin) or (region is not None and not side) or not strict.size else self._looks(e, strict),
        )  # fmt: skip

    def _tick_pct(self, e: int, v_best: int, strict: np.ndarray) -> float:
        """query% over the frames that fall on a sparse entry's tick rows (``vscan.bank.row_looks.tick_pct``)."""
        if not strict.size:
            return 0.0
        versions = []
        for v in self.query.versions:
            if v.kind in ("frames", "unbordered") and v.variants is not None:
                keep = np.flatnonzero(v.hashes.qualities >= self.settings.min_quality)
                versions.append((self.q_times[v.rows[keep]], v.variants[keep, v_best]))
        s = self.settings
        return tick_pct(self.index, e, _row_ends(self.index), versions, self._timed_pairs(strict), s.distance_threshold, s.min_quality,
                        s.short_min_seconds)  # fmt: skip

    def _crop_pairs(self, strict: np.ndarray) -> np.ndarray:
        """The strict pairs whose bank row is a crop row (any scale, borders removed or not)."""
        return strict[np.array(["crop" in name for name in self.bank.prep_names], bool)[self.b_prep[strict]]]

    def _crop_rows_pct(self, e: int, strict: np.ndarray) -> float:
        """compared% over a sparse entry's crop rows of one scale (``crop_rows_met``), from the strict pairs on crop rows."""
        k = self._crop_pairs(strict)
        if k.size < CROP_ROWS_MIN:
            return 0.0
        return crop_rows_met(self.index, self.bank, e, self.b_prep[k], self.p_tr[k], self.q_times[self.p_sample[k]], self.dist[k],
                             self.settings.short_max_distance, self.settings.min_quality)  # fmt: skip

    def _least(self, e: int, strict: np.ndarray, region: QueryVersion, side: bool) -> int:
        """Matched frames a region version needs: its ``min_frames``; a query-side crop of a sparse entry (``side``) no more than the
        entry's crop rows of the scale it met (``crop_rows_held``; at least ``SPARSE_CROP_MIN_FRAMES``): a 6 s source keeps 3."""
        if not side or region.min_frames <= SPARSE_CROP_MIN_FRAMES:
            return region.min_frames
        k = self._crop_pairs(strict)
        held = crop_rows_held(self.index, self.bank, e, self.b_prep[k], self.dist[k], self.settings.short_max_distance, self.settings.min_quality)
        return region.min_frames if held is None else min(region.min_frames, max(SPARSE_CROP_MIN_FRAMES, held))

    def _looks(self, e: int, strict: np.ndarray) -> tuple[float, ...]:
        """A weak hit: where a second look meets the entry's sparse rows, from its closest pair (``look_seconds``)."""
        return look_seconds(self.index, e, _row_ends(self.index), self._timed_pairs(strict), self.query.duration_seconds, self.settings.min_quality)

    def _timed_pairs(self, strict: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The strict pairs as (query seconds, row start, row end, bits), as ``vscan.bank.row_looks`` reads them."""
        return self.q_times[self.p_sample[strict]], self.p_tr[strict], self.p_tr_end[strict], self.dist[strict]

    def _aligned_pct(self, e: int, v_best: int, alignment, matched: np.ndarray) -> float:
        """query% with the frames that meet the entry at the alignment's predicted time counted (``aligned_samples``)."""
        more = aligned_samples(self.index, e, _row_ends(self.index), self.query, v_best, alignment, matched, self.settings.min_quality)
        if not more.size:
            return 0.0
        return 100.0 * np.unique(self.sample_key[np.concatenate([matched, more])]).size / max(self.n_q, 1)

    def _path(self, best: np.ndarray, v_best: int) -> tuple[list[str], QueryVersion | None, tuple | None]:
        """How the entry was found: the edits and versions most matched frames' closest pairs went through;
        the region version when it did the work, and the box of its closest row."""
        path = [] if v_best == 0 else [_EDIT_OF_VARIANT[v_best]]
        prep = self.p_prep[best]
        if np.mean(prep == _PREP_UNBORDERED) > 0.5:
            path.append(f"{self.query.version('unbordered').border_kind or 'border'}-removed")
        if np.mean(prep == _PREP_UNOVERLAID) > 0.5:
            path.append("overlay-removed")
        region, where = self.query.version("region"), None
        # a query-side crop takes a tie: it was cut because the frames as they stood decided nothing (vscan.bank.query_side)
        share = np.mean(prep == _PREP_REGION)
        if not (share > 0.5 or (region is not None and share == 0.5 and _query_side(region))):
            region = None
        else:
            path.append(region.name or ("window" if _is_windows(region, len(self.query.frames)) else "region"))
            if region.box is not None:  # the box of the closest region row
                boxes = np.asarray(region.box, np.float64).reshape(-1, 4)
                r = best[prep == _PREP_REGION]
                k = int(self.version_row[self.qrow[r[np.argmin(self.dist[r])]]])
                where = tuple(float(v) for v in boxes[min(k, len(boxes) - 1)])
        ref_preps = [self.bank.prep_names[c] for c in self.b_prep[best]]
        if np.mean(["crop" in r for r in ref_preps]) > 0.5:
            path.append("crop")
        for tag, name in (("strip916", "window-916"), ("window:rot", "rotated"), ("window:g", "grid-window")):
            if np.mean([tag in r for r in ref_preps]) > 0.5:
                path.append(name)
        if np.mean(["borders" in r for r in ref_preps]) > 0.5:
            path.append("reference-borders-removed")
        return path, region, where


#: A query-side crop's match on a sparse entry needs at least this many frames, however few crop rows the entry keeps (``_least``):
#: ``crop_rows_met``'s least (CROP_ROWS_MIN), and the least a turned cut of a file with 2 detailed frames already needs.
SPARSE_CROP_MIN_FRAMES = CROP_ROWS_MIN


def _query_side(region: QueryVersion) -> bool:
    """A version the scan cut from its own frames, one row per frame (``vscan.bank.query_side``: centre crops, turned back)."""
    return bool(region.name) and region.name.startswith(("centre-crop", "turned"))


#: A match through the scan's own crop on fewer query frames (``vscan.decode.adaptive.DECIDES_MIN_FRAMES``) names a sparse look
#: too: adaptive's denser second pass often undoes it (query% halves); ``Adaptive.refine`` takes the look in that pass.
THIN_MATCH_FRAMES = 2
def _row_ends(index: BankIndex) -> np.ndarray:
    """Where each frame row's time range ends (``vscan.bank.rows.row_end_seconds``), once per index."""
    if "match.row_ends" not in index.cache:
        index.cache["match.row_ends"] = row_end_seconds(index.entry_rows, index.timestamps_seconds, index.durations_seconds)
    return index.cache["match.row_ends"]


def robust_matches(index: BankIndex, query: FileQuery, settings: MatchSettings, *, kept: dict | None = None) -> list[Match]:
    """Entries sharing a matched frame with any version of ``query`` (which has dihedral variants), best first (``kept``: ``kept_search``)."""
    rows = _query_rows(query, settings)
    bank = _prepare_robust(index, settings.min_quality)
    if rows.uniq.shape[0] == 0 or bank.uniq.shape[0] == 0:
        return []
    pairs = _pairs(query, rows, bank, settings, kept)
    if pairs[0].size == 0:
        return []
    return _Entries(index, query, settings, rows, bank, pairs).matches()

"""The model stage's matching of one hashed file against the bank.

``FileMatcher`` holds a scan's matching settings and its bank's
``vscan.bank.matcher.Matcher``; the model actor (vscan.runtime.model_actor),
``vscan rematch`` and ``--allow`` (vscan.runtime.hashed_matcher) hand it a
file's hashed frame sets. What the matcher reads of the decoded file (a
vscan.runtime.payload.DecodedFile, or stored frames' dict) is read in one place, ``file_inputs``: everything after it works on
``FileInputs`` and the ``FileQuery`` made of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from vscan.bank.matcher import Matcher
from vscan.bank.query import FileQuery, MatchSettings, QueryVersion
from vscan.config import ScanConfig
from vscan.runtime.payload import DecodedFile

__all__ = ["CPU_BLOCKING_MIN_HASHES", "FileInputs", "FileMatcher", "file_inputs"]

#: Unique bank rows from which a CPU scan's matcher searches them through the split index, not by brute force (issue #30).
CPU_BLOCKING_MIN_HASHES = 4096


@dataclass
class FileInputs:
    """One decoded, hashed file as the matcher takes it: ``versions``, every
    query version with its dihedral variants (the frames as decoded first;
    borders removed, overlay filled, an inset region, when found);
    ``frames``: the sampled square frames (the off-centre search cuts
    windows out of them; None where not at hand); ``duration_seconds``: None
    when unknown; ``sha1``: the file's, when the decode task computed it."""

    versions: tuple[QueryVersion, ...]
    duration_seconds: float | None
    sha1: str | None
    frames: np.ndarray | None
    frames_sampled: int
    source_size: Any = None  # (w, h) as decoded, where known: the query side turns frames back at the file's aspect
    border_box: Any = None  # the picture inside bars (top, bottom, left, right px of the square frames), where found


def file_inputs(payload: DecodedFile | dict[str, Any], hashed: dict[str, tuple[np.ndarray, np.ndarray]]) -> FileInputs:
    """The one reader of what the matcher is handed, with the hashed sets
    (``frames`` and, when present, ``unbordered_frames`` /
    ``unoverlaid_frames`` / ``region_frames``: (variants, quality)): the
    scan's DecodedFile (vscan.runtime.payload) by its fields, or the dict of
    a file's stored frames (``vscan rematch``, ``--allow``: frame numbers,
    times, border box, SHA-1; no pixels) by its keys."""
    if isinstance(payload, DecodedFile):
        f = payload
        inputs = _inputs(hashed, f.frame_numbers, f.timestamps, border_box=f.unbordered.box if f.unbordered is not None else None,
                         region=(f.region.box, f.region.rows) if f.region is not None else None, frames=f.frames,
                         duration_seconds=f.duration_seconds, sha1=f.sha1)  # fmt: skip
        inputs.source_size = f.source_size
        inputs.border_box = f.unbordered.box if f.unbordered is not None else None
        return inputs
    region = (payload["region_box"], payload.get("region_rows")) if "region_box" in payload else None
    return _inputs(hashed, payload["frame_numbers"], payload["timestamps"], border_box=payload.get("border_box"), region=region,
                   frames=payload.get("frames"), duration_seconds=float(payload.get("duration_seconds", 0.0)),
                   sha1=str(payload["sha1"]) if "sha1" in payload else None)  # fmt: skip


def _inputs(hashed: dict[str, tuple[np.ndarray, np.ndarray]], numbers: np.ndarray, times: np.ndarray, *, border_box: Any,
            region: tuple[Any, Any] | None, frames: np.ndarray | None, duration_seconds: float, sha1: str | None) -> FileInputs:  # fmt: skip
    from vscan.frames.borders import box_kind
    from vscan.frames.regions import region_version
    from vscan.hashing.vpdq import FrameHashes

    def version(kind: str, set_name: str, **extra) -> QueryVersion:
        variants, quality = hashed[set_name]
        return QueryVersion(kind, FrameHashes(numbers, times, quality, np.ascontiguousarray(variants[:, 0])), variants, **extra)

    versions = [version("frames", "frames")]
    if "unbordered_frames" in hashed:
        versions.append(version("unbordered", "unbordered_frames", border_kind=box_kind(border_box)))
    if "unoverlaid_frames" in hashed:
        versions.append(version("unoverlaid", "unoverlaid_frames"))
    if "region_frames" in hashed:  # vscan.frames.regions: the inset picture's hashes, boxes as fractions of the frame
        fh, variants, boxes = region_version(numbers, times, frames.shape[1:3], region[0], region[1], *hashed["region_frames"])
        versions.append(QueryVersion("region", fh, variants, box=boxes))
    return FileInputs(
        versions=tuple(versions),
        duration_seconds=duration_seconds or None,  # 0: unknown (the matcher then uses the median gap)
        sha1=sha1,  # SHA-1-only bank entries (VICS, NCMEC lists)
        frames=frames,
        frames_sampled=len(numbers),
    )


def match_settings(config: ScanConfig) -> MatchSettings:
    """The bank matcher's settings from a scan's: its quality floor and distance threshold, and
    where its brute force runs. A model stage planned on CPU (``--device cpu``, and ``auto`` on a
    node without GPUs: vscan.runtime.model_pool.plan_actors) matches on CPU without asking torch
    whether it sees a GPU: that question imports torch, 1.5-5 s of a small scan's start-up (issue #30)."""
    device = "cpu" if config.runtime.device == "cpu" else None  # None: CUDA where torch sees a GPU (vscan.bank.index.resolve_device)
    # On CPU a narrowed bank's rows are searched through the split index (vscan.bank.disk_index) from a few thousand
    # unique rows, not 50,000: the same pairs in the same order, and building it and searching once already costs less
    # than the brute force at 8,000 rows; it is kept with the narrowed index (MappedBank._subset_rows) for the next file.
    blocking = {"blocking_min_hashes": CPU_BLOCKING_MIN_HASHES} if device == "cpu" else {}
    return MatchSettings(min_quality=config.matching.min_quality, distance_threshold=config.matching.distance_threshold, device=device,
                         **blocking)  # fmt: skip


class FileMatcher:
    """Matches hashed files against one bank index (a loaded BankIndex, a
    MappedBank, or None: no bank) under a scan's matching settings."""

    def __init__(self, config: ScanConfig, index: Any, *, offcentre: bool = True) -> None:
        """``offcentre``: False where the frames' pixels are not at hand (hash stores)."""
        self.config = config
        self.index = index
        self.offcentre = offcentre
        self.matcher = Matcher(index, match_settings(config))

    def file_query(self, inputs: FileInputs, sha256: str | None, md5: str | None) -> FileQuery:
        """The matcher's query for a file: every version in robust mode, the frames alone (no variants) in vPDQ mode."""
        digests = {"sha256": sha256, "md5": md5, "sha1": inputs.sha1}
        if self.config.matching.mode != "robust":
            return FileQuery.plain(inputs.versions[0].hashes, digests=digests, duration_seconds=inputs.duration_seconds)
        return FileQuery(inputs.versions, digests, inputs.duration_seconds)

    def file_result(
        self, payload: DecodedFile | dict[str, Any], hashed: dict[str, tuple[np.ndarray, np.ndarray]], sha256: str | None, md5: str | None,
        *, kept: dict | None = None,
    ) -> dict[str, Any]:
        """One file's matches from its hashed frame sets: ``qualities``,
        ``matches``, ``timings``, ``frames_sampled`` and, for a bank with
        disabled entries, ``skipped_disabled``. ``kept``: a dict held between
        a first pass's match and its confirmation's (``Matcher.match``): the
        plain match's searches kept for the next."""
        t0 = time.perf_counter()
        inputs = file_inputs(payload, hashed)
        query = self.file_query(inputs, sha256, md5)
        narrowed_before = self.matcher.narrow_seconds  # seconds narrowing a memory-mapped bank to the file's candidates (each version tried)
        narrowed = self.matcher.for_file(query, kept=kept)
        matches = narrowed.match(query, kept=kept)
        spent: dict[str, float] = {}  # seconds per search (0.0: skipped: something matched already, or it does not apply)
        weak = None  # a centre-crop hit that decided nothing (vscan.bank.query_side): reported where no later search finds anything
        for key, applies, search in self._searches(inputs):
            spent[key] = 0.0
            if any(m.is_match for m in matches) or not applies(query):
                continue
            t_search = time.perf_counter()
            burst = self._burst_rows(inputs, query)
            if burst is None:
                found = search(query, inputs)
            else:  # without a short file's burst frames; where that finds anything, over every frame as before
                found = search(_rows_kept(query, ~burst), replace(inputs, frames=inputs.frames[~burst] if inputs.frames is not None else None))
                found = found if found is None else search(query, inputs)
            spent[key] = time.perf_counter() - t_search
            if found is not None and key == "match_centre_crops" and not any(m.is_match for m in found[2]):
                weak = found  # the other searches go on with the query as it stood
            elif found is not None:
                query, narrowed, matches = found
                weak = None
        if weak is not None:  # its span in the matches: adaptive sampling's second pass looks there
            query, narrowed, matches = weak
        # match: the whole of it; its parts (issue #30: per-file model-side costs, vscan.bench.bench_pipeline)
        timings = {"match": time.perf_counter() - t0, "match_narrow": self.matcher.narrow_seconds - narrowed_before,
                   **{key: spent[key] for key in ("match_offcentre", "match_centre_crops", "match_regions", "match_rotation")}}
        result = {"qualities": query.frames.hashes.qualities, "matches": matches, "timings": timings}
        skipped = narrowed.skipped_disabled(query)
        if skipped is not None:  # entries disabled in the bank (vscan.bank.updates)
            result["skipped_disabled"] = skipped
        result["frames_sampled"] = inputs.frames_sampled  # distinct frames hashed: two passes' shared frames count once
        return result

    def _searches(self, inputs: FileInputs) -> tuple:
        """The searches a robust file that matched nothing goes through, in turn, until one matches: (timing key,
        whether it applies to the query as it stands, the search of (query, inputs): (query, narrowed, matches) or None)."""
        pixels = self.offcentre and self.index is not None and inputs.frames is not None  # they cut the frames' pixels
        return (
            # a lean bank's sparse crop rows, bridged by the frames' own centre crops (vscan.bank.query_side)
            ("match_centre_crops", lambda q: q.robust and q.version("region") is None and self.index is not None,
             lambda q, inputs: _centre_crops(self.matcher, q, inputs)),
            # a copy turned 4.5-16 degrees in its own frame (vscan.runtime.rotation_search)
            ("match_rotation", lambda q: q.robust and pixels, lambda q, inputs: _rotation(self.matcher, q, inputs)),
            # candidate regions placed against the bank (vscan.runtime.region_search)
            ("match_regions", lambda q: q.robust and pixels, lambda q, inputs: _regions(self.matcher, q, inputs)),
            # a crop keeping 70% of each side, off-centre (vscan.runtime.offcentre), where the bank has grid rows; also where
            # region search found a region that matched nothing (a test pattern's own boxes): the window takes its place
            ("match_offcentre", lambda q: self._searches_offcentre() and len(q.frames) >= 2,
             lambda q, inputs: _offcentre(self.matcher, q, inputs)),
        )  # fmt: skip

    def _burst_rows(self, inputs: FileInputs, query: FileQuery) -> np.ndarray | None:
        """The query's rows that a short file's burst added against a ``--rows sparse`` bank (vscan.decode.spread.burst_rows:
        every frame of half a second, there to land one on an entry's tick for the plain match), which the searches leave
        out (1,000 unrelated files: each search ran over 15 frames more in 589 of them); None: none (or a version whose
        rows are not the frames', a still's windows)."""
        from vscan.decode.spread import burst_rows

        rows = burst_rows(self.config.sampling.policy, query.frames.hashes.timestamps_seconds, inputs.duration_seconds)
        if rows is None or any(len(v) != len(query.frames) for v in query.versions):
            return None
        return rows

    def _searches_offcentre(self) -> bool:
        if not self.offcentre:
            return False  # it cuts windows out of the pixels, which a hash store does not keep
        from vscan.runtime.offcentre import has_grid_rows

        m = self.config.matching
        return self.index is not None and m.mode == "robust" and m.offcentre and has_grid_rows(self.index)


def _rows_kept(query: FileQuery, keep: np.ndarray) -> FileQuery:
    """``query`` with only its rows where ``keep`` (every version's rows are the frames': ``FileMatcher._burst_rows``)."""
    from vscan.hashing.vpdq import FrameHashes

    def kept(v):
        h = v.hashes
        box = v.box[keep] if v.box is not None and np.ndim(v.box) == 2 and len(v.box) == len(keep) else v.box
        return replace(v, hashes=FrameHashes(h.frame_numbers[keep], h.timestamps_seconds[keep], h.qualities[keep], h.hashes[keep]),
                       variants=None if v.variants is None else v.variants[keep], rows=None, box=box)  # fmt: skip

    return FileQuery(tuple(kept(v) for v in query.versions), query.digests, query.duration_seconds)


def _centre_crops(matcher: Matcher, query: FileQuery, inputs: FileInputs):
    from vscan.bank.query_side import find_centre_crops

    return find_centre_crops(matcher, query, inputs.frames, inputs.source_size)


def _rotation(matcher: Matcher, query: FileQuery, inputs: FileInputs):
    from vscan.runtime.rotation_search import find_rotation

    return find_rotation(matcher, query, inputs.frames, inputs.source_size)


def _regions(matcher: Matcher, query: FileQuery, inputs: FileInputs):
    from vscan.runtime.region_search import find_regions

    return find_regions(matcher, query, inputs.frames, inputs.source_size)


def _offcentre(matcher: Matcher, query: FileQuery, inputs: FileInputs):
    from vscan.runtime.offcentre import find_offcentre

    return find_offcentre(matcher, query, inputs.frames, inputs.source_size, inputs.border_box)

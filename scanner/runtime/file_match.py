"""The model stage's matching of one hashed file against the bank.

``FileMatcher`` holds a scan's matching settings and its bank index; the
model actor (vscan.runtime.model_actor), ``vscan rematch`` and ``--allow``
(vscan.runtime.hashed_matcher) hand it a file's hashed frame sets. What the
matcher reads of the decode payload dict is read in one place,
``file_inputs``: everything after it works on ``FileInputs``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from vscan.config import ScanConfig

__all__ = ["FileInputs", "FileMatcher", "file_inputs"]


@dataclass
class FileInputs:
    """One decoded, hashed file as the matcher takes it. ``query``: FrameHashes
    of the sampled frames, ``variants`` [N, 8, 32] their dihedral hashes;
    ``unbordered``: (FrameHashes, variants, border box) with the borders
    removed; ``unoverlaid``: (FrameHashes, variants) with a static overlay
    filled; ``region``: (FrameHashes, variants, boxes as fractions) of an inset
    picture; ``frames``: the sampled square frames (the off-centre search cuts
    windows out of them); ``duration_seconds``: None when unknown."""

    query: Any
    variants: np.ndarray
    unbordered: tuple | None
    unoverlaid: tuple | None
    region: tuple | None
    duration_seconds: float | None
    sha1: str | None
    frames: np.ndarray | None
    frames_sampled: int


def file_inputs(payload: dict[str, np.ndarray], hashed: dict[str, tuple[np.ndarray, np.ndarray]]) -> FileInputs:
    """The one reader of the decode payload dict: its frame numbers, times,
    border box, region box and rows, duration, SHA-1 and frames, with the
    hashed sets (``frames`` and, when present, ``unbordered_frames`` /
    ``unoverlaid_frames`` / ``region_frames``: (variants, quality))."""
    from vscan.frames.regions import region_version
    from vscan.hashing.vpdq import FrameHashes

    numbers, times = payload["frame_numbers"], payload["timestamps"]

    def frame_hashes(kind: str):
        variants, quality = hashed[kind]
        return FrameHashes(numbers, times, quality, np.ascontiguousarray(variants[:, 0])), variants

    query, variants = frame_hashes("frames")
    unbordered = None
    if "unbordered_frames" in hashed:
        unbordered = (*frame_hashes("unbordered_frames"), payload.get("border_box"))
    unoverlaid = frame_hashes("unoverlaid_frames") if "unoverlaid_frames" in hashed else None
    frames = payload.get("frames")
    region = None
    if "region_frames" in hashed:  # vscan.frames.regions: (FrameHashes, variants, boxes as fractions of the frame) of the inset picture
        region = region_version(numbers, times, frames.shape[1:3], payload["region_box"], payload.get("region_rows"), *hashed["region_frames"])
    return FileInputs(
        query=query,
        variants=variants,
        unbordered=unbordered,
        unoverlaid=unoverlaid,
        region=region,
        duration_seconds=float(payload.get("duration_seconds", 0.0)) or None,  # 0: unknown (the matcher then uses the median gap)
        sha1=str(payload["sha1"]) if "sha1" in payload else None,  # SHA-1-only bank entries (VICS, NCMEC lists)
        frames=frames,
        frames_sampled=len(numbers),
    )


class FileMatcher:
    """Matches hashed files against one bank index (a loaded BankIndex, a
    MappedBank, or None: no bank) under a scan's matching settings."""

    def __init__(self, config: ScanConfig, index: Any, *, offcentre: bool = True) -> None:
        """``offcentre``: False where the frames' pixels are not at hand (hash stores)."""
        self.config = config
        self.index = index
        self.offcentre = offcentre

    def file_result(
        self, payload: dict[str, np.ndarray], hashed: dict[str, tuple[np.ndarray, np.ndarray]], sha256: str | None, md5: str | None
    ) -> dict[str, Any]:
        """One file's matches from its hashed frame sets: ``qualities``,
        ``matches``, ``timings``, ``frames_sampled`` and, for a bank with
        disabled entries, ``skipped_disabled``."""
        t0 = time.perf_counter()
        f = file_inputs(payload, hashed)
        query, variants, unbordered, unoverlaid = f.query, f.variants, f.unbordered, f.unoverlaid
        duration, sha1 = f.duration_seconds, f.sha1
        narrowing = [0.0]  # seconds narrowing a memory-mapped bank to the file's candidates (each version tried)

        def match_with(version):  # (this matcher, or for a memory-mapped bank a copy holding only the file's candidate entries; matches)
            t_narrow = time.perf_counter()
            m = self._for_file(query, variants, unbordered, unoverlaid, version, sha256, md5, sha1)
            narrowing[0] += time.perf_counter() - t_narrow
            return m, m._match(query, variants, sha256, md5, unbordered=unbordered, unoverlaid=unoverlaid, duration_seconds=duration,
                               sha1=sha1, region=version)  # fmt: skip

        region = f.region
        matcher, matches = match_with(region)
        if region is None and self._searches_offcentre() and len(query) >= 2 and not any(m.is_match for m in matches):
            from vscan.runtime.offcentre import find_offcentre  # a crop keeping 70% of each side, off-centre

            t_off = time.perf_counter()
            found = find_offcentre(self, f.frames, query, variants, match_with)
            offcentre = time.perf_counter() - t_off
            if found is not None:
                region, (matcher, matches) = found
        else:
            offcentre = 0.0  # skipped: the plain match decided, or there is a region, or no grid rows
        # match: the whole of it; its parts (issue #30: per-file model-side costs, vscan.bench.bench_pipeline)
        timings = {"match": time.perf_counter() - t0, "match_narrow": narrowing[0], "match_offcentre": offcentre}
        result = {"qualities": query.qualities, "matches": matches, "timings": timings}
        if matcher.index is not None and matcher.index.disabled is not None:  # entries disabled in the bank (vscan.bank.updates)
            result["skipped_disabled"] = matcher._skipped_disabled(query, variants, sha256, md5, unbordered=unbordered, unoverlaid=unoverlaid,
                                                                 duration_seconds=duration, sha1=sha1, region=region)  # fmt: skip
        result["frames_sampled"] = f.frames_sampled  # distinct frames hashed: two passes' shared frames count once
        return result

    def _match(self, query, variants: np.ndarray, sha256: str | None, md5: str | None, unbordered=None, unoverlaid=None,
               duration_seconds: float | None = None, sha1: str | None = None, region=None) -> list:  # fmt: skip
        """Exact digest hits first (one per entry, SHA-256 preferred), then perceptual matches.
        ``duration_seconds``: the file's, so the last sample counts until the
        file's end (matched seconds exact, never past the duration).

        Robust mode matches all 8 dihedral ``variants`` [N, 8, 32] and, for a
        file with borders, ``unbordered`` = (FrameHashes, variants, border box)
        of the same samples with the borders removed, and for a file with a
        static overlay ``unoverlaid`` = (FrameHashes, variants) of the samples
        with it filled (vscan.frames.overlays, vscan.bank.match)."""
        if self.index is None:
            return []
        from vscan.bank.match import match_digests, match_frames

        matches, seen = [], set()
        for hit in match_digests(sha256, md5, self.index, sha1=sha1):
            if hit.bank_entry_id not in seen:
                seen.add(hit.bank_entry_id)
                matches.append(hit)
        if len(query):
            matches += match_frames(
                query,
                self.index,
                min_quality=self.config.matching.min_quality,
                distance_threshold=self.config.matching.distance_threshold,
                duration_seconds=duration_seconds,
                **self._robust_args(variants, unbordered, unoverlaid, region),
            )
        return matches

    def _for_file(self, query, variants, unbordered, unoverlaid, region, sha256, md5, sha1) -> "FileMatcher":
        """This matcher, or for a memory-mapped bank a copy whose index holds only the entries the file can match."""
        from vscan.bank.mapped import MappedBank, narrow_for_file

        if not isinstance(self.index, MappedBank):
            return self
        robust = self.config.matching.mode == "robust"
        versions = [v[:2] for v in (unbordered, region) if v is not None] if robust else []
        matcher = copy.copy(self)
        matcher.index = narrow_for_file(self.index, query, variants if robust else None, min_quality=self.config.matching.min_quality,
                                        distance_threshold=self.config.matching.distance_threshold, versions=versions,
                                        overlaid=unoverlaid if robust else None,
                                        digests=[("sha256", sha256), ("md5", md5), ("sha1", sha1)])  # fmt: skip
        return matcher

    def _skipped_disabled(self, *args, **kwargs) -> list[str]:
        """The disabled bank entries the file would have matched: the same match against them alone."""
        alone = copy.copy(self)
        alone.index = self.index.disabled
        return sorted({m.bank_entry_id for m in alone._match(*args, **kwargs) if m.is_match})

    def _robust_args(self, variants: np.ndarray, unbordered, unoverlaid=None, region=None) -> dict[str, Any]:
        if self.config.matching.mode != "robust":
            return {}
        from vscan.frames.borders import box_kind

        args: dict[str, Any] = {"variants": variants}
        if unbordered is not None:
            args.update(unbordered=unbordered[0], unbordered_variants=unbordered[1], border_kind=box_kind(unbordered[2]))
        if unoverlaid is not None:
            args.update(unoverlaid=unoverlaid[0], unoverlaid_variants=unoverlaid[1])
        if region is not None:
            args.update(region=region[0], region_variants=region[1], region_box=region[2])
            if len(region) > 3:  # vscan.runtime.offcentre: its path name and the frames it needs
                args.update(region_name=region[3], region_min_frames=region[4])
        return args

    def _searches_offcentre(self) -> bool:
        if not self.offcentre:
            return False  # it cuts windows out of the pixels, which a hash store does not keep
        from vscan.runtime.offcentre import has_grid_rows

        m = self.config.matching
        return self.index is not None and m.mode == "robust" and m.offcentre and has_grid_rows(self.index)

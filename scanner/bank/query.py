"""What the matcher takes: one file's query versions and its settings.

A file is searched as several versions of its sampled frames: as decoded
(``frames``), with its borders removed (``unbordered``), with a static
overlay filled (``unoverlaid``) and the inset picture region search found,
a still's small windows or the off-centre window (``region``). Each is a
``QueryVersion``; ``FileQuery`` holds them with the file's digests and
duration, and ``vscan.bank.matcher.Matcher`` matches it against a bank.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from vscan.bank.prepared import SearchMethod
from vscan.errors import ConfigError
from vscan.hashing.vpdq import FrameHashes

__all__ = ["VersionKind", "QueryVersion", "FileQuery", "MatchSettings", "VERSION_ORDER"]

VersionKind = Literal["frames", "unbordered", "unoverlaid", "region"]
#: The order versions are searched in (and their query rows numbered): the robust matcher's prep codes 0..3.
VERSION_ORDER: tuple[VersionKind, ...] = ("frames", "unbordered", "unoverlaid", "region")


@dataclass(frozen=True)
class MatchSettings:
    """The matcher's rules (``vscan.bank.match`` for vPDQ's, ``vscan.bank.robust`` for the rest).
    ``overlay_distance_threshold``: overlay-filled rows are searched this far, and count beyond
    ``distance_threshold`` only towards the alignment; ``window_max_distance``: each of a still's
    windows must be this close; ``short_*``: a run shorter than ``align_min_seconds`` still decides
    when every frame is close (``vscan.bank.short``)."""

    min_quality: int = 50
    distance_threshold: int = 31
    min_query_pct: float = 0.0
    match_query_pct: float = 80.0
    match_compared_pct: float = 80.0
    method: SearchMethod = "auto"
    blocking_min_hashes: int = 50_000
    device: str | None = None
    overlay_distance_threshold: int = 40
    align_min_seconds: float = 5.0
    align_min_frames: int = 4
    short_min_seconds: float = 2.5
    short_max_distance: int = 20
    window_max_distance: int = 16

    def __post_init__(self) -> None:
        if not 0 <= self.distance_threshold <= 256:
            raise ConfigError(f"Invalid distance_threshold ({self.distance_threshold}). Supported values are 0..256")
        if not 0 <= self.min_quality <= 100:
            raise ConfigError(f"Invalid min_quality ({self.min_quality}). Supported values are 0..100")

    def radius(self, version: "QueryVersion") -> int:
        """How far ``version``'s rows are searched: its own radius, else the threshold
        (an overlay-filled version: the looser overlay threshold, when looser)."""
        if version.radius is not None:
            return version.radius
        if version.kind == "unoverlaid":
            return max(self.distance_threshold, self.overlay_distance_threshold)
        return self.distance_threshold


@dataclass(frozen=True)
class QueryVersion:
    """One version of the file's sampled frames. ``hashes``: FrameHashes of its
    rows; ``variants``: uint8 [K, 8, 32] their dihedral hashes (None: vPDQ,
    the as-decoded hash only); ``rows``: the sample of the file each row is
    (filled in by ``FileQuery``); ``box``: where a region sits, as fractions of
    the frame (top, bottom, left, right), one box or one per row;
    ``border_kind``: the borders removed (letterbox, pillarbox, ...);
    ``name``: the path its matches say (default: the kind's own); ``radius``:
    None for the settings'; ``min_frames``: frames a match through this
    version needs (the off-centre window: ``vscan.frames.regions.MIN_FRAMES``)."""

    kind: VersionKind
    hashes: FrameHashes
    variants: np.ndarray | None = None
    rows: np.ndarray | None = None
    box: np.ndarray | None = None
    border_kind: str | None = None
    name: str | None = None
    radius: int | None = None
    min_frames: int = 0

    def __len__(self) -> int:
        return len(self.hashes)


def _rows_of(version: QueryVersion, frames: FrameHashes) -> np.ndarray:
    """Which of the file's samples each row of ``version`` is (checked)."""
    n = len(frames)
    if version.kind == "region" and len(version) != n:  # a still's windows: any rows, each naming its sample
        rows = np.searchsorted(frames.frame_numbers, version.hashes.frame_numbers)
        if rows.size and (rows.max() >= n or (frames.frame_numbers[np.minimum(rows, n - 1)] != version.hashes.frame_numbers).any()):
            raise ValueError("region rows must name frames of the query")
        return rows
    if len(version) != n:
        raise ValueError(f"{version.kind} rows must match the query's {n} frames, got {len(version)}")
    return np.arange(n)


@dataclass(frozen=True)
class FileQuery:
    """One file for the matcher: its ``versions`` (kept in ``VERSION_ORDER``:
    first ``frames``, the file as decoded, which every query has), its file digests
    (algorithm -> hex: sha256, md5, sha1; exact hits come first) and
    ``duration_seconds`` (the last sample shows until then; None: unknown)."""

    versions: tuple[QueryVersion, ...]
    digests: dict[str, str | None] = field(default_factory=dict)
    duration_seconds: float | None = None

    def __post_init__(self) -> None:
        kinds = [v.kind for v in self.versions]
        if "frames" not in kinds:
            raise ValueError("a FileQuery needs its frames as decoded (a version of kind 'frames')")
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"one version per kind, got {kinds}")
        ordered = tuple(sorted(self.versions, key=lambda v: VERSION_ORDER.index(v.kind)))
        frames = ordered[0]
        n = len(frames)
        if frames.variants is not None and (frames.variants.shape != (n, 8, 32) or frames.variants.dtype != np.uint8):
            raise ValueError(f"variants must be uint8 [{n}, 8, 32], got {frames.variants.dtype} {frames.variants.shape}")
        checked = [replace(frames, rows=np.arange(n))]
        for v in ordered[1:]:
            if v.variants is not None and v.variants.shape != (len(v), 8, 32):
                raise ValueError(f"{v.kind} variants must be [{len(v)}, 8, 32], got {v.variants.shape}")
            checked.append(replace(v, rows=_rows_of(v, frames.hashes)))
        object.__setattr__(self, "versions", tuple(checked))

    @property
    def frames(self) -> QueryVersion:
        return self.versions[0]

    @property
    def robust(self) -> bool:
        """Whether it is matched robustly (dihedral variants given), else as vPDQ does."""
        return self.frames.variants is not None

    def version(self, kind: VersionKind) -> QueryVersion | None:
        return next((v for v in self.versions if v.kind == kind), None)

    def with_version(self, version: QueryVersion) -> "FileQuery":
        """The same file with ``version`` added, or in place of the one of its kind."""
        return replace(self, versions=tuple(v for v in self.versions if v.kind != version.kind) + (version,))

    @classmethod
    def plain(cls, hashes: FrameHashes, *, digests: dict[str, str | None] | None = None, duration_seconds: float | None = None) -> "FileQuery":
        """vPDQ: the frames as decoded, no variants."""
        return cls((QueryVersion("frames", hashes),), digests or {}, duration_seconds)

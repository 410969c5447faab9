"""Hash one media file: decode and sample, then PDQ every sampled frame.

This is the in-process path used by ``vscan hash`` and ``vscan bank
build``; the scan pipeline runs the same two stages split across Ray
workers (decode) and the model actor (hash).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from vscan.frames.borders import BorderBox, detect_borders
from vscan.frames.windows import window
from vscan.decode import FixedRate, SamplingPolicy, VideoMetadata, open_decoder
from vscan.hashing.vpdq import ExtraHashes, FrameHashes
from vscan.hashing.pdq import PDQHasher

__all__ = ["MediaHashes", "hash_media"]


@dataclass(frozen=True)
class MediaHashes:
    """Hashes of one file's sampled frames.

    ``frames`` holds the original-orientation hash per sampled frame;
    ``variants`` the 8 dihedral variants, uint8 [N, 8, 32].
    """

    metadata: VideoMetadata
    frames: FrameHashes
    variants: np.ndarray
    #: Extra rows for a bank (``borders=True`` / ``crops``): the same frames
    #: with borders removed and centre-cropped; None when none were asked for.
    extra: ExtraHashes | None = None
    border_box: BorderBox | None = None

    def __post_init__(self) -> None:
        if self.variants.shape != (len(self.frames), 8, 32):
            raise ValueError(f"Expected variants [{len(self.frames)}, 8, 32], got {self.variants.shape}")


def hash_media(
    path: str | os.PathLike,
    policy: SamplingPolicy,
    *,
    hasher: PDQHasher,
    backend: Literal["auto", "decord", "pyav"] = "auto",
    max_side: int | None = None,
    batch_size: int = 64,
    borders: bool = False,
    crops: Sequence[float] = (),
    windows: Sequence[str] = (),
    grid_windows: Sequence[str] = (),
    grid_fps: float = 4.0,
) -> MediaHashes:
    """Decode ``path`` with ``policy`` and hash every sampled frame.

    ``frames`` and ``variants`` always hash the frames as decoded (vPDQ
    conformance). For banks, ``borders=True`` detects the file's border box
    (``vscan.frames.borders``, on frames spread over the whole file) and, when there
    is one, adds rows of the frames without it (prep ``borders``); ``crops``
    adds centre crops keeping that share of each side (prep ``crop0.90``, of
    the unbordered picture: ``borders+crop0.90``); ``windows`` adds the
    re-post windows of ``vscan.frames.windows`` (prep ``window:strip916``, ...);
    ``grid_windows`` adds its grid windows (prep ``window:g60:10,20``) for at
    most ``grid_fps`` frames a second (the first frame of each 1 / grid_fps s).
    """
    if any(not 0.3 <= c < 1.0 for c in crops):
        raise ValueError(f"Invalid crops ({list(crops)}). Supported values are in [0.3, 1).")
    decoder = open_decoder(path, backend)
    metadata = decoder.probe(path)
    box = None
    if borders:
        rate = min(2.0, 48.0 / max(float(metadata.duration_seconds or 0.0), 1.0))
        probe = [b.rgb for b in decoder.iter_frames(path, FixedRate(rate), batch_size=batch_size, max_side=max_side)]
        box = detect_borders(np.concatenate(probe)) if probe and sum(map(len, probe)) else None
    numbers, times, qualities, hashes = [], [], [], []
    extra_numbers, extra_preps, extra_qualities, extra_hashes = [], [], [], []
    last_bucket = -np.inf
    for batch in decoder.iter_frames(path, policy, batch_size=batch_size, max_side=max_side):
        result = hasher.hash_frames(batch.rgb)
        numbers.append(batch.frame_indices)
        times.append(batch.pts_seconds)
        qualities.append(result.quality)
        hashes.append(result.hashes)
        base, prefix = batch.rgb, ""
        if box is not None and not box.is_empty and batch.rgb.shape[1:3] == (box.height, box.width):
            base, prefix = box.apply(batch.rgb), "borders+"
            preps = [("borders", base)]
        else:
            preps = []
        for scale in crops:
            h, w = base.shape[1:3]
            dy, dx = int(round(h * (1 - scale) / 2)), int(round(w * (1 - scale) / 2))
            preps.append((f"{prefix}crop{scale:.3f}", np.ascontiguousarray(base[:, dy : h - dy, dx : w - dx])))
        for name in windows:
            part = window(base, name)
            if part is not None:
                preps.append((f"{prefix}window:{name}", part))
        rows = [np.arange(len(batch.rgb))] * len(preps)
        if grid_windows:
            buckets = np.floor(np.asarray(batch.pts_seconds, np.float64) * grid_fps)
            first = buckets > np.maximum.accumulate(np.concatenate(([last_bucket], buckets[:-1])))
            last_bucket = max(last_bucket, float(buckets.max())) if buckets.size else last_bucket
            if first.any():
                for name in grid_windows:
                    part = window(base[first], name)
                    if part is not None:
                        preps.append((f"{prefix}window:{name}", part))
                        rows.append(np.flatnonzero(first))
        for (name, rgb), picked in zip(preps, rows):
            extra = hasher.hash_frames(rgb)
            extra_numbers.append(batch.frame_indices[picked])
            extra_preps += [name] * len(rgb)
            extra_qualities.append(extra.quality)
            extra_hashes.append(extra.hashes[:, 0])
    if hashes:
        variants = np.concatenate(hashes)
        frames = FrameHashes(
            frame_numbers=np.concatenate(numbers).astype(np.int64),
            timestamps_seconds=np.concatenate(times).astype(np.float64),
            qualities=np.concatenate(qualities).astype(np.int32),
            hashes=np.ascontiguousarray(variants[:, 0]),
        )
    else:
        variants = np.zeros((0, 8, 32), np.uint8)
        frames = FrameHashes.empty()
    extra = None
    if borders or crops or windows or grid_windows:
        extra = ExtraHashes(
            frame_numbers=np.concatenate(extra_numbers).astype(np.int64) if extra_numbers else np.zeros(0, np.int64),
            preps=tuple(extra_preps),
            qualities=np.concatenate(extra_qualities).astype(np.int32) if extra_qualities else np.zeros(0, np.int32),
            hashes=np.concatenate(extra_hashes) if extra_hashes else np.zeros((0, 32), np.uint8),
        )
    return MediaHashes(metadata=metadata, frames=frames, variants=variants, extra=extra, border_box=box)

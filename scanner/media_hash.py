"""Hash one media file: decode and sample, then PDQ every sampled frame.

This is the in-process path used by ``vscan hash`` and ``vscan bank
build``; the scan pipeline runs the same two stages split across Ray
workers (decode) and the model actor (hash).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np

from scanner.decode import SamplingPolicy, VideoMetadata, open_decoder
from scanner.hashes import FrameHashes
from scanner.hashing import PDQHasher

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
) -> MediaHashes:
    """Decode ``path`` with ``policy`` and hash every sampled frame."""
    decoder = open_decoder(path, backend)
    metadata = decoder.probe(path)
    numbers, times, qualities, hashes = [], [], [], []
    for batch in decoder.iter_frames(path, policy, batch_size=batch_size, max_side=max_side):
        result = hasher.hash_frames(batch.rgb)
        numbers.append(batch.frame_indices)
        times.append(batch.pts_seconds)
        qualities.append(result.quality)
        hashes.append(result.hashes)
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
    return MediaHashes(metadata=metadata, frames=frames, variants=variants)

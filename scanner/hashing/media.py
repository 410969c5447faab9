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
from vscan.frames.prepare import iter_prepared, prepared_decoder
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
    frame_side: int | None = None,
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

    ``frame_side``: hash ``frames`` as a scan prepares them (vscan.frames.prepare:
    decoded straight to that square, PyAV for videos), so a byte-identical copy
    scanned later meets them at distance 0; the extra rows then come from a
    second decode at ``max_side``. None: the frames as decoded at ``max_side``
    (full size by default: the reference vPDQ's preparation).
    """
    if any(not 0.3 <= c < 1.0 for c in crops):
        raise ValueError(f"Invalid crops ({list(crops)}). Supported values are in [0.3, 1).")
    decoder = prepared_decoder(path, backend) if frame_side else open_decoder(path, backend)
    metadata = decoder.probe(path)
    box = None
    if borders:
        rate = min(2.0, 48.0 / max(float(metadata.duration_seconds or 0.0), 1.0))
        probe = [b.rgb for b in decoder.iter_frames(path, FixedRate(rate), batch_size=batch_size, max_side=max_side)]
        box = detect_borders(np.concatenate(probe)) if probe and sum(map(len, probe)) else None
    numbers, times, qualities, hashes = [], [], [], []
    extras = _ExtraRows(box, crops, windows, grid_windows, grid_fps)
    wants_extra = bool(borders or crops or windows or grid_windows)
    if frame_side:
        batches = iter_prepared(decoder, path, policy, side_px=frame_side, batch_size=batch_size)
    else:
        batches = decoder.iter_frames(path, policy, batch_size=batch_size, max_side=max_side)
    for batch in batches:
        result = hasher.hash_frames(batch.rgb)
        numbers.append(batch.frame_indices)
        times.append(batch.pts_seconds)
        qualities.append(result.quality)
        hashes.append(result.hashes)
        if wants_extra and not frame_side:
            extras.add(batch, hasher)
    if wants_extra and frame_side:  # the extra rows' geometry (rotations, crops) needs the frame's own aspect
        for batch in decoder.iter_frames(path, policy, batch_size=batch_size, max_side=max_side):
            extras.add(batch, hasher)
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
    extra = extras.result() if wants_extra else None
    return MediaHashes(metadata=metadata, frames=frames, variants=variants, extra=extra, border_box=box)


class _ExtraRows:
    """A bank's extra rows (borders removed, centre crops, re-post and grid windows), batch by batch."""

    def __init__(self, box: BorderBox | None, crops: Sequence[float], windows: Sequence[str], grid_windows: Sequence[str],
                 grid_fps: float) -> None:  # fmt: skip
        self.box, self.crops, self.windows, self.grid_windows, self.grid_fps = box, crops, windows, grid_windows, grid_fps
        self.numbers: list[np.ndarray] = []
        self.preps: list[str] = []
        self.qualities: list[np.ndarray] = []
        self.hashes: list[np.ndarray] = []
        self.last_bucket = -np.inf

    def add(self, batch, hasher: PDQHasher) -> None:
        box = self.box
        base, prefix = batch.rgb, ""
        if box is not None and not box.is_empty and batch.rgb.shape[1:3] == (box.height, box.width):
            base, prefix = box.apply(batch.rgb), "borders+"
            preps = [("borders", base)]
        else:
            preps = []
        for scale in self.crops:
            h, w = base.shape[1:3]
            dy, dx = int(round(h * (1 - scale) / 2)), int(round(w * (1 - scale) / 2))
            preps.append((f"{prefix}crop{scale:.3f}", np.ascontiguousarray(base[:, dy : h - dy, dx : w - dx])))
        for name in self.windows:
            part = window(base, name)
            if part is not None:
                preps.append((f"{prefix}window:{name}", part))
        rows = [np.arange(len(batch.rgb))] * len(preps)
        if self.grid_windows:
            buckets = np.floor(np.asarray(batch.pts_seconds, np.float64) * self.grid_fps)
            first = buckets > np.maximum.accumulate(np.concatenate(([self.last_bucket], buckets[:-1])))
            self.last_bucket = max(self.last_bucket, float(buckets.max())) if buckets.size else self.last_bucket
            if first.any():
                for name in self.grid_windows:
                    part = window(base[first], name)
                    if part is not None:
                        preps.append((f"{prefix}window:{name}", part))
                        rows.append(np.flatnonzero(first))
        for (name, rgb), picked in zip(preps, rows):
            extra = hasher.hash_frames(rgb)
            self.numbers.append(batch.frame_indices[picked])
            self.preps += [name] * len(rgb)
            self.qualities.append(extra.quality)
            self.hashes.append(extra.hashes[:, 0])

    def result(self) -> ExtraHashes:
        return ExtraHashes(
            frame_numbers=np.concatenate(self.numbers).astype(np.int64) if self.numbers else np.zeros(0, np.int64),
            preps=tuple(self.preps),
            qualities=np.concatenate(self.qualities).astype(np.int32) if self.qualities else np.zeros(0, np.int32),
            hashes=np.concatenate(self.hashes) if self.hashes else np.zeros((0, 32), np.uint8),
        )

"""Hash one media file: decode and sample, then PDQ every sampled frame.

This is the in-process path used by ``vscan hash`` and ``vscan bank
build``; the scan pipeline runs the same two stages split across Ray
workers (decode) and the model actor (hash).
"""

from __future__ import annotations

import functools
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
        rgb, box = batch.rgb, self.box
        y, x, prefix = 0, 0, ""
        h, w = rgb.shape[1:3]
        # (prep, frames: None every frame of the batch or the grid's, where its pixels are: (y0, x0, h, w) of the batch's
        # frames, or None: its own pixels (a turned copy), cut from ``base``)
        preps: list[tuple[str, "np.ndarray | None", "tuple[int, int, int, int] | None"]] = []
        if box is not None and not box.is_empty and rgb.shape[1:3] == (box.height, box.width):
            y, x, h, w, prefix = box.top, box.left, h - box.top - box.bottom, w - box.left - box.right, "borders+"
            preps.append(("borders", None, (y, x, h, w)))
        for scale in self.crops:
            dy, dx = int(round(h * (1 - scale) / 2)), int(round(w * (1 - scale) / 2))
            preps.append((f"{prefix}crop{scale:.3f}", None, (y + dy, x + dx, h - 2 * dy, w - 2 * dx)))
        for name in self.windows:
            if (at := _window_at(h, w, name)) is not False:
                preps.append((f"{prefix}window:{name}", None, at and (y + at[0], x + at[1], at[2], at[3])))
        if self.grid_windows:
            buckets = np.floor(np.asarray(batch.pts_seconds, np.float64) * self.grid_fps)
            first = buckets > np.maximum.accumulate(np.concatenate(([self.last_bucket], buckets[:-1])))
            self.last_bucket = max(self.last_bucket, float(buckets.max())) if buckets.size else self.last_bucket
            if first.any():
                picked = np.flatnonzero(first)
                for name in self.grid_windows:
                    if (at := _window_at(h, w, name)) is not False:
                        preps.append((f"{prefix}window:{name}", picked, at and (y + at[0], x + at[1], at[2], at[3])))
        for (name, picked, _), extra in zip(preps, _hash_preps(rgb, preps, hasher, (y, x, h, w))):
            self.numbers.append(batch.frame_indices[slice(None) if picked is None else picked])
            self.preps += [name] * len(extra.quality)
            self.qualities.append(extra.quality)
            self.hashes.append(extra.hashes[:, 0])

    def result(self) -> ExtraHashes:
        return ExtraHashes(
            frame_numbers=np.concatenate(self.numbers).astype(np.int64) if self.numbers else np.zeros(0, np.int64),
            preps=tuple(self.preps),
            qualities=np.concatenate(self.qualities).astype(np.int32) if self.qualities else np.zeros(0, np.int32),
            hashes=np.concatenate(self.hashes) if self.hashes else np.zeros((0, 32), np.uint8),
        )


@functools.lru_cache(maxsize=1024)
def _window_at(h: int, w: int, name: str) -> "tuple[int, int, int, int] | None | bool":
    """Where ``vscan.frames.windows.window(frames, name)`` cuts h x w frames: (y0, x0, h, w); None where it makes its own
    pixels (a turned copy); False where it does not apply. Read off the window of a grid of the pixels' own places."""
    if name.startswith("rot"):  # vscan.frames.windows.rotate_crop: always a window, of its own pixels
        return None
    places = np.stack(np.mgrid[0:h, 0:w], axis=-1).astype(np.int32)[None]
    part = window(places, name)
    if part is None:
        return False
    y0, x0 = (int(v) for v in part[0, 0, 0])
    ph, pw = part.shape[1:3]
    if not np.array_equal(part[0], places[0, y0 : y0 + ph, x0 : x0 + pw]):
        return None
    return y0, x0, ph, pw


def _hash_preps(rgb: np.ndarray, preps: list, hasher, at: tuple[int, int, int, int]) -> list:
    """Each prep's ``HashBatch`` (``_ExtraRows.add``): the windows of the batch's frames through the hasher's
    ``hash_boxes`` (``vscan.bank.banded_hash``: each frame's luma once for all its windows) where it has one, else each
    window's pixels through ``hash_frames``, as the turned copies (cut from the picture inside the borders, ``at``)."""
    out: list = [None] * len(preps)
    hash_boxes = getattr(hasher, "hash_boxes", None)
    if hash_boxes is not None:
        for grid in (False, True):
            todo = [i for i, (_, picked, box) in enumerate(preps) if box is not None and (picked is not None) == grid]
            if todo:
                picked = preps[todo[0]][1]
                got = hash_boxes(rgb if picked is None else rgb[picked], [preps[i][2] for i in todo])
                for i, result in zip(todo, got or ()):
                    out[i] = result
    y, x, h, w = at
    base = None
    turned = [i for i, (name, picked, box) in enumerate(preps) if out[i] is None and box is None and picked is None and "window:rot" in name]
    if turned and getattr(hasher, "hash_turned", None) is not None:  # vscan.bank.banded_hash: their luma, every turn at once
        got = hasher.hash_turned(rgb[:, y : y + h, x : x + w], [float(preps[i][0].split("window:rot", 1)[1]) for i in turned])
        for i, result in zip(turned, got or ()):
            out[i] = result
    for i, (name, picked, box) in enumerate(preps):
        if out[i] is not None:
            continue
        frames = rgb if picked is None else rgb[picked]
        if box is not None:
            out[i] = hasher.hash_frames(np.ascontiguousarray(frames[:, box[0] : box[0] + box[2], box[1] : box[1] + box[3]]))
        else:
            if base is None:
                base = np.ascontiguousarray(rgb[:, y : y + h, x : x + w])
            out[i] = hasher.hash_frames(window(base if picked is None else base[picked], name.split("window:", 1)[1]))
    return out

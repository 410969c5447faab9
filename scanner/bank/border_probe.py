"""A reported video's border box for a bank build (``vscan.bank.one_pass``): on keyframes spread over the file
(they decode alone), or, where the file has too few, on frames of the build's own pass, the extra rows' 512 px
pictures held until its end (``Held``)."""

from __future__ import annotations

import math
import os

import numpy as np

from vscan.decode import FixedRate, SamplingPolicy
from vscan.decode.base import output_size
from vscan.decode.metadata import VideoMetadata
from vscan.decode.pyav_backend import PyAVDecoder
from vscan.decode.sampling import FrameList
from vscan.frames.borders import BorderBox, detect_borders
from vscan.bank.pictures import Pictures

__all__ = ["BORDER_PROBE_FRAMES", "MIN_PROBE_KEYFRAMES", "DEFER_MAX_SECONDS", "FULL_DEFER_MAX_BYTES", "TAIL_SHARE", "Ticks", "Held", "defers", "keyframe_box"]

#: Frames the border box is found on (as ``hash_media``'s probe: at most 48, spread over the file).
BORDER_PROBE_FRAMES = 48
#: Fewer keyframes than this: the box is found on frames of the pass itself (``defers``); a box
#: found on 2 keyframes of a 4 s sample video took its dark sides for borders.
MIN_PROBE_KEYFRAMES = 8
#: ... for files up to this long (their extra rows' 512 px frames are held until the pass ends:
#: ~120 frames of ~0.45 MiB at one extra-row frame and one grid frame every 2 s).
DEFER_MAX_SECONDS = 120.0
#: ``--rows full`` (every frame's extra rows) holds every frame's 512 px luma picture instead, so only files
#: whose pictures take at most this much are found on the pass itself (a 12 s 640x360 clip at 25 fps: 42 MiB);
#: a longer one with few keyframes decodes a second time for its probe, as before. Same box, same rows
#: (``tests/test_bank_one_pass.py``); the second decode was ~10% of a full build's CPU on the bench's
#: files (3 of its 4 have under 8 keyframes: the real samples of 4-7 s and the 12 s synthetic clip).
FULL_DEFER_MAX_BYTES = 64 << 20
#: Of such a file's extra rows (borders, crops, strip, turns: ~3/4 of its held pictures' hashing, the grid windows
#: the rest), the share hashed in a second thread at the pass's end (``Held.flush``): about half of the work each.
TAIL_SHARE = 0.6


class Ticks:
    """The first frame of every ``1 / per_second`` seconds, frames given in order (``None``: every frame)."""

    def __init__(self, per_second: float | None) -> None:
        self.per_second = per_second
        self._last = -math.inf

    def __call__(self, seconds: float) -> bool:
        if self.per_second is None:
            return True
        bucket = math.floor(seconds * self.per_second) if math.isfinite(seconds) else self._last + 1
        if bucket > self._last:
            self._last = bucket
            return True
        return False


def probe_rate(meta: VideoMetadata) -> float:
    """Frames a second the border box is found on when keyframes are too few (as ``hash_media``'s probe)."""
    return min(2.0, BORDER_PROBE_FRAMES / max(float(meta.duration_seconds or 0.0), 1.0))


def keyframe_box(decoder: PyAVDecoder, path: str | os.PathLike, meta: VideoMetadata, max_side: int, batch_size: int) -> BorderBox | None:
    """The file's border box on at most BORDER_PROBE_FRAMES keyframes spread over it (they decode
    alone), or, with fewer than MIN_PROBE_KEYFRAMES, on frames at ``probe_rate`` (a second decode)."""
    keys = np.asarray(meta.keyframe_indices if meta.keyframe_indices is not None else [], np.int64)
    if keys.size >= MIN_PROBE_KEYFRAMES:
        pick = keys[np.unique(np.linspace(0, keys.size - 1, min(BORDER_PROBE_FRAMES, keys.size)).round().astype(np.int64))]
        policy: SamplingPolicy = FrameList(tuple(int(k) for k in pick))
    else:
        policy = FixedRate(probe_rate(meta))
    probe = [b.rgb for b in decoder.iter_frames(path, policy, batch_size=batch_size, max_side=max_side)]
    return detect_borders(np.concatenate(probe)) if probe and sum(map(len, probe)) else None


def defers(meta: VideoMetadata, extra_per_second: float | None, max_side: int) -> bool:
    """Whether the border box is found during the pass, the 512 px frames of the extra rows held
    until its end: files with few keyframes (a keyframe probe would see too few frames) and sparse
    extra rows (a plan's ``extra_per_second``, ``vscan.bank.hashers.RowPlan``), up to DEFER_MAX_SECONDS (held memory stays bounded);
    with every frame's extra rows (``--rows full``), where every frame's 512 px luma picture fits
    ``FULL_DEFER_MAX_BYTES`` (no second decode for the probe)."""
    keys = meta.keyframe_indices if meta.keyframe_indices is not None else []
    if len(keys) >= MIN_PROBE_KEYFRAMES:
        return False
    if extra_per_second is not None:
        return float(meta.duration_seconds or 0.0) <= DEFER_MAX_SECONDS
    frames = max(int(meta.num_frames or 0), math.ceil(float(meta.duration_seconds or 0.0) * float(meta.fps or 0.0)))
    w, h = output_size(meta.width, meta.height, max_side)
    return 0 < frames * w * h <= FULL_DEFER_MAX_BYTES


class Held:
    """512 px frames held until the border box is known (``defers``): the probe's and the extra rows'.
    ``by_batch`` (``--rows full``): hashed later in the pass's own batches, so the rows come in the order a
    keyframe probe's build gives them (a batch's rows go prep by prep); else in batches of ``batch_size``."""

    def __init__(self, meta: VideoMetadata, by_batch: bool = False) -> None:
        self.probe_tick = Ticks(probe_rate(meta))
        self.probe: list[np.ndarray] = []
        self.by_batch = by_batch
        self.rows: dict[str, list] = {"extra": [], "grid": []}

    def add(self, name: str, rows: "list[tuple[int, float, np.ndarray]]") -> None:
        """One batch's frames of ``name`` ("extra", "grid"): (frame row filed under, seconds, picture) each."""
        if self.by_batch:
            self.rows[name] += [rows] if rows else []
        else:
            self.rows[name] += rows

    def box(self) -> BorderBox | None:
        return detect_borders(np.stack(self.probe)) if self.probe else None

    def flush(self, extras: "_ExtraRows", grids: "_ExtraRows", hasher: "PDQHasher | BandedHasher", batch_size: int,
              tail: "_ExtraRows | None" = None) -> None:  # fmt: skip
        """Hashes the held pictures into ``extras`` and ``grids``; ``tail`` (an empty ``_ExtraRows`` like ``extras``): the
        later ``TAIL_SHARE`` of the extra rows' batches go into it instead, in a thread of their own meanwhile (a local
        build's second core, as ``vscan.bank.one_pass._Behind`` keeps it busy during a pass), ``extras`` then ``tail``
        holding the rows in their order."""
        from concurrent.futures import ThreadPoolExecutor

        def add(rows: "_ExtraRows", part: list) -> None:
            rows.add(Pictures(np.array([h[0] for h in part], np.int64), np.array([h[1] for h in part]), np.stack([h[2] for h in part])), hasher)

        parts = {name: held if self.by_batch else [held[i : i + batch_size] for i in range(0, len(held), batch_size)] for name, held in self.rows.items()}
        cut = len(parts["extra"]) - (int(round(TAIL_SHARE * len(parts["extra"]))) if tail is not None else 0)
        with ThreadPoolExecutor(1, thread_name_prefix="bank-extra") as pool:
            later = pool.submit(lambda: [add(tail, part) for part in parts["extra"][cut:]]) if cut < len(parts["extra"]) else None
            for part in parts["extra"][:cut]:
                add(extras, part)
            for part in parts["grid"]:
                add(grids, part)
            if later is not None:
                later.result()
        for held in self.rows.values():
            held.clear()

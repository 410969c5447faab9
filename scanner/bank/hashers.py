"""How media becomes bank rows: dense frames, borders removed, centre crops."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vscan.decode import SamplingPolicy
from vscan.decode.sampling import FrameList
from vscan.frames.prepare import SCAN_FRAME_SIDE_PX
from vscan.frames.windows import GRID_FPS, GRID_WINDOWS
from vscan.hashing.media import MediaHashes, hash_media
from vscan.hashing.pdq import PDQHasher
from vscan.hashing.vpdq import ExtraHashes, FrameHashes
from vscan.bank.rows import row_kind, run_starts, spaced

__all__ = ["RowPlan", "FULL_ROWS", "COMPACT_ROWS", "ROW_PLANS", "RayMediaHasher", "BANK_BATCH_FRAMES", "BANK_MAX_SIDE", "BANK_CROPS", "BANK_WINDOWS", "BANK_GRID_WINDOWS", "bank_hash_media", "media_hasher"]


#: Frames are downscaled to at most this side before hashing when building
#: banks and scanning: PDQ works on 64x64 anyway, and this keeps decode cheap.
BANK_MAX_SIDE = 512
#: Banks also store each frame without its borders and these centre crops
#: (share of each side kept), so cropped re-uploads match at no scan cost.
#: Centre crops hashed into banks, in 2.5% steps: PDQ moves ~25-35 bits per
#: 2.5% of crop-scale mismatch, so coarser grids miss crops between the steps.
BANK_CROPS = (0.975, 0.95, 0.925, 0.9, 0.875, 0.85, 0.825, 0.8, 0.775, 0.75)
#: And the re-post windows of vscan.frames.windows (9:16 centre strip, +-4 degree rotations).
BANK_WINDOWS = ("strip916", "rot+4", "rot-4")
#: And the 16 windows keeping 60% of each side on a 10% grid (vscan.frames.windows.GRID_WINDOWS), GRID_FPS
#: frames a second: a crop keeping 70% of each side off-centre holds one whole (vscan.runtime.offcentre).
BANK_GRID_WINDOWS = GRID_WINDOWS


#: Frames decoded and hashed at a time by a build: each frame of a batch is cut ~16 ways (crops,
#: windows) before hashing, so 8 frames keep the build's peak memory near 0.6 GiB (64: ~1.4 GiB on a
#: 4 s 720p clip, ~1.9 GiB on two clips) and no slower. Rows are streamed, so it does not grow with length.
BANK_BATCH_FRAMES = 8


@dataclass(frozen=True)
class RowPlan:
    """Which rows a build keeps of each reported video (docs/banks.md).

    ``frame_bits`` None: every sampled frame's row; else consecutive frames within that many bits
    of a run's first collapse into it (a shot is near-identical frame to frame). ``extra_per_second``
    None: the extra rows (borders removed, crops, strip, rotations) of every frame; else of runs'
    first frames at most that many a second (a second pass, ``FrameList``), whose frame rows are kept.
    Grid windows: on the first frame of every 1 / ``grid_per_second`` seconds (in that same pass). ``grid_per_second``: frames
    a second whose grid windows are kept."""

    name: str
    frame_bits: int | None = None
    extra_per_second: float | None = None
    grid_per_second: float = GRID_FPS


#: Every frame, its extra rows, grid windows 4 times a second: ~415-485 rows per video-second.
FULL_ROWS = RowPlan("full")
#: Runs of frames within 24 bits; extra rows on runs' first frames at least 2 s apart, grid windows
#: every 2 s: ~20 rows per video-second (vscan.bench.bench_bank_build measures it and its recall).
COMPACT_ROWS = RowPlan("compact", frame_bits=24, extra_per_second=0.5, grid_per_second=0.5)
ROW_PLANS = {plan.name: plan for plan in (FULL_ROWS, COMPACT_ROWS)}


def bank_hash_media(path: Path, policy: SamplingPolicy, hasher: PDQHasher, rows: RowPlan = FULL_ROWS) -> MediaHashes:
    """``hash_media`` with every bank row: borders removed, centre crops, re-post windows, grid windows.
    The ``original`` rows are the frames as a scan prepares them (vscan.frames.prepare): an identical copy meets them at 0.
    ``rows``: which of them are kept (``RowPlan``; ``COMPACT_ROWS`` hashes the extra rows of a frame every 2 s only)."""
    if rows.extra_per_second is None:
        full = hash_media(path, policy, hasher=hasher, max_side=BANK_MAX_SIDE, borders=True, crops=BANK_CROPS, windows=BANK_WINDOWS,
                          grid_windows=BANK_GRID_WINDOWS, grid_fps=rows.grid_per_second, frame_side=SCAN_FRAME_SIDE_PX,
                          batch_size=BANK_BATCH_FRAMES)  # fmt: skip
        return full if rows.frame_bits is None else _runs(full, None, rows.frame_bits)
    frames = hash_media(path, policy, hasher=hasher, max_side=BANK_MAX_SIDE, frame_side=SCAN_FRAME_SIDE_PX, batch_size=BANK_BATCH_FRAMES)
    extra_frames = _extra_frames(frames.frames, rows)
    ticks = _ticks(frames.frames, rows.grid_per_second)
    sparse = hash_media(path, FrameList(tuple(sorted(set(extra_frames) | set(ticks)))), hasher=hasher, max_side=BANK_MAX_SIDE, borders=True, crops=BANK_CROPS,
                        windows=BANK_WINDOWS, grid_windows=BANK_GRID_WINDOWS, grid_fps=rows.grid_per_second,
                        frame_side=SCAN_FRAME_SIDE_PX, batch_size=BANK_BATCH_FRAMES)  # fmt: skip
    return _runs(frames, _only_grid_on_ticks(sparse, set(extra_frames)), rows.frame_bits)


def _ticks(fh: FrameHashes, per_second: float) -> tuple[int, ...]:
    """The first frame of each 1 / per_second seconds: grid windows go on a steady clock, not on
    shots (an off-centre crop needs them throughout; measured: on runs alone it is missed)."""
    times = np.nan_to_num(fh.timestamps_seconds, nan=0.0)
    buckets = np.floor(times * per_second)
    order = np.argsort(fh.frame_numbers, kind="stable")
    first = np.concatenate(([True], buckets[order][1:] > np.maximum.accumulate(buckets[order])[:-1])) if order.size else order
    return tuple(fh.frame_numbers[order][first].tolist())


def _only_grid_on_ticks(sparse: MediaHashes, extra_frames: set[int]) -> MediaHashes:
    """``sparse`` with the extra rows other than grid windows kept on ``extra_frames`` only (the
    ticks were hashed for their grid windows)."""
    from dataclasses import replace

    x = sparse.extra
    if x is None or not len(x.hashes):
        return sparse
    keep = np.array([row_kind(p) == "grid" or int(f) in extra_frames for f, p in zip(x.frame_numbers.tolist(), x.preps)], bool)
    kept = ExtraHashes(x.frame_numbers[keep], tuple(np.asarray(x.preps, dtype=object)[keep].tolist()), x.qualities[keep], x.hashes[keep])
    return replace(sparse, extra=kept)


def _extra_frames(fh: FrameHashes, rows: RowPlan) -> tuple[int, ...]:
    """The frames that get extra rows: runs' first frames (a shot's first frame: cuts are where
    a re-post's frame grab or crop most likely differs), at most ``rows.extra_per_second`` a second."""
    order = np.argsort(fh.frame_numbers, kind="stable")
    starts = order[run_starts(fh.hashes[order], 256 if rows.frame_bits is None else rows.frame_bits)]
    return tuple(sorted(spaced(fh.frame_numbers[starts].tolist(), fh.timestamps_seconds[starts].tolist(), rows.extra_per_second)))


def _runs(dense: MediaHashes, sparse: MediaHashes | None, frame_bits: int | None) -> MediaHashes:
    """``dense``'s frames cut into runs (their first frames kept), plus the frames holding extra rows
    (``sparse``'s, or ``dense``'s own), with those extra rows: every extra row names a kept frame."""
    source = sparse if sparse is not None else dense
    fh, variants = dense.frames, dense.variants
    order = np.argsort(fh.frame_numbers, kind="stable")
    keep = np.zeros(len(fh), bool)
    keep[order[run_starts(fh.hashes[order], 256 if frame_bits is None else frame_bits)]] = True
    held = np.unique(source.extra.frame_numbers) if source.extra is not None else np.zeros(0, np.int64)
    keep |= np.isin(fh.frame_numbers, held)
    parts = [(fh.frame_numbers[keep], fh.timestamps_seconds[keep], fh.qualities[keep], fh.hashes[keep], variants[keep])]
    if sparse is not None:  # frames the sparse pass sampled that the policy did not (a --fps build)
        more = ~np.isin(sparse.frames.frame_numbers, fh.frame_numbers)
        s = sparse.frames
        parts.append((s.frame_numbers[more], s.timestamps_seconds[more], s.qualities[more], s.hashes[more], sparse.variants[more]))
    numbers, times, qualities, hashes, var = (np.concatenate(c) for c in zip(*parts))
    by_number = np.argsort(numbers, kind="stable")
    frames = FrameHashes(numbers[by_number], times[by_number], qualities[by_number], hashes[by_number])
    return MediaHashes(metadata=dense.metadata, frames=frames, variants=var[by_number], extra=source.extra, border_box=source.border_box)


def media_hasher(policy: SamplingPolicy, device: str = "auto", rows: RowPlan = FULL_ROWS) -> Callable[[Path], tuple]:
    """How ``vscan bank build`` and ``vscan.Bank.build`` hash media: densely, borders removed, plus
    centre crops (BANK_CROPS) and windows as extra rows, so scans need none of that; ``rows``: which are kept."""
    hasher = None

    def hash_file(path: Path):
        nonlocal hasher
        hasher = hasher or PDQHasher(device=device)  # type: ignore[arg-type]
        result = bank_hash_media(path, policy, hasher, rows)
        return result.frames, result.metadata.duration_seconds, result.extra

    return hash_file


_WORKER_HASHERS: dict[str, PDQHasher] = {}


def _hash_on_worker(path: str, policy: SamplingPolicy, device: str, rows: RowPlan) -> tuple:
    """One source's rows, in a Ray worker (its hasher kept for the worker's next sources)."""
    hasher = _WORKER_HASHERS.get(device) or _WORKER_HASHERS.setdefault(device, PDQHasher(device=device))  # type: ignore[arg-type]
    result = bank_hash_media(Path(path), policy, hasher, rows)
    return result.frames, result.metadata.duration_seconds, result.extra


class RayMediaHasher:
    """``hash_media`` for ``write_bank`` that hashes media on a Ray cluster (``vscan bank build
    --ray-address``): the next ``window`` sources in the build's order are hashed ahead, one Ray task
    (one CPU) each, and their rows are taken in that order, so the bank is the one a local build
    writes (and a resumed build submits only the sources it still needs). The sources' paths must
    be readable on every node (a shared file system), as for scans."""

    def __init__(self, paths: list[Path], policy: SamplingPolicy, device: str = "cpu", window: int | None = None,
                 rows: RowPlan = FULL_ROWS):  # fmt: skip
        import ray

        self._rows = rows
        self._paths = [str(p) for p in paths]
        self._at = {p: i for i, p in enumerate(self._paths)}
        self._policy, self._device = policy, device
        self._window = window or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        self._remote = ray.remote(num_cpus=1, max_retries=1)(_hash_on_worker)
        self._futures: dict[str, object] = {}
        self._taken: set[str] = set()

    def __call__(self, path: Path) -> tuple:
        import ray

        key = str(path)
        i = self._at[key]
        for ahead in self._paths[i : i + self._window]:
            if ahead not in self._futures and ahead not in self._taken:
                self._futures[ahead] = self._remote.remote(ahead, self._policy, self._device, self._rows)
        self._taken.add(key)
        try:
            return ray.get(self._futures.pop(key))
        except ray.exceptions.RayTaskError as exc:  # the worker's own error (a file that does not decode), as a local build raises it
            raise exc.cause if isinstance(exc.cause, Exception) else exc from None

    def cancel(self) -> None:
        """Cancels the sources hashed ahead and not taken (an interrupted or failed build)."""
        import ray

        for ref in self._futures.values():
            ray.cancel(ref, force=True)
        self._futures.clear()

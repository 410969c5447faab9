"""How media becomes bank rows: dense frames, borders removed, centre crops."""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vscan.decode import SamplingPolicy
from vscan.frames.prepare import SCAN_FRAME_SIDE_PX
from vscan.frames.windows import GRID_FPS
from vscan.bank.entry_table import EntryGeometry
from vscan.bank.one_pass import BANK_BATCH_FRAMES, BANK_CROPS, BANK_GRID_WINDOWS, BANK_MAX_SIDE, BANK_WINDOWS, one_pass_rows
from vscan.hashing.media import MediaHashes, hash_media
from vscan.hashing.pdq import PDQHasher

__all__ = ["RowPlan", "FULL_ROWS", "COMPACT_ROWS", "LEAN_ROWS", "COVER_ROWS", "SPARSE_ROWS", "ROW_PLANS", "RayMediaHasher", "LocalMediaHasher", "BANK_BATCH_FRAMES", "BANK_MAX_SIDE", "BANK_CROPS", "BANK_WINDOWS", "BANK_GRID_WINDOWS", "bank_hash_media", "media_hasher", "media_geometry", "rows_of"]


@dataclass(frozen=True)
class RowPlan:
    """Which rows a build keeps of each reported video (docs/banks.md, ``vscan.bank.one_pass``).

    ``frame_bits`` None: every sampled frame's row; else consecutive frames within that many bits
    of a run's first collapse into it (a shot is near-identical frame to frame). ``extra_per_second``
    None: the extra rows (borders removed, crops, strip, rotations) of every frame; else of runs'
    first frames at most that many a second. Grid windows: on the first frame of every
    1 / ``grid_per_second`` seconds. A frame holding extra rows keeps its frame row.
    ``frame_per_second`` (with ``frame_bits``): a frame row at most that often (real footage's
    camera noise breaks runs every frame); ``crops`` / ``windows``: the centre crops and re-post
    windows kept as extra rows (a sparse crop grid is bridged by the scan's own centre crops,
    ``vscan.bank.query_side``); ``rows_on_clock``: extra rows on a steady clock, filed under their run's row,
    so each frame row stands for a time range; ``centre_bits`` (``frame_bits`` None): frame rows are runs
    within that many bits of a centre frame (``vscan.bank.one_pass``)."""

    name: str
    frame_bits: int | None = None
    extra_per_second: float | None = None
    grid_per_second: float = GRID_FPS
    frame_per_second: float | None = None
    crops: tuple[float, ...] = BANK_CROPS
    windows: tuple[str, ...] = BANK_WINDOWS
    grid_windows: tuple[str, ...] = BANK_GRID_WINDOWS
    rows_on_clock: bool = False
    centre_bits: int | None = None
    #: (with ``centre_bits``) where runs are shorter than a tick, the frames a scan sampling this often takes instead
    clock_frames_per_second: float | None = None
    #: (with ``rows_on_clock`` and ``centre_bits``) the extra rows on detailed frames: hashed on a clock twice
    #: ``extra_per_second``, kept on as many ticks as that clock keeps, where they pass the matcher's quality filter
    #: (``vscan.bank.rows.detail_ticks``): a flat frame's rows are never met, so a flat stretch's go elsewhere
    extra_on_detail: bool = False


#: Every frame, its extra rows, grid windows (and the split-screen pane windows) 4 times a second: ~430-500 rows per video-second.
FULL_ROWS = RowPlan("full")
#: Runs of frames within 24 bits; extra rows on runs' first frames at least 2 s apart, grid windows
#: every 2 s: ~19 rows per video-second on synthetic clips, ~36 on real footage (vscan.bench.bench_bank_build).
COMPACT_ROWS = RowPlan("compact", frame_bits=24, extra_per_second=0.5, grid_per_second=0.5)
#: Compact's runs and extra-row spacing with 3 centre crops instead of 10 and no turned rows (the scan
#: crops and turns back its own frames to meet them: vscan.bank.query_side), one centre window keeping
#: 40% a second instead of the grid windows every 2 s (the off-centre search looks for it): ~8 rows per
#: video-second on synthetic clips, ~18 on real footage (docs/banks.md).
LEAN_ROWS = RowPlan("lean", frame_bits=24, extra_per_second=0.5, grid_per_second=1.0, crops=(0.95, 0.9, 0.8), windows=("strip916",),
                    grid_windows=("g40:30,30",))  # fmt: skip
#: Frame rows that cover time: runs whose every frame lies within 26 bits of one of them (the row's hash), each
#: row standing for the frames up to the next (a time range the matcher aligns: vscan.bank.rows.row_end_seconds);
#: crops 0.9 and 0.8 and the 9:16 strip on the first frame of every 2 s, the 40% centre window of every 1 s (a steady
#: clock, as a scan samples), filed under their run's row: 4.9 rows per video-second on bench_robustness's sources, ~15 on
#: fast real footage (docs/banks.md).
COVER_ROWS = RowPlan("cover", frame_bits=None, extra_per_second=0.5, grid_per_second=1.0, crops=(0.9, 0.8), windows=("strip916",),
                     grid_windows=("g40:30,30",), rows_on_clock=True, centre_bits=26)  # fmt: skip
#: Cover's runs where footage is slow, and where runs are shorter than half a second (real footage: 1-2 frames),
#: the frames a scan sampling twice a second takes instead: about 2 frame rows and 4.5 rows in all a
#: video-second on any footage, at a cost in recall on fast footage (docs/banks.md, "--rows sparse").
SPARSE_ROWS = RowPlan("sparse", frame_bits=None, extra_per_second=0.5, grid_per_second=1.0, crops=(0.9, 0.8), windows=("strip916",),
                      grid_windows=("g40:30,30",), rows_on_clock=True, centre_bits=26, clock_frames_per_second=2.0, extra_on_detail=True)  # fmt: skip
ROW_PLANS = {plan.name: plan for plan in (FULL_ROWS, COMPACT_ROWS, LEAN_ROWS, COVER_ROWS, SPARSE_ROWS)}


def bank_hash_media(path: Path, policy: SamplingPolicy, hasher: PDQHasher, rows: RowPlan = FULL_ROWS, stop: "threading.Event | None" = None,
                    behind: bool = False) -> MediaHashes:  # fmt: skip
    """``hash_media`` with every bank row: borders removed, centre crops, re-post windows, grid windows.
    The ``original`` rows are the frames as a scan prepares them (vscan.frames.prepare): an identical copy meets them at 0.
    ``rows``: which of them are kept (``RowPlan``). Videos: one decode (``vscan.bank.one_pass``); stills: every row.
    ``behind`` (a local build's threads): numpy's BLAS on one thread meanwhile (``_one_blas_thread``)."""
    with _one_blas_thread() if behind else contextlib.nullcontext():
        video = one_pass_rows(path, policy, hasher, rows, stop, behind)
        if video is not None:
            return video
        return hash_media(path, policy, hasher=hasher, max_side=BANK_MAX_SIDE, borders=True, crops=rows.crops, windows=rows.windows,
                          grid_windows=rows.grid_windows, grid_fps=rows.grid_per_second, frame_side=SCAN_FRAME_SIDE_PX,
                          batch_size=BANK_BATCH_FRAMES)  # fmt: skip


def media_geometry(result: MediaHashes) -> EntryGeometry | None:
    """The entry geometry of a hashed file (``vscan.bank.entry_table.EntryGeometry``): its decoded size (``metadata``,
    as displayed) and its border box (found on the build's 512 px frames) in those pixels; no box found or no bars:
    the whole frame. None when the size is unknown."""
    width, height = int(result.metadata.width or 0), int(result.metadata.height or 0)
    if width <= 0 or height <= 0:
        return None
    box = result.border_box
    if box is None or box.is_empty or box.width <= 0 or box.height <= 0:
        return EntryGeometry(width, height, (0, 0, width, height))
    sx, sy = width / box.width, height / box.height
    x0, y0 = min(round(box.left * sx), width - 1), min(round(box.top * sy), height - 1)
    x1, y1 = max(width - round(box.right * sx), x0 + 1), max(height - round(box.bottom * sy), y0 + 1)
    return EntryGeometry(width, height, (x0, y0, x1, y1))


def rows_of(result: MediaHashes) -> tuple:
    """What a build's ``hash_media`` gives ``vscan.bank.importers.import_media``: frames, duration, extra rows, geometry."""
    return result.frames, result.metadata.duration_seconds, result.extra, media_geometry(result)


def media_hasher(policy: SamplingPolicy, device: str = "auto", rows: RowPlan = FULL_ROWS) -> Callable[[Path], tuple]:
    """How ``vscan bank build`` and ``vscan.Bank.build`` hash media: densely, borders removed, plus
    centre crops (BANK_CROPS) and windows as extra rows, so scans need none of that; ``rows``: which are kept."""
    hasher = None

    def hash_file(path: Path):
        nonlocal hasher
        hasher = hasher or PDQHasher(device=device)  # type: ignore[arg-type]
        result = bank_hash_media(path, policy, hasher, rows)
        return rows_of(result)

    return hash_file


#: Sources a local build queues for its threads beyond the one it takes, per thread: a thread that finishes a short
#: source goes on with a later one while the build waits for a long one. With only ``workers`` queued, the second
#: core idled from 13.9 to 33.1 s of a 50.9 s build of 4 sources (doorknob done, chair-19 still hashing).
#: Finished sources wait as rows (~50 bytes a row: ~10 MB for 3 minutes of ``--rows full``).
AHEAD_PER_WORKER = 4


class LocalMediaHasher:
    """``hash_media`` for ``write_bank`` that hashes media sources ``workers`` at once in threads of this process
    (decoding, scaling and the hash model release the GIL), up to ``AHEAD_PER_WORKER * workers`` sources ahead of
    the one taken, their rows taken in the build's order, so the bank is the one a source-by-source build writes; a
    source not in ``paths`` is hashed on the spot. Threads, not processes: one hash model and one process's memory."""

    def __init__(self, paths: list[Path], policy: SamplingPolicy, device: str = "cpu", workers: int | None = None,
                 rows: RowPlan = FULL_ROWS):  # fmt: skip
        from concurrent.futures import ThreadPoolExecutor

        self._paths = [str(p) for p in paths]
        self._at = {p: i for i, p in enumerate(self._paths)}
        self._policy, self._device, self._rows = policy, device, rows
        self._workers = max(1, workers or os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="bank-hash")
        self._local = threading.local()
        self._stop = threading.Event()
        self._futures: dict[str, Future] = {}
        self._taken: set[str] = set()

    def _hash(self, path: str) -> tuple:
        if self._stop.is_set():
            raise KeyboardInterrupt
        # One hash-model thread per source thread: the threads already fill the cores (onnxruntime's own
        # pool on top spun for nothing: 5.1-6.8 against 3.8-4.2 CPU-s for the same 4 files, 2 cores).
        hasher = getattr(self._local, "hasher", None) or PDQHasher(device=self._device, threads=1)  # type: ignore[arg-type]
        self._local.hasher = hasher
        result = bank_hash_media(Path(path), self._policy, hasher, self._rows, self._stop, behind=True)  # a second core for a source alone
        return rows_of(result)

    def __call__(self, path: Path) -> tuple:
        key = str(path)
        if key not in self._at:
            return self._hash(key)
        i = self._at[key]
        for ahead in self._paths[i : i + AHEAD_PER_WORKER * self._workers]:  # the pool runs them in this order
            if ahead not in self._futures and ahead not in self._taken:
                self._futures[ahead] = self._pool.submit(self._hash, ahead)
        self._taken.add(key)
        return self._futures.pop(key).result()

    def cancel(self) -> None:
        """Stops the sources hashed ahead (an interrupted or failed build): those running stop at their next batch."""
        self._stop.set()
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
        self._pool.shutdown(wait=True)


@contextlib.contextmanager
def _one_blas_thread():
    """numpy's BLAS on one thread in this hashing thread, restored after: OpenBLAS's own threads spun between a build's
    small products (the Jarosz operators, the border probe's luma; bench_bank_build's 4 files, --rows full: 7.8 -> 7.3
    CPU-s, 6.9 with OPENBLAS_NUM_THREADS=1). Never from the main thread: OpenBLAS 0.3.31 then ignores a limit a later
    thread sets (a scan's ``ModelThread``: 77635ef reverted a limit set there)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    if threading.current_thread() is threading.main_thread():
        yield
        return
    limits = threadpool_limits(limits=1, user_api="blas")
    try:
        yield
    finally:
        limits.restore_original_limits()


_WORKER_HASHERS: dict[str, PDQHasher] = {}


def _hash_on_worker(path: str, policy: SamplingPolicy, device: str, rows: RowPlan) -> tuple:
    """One source's rows, in a Ray worker (its hasher kept for the worker's next sources)."""
    hasher = _WORKER_HASHERS.get(device) or _WORKER_HASHERS.setdefault(device, PDQHasher(device=device, threads=1))  # type: ignore[arg-type]  # one CPU a task
    result = bank_hash_media(Path(path), policy, hasher, rows)
    return rows_of(result)


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

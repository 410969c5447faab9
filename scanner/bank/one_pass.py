"""A reported video's bank rows from one decode.

A build needs two pictures of a frame: the scan's square (``vscan.frames.prepare``: an identical
copy scanned later meets the ``original`` row at distance 0) and a 512 px frame of the file's own
aspect for the extra rows (borders removed, crops, windows need the geometry). Both are scaled
from the same decoded frame with the scaler the scan uses (PyAV's area scaler,
``PyAVDecoder.also_max_side``), so the bits equal those of two separate decodes, at the cost of
one. The border box is found first on at most ``BORDER_PROBE_FRAMES`` keyframes spread over the
file (keyframes decode alone: a small fraction of a full decode).

Which rows are kept (``vscan.bank.hashers.RowPlan``) is decided as frames arrive (``RowChoice``):

- frame rows in runs: a frame within ``frame_bits`` of the run's first frame joins the run and adds
  no row; a frame further away starts a run (``frame_bits`` None: every frame is a run), but not
  sooner than ``1 / frame_per_second`` seconds after the run's first frame, when the plan says;
- extra rows other than grid windows (borders removed, crops, strip, rotations) on runs' first
  frames at least ``1 / extra_per_second`` seconds apart (a shot's first frame: cuts are where a
  re-post's crop or frame grab most likely differs; None: every frame);
- grid windows on the first frame of every ``1 / grid_per_second`` seconds (a steady clock, not
  shots: an off-centre crop needs them throughout);
- a frame holding extra rows or grid windows keeps its frame row, so every extra row names a kept
  frame;
- ``centre_bits`` (with ``frame_bits`` None: every frame kept during the pass): at the end, runs whose
  every frame lies within ``centre_bits`` of one of them, the centre (``centred_rows``);
- or (``rows_on_clock``) the extra rows too on the first frame of every ``1 / extra_per_second``
  seconds (where a scan sampling on a clock looks), filed under the row of the run that frame is in
  (``run_owners``; the run's first such row of each prep), so only runs keep frame rows and each
  frame row stands for the frames up to the next, all within ``frame_bits`` of it (its time range:
  docs/bank-format.md). Only the frames that get extra rows are scaled to 512 px.

Nothing grows with the video's length but the kept rows.
"""

from __future__ import annotations

import math
import os
import threading
from typing import TYPE_CHECKING, Protocol

import numpy as np

from vscan.decode import SamplingPolicy
from vscan.decode.metadata import SampledFrames
from vscan.decode.pyav_backend import PyAVDecoder
from vscan.frames.windows import GRID_WINDOWS, PANE_WINDOWS
from vscan.frames.prepare import SCAN_FRAME_SIDE_PX, iter_prepared, prepared_decoder
from vscan.hashing.media import MediaHashes, _ExtraRows
from vscan.hashing.pdq import PDQHasher
from vscan.hashing.vpdq import ExtraHashes, FrameHashes
# the border box (re-exported here, where they were defined before)
from vscan.bank.border_probe import BORDER_PROBE_FRAMES, DEFER_MAX_SECONDS, FULL_DEFER_MAX_BYTES, MIN_PROBE_KEYFRAMES, Held, Ticks, defers, keyframe_box  # noqa: F401
from vscan.bank.pictures import Pictures, picture as extra_picture
from vscan.bank.rows import centre_runs, clock_runs, detail_ticks

if TYPE_CHECKING:
    from vscan.bank.banded_hash import BandedHasher


class RowPlan(Protocol):
    """What a plan (``vscan.bank.hashers.RowPlan``) says here."""

    frame_bits: int | None
    extra_per_second: float | None
    grid_per_second: float
    frame_per_second: float | None
    crops: tuple[float, ...]
    windows: tuple[str, ...]
    grid_windows: tuple[str, ...]
    rows_on_clock: bool
    centre_bits: int | None
    clock_frames_per_second: float | None
    extra_on_detail: bool


#: Frames are downscaled to at most this side before hashing when building
#: banks and scanning: PDQ works on 64x64 anyway, and this keeps decode cheap.
BANK_MAX_SIDE = 512
#: A build's default sampling: every frame, at most this many a second (``EveryFrame(max_fps=...)``). A 240 fps
#: slow-motion report keeps every 4th frame (its neighbours lie a few bits apart); a 1000 fps file of 2 minutes
#: (120,000 frames, 1.6M rows, 257 s to build) keeps 7,200. ``--every-frame`` keeps them all.
BANK_MAX_FPS = 60.0
#: Banks also store each frame without its borders and these centre crops
#: (share of each side kept), so cropped re-uploads match at no scan cost.
#: Centre crops hashed into banks, in 2.5% steps: PDQ moves ~25-35 bits per
#: 2.5% of crop-scale mismatch, so coarser grids miss crops between the steps.
BANK_CROPS = (0.975, 0.95, 0.925, 0.9, 0.875, 0.85, 0.825, 0.8, 0.775, 0.75)
#: And the re-post windows of vscan.frames.windows (9:16 centre strip, +-4 degree rotations).
BANK_WINDOWS = ("strip916", "rot+4", "rot-4")
#: And the grid windows of vscan.frames.windows.GRID_WINDOWS (each keeping most of each side, on a grid of positions),
#: GRID_FPS frames a second: an off-centre crop holds one whole (vscan.runtime.offcentre);
#: on the same clock the centre strips and bands a filled split-screen pane shows (PANE_WINDOWS: 4 rows,
#: 16 a video-second, where every frame's would be ~100: issue #27).
BANK_GRID_WINDOWS = GRID_WINDOWS + tuple(PANE_WINDOWS)
#: Frames decoded and hashed at a time by a build: each frame of a batch is cut ~16 ways (crops,
#: windows) before hashing, so 8 frames keep the build's peak memory near 0.6 GiB (64: ~1.4 GiB on a
#: 4 s 720p clip, ~1.9 GiB on two clips) and no slower. Rows are streamed, so it does not grow with length.
BANK_BATCH_FRAMES = 8
#: Batches of extra rows waiting for a full build's extra-row thread (``_Behind``): 8 frames of 512 px each.
BEHIND_BATCHES = 2



__all__ = ["BANK_MAX_SIDE", "BANK_MAX_FPS", "BANK_CROPS", "BANK_WINDOWS", "BANK_GRID_WINDOWS", "BANK_BATCH_FRAMES", "BORDER_PROBE_FRAMES", "MIN_PROBE_KEYFRAMES", "DEFER_MAX_SECONDS", "FULL_DEFER_MAX_BYTES", "RowChoice", "Ticks", "one_pass_rows", "run_owners", "first_per_prep", "centred_rows", "detail_extra", "DETAIL_MIN_QUALITY"]

#: A tick's extra rows are kept on detail (``RowPlan.extra_on_detail``) where its frame and a row reach this
#: quality: ``MatchSettings.min_quality``'s default (a scan drops rows of a frame below it).
DETAIL_MIN_QUALITY = 50


class RowChoice:
    """Which rows a plan keeps of each frame, frames given in order (module docstring)."""

    def __init__(self, plan: "RowPlan") -> None:
        self.plan = plan
        self._first: np.ndarray | None = None  # the run's first frame's bits
        self._last_row = -math.inf  # the run's first frame's seconds
        self._last_extra = -math.inf
        self._grid = Ticks(plan.grid_per_second)
        self._clock = getattr(plan, "rows_on_clock", False)
        # on detail: candidates twice as often, thinned after the pass (``detail_extra``)
        self._extra_ticks = Ticks(plan.extra_per_second * (2 if _on_detail(plan) else 1) if plan.extra_per_second else plan.extra_per_second)

    def __call__(self, hash_bytes: np.ndarray, seconds: float) -> tuple[bool, bool, bool]:
        """(keep the frame row, add its extra rows, add its grid windows) for one frame (uint8 [32], its time)."""
        plan = self.plan
        grid = self._grid(seconds)
        bits = None if plan.frame_bits is None else np.unpackbits(hash_bytes)
        new_run = bits is None
        if not new_run:
            new_run = self._first is None or int(np.count_nonzero(bits != self._first)) > plan.frame_bits
            rate = getattr(plan, "frame_per_second", None)
            if new_run and self._first is not None and rate is not None and math.isfinite(seconds):
                new_run = seconds - self._last_row >= 1.0 / rate - 1e-9  # too soon: compared again on the next frame
        if self._clock:  # extra rows on a steady clock too (as a scan samples), and every kept frame row starts a run
            extra = self._extra_ticks(seconds)
        else:
            extra = plan.extra_per_second is None
            if not extra and new_run:
                t = seconds if math.isfinite(seconds) else self._last_extra + 1.0 / plan.extra_per_second
                extra = t - self._last_extra >= 1.0 / plan.extra_per_second - 1e-9
                self._last_extra = t if extra else self._last_extra
        if bits is not None and new_run:
            self._first, self._last_row = bits, seconds
        # On a clock, a frame's extra rows are its run's (``run_owners``): only runs keep frame rows.
        return new_run or (not self._clock and (extra or grid)), extra, grid


class _Behind:
    """A full build's extra rows hashed in a thread behind the decode, batch after batch in order (at most
    ``BEHIND_BATCHES`` waiting): the extra rows are ~70% of a source's CPU (numba, GIL released), so a source
    hashed alone (a one-file build, a build's last source) keeps a second core busy. ``on`` False: at once."""

    def __init__(self, on: bool) -> None:
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(1, thread_name_prefix="bank-extra") if on else None
        self.waiting: "deque" = deque()

    def add(self, rows: _ExtraRows, frames: SampledFrames, hasher) -> None:
        if self.pool is None:
            return rows.add(frames, hasher)
        self.waiting.append(self.pool.submit(rows.add, frames, hasher))
        while len(self.waiting) > BEHIND_BATCHES:
            self.waiting.popleft().result()

    def close(self, finish: bool) -> None:
        """``finish``: waits for every batch (raising a batch's error); else drops those not started."""
        while finish and self.waiting:
            self.waiting.popleft().result()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def one_pass_rows(path: str | os.PathLike, policy: SamplingPolicy, hasher: PDQHasher, plan: "RowPlan",
                  stop: "threading.Event | None" = None, behind: bool = False) -> MediaHashes | None:  # fmt: skip
    """The plan's rows of a video from one decode; None when ``path`` is not decoded by PyAV (a still:
    ``hash_media`` does it). ``variants`` hold the kept frames' dihedral variants. ``stop`` set: raises
    KeyboardInterrupt at the next batch (an interrupted build hashing sources ahead in threads).
    ``behind`` (a local build's threads; not a Ray task's one CPU): ``--rows full``'s extra rows in a thread of
    their own (``_Behind``), the same rows in the same order."""
    decoder = prepared_decoder(path)
    if not isinstance(decoder, PyAVDecoder):
        return None
    meta = decoder.probe(path)
    held = Held(meta, by_batch=plan.extra_per_second is None) if defers(meta, plan.extra_per_second, BANK_MAX_SIDE) else None
    box = None if held else keyframe_box(decoder, path, meta, BANK_MAX_SIDE, BANK_BATCH_FRAMES)
    choose = RowChoice(plan)
    run = -1  # the frame number of the run's row, across batches
    decoder.also_max_side, decoder.also = BANK_MAX_SIDE, {}
    # Every frame's extra rows (``--rows full``): hashed from the model's operators' runs, its bits at ~1/8 of the CPU
    # (vscan.bank.banded_hash); the sparser plans' few keep the model (no numba start-up for them: ~1.5 s a process).
    if plan.extra_per_second is None:
        from vscan.bank.banded_hash import BandedHasher  # here: numba only for the builds that use it, never a scan's import

        extra_hasher = BandedHasher(hasher)
    else:
        extra_hasher = hasher
    # ... from the 512 px frames' luma alone where the compiled hash takes them (vscan.bank.pictures)
    luma = extra_hasher is not hasher and extra_hasher.device == "cpu"
    kept: list[tuple[np.ndarray, ...]] = []
    extras = grids = tail = None
    later, finished = _Behind(behind and plan.extra_per_second is None and held is None), False
    try:
        for batch in iter_prepared(decoder, path, policy, side_px=SCAN_FRAME_SIDE_PX, batch_size=BANK_BATCH_FRAMES):
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
            result = extra_hasher.hash_detailed(batch.rgb) if extra_hasher is not hasher else hasher.hash_frames(batch.rgb)
            choice = np.array([choose(result.hashes[i, 0], float(t)) for i, t in enumerate(batch.pts_seconds)], bool).reshape(-1, 3)
            owners, run = run_owners(batch.frame_indices, choice[:, 0], run)
            pictures: dict[int, np.ndarray] = {}

            def picture(i: int) -> np.ndarray:
                n = int(batch.frame_indices[i])
                return pictures[n] if n in pictures else pictures.setdefault(n, extra_picture(decoder.also[n], luma))

            if held is not None:  # the probe takes the RGB a keyframe probe decodes (a full build's pictures are luma)
                held.probe += [extra_picture(decoder.also[int(batch.frame_indices[i])], False) if luma else picture(i)
                               for i, t in enumerate(batch.pts_seconds) if held.probe_tick(float(t))]  # fmt: skip
                for name, col in (("extra", 1), ("grid", 2)):
                    held.add(name, [(int(owners[i]), float(batch.pts_seconds[i]), picture(i)) for i in np.flatnonzero(choice[:, col])])
            else:
                extras = extras or _ExtraRows(box, plan.crops, plan.windows, (), plan.grid_per_second)
                grids = grids or _ExtraRows(box, (), (), plan.grid_windows, 1e9)  # every frame given gets them (RowChoice's ticks)
                for rows, at in ((extras, np.flatnonzero(choice[:, 1])), (grids, np.flatnonzero(choice[:, 2]))):
                    if at.size:
                        later.add(rows, Pictures(owners[at], batch.pts_seconds[at], np.stack([picture(i) for i in at])), extra_hasher)
            for n in batch.frame_indices.tolist():  # this batch's only: a keyframe pass hands its batches over at its end
                decoder.also.pop(int(n), None)
            keep = choice[:, 0]
            if keep.any():
                kept.append((batch.frame_indices[keep], batch.pts_seconds[keep], result.quality[keep], result.hashes[keep]))
        later.close(finish=True)
        finished = True
    finally:
        decoder.also_max_side, decoder.also = None, {}
        if not finished:
            later.close(finish=False)
    if held is not None:
        box = held.box()
        extras = _ExtraRows(box, plan.crops, plan.windows, (), plan.grid_per_second)
        grids = _ExtraRows(box, (), (), plan.grid_windows, 1e9)
        tail = _ExtraRows(box, plan.crops, plan.windows, (), plan.grid_per_second) if behind and held.by_batch else None
        held.flush(extras, grids, extra_hasher, BANK_BATCH_FRAMES, tail)
    if extras is None or grids is None:
        extras, grids = (_ExtraRows(box, (), (), (), 1.0),) * 2
    if kept:
        numbers, times, qualities, variants = (np.concatenate(c) for c in zip(*kept))
        frames = FrameHashes(numbers.astype(np.int64), times.astype(np.float64), qualities.astype(np.int32), np.ascontiguousarray(variants[:, 0]))
    else:
        variants, frames = np.zeros((0, 8, 32), np.uint8), FrameHashes.empty()
    extra = extras.result()
    if tail is not None:  # the later batches' rows, hashed beside (``Held.flush``)
        extra = _joined(extra, tail.result())
    if _on_detail(plan) and len(extra.hashes):
        extra = detail_extra(frames, extra, plan.extra_per_second)
    extra = _merged(extra, grids.result())
    if getattr(plan, "centre_bits", None) is not None:  # every frame was kept: the runs' centres now
        frames, extra, centres = centred_rows(frames, extra, plan.centre_bits, getattr(plan, "clock_frames_per_second", None))
        variants = variants[centres]
    return MediaHashes(metadata=meta, frames=frames, variants=variants, extra=extra, border_box=box)


def _on_detail(plan: "RowPlan") -> bool:
    """Whether a plan places its clock's extra rows on detailed frames (``RowPlan.extra_on_detail``): with extra rows on
    a clock and every frame kept during the pass (``centre_bits``), so each candidate's frame and time are known."""
    return bool(getattr(plan, "extra_on_detail", False) and plan.rows_on_clock and plan.centre_bits is not None and plan.extra_per_second)


def detail_extra(frames: FrameHashes, extra: ExtraHashes, per_second: float, min_quality: int = DETAIL_MIN_QUALITY) -> ExtraHashes:
    """The extra rows of the candidate ticks ``vscan.bank.rows.detail_ticks`` keeps: ``extra`` holds them on a clock twice
    ``per_second``, filed under the tick's own frame (every frame of ``frames`` kept during the pass); a tick is detailed
    when its frame and one of its rows reach ``min_quality`` (the matcher drops rows whose frame does not)."""
    ticks = np.unique(extra.frame_numbers)
    at = {int(n): i for i, n in enumerate(frames.frame_numbers.tolist())}
    pos = np.asarray([at.get(int(n), -1) for n in ticks], np.int64)
    times = np.where(pos >= 0, frames.timestamps_seconds[np.maximum(pos, 0)], np.nan)
    frame_ok = (pos >= 0) & (frames.qualities[np.maximum(pos, 0)] >= min_quality)
    best = np.zeros(ticks.size, np.int64)
    np.maximum.at(best, np.searchsorted(ticks, extra.frame_numbers), extra.qualities.astype(np.int64))
    order = np.argsort(np.where(np.isfinite(times), times, np.inf), kind="stable")
    keep_tick = np.zeros(ticks.size, bool)
    keep_tick[order] = detail_ticks(times[order], (frame_ok & (best >= min_quality))[order], per_second)
    keep = keep_tick[np.searchsorted(ticks, extra.frame_numbers)]
    return ExtraHashes(extra.frame_numbers[keep], tuple(p for p, k in zip(extra.preps, keep) if k), extra.qualities[keep], extra.hashes[keep])


def centred_rows(frames: FrameHashes, extra: ExtraHashes | None, max_bits: int,
                 clock_per_second: float | None = None) -> tuple[FrameHashes, ExtraHashes | None, np.ndarray]:  # fmt: skip
    """A video's frame rows as runs within ``max_bits`` of a centre (``vscan.bank.rows.centre_runs``): each run's
    row has its first frame's number and time (it stands for the frames up to the next row) and its centre's hash
    and quality; extra rows are filed under the row of their frame's run, each prep once a run. Also the centres'
    positions in ``frames``. ``clock_per_second``: where runs are shorter than a tick, the frames a scan
    sampling that often takes stand instead (``vscan.bank.rows.clock_runs``)."""
    order = np.argsort(frames.frame_numbers, kind="stable")
    starts, centres = centre_runs(frames.hashes[order], max_bits)
    if clock_per_second:
        starts, centres = clock_runs(frames.timestamps_seconds[order], starts, centres, clock_per_second)
    s, c = order[starts], order[centres]
    rows = FrameHashes(frames.frame_numbers[s], frames.timestamps_seconds[s], frames.qualities[c], frames.hashes[c])
    if extra is None or not len(extra.hashes):
        return rows, extra, c
    first = np.zeros(order.size, bool)
    first[starts] = True
    owner = dict(zip(frames.frame_numbers[order].tolist(), run_owners(frames.frame_numbers[order], first, -1)[0].tolist()))
    numbers = np.asarray([owner.get(int(f), int(f)) for f in extra.frame_numbers], np.int64)
    return rows, first_per_prep(ExtraHashes(numbers, extra.preps, extra.qualities, extra.hashes)), c


def run_owners(frame_numbers: np.ndarray, kept: np.ndarray, run: int) -> tuple[np.ndarray, int]:
    """(the frame number of the kept frame row each frame's extra rows are filed under, the last run's),
    frames in order, ``run`` the run before them: a kept frame's own, else its run's (``rows_on_clock``)."""
    owners = np.empty(len(frame_numbers), np.int64)
    for i, (n, k) in enumerate(zip(np.asarray(frame_numbers).tolist(), np.asarray(kept).tolist())):
        run = int(n) if k else run
        owners[i] = run
    return owners, run


def first_per_prep(extra: ExtraHashes) -> ExtraHashes:
    """Each (frame, prep)'s first row only: a run's later clock ticks add no second row of a prep to its row."""
    seen: set[tuple[int, str]] = set()
    keep = np.array([not ((k := (int(f), p)) in seen or seen.add(k)) for f, p in zip(extra.frame_numbers.tolist(), extra.preps)], bool)
    if keep.all():
        return extra
    return ExtraHashes(extra.frame_numbers[keep], tuple(p for p, k in zip(extra.preps, keep) if k), extra.qualities[keep], extra.hashes[keep])


def _joined(first: ExtraHashes, then: ExtraHashes) -> ExtraHashes:
    """``first``'s rows, then ``then``'s."""
    return ExtraHashes(np.concatenate([first.frame_numbers, then.frame_numbers]), first.preps + then.preps,
                       np.concatenate([first.qualities, then.qualities]), np.concatenate([first.hashes, then.hashes]))  # fmt: skip


def _merged(extra: ExtraHashes, grid: ExtraHashes) -> ExtraHashes:
    """The extra rows and the grid windows as one set (the grid pass's own ``borders`` rows dropped), each
    (frame, prep) once."""
    keep = np.array([p != "borders" for p in grid.preps], bool)
    return first_per_prep(ExtraHashes(np.concatenate([extra.frame_numbers, grid.frame_numbers[keep]]),
                       extra.preps + tuple(p for p, k in zip(grid.preps, keep) if k),
                       np.concatenate([extra.qualities, grid.qualities[keep]]), np.concatenate([extra.hashes, grid.hashes[keep]])))  # fmt: skip

"""Pure helpers over bank rows: a row's kind by its prep, runs of near-identical frames, frames
spaced in time. Shared by the hashers (which rows a build keeps), the store (rows per kind in
``bank info``) and ``compact_rows``, without importing any of them."""

from __future__ import annotations

import numpy as np

from vscan.frames.windows import PANE_WINDOWS

#: Re-post windows a build keeps on the grid windows' clock, not every frame (vscan.bank.one_pass.BANK_GRID_WINDOWS).
_CLOCK_WINDOWS = frozenset(PANE_WINDOWS)

__all__ = ["row_kind", "run_starts", "spaced", "plan_keeps_prep", "crop_scale", "row_end_seconds", "centre_runs", "clock_runs", "detail_ticks"]


def row_kind(prep: str) -> str:
    """The kind of a bank row by its prep: 'frame' (the frame as decoded: prep ''), 'borders',
    'crop', 'strip916', 'rotation', 'grid' (off-centre grid windows, and the split-screen pane windows kept on their
    clock), or the prep itself."""
    prep = prep.removeprefix("borders+") if prep != "borders" else prep
    if not prep or prep == "borders":
        return prep or "frame"
    if prep.startswith("crop"):
        return "crop"
    if prep.startswith("window:rot"):
        return "rotation"
    if prep.startswith("window:g") or prep.removeprefix("window:") in _CLOCK_WINDOWS:
        return "grid"  # kept on the grid windows' clock (vscan.bank.one_pass.BANK_GRID_WINDOWS)
    return prep.removeprefix("window:")


def spaced(frames: list[int], times: list[float], per_second: float | None) -> set[int]:
    """The frames (in order) at least 1 / per_second apart, the first always; all when None."""
    if per_second is None:
        return set(frames)
    out, last = set(), -np.inf
    for f, t in sorted(zip(frames, times)):
        if not np.isfinite(t) or t - last >= 1.0 / per_second - 1e-9:
            out.add(f)
            last = t if np.isfinite(t) else last
    return out


def run_starts(hashes: np.ndarray, frame_bits: int) -> np.ndarray:
    """Positions (in order) of the rows that start a run: bool [N] over rows in frame order."""
    n = hashes.shape[0]
    starts = np.zeros(n, bool)
    if not n:
        return starts
    bits = np.unpackbits(hashes, axis=1).astype(np.int16)
    first = 0
    starts[0] = True
    for i in range(1, n):
        if int(np.count_nonzero(bits[i] != bits[first])) > frame_bits:
            starts[i] = True
            first = i
    return starts


def crop_scale(prep: str) -> float | None:
    """The share of each side a centre-crop row keeps ('crop0.900', 'borders+crop0.900': 0.9), else None."""
    prep = prep.removeprefix("borders+")
    return float(prep[4:]) if prep.startswith("crop") else None


def plan_keeps_prep(prep: str, crops: tuple[float, ...], windows: tuple[str, ...], grid_windows: tuple[str, ...] | None = None) -> bool:
    """Whether a plan with these centre ``crops``, re-post ``windows`` and ``grid_windows`` (None:
    any) keeps an extra row of this prep (borders removed: always)."""
    kind = row_kind(prep)
    name = prep.removeprefix("borders+").removeprefix("window:")
    if kind == "crop":
        return any(abs(crop_scale(prep) - c) < 1e-6 for c in crops)
    if kind in ("strip916", "rotation"):
        return name in windows
    if kind == "grid":
        return grid_windows is None or name in grid_windows
    return True


def row_end_seconds(entry_rows: np.ndarray, timestamps_seconds: np.ndarray, durations_seconds: np.ndarray) -> np.ndarray:
    """Where each frame row's time range ends (docs/bank-format.md): the next frame row's time in its entry,
    the entry's duration after its last row (NaN where unknown). A bank of every frame: one frame each; a
    bank of runs (``--rows compact``, ``lean``, ``cover``): the run a row stands for. Rows sorted by
    (entry, time), as ``BankIndex`` holds them."""
    t = np.asarray(timestamps_seconds, np.float64)
    e = np.asarray(entry_rows, np.int64)
    end = np.full(t.size, np.nan)
    if not t.size:
        return end
    order = np.lexsort((t, e))
    same = e[order][1:] == e[order][:-1]
    end[order[:-1][same]] = t[order][1:][same]
    last = order[np.concatenate((~same, [True]))]
    durations = np.asarray(durations_seconds, np.float64)
    end[last] = durations[e[last]] if durations.size else np.nan
    # A duration not after the last row (unknown, or a stream shorter than its timestamps): the row's own time.
    bad = ~(end > t)
    end[bad] = t[bad]
    return end


def centre_runs(hashes: np.ndarray, max_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(first row, centre row) of each run, rows uint8 [N, 32] in time order: a run grows while one of its
    frames (its centre) lies within ``max_bits`` of every frame of it, so every frame lies within
    ``max_bits`` of its run's centre; the centre is the frame whose farthest frame of the run is nearest.
    A centre covers drift both ways: about half the rows of runs measured from their first frame."""
    bits = np.unpackbits(np.asarray(hashes, np.uint8).reshape(-1, 32), axis=1).astype(bool)
    starts, centres = [], []
    start, farthest = 0, np.zeros(0, np.int64)  # farthest[k]: run frame k's distance to the run's farthest frame
    for f in range(bits.shape[0]):
        if f > start:
            d = np.count_nonzero(bits[start:f] != bits[f], axis=1)
            grown = np.append(np.maximum(farthest, d), d.max())
            if (grown <= max_bits).any():
                farthest = grown
                continue
            starts.append(start)
            centres.append(start + int(np.argmin(farthest)))
            start = f
        farthest = np.zeros(1, np.int64)
    if bits.shape[0]:
        starts.append(start)
        centres.append(start + int(np.argmin(farthest)))
    return np.asarray(starts, np.int64), np.asarray(centres, np.int64)


def clock_runs(times_seconds: np.ndarray, starts: np.ndarray, centres: np.ndarray, per_second: float) -> tuple[np.ndarray, np.ndarray]:
    """Runs (``centre_runs``: first and centre rows, frames in time order) where footage is slow, ticks of a
    clock where it is not: a run lasting at least ``1 / per_second`` seconds keeps its row; a frame of a shorter
    run that is the first of its tick (``k / per_second`` seconds, where a scan sampling that often takes a
    frame) starts a run of its own. Real footage changing 24-52 bits a frame makes runs of 1-2 frames, ~14 rows
    a second; a clock holds it to ``per_second``. The tick's row holds its first frame's hash: a second look
    (``vscan.bank.row_looks``) takes a copy's offset to a frame from it."""
    t = np.asarray(times_seconds, np.float64)
    n = t.size
    last = t[-1] + (t[-1] - t[-2] if n > 1 else 1.0 / per_second) if n else 0.0  # the last frame lasts as the one before
    ends = np.append(t[starts[1:]], last)
    long_run = ends - t[starts] >= 1.0 / per_second - 1e-6
    run_of = np.repeat(np.arange(starts.size), np.diff(np.append(starts, n)))
    tick = np.floor(np.where(np.isfinite(t), t, 0.0) * per_second + 1e-4).astype(np.int64)
    first_of_tick = np.ones(n, bool)
    first_of_tick[1:] = tick[1:] != tick[:-1]
    clock = np.flatnonzero(first_of_tick & ~long_run[run_of])
    out_starts = np.concatenate([starts[long_run], clock])
    out_centres = np.concatenate([centres[long_run], clock])
    order = np.argsort(out_starts, kind="stable")
    return out_starts[order], out_centres[order]



def detail_ticks(times_seconds: np.ndarray, detailed: np.ndarray, per_second: float) -> np.ndarray:
    """Which candidate ticks (times in order, on a clock twice ``per_second``) keep their extra rows: as many as a
    clock of ``per_second`` would keep (one a bucket of ``1 / per_second`` seconds), on ``detailed`` frames only (bool,
    their rows pass the matcher's quality filter). The clock's own pick of each bucket first where it is detailed; the
    rows a flat bucket (a fade, a blank wall) would have spent go to the detailed ticks farthest from any kept one. On
    footage detailed throughout: the clock's picks exactly. bool [N]."""
    t = np.asarray(times_seconds, np.float64)
    good = np.asarray(detailed, bool)
    keep = np.zeros(t.size, bool)
    if not t.size:
        return keep
    bucket = np.floor(np.where(np.isfinite(t), t, 0.0) * per_second + 1e-4).astype(np.int64)
    first = np.ones(t.size, bool)
    first[1:] = bucket[1:] != bucket[:-1]
    keep = first & good
    spare = int(first.sum() - keep.sum())
    at = np.flatnonzero(good & ~keep)
    # each candidate's distance to the nearest kept tick, updated as ticks are kept: O(spare x candidates)
    kept_t = t[keep]
    gap = np.zeros(at.size)
    if kept_t.size:
        kept_t = np.sort(kept_t)
        i = np.searchsorted(kept_t, t[at])
        gap = np.minimum(np.abs(t[at] - kept_t[np.maximum(i - 1, 0)]), np.abs(kept_t[np.minimum(i, kept_t.size - 1)] - t[at]))
    open_ = np.ones(at.size, bool)
    while spare > 0 and open_.any():
        k = int(np.argmax(np.where(open_, gap, -np.inf)))
        keep[at[k]], open_[k] = True, False
        gap = np.minimum(gap, np.abs(t[at] - t[at[k]]))
        spare -= 1
    return keep

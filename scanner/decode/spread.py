"""Where adaptive sampling's first pass puts the frames its keyframes leave out (vscan.decode.adaptive):
the spread that gives a short file ``Adaptive.min_frames`` frames, and the burst of every frame of half a
second in the middle of a short file scanned against a ``--rows sparse`` bank (``short_burst``), with the
model side's reading of which sampled frames that burst added (``burst_rows``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vscan.decode.sampling import _frames_at

__all__ = ["burst_mask", "burst_rows", "burst_window", "first_pass_spread", "on_clock", "short_burst", "spread_count", "spread_rows", "widest_middle"]


def first_pass_spread(pts: np.ndarray, chosen: np.ndarray, duration_seconds: float, min_frames: int, whole_seconds: bool = False,
                      middle: bool = True, seconds_too: bool = False, clock: float | None = None) -> np.ndarray:  # fmt: skip
    """The frames (indices into ``pts``) a first pass of the frames ``chosen`` adds to have ``min_frames`` (``Adaptive.min_frames``).

    One frame short (a short file with one keyframe, mostly) and ``middle``: the first frame at or after the middle of
    the widest stretch without a frame (``widest_middle``). The frames then sit as far apart as the even spread's (a
    keyframe at 0: 0 and d/2 against 0, d/4 and 3d/4; the widest stretch d/2 in both), one frame fewer, and a decode
    from the keyframe stops at d/2, not 3d/4 (issue #30: a 7 s single-keyframe VP9 or AV1 copy decoded 155 of its 206
    frames for 3 samples; now 104 for 2). At or after, so the stretch before it is the wider: a confirmation there
    (vscan.decode.adaptive.confirm_pass) is among the frames that decode passed, not a second decode from the keyframe.
    Else (more short: the region probe's 6, vscan.runtime.region_probe; or not ``middle``: a bank whose rows are on a
    clock, where each frame is a chance to land near one) ``min_frames`` evenly spread, on whole seconds with
    ``whole_seconds``. ``seconds_too``: those frames and the even spread's on whole seconds besides
    (``Adaptive.spread_on_seconds_too``: a ``--rows sparse`` bank's ticks); each whole second is at or before its even
    spread frame, so a decode from the keyframe reaches no further than the even spread's. ``clock`` (seconds, not with
    ``whole_seconds``): the even spread moved back to the ticks of that clock where that keeps them apart (``on_clock``)."""
    if seconds_too and not whole_seconds:
        return np.union1d(first_pass_spread(pts, chosen, duration_seconds, min_frames, False, middle, clock=clock),
                          first_pass_spread(pts, chosen, duration_seconds, min_frames, True, middle=False))  # fmt: skip
    missing = min_frames - len(chosen)
    if missing < 1 or not len(pts):
        return np.zeros(0, np.int64)
    if missing == 1 and middle:
        after = np.flatnonzero(pts >= widest_middle(pts[chosen], duration_seconds) - 1e-6)
        return np.asarray([after[np.argmin(pts[after])] if len(after) else int(np.argmax(pts))], np.int64)
    spread = (np.arange(min_frames) + 0.5) * duration_seconds / min_frames
    if whole_seconds:
        return _frames_at(pts, np.unique(np.floor(spread)))
    ticks = None if clock is None else on_clock(spread, clock, duration_seconds)
    return _frames_at(pts, spread) if ticks is None else _first_frames_from(pts, ticks)


def on_clock(times: np.ndarray, clock: float, duration_seconds: float) -> np.ndarray | None:
    """``times`` (sorted, evenly spaced, inside the file) each moved back to the tick of ``clock`` seconds (multiples
    of it from the file's start) at or before it, so a decode from the keyframe reaches no further; None where two
    would meet on one tick or the first on the file's first frame (frames closer than the clock, a file under 3 s for
    6 frames of a 1/4 s clock: leave them where they fall).

    A full bank keeps its grid and pane windows on a clock of 4 a second from the picture's start (``GRID_FPS``: the
    first frame at or after each tick), and footage that moves fast lies 50-100 bits from those rows between ticks
    (tune split's chair clip in a split screen: 8-30 bits on whole seconds, 30-100 a third of a second off): a frame
    on a tick meets them where a copy kept the picture's time (a pane, an inset, a fill composed frame for frame);
    where it did not, the frame is as good as any other."""
    moved = np.floor(np.asarray(times, np.float64) / clock + 1e-9) * clock
    if len(np.unique(moved)) < len(moved) or (len(moved) and moved[0] <= 0):
        return None
    return moved


def _first_frames_from(pts: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    """The first frame at or after each tick (as a bank's clock takes them: ``vscan.hashing.media``), the last frame
    for a tick after it, as sorted unique indices into ``pts``."""
    order = np.argsort(pts, kind="stable")
    pos = np.searchsorted(pts[order], ticks - 1e-6, side="left")
    return np.unique(order[np.clip(pos, 0, len(pts) - 1)]).astype(np.int64)


def widest_middle(times: np.ndarray, duration_seconds: float) -> float:
    """The middle of the widest stretch of ``[0, duration_seconds]`` without a frame at ``times`` (the stretch
    before the first and after the last included; the earliest of equally wide ones)."""
    edges = np.unique(np.concatenate([[0.0], np.clip(np.asarray(times, np.float64), 0.0, duration_seconds), [duration_seconds]]))
    gaps = np.diff(edges)
    if not len(gaps):
        return 0.0
    k = int(np.argmax(gaps))
    return float(edges[k] + gaps[k] / 2)


def burst_window(duration_seconds: float, max_file_seconds: float | None, seconds: float) -> tuple[float, float] | None:
    """[start, end) of the burst of ``seconds`` in the middle of a file up to ``max_file_seconds`` long; None for longer
    files, files of unknown length (0) and with ``max_file_seconds`` None (no burst)."""
    if max_file_seconds is None or not 0 < duration_seconds <= max_file_seconds:
        return None
    start = max(0.0, (duration_seconds - seconds) / 2)
    return start - 1e-6, start + seconds - 1e-6


def short_burst(pts: np.ndarray, duration_seconds: float, max_file_seconds: float | None, seconds: float) -> np.ndarray:
    """Every frame of ``seconds`` in the middle of a file up to ``max_file_seconds`` long (none else, or with None)."""
    window = burst_window(duration_seconds, max_file_seconds, seconds)
    if window is None:
        return np.zeros(0, np.int64)
    return np.flatnonzero((pts >= window[0]) & (pts < window[1]))


def burst_mask(policy: Any, timestamps: np.ndarray, duration_seconds: float | None) -> np.ndarray:
    """True for a file's sampled frames (at ``timestamps``) inside its short-file burst's window (``burst_window`` of
    ``policy``'s ``burst_max_file_seconds`` and ``burst_seconds``: ``Adaptive``, ``FixedRateBurst``); all False without one."""
    window = burst_window(float(duration_seconds or 0.0), getattr(policy, "burst_max_file_seconds", None), float(getattr(policy, "burst_seconds", 0.0)))
    t = np.asarray(timestamps, np.float64)
    return (t >= window[0]) & (t < window[1]) if window is not None else np.zeros(len(t), bool)


def spread_rows(policy: Any, timestamps: np.ndarray, duration_seconds: float | None, keyframes: np.ndarray | None = None) -> np.ndarray:
    """True for a file's sampled frames (at ``timestamps``) spread over it: all but its short-file burst's (``burst_mask``),
    where a keyframe (``keyframes``: True for those) stays, a first pass's own frame that the burst's window holds. What
    region search and the region probe (vscan.runtime.region_probe) count and look at: the burst's 15-30 frames within
    half a second to a second show one moment, not the frames over the file that a box's edges are found from."""
    inside = burst_mask(policy, timestamps, duration_seconds)
    if keyframes is not None and len(keyframes) == len(inside):
        inside &= ~np.asarray(keyframes, bool)
    return ~inside


def spread_count(policy: Any, timestamps: np.ndarray, duration_seconds: float | None, keyframes: np.ndarray | None = None) -> int:
    """Distinct sample times among ``spread_rows``: a 3-frame first pass of a short copy with a 15-frame burst has 3
    frames over its length, not 18 (issue #27: counting the burst blocked the region probe's escalation)."""
    t = np.asarray(timestamps, np.float64)
    return int(len(np.unique(t[spread_rows(policy, t, duration_seconds, keyframes)])))


def burst_rows(policy: Any, timestamps: np.ndarray, duration_seconds: float | None) -> np.ndarray | None:
    """Which of a file's sampled frames (at ``timestamps``) are its short-file burst's (``policy``'s
    ``burst_max_file_seconds``: ``Adaptive``, ``FixedRateBurst``): True for those in the burst's window but the one
    nearest its middle, which stands for it as a first-pass frame there would (mostly it is one: the middle of a file
    with one keyframe, ``widest_middle``). The scan's searches beyond the plain match (centre crops, regions,
    off-centre: vscan.runtime.file_match) leave them out: the burst is there to land one frame on a sparse entry's tick
    for the plain match. None: no burst in ``policy`` or this file, or fewer than two frames left."""
    t = np.asarray(timestamps, np.float64)
    inside = burst_mask(policy, t, duration_seconds)
    if inside.sum() < 2:
        return None
    window = burst_window(float(duration_seconds or 0.0), getattr(policy, "burst_max_file_seconds", None), float(getattr(policy, "burst_seconds", 0.0)))
    middle = np.flatnonzero(inside)[int(np.argmin(np.abs(t[inside] - (window[0] + window[1]) / 2)))]
    inside[middle] = False
    return inside if len(t) - inside.sum() >= 2 else None


#: ``ticks_passed`` takes at most this many frames a file (evenly over its ticks): a long file of one keyframe, decoded
#: to 3/4 of its length by the even spread, is not hashed twice a second all through.
TICKS_MAX_FRAMES = 24


def ticks_passed(pts: np.ndarray, chosen: np.ndarray, keyframes: np.ndarray, tick_seconds: float) -> np.ndarray:
    """The frames (indices into ``pts``) on multiples of ``tick_seconds`` that a decode of the frames ``chosen`` passes anyway:
    each chosen frame is decoded from the keyframe at or before it (``keyframes``: indices), so every frame between the two is
    decoded; those on a tick are hashed too (``Adaptive.ticks_passed_seconds``: a ``--rows sparse`` bank holds fast footage
    only at its ticks). At most ``TICKS_MAX_FRAMES``, evenly over the ticks; frames already chosen are among those returned."""
    pts = np.asarray(pts, np.float64)
    chosen = np.asarray(chosen, np.int64)
    if not len(chosen) or not len(pts) or not tick_seconds > 0:
        return np.zeros(0, np.int64)
    keys = np.asarray(keyframes, np.int64)
    keys = keys[(keys >= 0) & (keys < len(pts))]  # an index pass of a damaged file may name frames it does not have
    key_times = np.sort(pts[keys]) if len(keys) else pts[:1]
    key_times = key_times[np.isfinite(key_times)] if np.isfinite(key_times).any() else np.zeros(1)
    ends = np.sort(pts[chosen])  # each chosen frame ends a decoded stretch that starts at its keyframe
    ends = ends[np.isfinite(ends)]
    if not len(ends):
        return np.zeros(0, np.int64)
    starts = key_times[np.clip(np.searchsorted(key_times, ends + 1e-9, side="right") - 1, 0, None)]
    starts = np.minimum(starts, ends)
    ticks = np.arange(0.0, ends[-1] + 1e-9, tick_seconds)
    # a tick is passed when the first stretch ending at or after it starts at or before it
    k = np.searchsorted(ends, ticks - 1e-9, side="left")
    ticks = ticks[starts[np.minimum(k, len(ends) - 1)] <= ticks + 1e-9]
    if len(ticks) > TICKS_MAX_FRAMES:
        ticks = ticks[np.unique(np.linspace(0, len(ticks) - 1, TICKS_MAX_FRAMES).round().astype(np.int64))]
    return _frames_at(pts, ticks) if len(ticks) else np.zeros(0, np.int64)

"""Sampling policies: which frames of a file to decode.

Policy apart from mechanism: a policy sees only the frame timestamps, the
keyframe indices and the duration, and returns a `SamplingDecision`
(sorted unique frame indices plus the reason). Decoders do the reading.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vscan.errors import ConfigError

__all__ = [
    "Budgeted",
    "EveryFrame",
    "FixedRate",
    "FrameList",
    "Keyframes",
    "LookWindows",
    "SamplingDecision",
    "SamplingPolicy",
    "parse_policy",
    "sparse_looks",
]


def _tolerance(t: np.ndarray | float) -> np.ndarray | float:
    """Slack when comparing a pts with a target time: 1 us, plus float32
    rounding, because decord reports timestamps as float32 (at one hour its
    resolution is 0.24 ms) and both backends must pick the same frames."""
    return 1e-6 + np.abs(t) * 1.2e-7


@dataclass(frozen=True)
class SamplingDecision:
    """Frame indices chosen (sorted, unique, int64) and why."""

    frame_indices: np.ndarray = field(repr=False)
    policy: str
    reason: str


class SamplingPolicy(ABC):
    """Base of the sampling policies; subclasses are frozen dataclasses."""

    name: str = ""

    @abstractmethod
    def describe(self) -> str:
        """A short human-readable description, e.g. 'FixedRate(1 fps)'."""

    @abstractmethod
    def decide(
        self,
        pts_seconds: np.ndarray,
        keyframe_indices: Sequence[int] | None,
        duration_seconds: float,
    ) -> SamplingDecision:
        """Choose frames; see `select`."""

    def select(
        self,
        pts_seconds: np.ndarray,
        keyframe_indices: Sequence[int] | None,
        duration_seconds: float,
    ) -> np.ndarray:
        """Sorted unique int64 frame indices into `pts_seconds` (presentation order)."""
        return self.decide(np.asarray(pts_seconds, np.float64), keyframe_indices,
                           float(duration_seconds)).frame_indices  # fmt: skip


def _indices(values) -> np.ndarray:
    return np.unique(np.asarray(values, dtype=np.int64))


def _frames_at(pts: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The frame on screen at each target time (last pts <= t, or the first
    frame), as sorted unique indices into ``pts``."""
    # Presentation order is normally sorted already; sort defensively.
    order = np.argsort(pts, kind="stable")
    pos = np.searchsorted(pts[order], targets + _tolerance(targets), side="right") - 1
    return _indices(order[np.clip(pos, 0, len(pts) - 1)])


def _plus_frames_at(decision: "SamplingDecision", pts_seconds, times, duration_seconds: float, what: str) -> "SamplingDecision":
    """``decision`` and the frames on screen at ``times`` (those inside the file), its reason saying how
    many it added and ``what`` they are (a second pass's extra frames: a sparse entry's rows, cuts)."""
    pts = np.asarray(pts_seconds, np.float64)
    times = np.asarray(times, np.float64)
    times = times[(times >= 0) & (times < duration_seconds)]
    if len(pts) == 0 or not len(times):
        return decision
    chosen = np.union1d(decision.frame_indices, _frames_at(pts, times)).astype(np.int64)
    return SamplingDecision(chosen, decision.policy, f"{decision.reason} + {len(chosen) - len(decision.frame_indices)} {what}")


@dataclass(frozen=True)
class EveryFrame(SamplingPolicy):
    """Every frame of the stream; with ``max_fps``, every frame at most that many a second (a frame less than
    1/``max_fps`` after the last one kept is passed over: a 240 fps slow-motion clip keeps every 4th at 60)."""

    max_fps: float | None = None
    name = "every_frame"

    def __post_init__(self) -> None:
        if self.max_fps is not None and (isinstance(self.max_fps, bool) or not (math.isfinite(self.max_fps) and self.max_fps > 0)):
            raise ConfigError(f"Invalid max_fps ({self.max_fps!r}). Supported values are finite numbers > 0, or None.")

    def describe(self) -> str:
        return "EveryFrame()" if self.max_fps is None else f"EveryFrame(max_fps={self.max_fps:g})"

    def decide(self, pts_seconds, keyframe_indices, duration_seconds) -> SamplingDecision:
        n = len(pts_seconds)
        if self.max_fps is None or n < 2:
            return SamplingDecision(np.arange(n, dtype=np.int64), self.name, f"all {n} frames")
        pts = np.asarray(pts_seconds, np.float64)
        order = np.argsort(pts, kind="stable")
        step, kept, last = 1.0 / self.max_fps, [], -math.inf
        for i, t in zip(order.tolist(), pts[order].tolist()):
            if t >= last + step - 1e-3 * step - _tolerance(t):
                kept.append(i)
                last = t
        chosen = _indices(kept)
        if len(chosen) == n:
            return SamplingDecision(chosen, self.name, f"all {n} frames")
        return SamplingDecision(chosen, self.name, f"{len(chosen)} of {n} frames (at most {self.max_fps:g} a second)")


@dataclass(frozen=True)
class FixedRate(SamplingPolicy):
    """One frame per 1/fps seconds, chosen by timestamp.

    Targets are t_k = k / fps for k = 0, 1, ... while t_k < duration; each
    maps to the frame on screen at t_k (the last frame with pts <= t_k + 1e-6
    plus float32 rounding,
    or the first frame for targets before it). Duplicates are merged, so a
    rate above the video's rate yields every frame once.
    """

    fps: float
    name = "fixed_rate"

    def __post_init__(self) -> None:
        if isinstance(self.fps, bool) or not (math.isfinite(self.fps) and self.fps > 0):
            raise ConfigError(f"Invalid fps ({self.fps!r}). Supported values are finite numbers > 0.")

    def describe(self) -> str:
        return f"FixedRate({self.fps:g} fps)"

    def decide(self, pts_seconds, keyframe_indices, duration_seconds) -> SamplingDecision:
        pts = np.asarray(pts_seconds, np.float64)
        n = len(pts)
        if n == 0:
            return SamplingDecision(np.zeros(0, np.int64), self.name, "no frames")
        targets = np.arange(math.ceil(duration_seconds * self.fps) + 1, dtype=np.float64) / self.fps
        targets = targets[targets < duration_seconds - _tolerance(duration_seconds)]
        if len(targets) == 0:
            targets = np.zeros(1)
        num_targets = len(targets)
        chosen = _frames_at(pts, targets)
        return SamplingDecision(
            chosen, self.name, f"{len(chosen)} frames for {num_targets} targets at {self.fps:g} fps"
        )

    def refine(self, matches: Sequence, duration_seconds: float, **_) -> "SamplingPolicy | None":
        """No second pass, but for a weak hit on a sparse bank entry: the frames on its rows
        (``LookWindows``, ``vscan.bank.row_looks``). A copy shifted against the entry (a trim) shows a
        fixed clock frames that fall between the entry's ticks, 80-110 bits from every row on fast footage;
        only the frames at the ticks, the hit's offset applied, can meet them."""
        looks = sparse_looks(matches, LOOK_MAX_FRAMES)
        return LookWindows(self.fps, (), looks) if looks and duration_seconds > 0 else None


@dataclass(frozen=True)
class Keyframes(SamplingPolicy):
    """The keyframes (cheap: no inter-frame decoding).

    Files with long GOPs have few keyframes: when fewer than `min_frames`
    (or none, or unknown), fall back to FixedRate(1.0) and say so in the
    decision's reason.
    """

    min_frames: int = 0
    name = "keyframes"

    def __post_init__(self) -> None:
        if isinstance(self.min_frames, bool) or not isinstance(self.min_frames, int) or self.min_frames < 0:
            raise ConfigError(f"Invalid min_frames ({self.min_frames!r}). Supported values are integers >= 0.")

    def describe(self) -> str:
        return f"Keyframes(min_frames={self.min_frames})"

    def decide(self, pts_seconds, keyframe_indices, duration_seconds) -> SamplingDecision:
        n = len(pts_seconds)
        keys = None
        if keyframe_indices is not None:
            keys = _indices(keyframe_indices)
            keys = keys[(keys >= 0) & (keys < n)]
        if keys is not None and len(keys) >= max(1, self.min_frames):
            return SamplingDecision(keys, self.name, f"{len(keys)} keyframes")
        found = "unknown keyframes" if keys is None else f"{len(keys)} keyframes"
        fallback = FixedRate(1.0).decide(pts_seconds, keyframe_indices, duration_seconds)
        return SamplingDecision(
            fallback.frame_indices,
            self.name,
            f"{found} < min_frames {max(1, self.min_frames)}: fell back to FixedRate(1 fps), "
            f"{fallback.reason}",
        )


def _merge_spans(spans: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    merged: list[list[float]] = []
    for start, end in sorted((float(a), float(b)) for a, b in spans if b >= a):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((a, b) for a, b in merged)


@dataclass(frozen=True)
class FrameList(SamplingPolicy):
    """Exactly the listed frame indices (those inside the file): what a
    later pass over a file still needs (vscan.runtime.region_probe)."""

    indices: tuple[int, ...]
    name = "frames"

    def describe(self) -> str:
        return f"FrameList({len(self.indices)} frames)"

    def decide(self, pts_seconds, keyframe_indices, duration_seconds) -> SamplingDecision:
        chosen = _indices(list(self.indices))
        chosen = chosen[(chosen >= 0) & (chosen < len(pts_seconds))]
        return SamplingDecision(chosen, self.name, f"{len(chosen)} listed frames")


@dataclass(frozen=True)
class Windows(SamplingPolicy):
    """FixedRate(fps) restricted to time spans [start, end] (seconds)."""

    fps: float
    spans: tuple[tuple[float, float], ...]
    name = "windows"

    def __post_init__(self) -> None:
        FixedRate(self.fps)  # validates fps
        object.__setattr__(self, "spans", _merge_spans(self.spans))

    @property
    def seconds(self) -> float:
        return float(sum(b - a for a, b in self.spans))

    def describe(self) -> str:
        return f"Windows({self.fps:g} fps in {len(self.spans)} spans, {self.seconds:.1f} s)"

    def decide(self, pts_seconds, keyframe_indices, duration_seconds) -> SamplingDecision:
        pts = np.asarray(pts_seconds, np.float64)
        if len(pts) == 0 or not self.spans:
            return SamplingDecision(np.zeros(0, np.int64), self.name, "no frames")
        step = 1.0 / self.fps
        targets = np.concatenate([np.arange(a, b + 1e-9, step) for a, b in self.spans])
        targets = targets[(targets >= 0) & (targets < duration_seconds)]
        if len(targets) == 0:
            return SamplingDecision(np.zeros(0, np.int64), self.name, "spans outside the video")
        chosen = _frames_at(pts, targets)
        return SamplingDecision(chosen, self.name, f"{len(chosen)} frames at {self.fps:g} fps in {len(self.spans)} spans")


@dataclass(frozen=True)
class LookWindows(Windows):
    """A second pass's windows plus the frames on screen at ``look_seconds``: where a weak hit's
    sparse bank entry has rows, its offset applied (``vscan.bank.row_looks``)."""

    look_seconds: tuple[float, ...] = ()
    #: The looks need the very frames named (a neighbour of a fast shot lies 24-52 bits away): the decode task
    #: skips no non-reference frames for this pass (vscan.runtime.decode_task).
    exact_frames = True

    def describe(self) -> str:
        looks = f"{len(self.look_seconds)} frames at a sparse entry's rows"
        return f"{super().describe()} + {looks}" if self.spans else looks  # a fixed rate's look has no windows

    def decide(self, pts_seconds, keyframe_indices, duration_seconds) -> SamplingDecision:
        decision = super().decide(pts_seconds, keyframe_indices, duration_seconds)
        return _plus_frames_at(decision, pts_seconds, self.look_seconds, duration_seconds, "at a sparse entry's rows")


#: Frames a second look takes at most per file (``Adaptive.max_frames``'s default).
LOOK_MAX_FRAMES = 600


def sparse_looks(matches: Sequence, max_frames: int, *, decided: bool = False) -> tuple[float, ...]:
    """The times weak hits (matches that did not decide) on sparse bank entries ask a second look at
    (``Match.look_seconds``, ``vscan.bank.row_looks``), sorted, the first ``max_frames``; with ``decided``, those
    decided matches name too (one decided on a single cropped frame: ``vscan.bank.robust.THIN_MATCH_FRAMES``)."""
    looks = {float(t) for m in matches if decided or not getattr(m, "is_match", False) for t in getattr(m, "look_seconds", ())}
    return tuple(sorted(looks))[:max_frames]


class Budgeted(SamplingPolicy):
    """``inner`` within a budget of ``max_frames`` frames per file, spread
    evenly over everything inner chose (never a prefix of the file).

    Not frozen: ``truncation`` describes the last decision that hit the
    budget (None when it did not), for the file's record.
    """

    def __init__(self, inner: SamplingPolicy, max_frames: int):
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
            raise ConfigError(f"Invalid max_frames ({max_frames!r}). Supported values are integers >= 1.")
        self.inner, self.max_frames = inner, max_frames
        self.name = inner.name
        self.truncation: dict | None = None

    def describe(self) -> str:
        return self.inner.describe()

    def decide(self, pts_seconds, keyframe_indices, duration_seconds) -> SamplingDecision:
        decision = self.inner.decide(pts_seconds, keyframe_indices, duration_seconds)
        chosen = decision.frame_indices
        self.truncation = None
        if len(chosen) <= self.max_frames:
            return decision
        kept = chosen[np.unique(np.linspace(0, len(chosen) - 1, self.max_frames).round().astype(np.int64))]
        times = np.asarray(pts_seconds, np.float64)[kept]
        self.truncation = {
            "frames_chosen": int(len(chosen)),
            "frames_kept": int(len(kept)),
            "seconds_covered": float(max(0.0, min(duration_seconds, times[-1] - times[0] + (duration_seconds / len(pts_seconds))))),
            "max_gap_seconds": float(np.diff(times).max()) if len(times) > 1 else float(duration_seconds),
        }
        reason = f"{decision.reason}; budget {self.max_frames}: every {len(chosen) / len(kept):.2f}th kept, spread over the file"
        return SamplingDecision(kept, decision.policy, reason)


def parse_policy(every_frame: bool = False, fps: float | None = None, keyframes: bool = False) -> SamplingPolicy:
    """The policy named by CLI-style options; FixedRate(1.0) when none is given."""
    chosen = [name for name, on in (("every_frame", every_frame), ("fps", fps is not None),
                                    ("keyframes", keyframes)) if on]  # fmt: skip
    if len(chosen) > 1:
        raise ConfigError(
            f"Invalid sampling options ({', '.join(chosen)} together). "
            "Supported values are exactly one of every_frame, fps=<rate>, keyframes."
        )
    if every_frame:
        return EveryFrame()
    if keyframes:
        return Keyframes()
    if fps is not None:
        try:
            rate = float(fps)
        except (TypeError, ValueError):
            raise ConfigError(f"Invalid fps ({fps!r}). Supported values are finite numbers > 0.") from None
        return FixedRate(rate)
    return FixedRate(1.0)

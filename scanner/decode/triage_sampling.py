"""Triage frames on top of any sampling policy (``WithTriage``): a frame every few seconds and a least count per
file, for the detector models (``vscan.detect``), beside the frames the policy takes for the bank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vscan.decode.sampling import SamplingDecision, SamplingPolicy, _frames_at
from vscan.errors import ConfigError

__all__ = ["WithTriage"]


@dataclass(frozen=True)
class WithTriage(SamplingPolicy):
    """``inner``'s frames plus what triage models need: one frame every
    ``every_seconds`` and at least ``min_frames`` per file (evenly spread)."""

    inner: SamplingPolicy
    every_seconds: float = 3.0
    min_frames: int = 8

    def __post_init__(self) -> None:
        if not (self.every_seconds > 0 and self.min_frames >= 1):
            raise ConfigError(f"Invalid WithTriage({self.every_seconds}, {self.min_frames}). Supported values are every_seconds > 0, min_frames >= 1.")

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    def describe(self) -> str:
        return f"{self.inner.describe()} + triage (1 frame / {self.every_seconds:g} s, >= {self.min_frames} per file)"

    def decide(self, pts_seconds, keyframe_indices, duration_seconds) -> SamplingDecision:
        decision = self.inner.decide(pts_seconds, keyframe_indices, duration_seconds)
        pts = np.asarray(pts_seconds, np.float64)
        if len(pts) == 0:
            return decision
        duration = max(float(duration_seconds), float(pts[-1]))
        targets = np.arange(0.0, duration, self.every_seconds)
        spread = (np.arange(self.min_frames) + 0.5) * duration / self.min_frames
        extra = _frames_at(pts, np.concatenate([targets, spread]))
        chosen = np.union1d(decision.frame_indices, extra).astype(np.int64)
        added = len(chosen) - len(decision.frame_indices)
        return SamplingDecision(chosen, decision.policy, f"{decision.reason}; + {added} for triage")

    def refine(self, matches: Sequence, duration_seconds: float, moments: Sequence[tuple[float, float]] = (),
               sampled_seconds: Sequence[float] | None = None, cut_seconds: Sequence[float] = ()):  # fmt: skip
        inner = getattr(self.inner, "refine", None)
        cuts = {"cut_seconds": cut_seconds} if len(cut_seconds) else {}
        return None if inner is None else inner(matches, duration_seconds, moments=moments, sampled_seconds=sampled_seconds, **cuts)

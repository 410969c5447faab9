"""The decode side of triage: one decode feeds the hash model and the triage models.

With triage on (``models.triage``), the decoder is asked for frames at their
aspect ratio, longest side ``models.triage_max_side`` (never enlarged); they
go into the payload as ``triage_frames`` for the triage models
(vscan.detect.triage), and the square frames the hash model takes are made
from them here (vscan.frames.resize.to_square). With triage off nothing
changes: the decoder resizes straight to the square.

``triage_policy`` adds the frames the detectors need to a first pass: one
every ``models.triage_every_seconds`` and at least ``models.triage_min_frames``
per file (vscan.decode.adaptive.WithTriage); a second pass (Windows) is left
as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vscan.decode.adaptive import WithTriage
from vscan.decode.sampling import SamplingPolicy, Windows
from vscan.frames.resize import to_square

__all__ = ["TriageView", "triage_view", "triage_policy", "TRIAGE_KEY"]

#: The payload key of the triage frames (one row per sampled frame).
TRIAGE_KEY = "triage_frames"


class TriageView:
    """Collects one file's triage frames while the square ones go on to hashing."""

    def __init__(self, max_side: int, frame_size: int) -> None:
        self.max_side, self.frame_size = max_side, frame_size
        self._frames: list[np.ndarray] = []

    @property
    def decode_args(self) -> dict[str, Any]:
        return {"max_side": self.max_side}

    def split(self, rgb: np.ndarray) -> np.ndarray:
        """Keep ``rgb`` (the decoded batch) for triage; return its square version for hashing."""
        self._frames.append(rgb)
        return to_square(rgb, self.frame_size)

    def add_to(self, payload: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(payload["frames"])
        if self._frames and n:
            payload[TRIAGE_KEY] = np.concatenate(self._frames)[:n]
        return payload


def triage_view(config) -> TriageView | None:
    if not config.models.triage:
        return None
    return TriageView(config.models.triage_max_side, config.sampling.frame_size)


def triage_policy(config, policy: SamplingPolicy | None = None) -> SamplingPolicy:
    """The first pass's policy with the triage frames added (unchanged when triage is off or for a second pass)."""
    policy = config.sampling.policy if policy is None else policy
    if not config.models.triage or isinstance(policy, (Windows, WithTriage)):
        return policy
    return WithTriage(policy, config.models.triage_every_seconds, config.models.triage_min_frames)

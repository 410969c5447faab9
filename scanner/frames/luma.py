"""Luma of uint8 RGB frames as float32, with PDQ's weights
(``vscan.hashing.pdq_ops.LUMA``): what border, overlay, translucent-box and
region detection look at."""

from __future__ import annotations

import numpy as np

from vscan.hashing.pdq_ops import LUMA

__all__ = ["luma"]

_WEIGHTS = np.array(LUMA, np.float32)


def luma(frames: np.ndarray) -> np.ndarray:
    """float32 luma of uint8 RGB ``frames`` [..., 3] -> [...]."""
    return frames.astype(np.float32) @ _WEIGHTS

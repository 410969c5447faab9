"""Luma of uint8 RGB frames as float32, with PDQ's weights
(``vscan.hashing.pdq_ops.LUMA``): what border, overlay, translucent-box and
region detection look at; and the input check and frame spread they share."""

from __future__ import annotations

import numpy as np

from vscan.hashing.pdq_ops import LUMA

__all__ = ["luma", "check_frames", "evenly_spaced"]

_WEIGHTS = np.array(LUMA, np.float32)


def luma(frames: np.ndarray) -> np.ndarray:
    """float32 luma of uint8 RGB ``frames`` [..., 3] -> [...]."""
    return frames.astype(np.float32) @ _WEIGHTS


def check_frames(frames: np.ndarray) -> None:
    """ValueError unless ``frames`` are uint8 [N, H, W, 3]."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"Expected uint8 frames [N, H, W, 3], got {frames.dtype} {list(frames.shape)}")


def evenly_spaced(n: int, most: int) -> np.ndarray:
    """Indices of at most ``most`` of ``n`` frames, evenly spread, first and last included."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))

"""Luma of uint8 RGB frames as float32, with PDQ's weights
(``vscan.hashing.pdq_ops.LUMA``): what border, overlay, translucent-box and
region detection look at; and the input check and frame spread they share."""

from __future__ import annotations

import numpy as np

from vscan.hashing.pdq_ops import LUMA

__all__ = ["luma", "check_frames", "evenly_spaced"]

_WEIGHTS = np.array(LUMA, np.float32)


#: Pixels converted to float32 at a time: the float copy of a whole file's frames is 12 bytes a pixel
#: (a 4,096-frame file of 256 px frames: 3 GiB for a 1 GiB luma); in pieces, 48 MiB.
_CHUNK_PIXELS = 1 << 22


def luma(frames: np.ndarray) -> np.ndarray:
    """float32 luma of uint8 RGB ``frames`` [..., 3] -> [...]; a large array in pieces of whole frames, about
    ``_CHUNK_PIXELS`` each. Each pixel's luma is its own three-term product, but NumPy takes a stack of rows a
    row at a time down a path that depends on the row's length (a last bit apart in ~20% of pixels); pieces of
    whole frames keep every row whole, so the values are the whole product's, to the bit."""
    pixels = frames.size // 3
    if frames.ndim < 4 or pixels <= _CHUNK_PIXELS or len(frames) < 2:
        return frames.astype(np.float32) @ _WEIGHTS
    out = np.empty(frames.shape[:-1], np.float32)
    step = max(1, _CHUNK_PIXELS * len(frames) // pixels)
    for start in range(0, len(frames), step):
        np.matmul(frames[start : start + step].astype(np.float32), _WEIGHTS, out=out[start : start + step])
    return out


def check_frames(frames: np.ndarray) -> None:
    """ValueError unless ``frames`` are uint8 [N, H, W, 3]."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"Expected uint8 frames [N, H, W, 3], got {frames.dtype} {list(frames.shape)}")


def evenly_spaced(n: int, most: int) -> np.ndarray:
    """Indices of at most ``most`` of ``n`` frames, evenly spread, first and last included."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))

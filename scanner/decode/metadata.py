"""Value types of the decode stage: what a file is, and the frames taken from it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SampledFrames", "VideoMetadata"]


@dataclass(frozen=True)
class VideoMetadata:
    """What a probe learned about one file.

    `fps` is the average rate. `duration_seconds` is measured from the content:
    the last frame's pts (relative to the stream start) plus one frame at `fps`.
    `keyframe_indices` are frame indices in presentation order, None when the
    backend cannot tell. `backend` names the decoder that served the file.
    """

    path: str
    backend: str
    codec: str | None
    width: int
    height: int
    fps: float
    num_frames: int
    duration_seconds: float
    keyframe_indices: tuple[int, ...] | None
    is_still_image: bool = False
    #: Why the demuxer stopped short of what the container declares (a demux
    #: error, or a file cut off), None when it read it all; with the declared duration.
    demux_partial: str | None = None
    declared_duration_seconds: float | None = None

    def __post_init__(self) -> None:
        if not self.path or not self.backend:
            raise ValueError(f"path and backend must be non-empty, got {self.path!r}, {self.backend!r}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"width and height must be > 0, got {self.width}x{self.height} for {self.path}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be finite and > 0, got {self.fps} for {self.path}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames} for {self.path}")
        if not (math.isfinite(self.duration_seconds) and self.duration_seconds >= 0):
            raise ValueError(f"duration_seconds must be finite and >= 0, got {self.duration_seconds}")
        keys = self.keyframe_indices
        if keys is not None:
            if not isinstance(keys, tuple):
                raise TypeError(f"keyframe_indices must be a tuple or None, got {type(keys).__name__}")
            if any(b <= a for a, b in zip(keys, keys[1:])):
                raise ValueError(f"keyframe_indices must be strictly increasing, got {keys[:10]}...")
            if keys and (keys[0] < 0 or keys[-1] >= self.num_frames):
                raise ValueError(
                    f"keyframe_indices must lie in [0, {self.num_frames}), got {keys[0]}..{keys[-1]}"
                )
        if self.is_still_image and self.num_frames != 1:
            raise ValueError(f"a still image has one frame, got num_frames={self.num_frames}")


@dataclass(frozen=True)
class SampledFrames:
    """One batch of sampled frames, in increasing frame-index order.

    frame_indices: int64 [N], index in presentation order of the video stream.
    pts_seconds:   float64 [N], relative to the stream start.
    rgb:           uint8 [N, H, W, 3], C-contiguous.
    """

    frame_indices: np.ndarray
    pts_seconds: np.ndarray
    rgb: np.ndarray

    def __post_init__(self) -> None:
        idx, pts, rgb = self.frame_indices, self.pts_seconds, self.rgb
        for name, arr in (("frame_indices", idx), ("pts_seconds", pts), ("rgb", rgb)):
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
        if idx.dtype != np.int64 or idx.ndim != 1:
            raise ValueError(f"frame_indices must be int64 [N], got {idx.dtype} {list(idx.shape)}")
        n = idx.shape[0]
        if pts.dtype != np.float64 or pts.shape != (n,):
            raise ValueError(f"pts_seconds must be float64 [{n}], got {pts.dtype} {list(pts.shape)}")
        if rgb.dtype != np.uint8 or rgb.ndim != 4 or rgb.shape[0] != n or rgb.shape[3] != 3:
            raise ValueError(f"rgb must be uint8 [{n}, H, W, 3], got {rgb.dtype} {list(rgb.shape)}")
        if not rgb.flags.c_contiguous:
            raise ValueError(f"rgb must be C-contiguous, got strides {rgb.strides} for {list(rgb.shape)}")

    def __len__(self) -> int:
        return int(self.frame_indices.shape[0])

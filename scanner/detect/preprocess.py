"""Model input preparation in numpy and Pillow: the CPU path, no torch.

The pipeline hands every model the same frames: uint8 RGB [N, S, S, 3], a
square resize of the decoded frame. ``prepare`` turns them into one model's
input: resize to its size (restoring the source aspect ratio and padding
when it letterboxes), colour order, ``x * scale``, ``(x - mean) / std``,
layout. ``Letterbox`` maps boxes in model-input pixels back to source pixels.

The resize is Pillow's antialiased bilinear on uint8 (a triangle filter
widened by the downscale factor), the filter torch's ``antialias=True``
copies: against torch's CPU uint8 kernel (what this path replaced) it is
identical when upscaling and within 1 grey level on <1.5% of the pixels when
downscaling (256 -> 224: 876 of 301,056 values; 256 -> 32: 6 of 6,144;
measured). On CUDA, ``vscan.kernels.preprocess`` does the same on torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from PIL import Image

__all__ = ["Letterbox", "letterbox_geometry", "resize_rgb", "prepare", "boxes_to_source"]


@dataclass(frozen=True)
class Letterbox:
    """Source (w, h) -> model input: content scaled by ``ratio`` (x, y) and
    offset by ``pad`` (left, top) pixels."""

    ratio_x: float
    ratio_y: float
    pad_left: int
    pad_top: int
    content_width: int
    content_height: int


def letterbox_geometry(
    source_width: int, source_height: int, out_height: int, out_width: int, *, letterbox: bool
) -> Letterbox:
    if source_width < 1 or source_height < 1:
        raise ValueError(f"Invalid source size ({source_width}x{source_height}). Supported values are >= 1.")
    if not letterbox:
        return Letterbox(out_width / source_width, out_height / source_height, 0, 0, out_width, out_height)
    r = min(out_width / source_width, out_height / source_height)
    cw = max(1, min(out_width, round(source_width * r)))
    ch = max(1, min(out_height, round(source_height * r)))
    return Letterbox(r, r, (out_width - cw) // 2, (out_height - ch) // 2, cw, ch)


def resize_rgb(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [N, h, w, 3] -> uint8 [N, height, width, 3], antialiased bilinear (Pillow)."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"Expected uint8 frames [N, h, w, 3], got {frames.dtype} {tuple(frames.shape)}")
    if frames.shape[1:3] == (height, width):
        return frames
    out = np.empty((len(frames), height, width, 3), np.uint8)
    for i, frame in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(np.ascontiguousarray(frame)).resize((width, height), Image.Resampling.BILINEAR))
    return out


def prepare(
    frames: np.ndarray,
    source_sizes: Sequence[tuple[int, int]] | np.ndarray,
    *,
    height: int,
    width: int,
    layout: Literal["NCHW", "NHWC"] = "NCHW",
    colour: Literal["RGB", "BGR"] = "RGB",
    scale: float = 1.0 / 255.0,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    letterbox: bool = False,
    pad_value: float = 114.0,
    dtype: Literal["float32", "uint8"] = "float32",
) -> tuple[np.ndarray, list[Letterbox]]:
    """``frames`` uint8 [N, S, S, 3] RGB, ``source_sizes`` (width, height) per
    frame -> (model input [N, 3, H, W] or [N, H, W, 3], geometry per frame).

    ``pad_value`` is in 0..255 pixel units, like the frames."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"Expected uint8 frames [N, S, S, 3], got {frames.dtype} {tuple(frames.shape)}")
    sizes = [(int(w), int(h)) for w, h in np.asarray(source_sizes, np.int64).reshape(-1, 2).tolist()]
    if len(sizes) != len(frames):
        raise ValueError(f"Expected {len(frames)} source sizes, got {len(sizes)}")
    n = len(frames)
    out = np.full((n, height, width, 3), float(pad_value), np.float32)  # NHWC while filling: Pillow's layout
    geometry: list[Letterbox] = [None] * n  # type: ignore[list-item]
    # Files in one batch differ in source size: resize each size group at once.
    groups: dict[tuple[int, int], list[int]] = {}
    for i, size in enumerate(sizes):
        groups.setdefault(size, []).append(i)
    for (w, h), idx in groups.items():
        g = letterbox_geometry(w, h, height, width, letterbox=letterbox)
        rows = np.asarray(idx)
        resized = resize_rgb(frames[rows], g.content_height, g.content_width)
        out[rows, g.pad_top : g.pad_top + g.content_height, g.pad_left : g.pad_left + g.content_width] = resized
        for i in idx:
            geometry[i] = g
    if colour == "BGR":
        out = out[..., ::-1]
    if dtype == "uint8":
        out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    else:
        m = np.asarray(mean, np.float32)
        s = np.asarray(std, np.float32)
        out = (out * np.float32(scale) - m) / s
    if layout == "NCHW":
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out), geometry


def boxes_to_source(boxes_xyxy: np.ndarray, g: Letterbox, source_width: int, source_height: int) -> np.ndarray:
    """Boxes [K, 4] x1, y1, x2, y2 in model-input pixels -> source pixels, clipped."""
    b = np.array(boxes_xyxy, np.float32, copy=True)
    b[:, 0::2] = np.clip((b[:, 0::2] - g.pad_left) / np.float32(g.ratio_x), 0, source_width)
    b[:, 1::2] = np.clip((b[:, 1::2] - g.pad_top) / np.float32(g.ratio_y), 0, source_height)
    return b

"""Model inputs from real frames (at their own aspect ratio), and face crops.

Triage models (vscan.detect.triage) see the decoded frame kept at its
aspect ratio (``triage_frames``, longest side ``models.triage_max_side``),
never the 256x256 square made for PDQ. Each model's manifest says how its
input is made from it:

- ``letterbox`` (detectors): scaled to fit, padded with ``pad_value``;
- ``resize = [h, w]`` then centre crop to ``size`` (open_nsfw: 256x256,
  224 crop), optionally a JPEG round trip (``jpeg_quality``);
- neither: squashed to ``size``;
then colour order, ``x * scale``, ``(x - mean) / std``, layout.

Resizes are Pillow's bilinear (what open_nsfw's package and BlazeFace's
reference pre-processing use). ``face_crops`` cuts a square around each face
box, ``margin`` of the box added on each side, rotated about the box centre
so the eyes are level when ``align = "landmarks"``.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from PIL import Image

from vscan.detect.blazeface import LEFT_EYE, RIGHT_EYE
from vscan.detect.preprocess import Letterbox, prepare

__all__ = ["model_input", "face_crops", "finish"]


def finish(x: np.ndarray, spec) -> np.ndarray:
    """float32 NHWC RGB pixels (0..255) -> the model's tensor (colour, scale, mean/std, layout, dtype)."""
    if spec.colour == "BGR":
        x = x[..., ::-1]
    if spec.dtype == "uint8":
        x = np.clip(np.round(x), 0, 255).astype(np.uint8)
    else:
        x = (x * np.float32(spec.scale) - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.uint8 if spec.dtype == "uint8" else np.float32)


def _jpeg(img: Image.Image, quality: int) -> np.ndarray:
    with io.BytesIO() as buf:
        img.save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        return np.asarray(Image.open(buf).convert("RGB"))


def _resize_crop(frames: np.ndarray, spec) -> np.ndarray:
    rh, rw = spec.resize
    top, left = (rh - spec.height) // 2, (rw - spec.width) // 2
    out = np.empty((len(frames), spec.height, spec.width, 3), np.float32)
    for i, frame in enumerate(frames):
        img = Image.fromarray(np.ascontiguousarray(frame)).resize((rw, rh), Image.Resampling.BILINEAR)
        img = img.crop((left, top, left + spec.width, top + spec.height))
        out[i] = _jpeg(img, spec.jpeg_quality) if spec.jpeg_quality else np.asarray(img)
    return out


def model_input(frames: np.ndarray, spec, *, on_torch: str | None = None) -> tuple[np.ndarray, list[Letterbox] | None]:
    """uint8 [N, h, w, 3] RGB frames of one file -> (model input, letterbox
    geometry per frame, or None for centre crops). ``on_torch``: a torch
    device ("cuda") to letterbox/resize on (vscan.kernels.preprocess; a
    float resize, within a grey level of Pillow's); centre crops with a JPEG
    round trip always run here."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"Expected uint8 frames [N, h, w, 3], got {frames.dtype} {tuple(frames.shape)}")
    if spec.resize is not None:
        return finish(_resize_crop(frames, spec), spec), None
    h, w = frames.shape[1:3]
    if spec.jpeg_quality:
        raise ValueError("jpeg_quality needs resize (a centre-cropped input)")
    args = dict(height=spec.height, width=spec.width, layout=spec.layout, colour=spec.colour, scale=spec.scale, mean=spec.mean,
                std=spec.std, letterbox=spec.letterbox, pad_value=spec.pad_value, dtype=spec.dtype)  # fmt: skip
    if on_torch is None:
        return prepare(frames, [(w, h)] * len(frames), **args)
    import torch

    from vscan.kernels.preprocess import prepare as prepare_on_torch

    x, geometry = prepare_on_torch(torch.from_numpy(np.ascontiguousarray(frames)).to(on_torch), [(w, h)] * len(frames), **args)
    return x.cpu().numpy(), geometry


def face_crops(frame: np.ndarray, faces: np.ndarray, spec) -> np.ndarray:
    """One frame (uint8 [h, w, 3]) and its faces ([K, 17] rows in that frame's
    pixels: vscan.detect.blazeface) -> float32 [K, size, size, 3] RGB crops
    (0..255; outside the frame is black). Square crops of the box's longer
    side plus ``margin`` on each side; ``align = "landmarks"`` rotates them so
    the eyes are level."""
    img = Image.fromarray(np.ascontiguousarray(frame))
    out = np.zeros((len(faces), spec.height, spec.width, 3), np.float32)
    for k, row in enumerate(np.asarray(faces, np.float64)):
        x1, y1, x2, y2 = row[:4]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        side = max(x2 - x1, y2 - y1) * (1 + 2 * spec.margin)
        angle = 0.0
        if spec.align == "landmarks":
            (rx, ry), (lx, ly) = row[4 + 2 * RIGHT_EYE : 6 + 2 * RIGHT_EYE], row[4 + 2 * LEFT_EYE : 6 + 2 * LEFT_EYE]
            angle = float(np.arctan2(ly - ry, lx - rx))  # image-left eye to image-right eye
        # Output pixel (u, v) samples the frame at centre + R(angle) @ ((u, v) - half) * side / size.
        sx, sy = side / spec.width, side / spec.height
        c, s = np.cos(angle), np.sin(angle)
        a, b = c * sx, -s * sy
        d, e = s * sx, c * sy
        ox = cx - a * spec.width / 2 - b * spec.height / 2
        oy = cy - d * spec.width / 2 - e * spec.height / 2
        crop = img.transform((spec.width, spec.height), Image.Transform.AFFINE, (a, b, ox, d, e, oy),
                             resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))  # fmt: skip
        out[k] = np.asarray(crop, np.float32)
    return out


def crops_input(frames: Sequence[np.ndarray], faces: Sequence[np.ndarray], spec) -> np.ndarray:
    """Every face of every frame as the chained model's input (face order: frame, then face)."""
    parts = [face_crops(f, rows, spec) for f, rows in zip(frames, faces) if len(rows)]
    x = np.concatenate(parts) if parts else np.zeros((0, spec.height, spec.width, 3), np.float32)
    return finish(x, spec)

"""Edited copies of a clip: the frame, timing and compilation edits that robust matching must survive.

`edit_clip` holds the whole decoded clip in memory: it is meant for the short
clips made by vscan.bench.synth, not for real evidence.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vscan.bench.encoding import _encode, _even
from vscan.bench.scenes import _Renderer

__all__ = ["TRANSFORMS", "edit_clip"]

TRANSFORMS = (
    "reencode", "downscale", "crop", "pad", "hflip", "rot90", "brightness",
    "grayscale", "watermark", "text", "noise", "blur", "fps", "speed", "trim",
    "compile",
)  # fmt: skip


def _read_clip(path: Path) -> tuple[list[np.ndarray], np.ndarray, float]:
    """All frames as RGB, their pts in seconds (from 0) and the average fps."""
    import av
    from vscan.decode.pyav_reuse import SWS_THREADS

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        frames, pts = [], []
        for i, frame in enumerate(container.decode(stream)):
            frames.append(frame.to_ndarray(format="rgb24", threads=SWS_THREADS))  # a pool forked after a threaded one would hang
            pts.append(float(frame.pts * frame.time_base) if frame.pts is not None else i / fps)
    if not frames:
        raise ValueError(f"{path}: no frames decoded")
    pts_arr = np.asarray(pts) - pts[0]
    return frames, pts_arr, fps


def _resample(frames: Sequence[np.ndarray], pts: np.ndarray, times: np.ndarray) -> list[np.ndarray]:
    """The frame on screen at each time (last with pts <= t)."""
    idx = np.clip(np.searchsorted(pts, times + 1e-6, side="right") - 1, 0, len(frames) - 1)
    return [frames[i] for i in idx]


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BOX))


def _frame_edit(transform: str, params: dict, rng: np.random.Generator):
    """A per-frame function for the transforms that do not change timing."""
    from PIL import Image, ImageDraw, ImageFilter

    p = params
    if transform == "reencode":
        return lambda f: f
    if transform == "downscale":
        target_h = int(p.get("height", 240))

        def downscale(f):
            h, w = f.shape[:2]
            th = min(target_h, h)
            return _resize(f, _even(round(w * th / h)), _even(th))

        return downscale
    if transform == "crop":
        frac = float(p.get("fraction", 0.2))  # share of width/height removed, centred

        def crop(f):
            h, w = f.shape[:2]
            dy, dx = int(h * frac / 2), int(w * frac / 2)
            return f[dy : h - dy, dx : w - dx]

        return crop
    if transform == "pad":
        frac = float(p.get("fraction", 0.125))  # bar size per side, share of the frame
        mode = p.get("mode", "letterbox")
        if mode not in ("letterbox", "pillarbox"):
            raise ValueError(f"Invalid mode ({mode!r}). Supported values are 'letterbox', 'pillarbox'.")

        def pad(f):
            h, w = f.shape[:2]
            out = np.zeros_like(f)
            if mode == "letterbox":
                bar = int(h * frac)
                ih = _even(h - 2 * bar)
                iw = _even(round(w * ih / h))
            else:
                bar = int(w * frac)
                iw = _even(w - 2 * bar)
                ih = _even(round(h * iw / w))
            y0, x0 = (h - ih) // 2, (w - iw) // 2
            out[y0 : y0 + ih, x0 : x0 + iw] = _resize(f, iw, ih)
            return out

        return pad
    if transform == "hflip":
        return lambda f: f[:, ::-1]
    if transform == "rot90":
        k = int(p.get("k", 1))
        return lambda f: np.rot90(f, k)
    if transform == "brightness":
        delta = float(p.get("delta", 40))
        return lambda f: np.clip(f.astype(np.int16) + int(delta), 0, 255).astype(np.uint8)
    if transform == "grayscale":

        def gray(f):
            y = f @ np.array([0.299, 0.587, 0.114])
            return np.repeat(y.clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)

        return gray
    if transform == "watermark":
        frac = float(p.get("fraction", 0.1))  # share of the frame area covered
        colour = np.array(p.get("color", (255, 255, 255)), np.uint8)

        def watermark(f):
            f = f.copy()
            h, w = f.shape[:2]
            bh, bw = max(1, int(h * frac**0.5)), max(1, int(w * frac**0.5))
            f[h - bh - h // 20 : h - h // 20, w - bw - w // 20 : w - w // 20] = colour
            return f

        return watermark
    if transform == "text":
        label = str(p.get("label", "SAMPLE 0123"))
        shapes = [tuple(rng.random(4)) for _ in range(int(p.get("shapes", 3)))]

        def text(f):
            img = Image.fromarray(f)
            draw = ImageDraw.Draw(img)
            h, w = f.shape[:2]
            for x0, y0, x1, y1 in shapes:
                box = sorted((x0 * w, x1 * w)), sorted((y0 * h, y1 * h))
                draw.rectangle((box[0][0], box[1][0], box[0][0] + w / 8, box[1][0] + h / 12),
                               outline=(255, 255, 0), width=2)  # fmt: skip
            draw.text((w // 10, h - h // 6), label, fill=(255, 255, 255))
            return np.asarray(img)

        return text
    if transform == "noise":
        sigma = float(p.get("sigma", 10))
        return lambda f: np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8)
    if transform == "blur":
        radius = float(p.get("radius", 2))
        return lambda f: np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(radius)))
    return None


def edit_clip(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    transform: str,
    *,
    codec: str = "libx264",
    crf: int | None = None,
    seed: int = 0,
    **params,
) -> Path:
    """Decode src, apply one edit with numpy, re-encode to dst.

    Parameters per transform (defaults): reencode(crf=40), downscale(height=240),
    crop(fraction=0.2), pad(fraction=0.125, mode="letterbox"|"pillarbox"),
    hflip, rot90(k=1), brightness(delta=40), grayscale, watermark(fraction=0.1,
    color), text(label, shapes=3), noise(sigma=10), blur(radius=2),
    fps(fps=...), speed(factor=...), trim(start=0, end=None),
    compile(other_seed=..., at=1.0, start=0, end=None, seconds=4.0).
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"Invalid transform ({transform!r}). Supported values are {list(TRANSFORMS)}.")
    frames, pts, fps = _read_clip(Path(src))
    duration = float(pts[-1] + 1 / fps)
    rng = np.random.default_rng(seed)
    out_fps = fps
    if transform == "reencode" and crf is None:
        crf = int(params.get("quality_crf", 40))
    per_frame = _frame_edit(transform, params, rng)
    if per_frame is not None:
        out = (per_frame(f) for f in frames)
    elif transform == "fps":
        out_fps = float(params["fps"])
        times = np.arange(int(np.floor(duration * out_fps - 1e-9)) + 1) / out_fps
        out = _resample(frames, pts, times[times < duration])
    elif transform == "speed":
        factor = float(params["factor"])
        if factor <= 0:
            raise ValueError(f"Invalid factor ({factor}). Supported values are > 0.")
        n = max(1, int(round(duration / factor * fps)))
        out = _resample(frames, pts, np.arange(n) / fps * factor)
    elif transform in ("trim", "compile"):
        start = float(params.get("start", 0.0))
        end = float(params.get("end") if params.get("end") is not None else duration)
        keep = (pts >= start - 1e-6) & (pts < end - 1e-6)
        excerpt = [f for f, k in zip(frames, keep) if k]
        if not excerpt:
            raise ValueError(f"Invalid trim ({start}, {end}): no frames in [{start}, {end}) s")
        if transform == "trim":
            out = excerpt
        else:
            h, w = frames[0].shape[:2]
            other_seconds = float(params.get("seconds", 4.0))
            render = _Renderer(seed=int(params["other_seed"]), seconds=other_seconds,
                               size=(w, h), scenes=int(params.get("scenes", 2)))  # fmt: skip
            n_other = int(round(other_seconds * fps))
            at = min(int(round(float(params.get("at", 1.0)) * fps)), n_other)
            other = [render(i / fps) for i in range(n_other)]
            out = other[:at] + excerpt + other[at:]
    else:  # pragma: no cover - TRANSFORMS and the branches agree
        raise AssertionError(transform)
    return _encode(Path(dst), out, fps=out_fps, codec=codec, gop=params.get("gop"),
                   crf=crf, bitrate=None)  # fmt: skip

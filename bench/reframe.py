"""Re-framed copies of a clip (issue #16): the re-uploads that move the known
picture inside a new frame, or keep only part of it, or only a still of it.

``reframe_clip(src, dst, kind, seed=...)`` writes one copy; ``KINDS`` lists
them. All are made with numpy/PIL from the decoded source and re-encoded
(``vscan.bench.encoding``); stills are written with PIL. Parameters that a
re-uploader would vary (crop position, rotation sign, inset corner, excerpt
position) are drawn from ``seed``, so each source gets its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vscan.bench.edits import _read_clip, _resample, _resize
from vscan.bench.encoding import _encode, _even
from vscan.bench.scenes import _Renderer

__all__ = ["KINDS", "STILL_KINDS", "crop70_offset", "reframe_clip"]

KINDS = (
    "blurfill_vertical", "crop_916", "pip", "splitscreen", "captions_mirror_letterbox_logo",
    "translucent_box", "crop70_offcentre", "rotate4", "stretch", "gif", "reencode_hires",
    "excerpt_3s_in_30s", "framegrab_jpg", "screenshot_png",
)  # fmt: skip
STILL_KINDS = ("framegrab_jpg", "screenshot_png")
_EXT = {"gif": ".gif", "framegrab_jpg": ".jpg", "screenshot_png": ".png"}


def extension(kind: str) -> str:
    return _EXT.get(kind, ".mp4")


def _blur(rgb: np.ndarray, radius: float) -> np.ndarray:
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(radius)))


def _other(seed: int, w: int, h: int, seconds: float):
    """Unrelated moving content (another synthetic clip) as a frame function of t,
    its scene cuts at their own times (not at the source's: unrelated videos do not cut together)."""
    shift = 1.0 + (seed % 7) * 0.5
    render = _Renderer(seed=seed, seconds=seconds + 2 * shift, size=(w, h), scenes=max(1, int(seconds // 5)) + 1)
    return lambda t: render(t + shift)


def _rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate about the centre and crop/zoom so no corner shows (same size)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    a = np.deg2rad(abs(degrees))
    # The largest axis-aligned box of the frame's aspect inside the rotated frame.
    scale = 1.0 / (np.cos(a) + max(w / h, h / w) * np.sin(a))
    img = Image.fromarray(rgb).rotate(degrees, resample=Image.Resampling.BILINEAR)
    cw, ch = int(w * scale), int(h * scale)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return _resize(np.asarray(img)[y0 : y0 + ch, x0 : x0 + cw], w, h)


def _captions(rgb: np.ndarray, rng_vals: tuple) -> np.ndarray:
    """Mirror, letterbox, big captions top and bottom, a handle, a logo over the bar's edge."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = rgb.shape[:2]
    f = rgb[:, ::-1]
    bar = int(h * 0.14)
    ih = _even(h - 2 * bar)
    iw = _even(round(w * ih / h))
    out = np.zeros_like(f)
    y0, x0 = (h - ih) // 2, (w - iw) // 2
    out[y0 : y0 + ih, x0 : x0 + iw] = _resize(f, iw, ih)
    img = Image.fromarray(out)
    draw = ImageDraw.Draw(img)
    big = ImageFont.load_default(size=max(12, h // 9))
    small = ImageFont.load_default(size=max(8, h // 24))
    draw.text((w // 12, h // 40), "WAIT FOR IT...", font=big, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    draw.text((w // 10, h - bar - h // 20), "no way this is real", font=big, fill=(255, 255, 0), stroke_width=2, stroke_fill=(0, 0, 0))
    draw.text((int(w * rng_vals[0] * 0.5), h // 2), "@reposter_99", font=small, fill=(230, 230, 230))
    lx, ly, ls = int(w * 0.82), int(bar * 0.4), int(h * 0.16)  # logo straddles the top bar and the picture
    draw.ellipse((lx, ly, lx + ls, ly + ls), fill=(220, 40, 60))
    draw.text((lx + ls // 4, ly + ls // 3), "TV", font=small, fill=(255, 255, 255))
    return np.asarray(img)


def _translucent(rgb: np.ndarray, left: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    out = rgb.astype(np.float32)
    x0, x1 = int(w * left), int(w * left) + w // 3
    y0, y1 = int(h * 0.3), int(h * 0.8)
    out[y0:y1, x0:x1] = 0.45 * out[y0:y1, x0:x1] + 0.55 * np.array([20, 20, 30], np.float32)
    return out.astype(np.uint8)


def crop70_offset(seed: int) -> tuple[float, float]:
    """(top, left) of the ``crop70_offcentre`` copy made with ``seed``, as shares of the source's height and width."""
    oy, ox = np.random.default_rng(seed).uniform(0, 0.3, 2)
    return float(oy), float(ox)


def reframe_clip(src: str | os.PathLike, dst: str | os.PathLike, kind: str, *, seed: int = 0) -> Path:
    """Write the ``kind`` copy of ``src`` to ``dst`` (extension: ``extension(kind)``)."""
    from PIL import Image

    if kind not in KINDS:
        raise ValueError(f"Invalid kind ({kind!r}). Supported values are {list(KINDS)}.")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    frames, pts, fps = _read_clip(Path(src))
    duration = float(pts[-1] + 1 / fps)
    rng = np.random.default_rng(seed)
    h, w = frames[0].shape[:2]
    out_fps, crf = fps, 23
    if kind in STILL_KINDS:
        f = frames[int(rng.integers(len(frames) // 4, 3 * len(frames) // 4))]
        if kind == "framegrab_jpg":
            Image.fromarray(f).save(dst, quality=85)
        else:
            f = f[:, ::-1]
            cy, cx = int(h * rng.uniform(0.0, 0.1)), int(w * rng.uniform(0.0, 0.1))
            Image.fromarray(np.ascontiguousarray(f[cy : cy + int(h * 0.9), cx : cx + int(w * 0.9)])).save(dst)
        return dst
    if kind == "blurfill_vertical":
        cw, ch = _even(h * 9 // 16 * 2), _even(h * 2)  # 9:16 canvas, as wide as the source is tall (x1.125)
        ih = _even(round(h * cw / w))

        def edit(f, t):
            bg_w = _even(round(w * ch / h))
            bg = _resize(f, bg_w, ch)[:, (bg_w - cw) // 2 : (bg_w - cw) // 2 + cw]
            canvas = _blur(np.ascontiguousarray(bg), 18).copy()
            y0 = (ch - ih) // 2
            canvas[y0 : y0 + ih] = _resize(f, cw, ih)
            return canvas
    elif kind == "crop_916":
        sw = _even(h * 9 / 16)

        def edit(f, t):
            return f[:, (w - sw) // 2 : (w - sw) // 2 + sw]
    elif kind == "pip":
        other = _other(seed + 7000, w, h, duration)
        iw, ih = _even(w // 2), _even(h // 2)
        corner = int(rng.integers(4))
        y0 = h // 20 if corner < 2 else h - ih - h // 20
        x0 = w // 20 if corner % 2 == 0 else w - iw - w // 20

        def edit(f, t):
            canvas = other(t).copy()
            canvas[y0 : y0 + ih, x0 : x0 + iw] = _resize(f, iw, ih)
            return canvas
    elif kind == "splitscreen":
        other = _other(seed + 8000, w, h, duration)
        half = _even(w // 2)
        ih = _even(round(h * half / w))
        side = int(rng.integers(2))

        def edit(f, t):
            canvas = np.zeros_like(f)
            mine = (0, half) if side == 0 else (w - half, w)
            theirs = (half, w) if side == 0 else (0, w - half)
            y0 = (h - ih) // 2
            canvas[y0 : y0 + ih, mine[0] : mine[1]] = _resize(f, half, ih)
            o = other(t)
            canvas[:, theirs[0] : theirs[1]] = o[:, (w - (theirs[1] - theirs[0])) // 2 :][:, : theirs[1] - theirs[0]]
            return canvas
    elif kind == "captions_mirror_letterbox_logo":
        vals = tuple(rng.random(2))

        def edit(f, t):
            return _captions(f, vals)
    elif kind == "translucent_box":
        left = float(rng.uniform(0.05, 0.6))

        def edit(f, t):
            return _translucent(f, left)
    elif kind == "crop70_offcentre":
        oy, ox = crop70_offset(seed)
        ch, cw = int(h * 0.7), int(w * 0.7)
        y0, x0 = int(h * oy), int(w * ox)

        def edit(f, t):
            return f[y0 : y0 + ch, x0 : x0 + cw]
    elif kind == "rotate4":
        deg = 4.0 if seed % 2 == 0 else -4.0

        def edit(f, t):
            return _rotate(f, deg)
    elif kind == "stretch":

        def edit(f, t):
            return _resize(f, _even(w * 0.75), _even(h * 1.1))
    elif kind == "reencode_hires":
        crf = 38

        def edit(f, t):
            return _resize(f, _even(w * 2), _even(h * 2))
    elif kind == "gif":
        out_fps = float(rng.choice([6.0, 8.0, 10.0]))
        times = np.arange(int(duration * out_fps)) / out_fps
        gw = 320
        gh = _even(round(h * gw / w))
        imgs = [Image.fromarray(_resize(f, gw, gh)).convert("P", palette=Image.Palette.ADAPTIVE) for f in _resample(frames, pts, times)]
        imgs[0].save(dst, save_all=True, append_images=imgs[1:], duration=int(1000 / out_fps), loop=0)
        return dst
    elif kind == "excerpt_3s_in_30s":
        start = float(rng.uniform(1.0, max(1.5, duration - 4.0)))
        keep = [f for f, t in zip(frames, pts) if start <= t < start + 3.0]
        other = _other(seed + 9000, w, h, 27.0)
        at = int(rng.integers(3, 24))
        n_other = int(27 * fps)
        before = [other(i / fps) for i in range(int(at * fps))]
        after = [other(i / fps) for i in range(int(at * fps), n_other)]
        return _encode(dst, before + keep + after, fps=fps, codec="libx264", gop=None, crf=crf, bitrate=None)
    else:  # pragma: no cover
        raise AssertionError(kind)
    out = (edit(f, t) for f, t in zip(frames, pts))
    return _encode(dst, out, fps=out_fps, codec="libx264", gop=None, crf=crf, bitrate=None)

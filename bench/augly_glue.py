"""Copies made by Meta's AugLy (PyPI ``augly``, MIT; the generator behind the
DISC21/VSC22 copy-detection queries), for vscan.bench.bench_generalise.

AugLy 1.0's video module imports its audio module, which needs librosa and
torchaudio; none of its video functions used here touch audio, so when that
import fails a stand-in module is put in its place whose functions raise
(``import_augly_video``). Its video functions also need ffmpeg on PATH,
vidgear 0.2.x (``WriteGear``) and OpenCV (``opencv-python-headless`` does).

``FAMILIES``: name -> a function (augly.video, src, dst, rng, other clip) that
writes one copy with parameters drawn from ``rng`` in the ranges the VSC22
queries used. A family whose AugLy function fails here is reported as left
out with its error, not scored.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["FAMILIES", "CHAIN_PARTS", "import_augly_video", "augment"]


def _pillow_shim() -> None:
    """AugLy 1.0's meme_format measures text with ``FreeTypeFont.getsize_multiline``, removed in Pillow 10:
    the same size from ``multiline_textbbox`` (what Pillow's deprecation note says to use)."""
    from PIL import Image, ImageDraw, ImageFont

    if hasattr(ImageFont.FreeTypeFont, "getsize_multiline"):
        return

    def getsize_multiline(font, text, *args, **kwargs):
        left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).multiline_textbbox((0, 0), text, font=font)
        return right, bottom

    ImageFont.FreeTypeFont.getsize_multiline = getsize_multiline  # type: ignore[attr-defined]


def import_augly_video():
    """``augly.video``, with a stand-in for ``augly.audio`` when librosa/torchaudio cannot be imported."""
    _pillow_shim()
    try:
        import augly.video as vidaugs

        return vidaugs
    except ImportError:
        pass
    import augly

    def unavailable(*args, **kwargs):
        raise RuntimeError("augly.audio is unavailable here (librosa/torchaudio not installed)")

    for name in ("augly.audio", "augly.audio.utils"):
        sys.modules.pop(name, None)
    stub, utils = types.ModuleType("augly.audio"), types.ModuleType("augly.audio.utils")
    stub.__path__ = []  # a package, so ``from augly.audio import utils`` resolves
    stub.utils = utils
    stub.__getattr__ = lambda name: unavailable  # type: ignore[attr-defined]
    utils.__getattr__ = lambda name: unavailable  # type: ignore[attr-defined]
    sys.modules["augly.audio"], sys.modules["augly.audio.utils"] = stub, utils
    augly.audio = stub  # type: ignore[attr-defined]
    import augly.video as vidaugs

    return vidaugs


Family = Callable[..., None]


def _crop_offcentre(va, src, dst, rng, other):
    kw, kh = rng.uniform(0.6, 0.75), rng.uniform(0.65, 0.8)  # keeps 60-75% x 65-80%, anywhere
    left, top = rng.uniform(0, 1 - kw), rng.uniform(0, 1 - kh)
    va.crop(src, dst, left=left, top=top, right=left + kw, bottom=top + kh)


FAMILIES: dict[str, Family] = {
    "blur": lambda va, s, d, rng, o: va.blur(s, d, sigma=float(rng.uniform(1, 4))),
    "brightness": lambda va, s, d, rng, o: va.brightness(s, d, level=float(rng.choice([-1, 1]) * rng.uniform(0.1, 0.3))),
    "contrast": lambda va, s, d, rng, o: va.contrast(s, d, level=float(rng.uniform(0.5, 2.0))),
    "color_jitter": lambda va, s, d, rng, o: va.color_jitter(s, d, brightness_factor=float(rng.uniform(-0.15, 0.15)),
                                                             contrast_factor=float(rng.uniform(0.7, 1.5)),
                                                             saturation_factor=float(rng.uniform(0.5, 2.0))),  # fmt: skip
    "grayscale": lambda va, s, d, rng, o: va.grayscale(s, d),
    "noise": lambda va, s, d, rng, o: va.add_noise(s, d, level=int(rng.integers(15, 40))),
    "hflip": lambda va, s, d, rng, o: va.hflip(s, d),
    "vflip": lambda va, s, d, rng, o: va.vflip(s, d),
    "crop_offcentre": _crop_offcentre,
    "rotate": lambda va, s, d, rng, o: va.rotate(s, d, degrees=float(rng.choice([-1, 1]) * rng.uniform(5, 15))),
    "pad": lambda va, s, d, rng, o: va.pad(s, d, w_factor=float(rng.uniform(0.1, 0.3)), h_factor=float(rng.uniform(0.1, 0.3)),
                                           color=tuple(int(c) for c in rng.integers(0, 256, 3))),  # fmt: skip
    "scale": lambda va, s, d, rng, o: va.scale(s, d, factor=float(rng.uniform(0.3, 0.7))),
    "aspect": lambda va, s, d, rng, o: va.change_aspect_ratio(s, d, ratio=float(rng.uniform(0.5, 2.0))),
    "speed": lambda va, s, d, rng, o: va.change_video_speed(s, d, factor=float(rng.choice([0.7, 1.3, 1.5]))),
    "loop": lambda va, s, d, rng, o: va.loop(s, d, num_loops=int(rng.integers(1, 3))),
    "pixelization": lambda va, s, d, rng, o: va.pixelization(s, d, ratio=float(rng.uniform(0.3, 0.6))),
    "encoding_quality": lambda va, s, d, rng, o: va.encoding_quality(s, d, quality=int(rng.integers(35, 45))),
    "time_crop": lambda va, s, d, rng, o: va.time_crop(s, d, offset_factor=float(rng.uniform(0, 0.4)),
                                                       duration_factor=float(rng.uniform(0.4, 0.6))),  # fmt: skip
    "meme_format": lambda va, s, d, rng, o: va.meme_format(s, d, text=str(rng.choice(["LOL", "when u see it", "MONDAY"])),
                                                           caption_height=2 * int(rng.integers(30, 80))),  # fmt: skip (even: x264 refuses odd heights)
    "overlay_text": lambda va, s, d, rng, o: va.overlay_text(s, d, text_len=int(rng.integers(8, 20))),
    "overlay_shapes": lambda va, s, d, rng, o: va.overlay_shapes(s, d, num_shapes=int(rng.integers(1, 4))),
    "overlay_dots": lambda va, s, d, rng, o: va.overlay_dots(s, d, num_dots=int(rng.integers(50, 200))),
    "overlay_emoji": lambda va, s, d, rng, o: va.overlay_emoji(s, d, x_factor=float(rng.uniform(0, 0.7)), y_factor=float(rng.uniform(0, 0.7)),
                                                               emoji_size=float(rng.uniform(0.1, 0.3))),  # fmt: skip
    "blend": lambda va, s, d, rng, o: va.blend_videos(s, o, d, opacity=float(rng.uniform(0.2, 0.4))),
    "overlay_onto_screenshot": lambda va, s, d, rng, o: va.overlay_onto_screenshot(s, d),
    "pip_onto_background": lambda va, s, d, rng, o: va.overlay_onto_background_video(
        s, o, d, overlay_size=float(rng.uniform(0.4, 0.75)), x_factor=float(rng.uniform(0, 0.3)), y_factor=float(rng.uniform(0, 0.3))),
    "insert_in_background": lambda va, s, d, rng, o: va.insert_in_background(s, d, background_path=o, offset_factor=float(rng.uniform(0, 1)),
                                                                             seed=int(rng.integers(1 << 30))),  # fmt: skip
    "perspective_shake": lambda va, s, d, rng, o: va.perspective_transform_and_shake(s, d, sigma=float(rng.uniform(10, 40)),
                                                                                      shake_radius=float(rng.uniform(0, 5)),
                                                                                      seed=int(rng.integers(1 << 30))),  # fmt: skip
    "hstack": lambda va, s, d, rng, o: va.hstack(s, o, d),
    "vstack": lambda va, s, d, rng, o: va.vstack(s, o, d),
}

#: Families a chain draws its three edits from (no second video, no time change).
CHAIN_PARTS = ("blur", "brightness", "contrast", "color_jitter", "grayscale", "noise", "hflip", "crop_offcentre", "rotate", "pad",
               "scale", "aspect", "pixelization", "encoding_quality", "meme_format", "overlay_text", "overlay_shapes", "overlay_emoji")  # fmt: skip


def augment(family: str, src: Path, dst: Path, seed: int, other: Path) -> list[str]:
    """Write ``family``'s copy of ``src`` to ``dst``; returns the AugLy functions applied (a chain: three)."""
    import tempfile

    va = import_augly_video()
    rng = np.random.default_rng(seed)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="augly-") as tmp:
        # Several AugLy functions map the input's audio stream unconditionally (ffmpeg: "Stream map '0:a'
        # matches no streams"): give both inputs a silent track (video stream copied, pixels unchanged).
        src, other = _with_audio(src, Path(tmp) / "src.mp4"), _with_audio(other, Path(tmp) / "other.mp4")
        if family != "chain3":
            _run(family, va, str(src), str(dst), rng, str(other))
            return [family]
        parts = [str(p) for p in rng.choice(CHAIN_PARTS, 3, replace=False)]
        current = str(src)
        for i, name in enumerate(parts):
            out = str(dst) if i == len(parts) - 1 else os.path.join(tmp, f"step{i}.mp4")
            _run(name, va, current, out, rng, str(other))
            current = out
    return parts


def _with_audio(path: Path, out: Path) -> Path:
    import subprocess

    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), "-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-shortest",
                    "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", str(out)], check=True)  # fmt: skip
    return out


def _run(family: str, va, src: str, dst: str, rng: np.random.Generator, other: str) -> None:
    """One AugLy call; AugLy reports a failed ffmpeg run (an odd frame size, say) only on stderr, so check the output."""
    FAMILIES[family](va, src, dst, rng, other)
    if not os.path.exists(dst) or os.path.getsize(dst) == 0:
        raise RuntimeError(f"AugLy {family} wrote no output (its ffmpeg run failed)")

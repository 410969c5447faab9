"""Synthetic media for tests, benchmarks and the demo.

Everything here is abstract, seeded and made on the spot: textured scenes
(vscan.bench.scenes) that pan and zoom, encoded with PyAV
(vscan.bench.encoding); edited copies of them (vscan.bench.edits); broken
files and stills. No downloads, nothing resembling people.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vscan.bench.edits import TRANSFORMS, edit_clip
from vscan.bench.encoding import CODEC_CONTAINERS, _encode, _rate, available_codecs
from vscan.bench.scenes import _Renderer, _texture, render_frame

__all__ = [
    "CODEC_CONTAINERS",
    "TRANSFORMS",
    "available_codecs",
    "edit_clip",
    "make_clip",
    "make_corrupt",
    "render_frame",
    "write_image",
]


def make_clip(
    path: str | os.PathLike,
    *,
    seed: int,
    seconds: float = 4.0,
    fps: float = 25.0,
    size: tuple[int, int] = (320, 240),
    scenes: int = 2,
    codec: str = "libx264",
    gop: int | None = None,
    crf: int | None = None,
    bitrate: int | None = None,
    faststart: bool = False,
) -> Path:
    """Write a deterministic synthetic clip; size is (width, height).

    `gop` fixes the keyframe interval (x264/x265: exactly, scene cuts off).
    Quality is `crf` (default 28) unless `bitrate` (bits/s) is given.
    """
    n = int(round(seconds * fps))
    if n < 1:
        raise ValueError(f"Invalid seconds*fps ({seconds}*{fps}). Supported values give >= 1 frame.")
    render = _Renderer(seed=seed, seconds=seconds, size=size, scenes=scenes)
    rate = _rate(fps)
    frames = (render(float(i / rate)) for i in range(n))
    return _encode(Path(path), frames, fps=float(rate), codec=codec, gop=gop, crf=crf,
                   bitrate=bitrate, faststart=faststart)  # fmt: skip


# --------------------------------------------------------------------------
# Broken files and stills
# --------------------------------------------------------------------------

CORRUPT_KINDS = ("truncated", "random", "text", "empty")


def make_corrupt(path: str | os.PathLike, kind: str, *, seed: int = 0) -> Path:
    """Write a broken media file.

    truncated: the first 30% of a valid mp4 whose index (moov) comes last, as
    cameras write it (a recording interrupted, a half-copied file): no decoder
    opens it. (Cut with its index first, an mp4 opens and its frames before
    the cut are scanned: a partial record, not an error.)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "truncated":
        tmp = path.with_name(path.name + ".full.mp4")
        make_clip(tmp, seed=seed, seconds=3.0, size=(160, 120))
        data = tmp.read_bytes()
        tmp.unlink()
        path.write_bytes(data[: int(len(data) * 0.3)])
    elif kind == "random":
        path.write_bytes(np.random.default_rng(seed).bytes(64 * 1024))
    elif kind == "text":
        path.write_text("This is not a video.\n" * 200)
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        raise ValueError(f"Invalid kind ({kind!r}). Supported values are {list(CORRUPT_KINDS)}.")
    return path


def write_image(path: str | os.PathLike, seed: int, *, size: tuple[int, int] = (320, 240)) -> Path:
    """Write a still (format from the suffix: .png, .jpg, .webp, .bmp, .gif)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = _texture(np.random.default_rng(seed), size[1], size[0])
    Image.fromarray(rgb).save(path)
    return path

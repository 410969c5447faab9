"""Hostile media for the reliability tests: a known clip hidden after the first frame of an animated still.

Animated WebP, APNG and GIF (and HEIF files holding several images, and
multi-page TIFFs) are clips; a scan that reads their first frame only sees an innocent title card
and calls the file clear. ``animated_copies(clip, folder)`` writes the
frames of ``clip`` behind a one-second title card in each of those formats,
with Pillow (and pillow-heif), from the clip's own frames: nothing is
downloaded. The title card is a scene of another seed (vscan.bench.scenes).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["ANIMATED_KINDS", "HEIF_NAME", "TIFF_NAME", "animated_copies", "clip_frames"]

#: File name -> Pillow save arguments of each animated copy.
ANIMATED_KINDS = {
    "hidden.webp": {"format": "WEBP", "lossless": True},
    "hidden.png": {"format": "PNG"},  # APNG
    "hidden.gif": {"format": "GIF"},
}
_TITLE_MS = 1000
#: The HEIF copy's images (a HEIF collection has no timing): title card first, then these of the clip's frames.
HEIF_NAME = "hidden.heic"
#: The multi-page TIFF copy: the same pages as the HEIF's (a TIFF's pages have no timing either).
TIFF_NAME = "hidden.tif"


def clip_frames(clip: str | os.PathLike) -> tuple[list[np.ndarray], float]:
    """Every frame of ``clip`` as RGB, and its frame duration in ms."""
    import av
    from vscan.decode.pyav_reuse import SWS_THREADS

    with av.open(os.fspath(clip)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24", threads=SWS_THREADS) for frame in container.decode(stream)]
        rate = float(stream.average_rate or 25)
    return frames, 1000.0 / rate


def _title_card(size: tuple[int, int]) -> np.ndarray:
    from vscan.bench.scenes import _Renderer

    return _Renderer(seed=991, seconds=1.0, size=size, scenes=1)(0.0)


def animated_copies(clip: str | os.PathLike, folder: str | os.PathLike) -> dict[str, Path]:
    """Write each animated copy of ``clip`` into ``folder``: {name: path}. The
    first frame (shown 1 s) is an unrelated title card; the clip follows at its own rate."""
    import pillow_heif
    from PIL import Image

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    frames, frame_ms = clip_frames(clip)
    size = (frames[0].shape[1], frames[0].shape[0])
    pictures = [Image.fromarray(_title_card(size))] + [Image.fromarray(f) for f in frames]
    durations = [_TITLE_MS] + [round(frame_ms)] * len(frames)
    written = {}
    for name, args in ANIMATED_KINDS.items():
        path = root / name
        pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=durations, loop=0, **args)
        written[name] = path
    pillow_heif.register_heif_opener()
    picks = [pictures[0]] + [pictures[1 + i] for i in np.linspace(0, len(frames) - 1, 3).round().astype(int)]
    picks[0].save(root / HEIF_NAME, save_all=True, append_images=picks[1:], quality=95)
    written[HEIF_NAME] = root / HEIF_NAME
    picks[0].save(root / TIFF_NAME, save_all=True, append_images=picks[1:], compression="tiff_deflate")
    written[TIFF_NAME] = root / TIFF_NAME
    return written

"""Animated stills (WebP, APNG, several-image HEIF/AVIF, multi-page TIFF) decoded as videos, through Pillow.

A file named like a still image that holds more than one frame is a clip,
not a picture: every frame is composited by Pillow as a viewer shows it,
frame times come from the frames' own durations, and the sampling policy
chooses frames over the whole duration, as for any video. Animated GIF goes
to FFmpeg's gif demuxer instead (decord/PyAV), which reads the same delays;
FFmpeg cannot decode animated WebP at all.

Durations: a frame with none, or under 20 ms, shows for 100 ms (what
browsers do with GIF/APNG/WebP delays that small). The images of a HEIF/AVIF
file with several top-level images (a burst, a collection) have no timing at
all: each is its own picture, placed 1 s apart so that every one is sampled.
Nor have the pages of a multi-page TIFF (a scanned document, a fax, or
pictures hidden behind an innocuous first page): the same, 1 s apart.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from vscan.decode.base import Decoder, _batch, _cache_key, _check_options, _reason, check_readable, output_size
from vscan.decode.images import ImageDecoder, to_rgb
from vscan.decode.metadata import VideoMetadata
from vscan.errors import DecodeError

__all__ = ["ANIMATED_FORMATS", "AnimatedImageDecoder", "FrameTiming", "frame_timing", "tiff_pages"]

#: Pillow formats read here when they hold more than one frame (GIF: FFmpeg).
ANIMATED_FORMATS = frozenset({"WEBP", "PNG", "HEIF", "AVIF", "TIFF"})
#: Formats whose frames carry no duration: their images are placed this far apart.
_UNTIMED = frozenset({"HEIF", "AVIF", "TIFF"})
_UNTIMED_SPACING_MS = 1000.0
_MIN_DELAY_MS = 20.0
_DEFAULT_DELAY_MS = 100.0
_CACHE_FILES = 8
#: A TIFF's pages are counted by walking its chain of page headers, which Pillow does in time quadratic in
#: the pages (a 200,000-page TIFF of 8 MB: 326 s to count); the first this many are read (4,096: 0.4 s, the
#: default frame budget), and a record of a TIFF with more says it was read in part.
MAX_TIFF_PAGES = 4096


@dataclass(frozen=True)
class FrameTiming:
    """What one animated still holds: its format and size, and each frame's start (seconds)."""

    format: str
    width: int
    height: int
    pts_seconds: tuple[float, ...]
    duration_seconds: float
    partial: str | None = None  # why frames were left unread (a TIFF of more than MAX_TIFF_PAGES pages), or None


_TIMINGS: "OrderedDict[tuple, FrameTiming]" = OrderedDict()


def _delay_ms(image, format_name: str) -> float:
    if format_name in _UNTIMED:
        return _UNTIMED_SPACING_MS
    if format_name == "WEBP":
        image.load()  # Pillow's WebP reader sets a frame's duration when it decodes it
    delay = image.info.get("duration")
    return _DEFAULT_DELAY_MS if delay is None or float(delay) < _MIN_DELAY_MS else float(delay)


def frame_timing(path: str | os.PathLike) -> FrameTiming | None:
    """The frames' timing of an animated still (cached per file version), or None for one frame
    or a format not read here (GIF). Raises what Pillow raises for an unreadable file."""
    key = _cache_key(check_readable(path))
    if key in _TIMINGS:
        _TIMINGS.move_to_end(key)
        return _TIMINGS[key]
    with ImageDecoder._open(path) as image:
        format_name = (image.format or "").upper()
        partial = None
        if format_name == "TIFF":
            frames = tiff_pages(image, MAX_TIFF_PAGES + 1)
            if frames > MAX_TIFF_PAGES:
                frames, partial = MAX_TIFF_PAGES, f"a TIFF of more than {MAX_TIFF_PAGES:,} pages: its first {MAX_TIFF_PAGES:,} were read"
        else:
            frames = int(getattr(image, "n_frames", 1) or 1)
        if frames < 2 or format_name not in ANIMATED_FORMATS:
            return None
        starts, now = [], 0.0
        for index in range(frames):
            image.seek(index)
            starts.append(now / 1000.0)
            now += _delay_ms(image, format_name)
        image.seek(0)
        timing = FrameTiming(format_name, image.size[0], image.size[1], tuple(starts), now / 1000.0, partial)
    _TIMINGS[key] = timing
    while len(_TIMINGS) > _CACHE_FILES:
        _TIMINGS.popitem(last=False)
    return timing


def tiff_pages(image, most: int) -> int:
    """The TIFF's pages, counted up to ``most`` (Pillow's ``n_frames`` walks every page header, quadratically)."""
    pages = 1
    try:
        while pages < most:
            image.seek(pages)
            pages += 1
    except EOFError:
        pass
    image.seek(0)
    return pages


class AnimatedImageDecoder(Decoder):
    """Pillow decoder for animated WebP/APNG, several-image HEIF/AVIF and multi-page TIFF, read as a video."""

    name = "animated-image"

    def probe(self, path):
        path = check_readable(path)
        try:
            timing = frame_timing(path)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise DecodeError(f"{path}: PIL failed reading its frames: {_reason(exc)}") from exc
        if timing is None:
            raise DecodeError(f"{path}: not an animated image")
        frames = len(timing.pts_seconds)
        return VideoMetadata(
            path=str(path), backend=self.name, codec=timing.format.lower(), width=timing.width, height=timing.height,
            fps=frames / timing.duration_seconds, num_frames=frames, duration_seconds=timing.duration_seconds,
            keyframe_indices=tuple(range(frames)),  # every frame is a whole composited picture
            demux_partial=timing.partial, declared_duration_seconds=None if timing.partial else timing.duration_seconds,
        )  # fmt: skip

    def iter_frames(self, path, policy, *, batch_size=64, max_side=None, size=None):
        _check_options(batch_size, max_side)
        meta = self.probe(path)
        pts = np.asarray(frame_timing(path).pts_seconds, np.float64)
        selected = policy.select(pts, meta.keyframe_indices, meta.duration_seconds)
        self.frames_decoded = 0
        return self._generate(meta, pts, [int(i) for i in selected], batch_size, max_side, size)

    def _generate(self, meta: VideoMetadata, pts: np.ndarray, selected: list[int], batch_size: int,
                  max_side: int | None, size: tuple[int, int] | None):  # fmt: skip
        from PIL import Image

        indices: list[int] = []
        frames: list[np.ndarray] = []
        times: list[float] = []
        canvas: tuple[int, int] | None = None  # every frame's (w, h): the first frame's output size
        with ImageDecoder._open(meta.path) as image:
            for index in selected:
                self.check_cancelled(meta.path)
                try:
                    image.seek(index)  # Pillow composites every frame up to this one
                    rgb_image = to_rgb(image)
                except (OSError, ValueError, SyntaxError, EOFError) as exc:
                    if frames:
                        yield _batch(indices, times, frames)
                    raise DecodeError(f"{meta.path}: PIL failed decoding frame {index}: {_reason(exc)}") from exc
                self.frames_decoded = index + 1
                wanted = output_size(*rgb_image.size, max_side, size)  # after EXIF turns it, as for a still
                canvas = canvas or wanted
                if wanted != canvas:  # a page or image of another size than the first (TIFF, HEIF): letterboxed into it
                    rgb_image = _fitted(rgb_image, canvas)
                elif rgb_image.size != wanted:
                    rgb_image = rgb_image.resize(wanted, Image.Resampling.BOX)
                indices.append(index)
                times.append(float(pts[index]))
                frames.append(np.asarray(rgb_image, dtype=np.uint8))
                if len(frames) == batch_size:
                    yield _batch(indices, times, frames)
                    indices, frames, times = [], [], []
        if frames:
            yield _batch(indices, times, frames)


def _fitted(rgb_image, canvas: tuple[int, int]):
    """The picture scaled to fit ``canvas`` (w, h) whole, centred on black: a frame of the file's size whose
    bars the scan's border removal takes off again. The pages of a TIFF, or the images of a HEIF collection,
    need not share a size; a clip's frames must."""
    from PIL import Image

    w, h = rgb_image.size
    scale = min(canvas[0] / w, canvas[1] / h)
    inner = (max(1, min(canvas[0], round(w * scale))), max(1, min(canvas[1], round(h * scale))))
    out = Image.new("RGB", canvas)
    out.paste(rgb_image.resize(inner, Image.Resampling.BOX), ((canvas[0] - inner[0]) // 2, (canvas[1] - inner[1]) // 2))
    return out

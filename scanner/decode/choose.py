"""Choosing a decoder: the backend for a sampling pattern, opening a file with fallback."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from vscan.errors import ConfigError, DecodeError, UnsupportedMediaError
from vscan.decode.animated import AnimatedImageDecoder
from vscan.decode.base import Decoder, check_readable
from vscan.decode.decord_backend import DecordDecoder
from vscan.decode.images import IMAGE_SUFFIXES, ImageDecoder
from vscan.decode.metadata import SampledFrames
from vscan.decode.pyav_backend import PyAVDecoder
from vscan.decode.sampling import SamplingPolicy

__all__ = ["DENSE_FPS", "choose_backend", "is_still", "iter_sampled_frames", "open_decoder"]

BACKENDS = ("auto", "decord", "pyav")


def is_still(path: str | os.PathLike) -> bool:
    """True for a path (or in-memory archive member) named like a still
    image that holds one picture: an animated GIF, WebP or PNG (APNG) and a
    HEIF/AVIF with several images are videos (a re-shared clip). A camera
    JPEG with a preview image (MPO) stays a still."""
    from vscan.inputs.memory import source_name  # an in-memory file (archive member) carries its name

    suffix = Path(source_name(path)).suffix.lower()
    return suffix in IMAGE_SUFFIXES and not _several_frames(path)


def _several_frames(path: str | os.PathLike) -> bool:
    """Whether an image file is an animation or image sequence (False when it cannot be read: its decoder says why).
    The answer is kept for the last files asked, by path, size and modification time: a scan's decode task asks twice
    for each picture (its fallback chain, then ``open_decoder``), and Pillow's WebP reader decodes a picture to open it
    (a 1080p WebP: ~26 ms each time)."""
    if isinstance(path, (str, os.PathLike)):
        try:
            st = os.stat(path)
        except OSError:
            return _read_several_frames(path)
        return _kept_several_frames(os.fspath(path), st.st_size, st.st_mtime_ns)
    return _read_several_frames(path)  # an in-memory archive member


@functools.lru_cache(maxsize=64)
def _kept_several_frames(path: str, size: int, mtime_ns: int) -> bool:
    return _read_several_frames(path)


def _read_several_frames(path: str | os.PathLike) -> bool:
    from PIL import Image

    from vscan.decode.animated import ANIMATED_FORMATS, tiff_pages
    from vscan.decode.images import register_heif

    register_heif()
    try:
        with Image.open(path) as image:
            if (image.format or "").upper() not in ANIMATED_FORMATS | {"GIF"}:
                return False
            if image.format == "TIFF":  # a second page (n_frames would walk every page header: quadratic in TIFF)
                return tiff_pages(image, 2) > 1
            return int(getattr(image, "n_frames", 1) or 1) > 1
    except Exception:  # noqa: BLE001 - unreadable: the image decoder reports it
        return False


def _animated_still(path: str | os.PathLike) -> bool:
    """An image with several frames that Pillow reads as a video (vscan.decode.animated); GIF goes to FFmpeg."""
    from vscan.decode.animated import frame_timing
    from vscan.inputs.memory import source_name

    if Path(source_name(path)).suffix.lower() not in IMAGE_SUFFIXES:
        return False
    try:
        return frame_timing(path) is not None
    except Exception:  # noqa: BLE001 - unreadable: FFmpeg's decoders say why
        return False


#: Sampled frames per second above which a forward decode is as cheap as
#: seeking, so every-frame patterns go to decord (the design's decoder).
DENSE_FPS = 8.0


def choose_backend(policy: SamplingPolicy, backend: Literal["auto", "decord", "pyav"] = "auto") -> str:
    """The backend for an access pattern, from bench/bench_decode.py on 2 cores:
    sparse patterns (keyframes, fixed rates up to DENSE_FPS) run faster on
    PyAV, which skips non-key frames, seeks over GOPs with nothing wanted and
    converts only the frames it returns; dense ones keep "auto" (decord first,
    PyAV fallback). An explicit backend is always kept."""
    if backend != "auto":
        return backend
    name = getattr(policy, "name", "")
    if name in ("keyframes", "adaptive", "windows", "confirm") or (name == "fixed_rate" and getattr(policy, "fps", DENSE_FPS + 1) <= DENSE_FPS):
        return "pyav"
    return "auto"


def open_decoder(
    path: str | os.PathLike, backend: Literal["auto", "decord", "pyav"] = "auto", pyav: dict | None = None
) -> Decoder:
    """The decoder for path, checked by probing it. ``pyav``: PyAVDecoder's
    options (threads, hold_open...), set before its probe opens the file.

    Stills (by suffix, one frame) get ImageDecoder; animated WebP/APNG and
    several-image HEIF get AnimatedImageDecoder (animated GIF: FFmpeg's, below). "auto" tries decord, then PyAV when
    decord cannot open the file; probe() of the returned decoder names the
    backend that served in VideoMetadata.backend.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"Invalid backend ({backend!r}). Supported values are {', '.join(BACKENDS)}.")
    p = check_readable(path)
    if is_still(p):
        decoder: Decoder = ImageDecoder()
        decoder.probe(p)
        return decoder
    if _animated_still(p):  # animated WebP/APNG, several-image HEIF: every backend reads it through Pillow
        decoder = AnimatedImageDecoder()
        decoder.probe(p)
        return decoder
    if backend == "pyav":
        decoder = PyAVDecoder(**(pyav or {}))
        decoder.probe(p)
        return decoder
    try:
        decoder = DecordDecoder()
        decoder.probe(p)
        return decoder
    except UnsupportedMediaError as decord_error:
        if backend == "decord":
            raise
        try:
            decoder = PyAVDecoder(**(pyav or {}))
            decoder.probe(p)
        except UnsupportedMediaError as exc:
            raise UnsupportedMediaError(f"{exc} (decord also failed: {decord_error})") from exc
        return decoder


def iter_sampled_frames(
    path: str | os.PathLike,
    policy: SamplingPolicy,
    backend: Literal["auto", "decord", "pyav"] = "auto",
    **kwargs,
) -> Iterator[SampledFrames]:
    """open_decoder + iter_frames; with "auto", a decord failure before any
    frame was delivered is retried with PyAV."""
    decoder = open_decoder(path, backend)
    delivered = False
    try:
        for batch in decoder.iter_frames(path, policy, **kwargs):
            delivered = True
            yield batch
    except (DecodeError, UnsupportedMediaError):
        if backend != "auto" or decoder.name != DecordDecoder.name or delivered:
            raise
        yield from PyAVDecoder().iter_frames(path, policy, **kwargs)

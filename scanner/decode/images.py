"""Still images as one-frame videos (index 0, pts 0.0), as a viewer shows them.
Images with several frames are videos (vscan.decode.choose.is_still).

EXIF orientation is applied (phones store JPEG/HEIC in sensor orientation),
CMYK and palette images are converted to RGB, 16-bit greyscale is scaled to
8 bits (not clipped). HEIC/HEIF/AVIF open through pillow-heif's Pillow plugin.
"""

from __future__ import annotations

import numpy as np

from vscan.errors import DecodeError, UnsupportedMediaError
from vscan.decode.base import Decoder, _check_options, _reason, check_readable, output_size
from vscan.decode.metadata import SampledFrames, VideoMetadata

__all__ = ["IMAGE_SUFFIXES", "ImageDecoder", "register_heif", "to_rgb"]

#: Suffixes that open_decoder reads as stills (ImageDecoder).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif"})

_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I")


def register_heif() -> None:
    try:
        import pillow_heif
    except ImportError:  # HEIC then opens as unsupported (a typed per-file error)
        return
    pillow_heif.register_heif_opener()


def to_rgb(img):
    """The frame as 8-bit RGB, in displayed orientation."""
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(img)  # a copy only when EXIF says to turn it
    if img.mode in _HIGH_DEPTH:
        # 16-bit greyscale: convert("RGB") would clip at 255; scale as ffmpeg does.
        grey = np.asarray(img, dtype=np.uint32) >> 8
        return Image.fromarray(grey.astype(np.uint8), "L").convert("RGB")
    return img.convert("RGB")


def _what_it_is(path) -> str | None:
    """What a file PIL cannot identify holds instead of a picture (vscan.inputs.sniff), or None."""
    from vscan.inputs.sniff import HEAD_BYTES, what_it_is

    try:
        with open(path, "rb") as f:  # read-only: evidence is never modified
            return what_it_is(f.read(HEAD_BYTES), still=True)
    except OSError:
        return None


class ImageDecoder(Decoder):
    """PIL decoder for .jpg .jpeg .png .webp .bmp .tif .tiff .heic .heif .avif stills (one
    frame; animated ones and multi-page TIFFs are videos: vscan.decode.animated, GIF through FFmpeg)."""

    name = "image"

    @staticmethod
    def _open(path):
        from PIL import Image, UnidentifiedImageError

        register_heif()
        try:
            return Image.open(path)  # lazy: reads the header only
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
            # DecompressionBombError: a header claiming absurd dimensions.
            why = _what_it_is(path) if isinstance(exc, UnidentifiedImageError) else None  # encrypted, HTML, text ...
            raise UnsupportedMediaError(f"{path}: PIL cannot open it: {_reason(exc)}{f'; {why}' if why else ''}") from exc

    def probe(self, path):
        path = check_readable(path)
        with self._open(path) as img:
            width, height = img.size
            if (img.getexif().get(0x0112) or 1) in (5, 6, 7, 8):  # EXIF orientations that turn it on its side
                width, height = height, width
            codec = (img.format or "").lower() or None
        return VideoMetadata(
            path=str(path), backend=self.name, codec=codec, width=width, height=height, fps=1.0,
            num_frames=1, duration_seconds=0.0, keyframe_indices=(0,), is_still_image=True,
        )  # fmt: skip

    def iter_frames(self, path, policy, *, batch_size=64, max_side=None, size=None):
        _check_options(batch_size, max_side)
        meta = self.probe(path)
        selected = policy.select(np.zeros(1), meta.keyframe_indices, meta.duration_seconds)
        if list(selected) != [0]:
            raise DecodeError(f"{path}: policy {policy.describe()} selected {selected} of a still")
        return self._generate(meta, max_side, size)

    def _generate(self, meta, max_side, size=None):
        from PIL import Image

        with self._open(meta.path) as img:
            try:
                img.seek(0)  # the primary image
                size = output_size(meta.width, meta.height, max_side, size)
                if size != (meta.width, meta.height) and img.format == "JPEG" and img.mode != "CMYK":
                    # Reduced-resolution decode: libjpeg scales by 1/2, 1/4 or
                    # 1/8 inside the IDCT, never below the output size.
                    img.draft("RGB", size if img.size == (meta.width, meta.height) else size[::-1])
                rgb_img = to_rgb(img)
                self.decoded_size = rgb_img.size  # (w, h) the codec produced, before any resize
                if size != rgb_img.size:
                    rgb_img = rgb_img.resize(size, Image.Resampling.BOX)
                rgb = np.asarray(rgb_img, dtype=np.uint8)
                self.frames_decoded = 1
            except (OSError, ValueError, SyntaxError) as exc:
                raise DecodeError(f"{meta.path}: PIL failed decoding it: {_reason(exc)}") from exc
        yield SampledFrames(
            np.zeros(1, np.int64), np.zeros(1, np.float64), np.ascontiguousarray(rgb[None])
        )

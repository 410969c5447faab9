"""Still images as one-frame videos (index 0, pts 0.0)."""

from __future__ import annotations

import numpy as np

from vscan.errors import DecodeError, UnsupportedMediaError
from vscan.decode.base import Decoder, _check_options, _reason, check_readable, output_size
from vscan.decode.metadata import SampledFrames, VideoMetadata

__all__ = ["IMAGE_SUFFIXES", "ImageDecoder"]

#: Suffixes that open_decoder reads as stills (ImageDecoder).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})


class ImageDecoder(Decoder):
    """PIL decoder for .jpg .jpeg .png .webp .bmp and the first frame of .gif."""

    name = "image"

    @staticmethod
    def _open(path):
        from PIL import Image, UnidentifiedImageError

        try:
            return Image.open(path)  # lazy: reads the header only
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
            # DecompressionBombError: a header claiming absurd dimensions.
            raise UnsupportedMediaError(f"{path}: PIL cannot open it: {_reason(exc)}") from exc

    def probe(self, path):
        path = check_readable(path)
        with self._open(path) as img:
            width, height = img.size
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
                img.seek(0)  # first frame of animated GIF/WebP
                size = output_size(meta.width, meta.height, max_side, size)
                if size != img.size and img.format == "JPEG":
                    # Reduced-resolution decode: libjpeg scales by 1/2, 1/4 or
                    # 1/8 inside the IDCT, never below the output size.
                    img.draft("RGB", size)
                rgb_img = img.convert("RGB")
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

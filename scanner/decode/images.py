"""Still images as one-frame videos (index 0, pts 0.0), as a viewer shows them.
Images with several frames are videos (vscan.decode.choose.is_still).

EXIF orientation is applied (phones store JPEG/HEIC in sensor orientation),
CMYK and palette images are converted to RGB, 16-bit greyscale is scaled to
8 bits (not clipped). HEIC/HEIF/AVIF open through pillow-heif's Pillow plugin.
"""

from __future__ import annotations

import threading

import numpy as np

from vscan.errors import DecodeError, UnsupportedMediaError
from vscan.decode.base import Decoder, _check_options, _reason, check_readable, output_size
from vscan.decode.metadata import SampledFrames, VideoMetadata

__all__ = ["IMAGE_SUFFIXES", "ImageDecoder", "register_heif", "to_rgb"]

#: Suffixes that open_decoder reads as stills (ImageDecoder).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif"})

_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I")

#: How Pillow's error begins when a picture's data ends before the picture does.
_CUT_SHORT = "image file is truncated"
_CUT_SHORT_LOCK = threading.Lock()


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


def _orientation(img) -> int:
    """The EXIF orientation (1-8) of an opened picture, its pixels not decoded: Pillow's ``getexif`` decodes a whole
    PNG whose header chunks hold no EXIF (in case an ``eXIf`` chunk follows the pixels), so a PNG's chunks are walked
    instead, headers only. A 1920x1080 PNG was decoded 5 times by one scan's decode task (each probe, then the decode:
    0.34-0.41 s, a JPEG of it 0.015-0.033 s); now once."""
    if img.format == "PNG" and "exif" not in img.info:
        exif = _png_chunk(img.fp, b"eXIf")
        return 1 if exif is None else _exif_turn(exif)
    return img.getexif().get(0x0112) or 1


def _exif_turn(data: bytes) -> int:
    from PIL import Image

    exif = Image.Exif()
    exif.load(data)
    return exif.get(0x0112) or 1


def _png_chunk(fp, kind: bytes) -> bytes | None:
    """The data of a PNG's first chunk of ``kind``, read from its chunk headers (seeking past each chunk's data), or
    None; ``fp`` is left where it was."""
    import struct

    at = fp.tell()
    try:
        fp.seek(8)  # past the signature
        while len(head := fp.read(8)) == 8:
            length, name = struct.unpack(">I4s", head)
            if name == kind:
                return fp.read(length)
            if name == b"IEND":
                return None
            fp.seek(length + 4, 1)  # the data and its CRC
        return None
    finally:
        fp.seek(at)


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

    #: (path, metadata) of the last probe: a scan's decode task probes a file 4 times (open_decoder, its open, its
    #: attempt, iter_frames), and opening a WebP or AVIF decodes it (a 1080p WebP's decode task took 214 ms against a
    #: 26 ms decode); the picture is read once for its metadata.
    _probed: tuple | None = None

    def probe(self, path):
        path = check_readable(path)
        if self._probed is not None and self._probed[0] == str(path):
            return self._probed[1]
        with self._open(path) as img:
            width, height = img.size
            try:
                turn = _orientation(img)
            except OSError:  # a picture cut short: its EXIF, if it follows its pixels, is read after the decode
                turn = 1  # (``_read_cut_short``)
            if turn in (5, 6, 7, 8):  # EXIF orientations that turn it on its side
                width, height = height, width
            codec = (img.format or "").lower() or None
        meta = VideoMetadata(
            path=str(path), backend=self.name, codec=codec, width=width, height=height, fps=1.0,
            num_frames=1, duration_seconds=0.0, keyframe_indices=(0,), is_still_image=True,
        )  # fmt: skip
        self._probed = (str(path), meta)
        return meta

    def iter_frames(self, path, policy, *, batch_size=64, max_side=None, size=None):
        _check_options(batch_size, max_side)
        meta = self.probe(path)
        selected = policy.select(np.zeros(1), meta.keyframe_indices, meta.duration_seconds)
        if list(selected) != [0]:
            raise DecodeError(f"{path}: policy {policy.describe()} selected {selected} of a still")
        return self._generate(meta, max_side, size)

    #: Why the last picture decoded was read short (its data ends early: ``_read_cut_short``), else None.
    cut_short: str | None = None

    def _generate(self, meta, max_side, size=None):
        self.cut_short = None
        with self._open(meta.path) as img:
            try:
                rgb = self._decoded(img, meta, max_side, size)
            except (OSError, ValueError, SyntaxError) as exc:
                if not (isinstance(exc, OSError) and str(exc).startswith(_CUT_SHORT)):
                    raise DecodeError(f"{meta.path}: PIL failed decoding it: {_reason(exc)}") from exc
                rgb = self._read_cut_short(meta, max_side, size, exc)
        yield SampledFrames(
            np.zeros(1, np.int64), np.zeros(1, np.float64), np.ascontiguousarray(rgb[None])
        )

    def _decoded(self, img, meta, max_side, size) -> np.ndarray:
        from PIL import Image

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
        return rgb

    def _read_cut_short(self, meta, max_side, size, first: OSError) -> np.ndarray:
        """A picture whose data ends early (a carved or half-copied JPEG, PNG, GIF, BMP or TIFF: Pillow's "image file is
        truncated") decoded as far as its data goes, as viewers show it, the rest left blank; ``cut_short`` says so (the
        record's ``partial``). A JPEG of the upstream PDQ test images cut to 99% of its bytes hashes 0-6 bits from the
        whole one, to 95% 4-30 bits (most under 15), to 90% 18-32: before, every one was a DecodeError and never compared.
        Pillow reads the choice from a module flag (``ImageFile.LOAD_TRUNCATED_IMAGES``): set under a lock, for this
        second decode only, and put back as it was."""
        from PIL import ImageFile

        with _CUT_SHORT_LOCK:
            before = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = True
            try:
                with self._open(meta.path) as img:
                    rgb = self._decoded(img, meta, max_side, size)
            except Exception as exc:  # noqa: BLE001 - Pillow's readers fail past the end in many ways (struct.error: PNG)
                raise DecodeError(f"{meta.path}: PIL failed decoding it: {_reason(first)}") from exc
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = before
        self.cut_short = "the picture's data ends early (Pillow: image file is truncated): decoded as far as it goes, the rest left blank"
        return rgb

"""A PNG is decoded once per scan, its EXIF orientation still honoured (vscan.decode.images._orientation): Pillow's
``getexif`` decodes a whole PNG whose header chunks hold no EXIF, and each probe of a scan's decode task asked it, so a
PNG was decoded 5 times."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from vscan.config import ScanConfig
from vscan.decode import FixedRate
from vscan.decode.images import ImageDecoder
from vscan.runtime.decode_task import decode_for_scan

#: A 40x24 picture, its left half bright: turned by EXIF orientation 6 (90 degrees clockwise) it is 24x40, top bright.
PIXELS = np.zeros((24, 40, 3), np.uint8)
PIXELS[:, :20] = 230


def _chunks(data: bytes) -> list[bytes]:
    out, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        out.append(data[at : at + 12 + length])
        at += 12 + length
    return out


def _png(path, *, exif_after_pixels: bool | None) -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(PIXELS).save(buffer, "PNG", **({} if exif_after_pixels is None else {"exif": exif.tobytes()}))
    data = buffer.getvalue()
    if exif_after_pixels:  # the eXIf chunk moved behind the pixels (IDAT), as the PNG specification allows
        chunks = _chunks(data)
        moved = [c for c in chunks if c[4:8] == b"eXIf"]
        rest = [c for c in chunks if c[4:8] != b"eXIf"]
        data = data[:8] + b"".join(rest[:-1] + moved + rest[-1:])
        assert [c[4:8] for c in _chunks(data)][-2:] == [b"eXIf", b"IEND"]
    path.write_bytes(data)


@pytest.mark.parametrize("where", [False, True], ids=["exif-before-pixels", "exif-after-pixels"])
def test_a_png_turned_by_exif_is_probed_and_decoded_turned(tmp_path, where):
    path = tmp_path / "turned.png"
    _png(path, exif_after_pixels=where)
    decoder = ImageDecoder()
    meta = decoder.probe(path)
    assert (meta.width, meta.height) == (24, 40)
    (batch,) = list(decoder.iter_frames(path, FixedRate(1.0)))
    frame = batch.rgb[0]
    assert frame.shape == (40, 24, 3) and frame[:18].mean() > 200 and frame[22:].mean() < 30


def test_a_png_is_decoded_once_by_a_scans_decode_task(tmp_path, monkeypatch):
    path = tmp_path / "plain.png"
    _png(path, exif_after_pixels=None)
    loads = []
    end = PngImagePlugin.PngImageFile.load_end
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load_end", lambda self: (loads.append(1), end(self))[1])
    summary, payload = decode_for_scan(str(path), ScanConfig())
    assert summary["error"] is None and payload is not None
    assert len(loads) == 1  # was 5: every probe decoded the pixels to look for EXIF behind them


def test_a_pictures_metadata_is_read_once_by_a_scans_decode_task(tmp_path, monkeypatch):
    """Opening a WebP decodes it (Pillow's WebP reader): the decode task's 4 probes opened it 4 times, as many decodes."""
    from PIL import WebPImagePlugin

    path = tmp_path / "still.webp"
    Image.fromarray(PIXELS).save(path, "WEBP")
    opens = []
    real = WebPImagePlugin.WebPImageFile._open
    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "_open", lambda self: (opens.append(1), real(self))[1])
    summary, payload = decode_for_scan(str(path), ScanConfig())
    assert summary["error"] is None and payload is not None
    assert len(opens) <= 3  # is_still once (its answer kept for open_decoder), one probe, the decode (was 7)


def test_a_kept_answer_is_for_the_same_file_only(tmp_path):
    """is_still's answer is kept by path, size and modification time: a file written again is looked at again."""
    from vscan.decode.choose import is_still

    path = tmp_path / "picture.png"
    Image.fromarray(PIXELS).save(path)
    assert is_still(path) and is_still(path)
    frames = [Image.fromarray(np.roll(PIXELS, 7 * i, axis=1)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=200)  # now an animated PNG, 3 frames
    assert not is_still(path)

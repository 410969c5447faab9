"""Files named like videos that are none (vscan.inputs.sniff): the decoder says only "Invalid data found when
processing input" for each; the record says what the file holds instead, so an operator can tell an encrypted
copy (a lead) from a wiped file, an error page or a renamed document. A damaged video container is never called
random or anything else: that is the decoder's to explain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vscan.decode.pyav_reuse import open_container
from vscan.errors import UnsupportedMediaError
from vscan.inputs.sniff import what_it_is

_RNG = np.random.default_rng(5)
_NOISE = _RNG.integers(0, 256, 300_000, dtype=np.uint8).tobytes()

CASES = {
    "vault.mp4": (_NOISE, "look random and have no container's signature: encrypted"),
    "wiped.mp4": (bytes(300_000), "are all zero"),
    "error-page.mp4": (b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head><body>denied</body></html>\n", "an HTML page"),
    "note.mkv": ("Notiz: Video folgt sp\u00e4ter.\n".encode() * 20, "it is text, not a video: 'Notiz: Video folgt sp\u00e4ter."),
    "report.mov": (b"%PDF-1.4\n" + _NOISE[:5000], "those of a PDF document"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_file_that_is_no_video_says_what_it_holds(tmp_path, name):
    data, said = CASES[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UnsupportedMediaError) as raised:
        open_container(path)
    assert said in str(raised.value), str(raised.value)
    assert path.read_bytes() == data  # evidence is read, never changed


def test_a_damaged_video_container_is_not_called_random_or_text(tmp_path):
    for name, head in (("broken.mkv", b"\x1a\x45\xdf\xa3"), ("broken.avi", b"RIFF\x00\x10\x00\x00AVI "), ("broken.ts", b"\x47")):
        data = head + _NOISE
        if name.endswith(".ts"):  # a sync byte every 188 bytes, noise between
            data = b"".join(b"\x47" + _NOISE[i * 187 : (i + 1) * 187] for i in range(600))
        assert what_it_is(data[:65536]) is None, name
    path = tmp_path / "broken.mkv"
    path.write_bytes(b"\x1a\x45\xdf\xa3" + _NOISE)
    with pytest.raises(UnsupportedMediaError) as raised:
        open_container(path)
    assert "random" not in str(raised.value) and "not a video" not in str(raised.value)


def test_short_and_compressible_heads_are_not_called_random():
    assert what_it_is(bytes(range(256)) * 64) is None  # every byte value as often, yet no cipher: zlib shortens it
    assert what_it_is(_NOISE[:1000]) is None  # too little to judge
    assert what_it_is(b"\x00\x01\x02\x03" * 4096) is None  # a repeating pattern: low entropy, no signature


def test_a_list_of_other_files_named_like_a_video_is_refused_not_read_as_them(tmp_path, monkeypatch):
    # FFmpeg's probe opens an ffconcat list as a video made of the files it names: a 39-byte text file got the record
    # (and would get the matches) of the clip it names, and one naming a pipe held a decoder for its 8 s timeout.
    import io
    import os

    from vscan.bench import synth
    from vscan.decode import FixedRate, PyAVDecoder
    from vscan.decode import pyav_reuse

    clip = synth.make_clip(tmp_path / "sub" / "clip.mp4", seed=1, seconds=1.0, size=(96, 64))
    os.mkfifo(tmp_path / "sub" / "pipe.mp4")
    lists = {"concat.mp4": b"ffconcat version 1.0\nfile sub/clip.mp4\n", "pipe.mp4": b"ffconcat version 1.0\nfile sub/pipe.mp4\n",
             "hls.mkv": b"\xef\xbb\xbf#EXTM3U\n#EXTINF:10,\nsub/clip.mp4\n#EXT-X-ENDLIST\n",
             "dash.mov": b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"></MPD>\n'}  # fmt: skip
    for name, data in lists.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UnsupportedMediaError, match="naming other files or addresses, not a video"):
            next(iter(PyAVDecoder().iter_frames(tmp_path / name, FixedRate(1.0))))
        with pytest.raises(UnsupportedMediaError, match="naming other files"):  # an object read by ranges: a file object
            pyav_reuse.open_container(io.BytesIO(data), f"s3://b/{name}")
    assert len(list(PyAVDecoder().iter_frames(clip, FixedRate(1.0)))) >= 1  # the clip itself is scanned as itself
    # Were a list to get past the start's check, FFmpeg's own name for what it opened refuses it too.
    monkeypatch.setattr(pyav_reuse, "refers_elsewhere", lambda head: None)
    with pytest.raises(UnsupportedMediaError, match="FFmpeg reads it as 'concat'"):
        pyav_reuse.open_container(tmp_path / "concat.mp4")


def test_a_file_named_like_a_picture_that_is_none_says_what_it_holds(tmp_path):
    # Vault apps keep their encrypted copies under picture names; a failed download saves an error page as .jpg.
    from vscan.decode.images import ImageDecoder

    cases = {"vault.jpg": (_NOISE, "look random and have no container's signature: encrypted"),
             "page.jpg": (b"<html><body>404 Not Found</body></html>\n", "an HTML page (a download that saved an error or login page), not a picture"),
             "report.png": (b"%PDF-1.4\n" + _NOISE[:2000], "those of a PDF document, not of a picture")}  # fmt: skip
    for name, (data, said) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UnsupportedMediaError, match="PIL cannot open it") as raised:
            ImageDecoder().probe(tmp_path / name)
        assert said in str(raised.value), str(raised.value)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + _NOISE[:5000])  # a damaged JPEG: the decoder's words alone
    with pytest.raises(UnsupportedMediaError) as raised:
        ImageDecoder().probe(tmp_path / "broken.jpg")
    assert "random" not in str(raised.value) and "not a picture" not in str(raised.value)
    assert what_it_is(b"\xff\xd8\xff\xe0" + _NOISE[:5000], still=True) is None
    assert "not of a video" in what_it_is(b"\xff\xd8\xff\xe0" + _NOISE[:5000])  # a JPEG named .mp4 that FFmpeg refused

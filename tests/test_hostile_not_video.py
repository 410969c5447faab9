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

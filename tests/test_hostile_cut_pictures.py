"""Pictures whose data ends early (carved from a disk image, half copied, a download cut off): Pillow raises "image file
is truncated" and every one was a DecodeError, never compared with the bank. They are now decoded as far as their
data goes, as viewers show them, and the record says so (``partial``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFile

from vscan.bench import synth
from vscan.config import ScanConfig
from vscan.decode import FixedRate
from vscan.decode.images import ImageDecoder
from vscan.runtime.decode_task import decode_for_scan


def _cut(path, into, share: float):
    data = path.read_bytes()
    into.write_bytes(data[: int(len(data) * share)])
    return into


def _frame(path, size=(64, 64)):
    decoder = ImageDecoder()
    (batch,) = list(decoder.iter_frames(path, FixedRate(1.0), size=size))
    return decoder, batch.rgb[0]


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".tif"])
def test_a_picture_cut_short_is_decoded_as_far_as_it_goes_and_said(tmp_path, suffix):
    whole = synth.write_image(tmp_path / f"whole{suffix}", seed=5, size=(320, 240))
    cut = _cut(whole, tmp_path / f"cut{suffix}", 0.7)
    with Image.open(cut) as img, pytest.raises(OSError, match="image file is truncated"):
        img.load()  # Pillow's own refusal, which made the file an error
    decoder, frame = _frame(whole)
    assert decoder.cut_short is None
    decoder, short = _frame(cut)
    assert decoder.cut_short is not None and "ends early" in decoder.cut_short
    same_rows = (np.abs(short.astype(int) - frame).mean(axis=(1, 2)) < 4).mean()
    assert 0.4 <= same_rows < 1.0  # the rows its data holds (the top; a BMP's bottom), and blank rows for the rest
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # Pillow's module flag put back


def test_the_scan_record_says_partial_and_a_damaged_picture_stays_an_error(tmp_path):
    whole = synth.write_image(tmp_path / "whole.jpg", seed=6, size=(320, 240))
    summary, payload = decode_for_scan(str(_cut(whole, tmp_path / "cut.jpg", 0.7)), ScanConfig())
    assert summary["error"] is None and payload is not None and summary["frames_sampled"] == 1
    assert summary["partial"]["reason"].startswith("the picture's data ends early")
    summary, _ = decode_for_scan(str(whole), ScanConfig())
    assert summary["error"] is None and "partial" not in summary
    data = bytearray(whole.read_bytes())  # not cut short: its header wrecked
    data[200:260] = b"\xff" * 60
    (tmp_path / "wrecked.jpg").write_bytes(bytes(data))
    summary, payload = decode_for_scan(str(tmp_path / "wrecked.jpg"), ScanConfig())
    assert payload is None and summary["error"]["kind"] == "input" and "partial" not in summary


def test_a_real_photo_cut_to_95_percent_still_hashes_near_the_whole(pdq_dir, tmp_path):
    from vscan.hashing.pdq import PDQHasher

    hasher = PDQHasher(device="cpu")
    photo = pdq_dir / "bridge-mods" / "aaa-orig.jpg"
    whole = np.asarray(Image.open(photo).convert("RGB"))
    _, short = _frame(_cut(photo, tmp_path / "cut.jpg", 0.95), size=whole.shape[1::-1])
    a, b = (np.asarray(hasher.hash_frames(x[None]).hashes).reshape(-1)[:32] for x in (whole, short))
    assert int(np.unpackbits(a ^ b).sum()) <= 31  # PDQ's match threshold: a bank of the photo finds its cut copy


def test_the_console_and_the_report_count_files_read_in_part():
    from vscan.cli.progress import _where, counts_line
    from vscan.output.report import record_counts
    from vscan.runtime.summary import ScanSummary

    match = {"kind": "pdq", "is_match": True}
    whole = {"status": "ok", "media": {"kind": "image"}, "matches": [match]}
    cut = {**whole, "partial": {"reason": "the picture's data ends early", "declared_duration_seconds": None,
                                "demuxed_duration_seconds": 0.0}}  # fmt: skip
    assert _where(whole, match) == "still image" and _where(cut, match) == "still image, read in part"
    summary = ScanSummary()
    for record in (whole, cut):
        summary.add(record)
    assert summary.read_in_part == 1 and summary.counts()["read_in_part"] == 1
    assert counts_line(summary).startswith("scanned 2 (1 read in part), skipped 0")
    assert record_counts([whole, cut]).startswith("scanned 2 (1 read in part), skipped 0")
    assert record_counts([whole]).startswith("scanned 1, skipped 0")

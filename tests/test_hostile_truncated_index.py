"""An MP4 cut off before its index (moov) was written: a recording interrupted, a carved or half-copied
file. No decoder opens it; its error record says why in an operator's words (vscan.inputs.truncated)."""

from __future__ import annotations

import struct

import pytest

from vscan.bench import synth
from vscan.inputs.truncated import why_unopenable


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("truncated-index")
    tail = synth.make_clip(root / "tail.mp4", seed=5, seconds=3.0, size=(96, 64))  # moov written last, as cameras do
    front = synth.make_clip(root / "front.mp4", seed=5, seconds=3.0, size=(96, 64), faststart=True)
    return root, tail, front


def _top_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    out, offset = [], 0
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        out.append((kind, offset, length))
        offset += length
    return out


@pytest.mark.parametrize("percent", [20, 55, 90])
def test_a_camera_order_mp4_cut_before_its_index_says_so_with_the_bytes_present(clips, percent):
    root, tail, _ = clips
    data = tail.read_bytes()
    assert [k for k, _, _ in _top_boxes(data)][-1] == b"moov"  # the index is last
    (mdat_at, mdat_len) = next((o, n) for k, o, n in _top_boxes(data) if k == b"mdat")
    cut = root / f"cut{percent}.mp4"
    cut.write_bytes(data[: mdat_at + mdat_len * percent // 100])
    why = why_unopenable(cut)
    assert why is not None and "no index (moov box)" in why, why
    assert f"{mdat_len * percent // 100:,} of the {mdat_len:,} bytes its mdat box declares" in why, why


def test_whole_files_index_first_cuts_and_other_files_get_no_story(clips, tmp_path):
    root, tail, front = clips
    assert why_unopenable(tail) is None and why_unopenable(front) is None
    cut = tmp_path / "front-cut.mp4"
    cut.write_bytes(front.read_bytes()[: len(front.read_bytes()) * 6 // 10])  # index first: it opens, partial
    assert why_unopenable(cut) is None
    for name, data in (("noise.mp4", bytes(range(256)) * 40), ("empty.mp4", b""), ("tiny.mp4", b"\x00\x00"),
                       ("photo.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 100)):  # fmt: skip
        (tmp_path / name).write_bytes(data)
        why = why_unopenable(tmp_path / name)  # no MP4 story; what the bytes are instead (vscan.inputs.sniff), or nothing
        assert why is None or "moov" not in why and "mdat" not in why, (name, why)
    assert why_unopenable(tmp_path / "noise.mp4") is None  # a counting pattern: no signature, not random, not text
    assert why_unopenable(tmp_path / "missing.mp4") is None


def test_an_index_cut_off_and_a_media_box_never_closed(clips, tmp_path):
    root, tail, front = clips
    data = front.read_bytes()
    (moov_at, moov_len) = next((o, n) for k, o, n in _top_boxes(data) if k == b"moov")
    (tmp_path / "moov-cut.mp4").write_bytes(data[: moov_at + moov_len // 2])
    why = why_unopenable(tmp_path / "moov-cut.mp4")
    assert why is not None and "index (moov box) is cut off" in why and f"of the {moov_len:,} bytes" in why, why
    data = tail.read_bytes()
    (mdat_at, mdat_len) = next((o, n) for k, o, n in _top_boxes(data) if k == b"mdat")
    open_ended = data[:mdat_at] + struct.pack(">I", 0) + data[mdat_at + 4: mdat_at + mdat_len]  # size 0, no moov after
    (tmp_path / "open.mp4").write_bytes(open_ended)
    why = why_unopenable(tmp_path / "open.mp4")
    assert why is not None and "never closed" in why and "no index" in why, why


def test_the_scan_record_of_a_file_cut_before_its_index_carries_the_reason(clips):
    from vscan.config import ScanConfig
    from vscan.runtime.decode_task import decode_for_scan

    root, tail, _ = clips
    data = tail.read_bytes()
    cut = root / "scan-cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    before = cut.read_bytes()
    summary, payload = decode_for_scan(str(cut), ScanConfig())
    assert payload is None and summary["error"]["kind"] == "input" and summary["error"]["type"] == "UnsupportedMediaError"
    assert "no index (moov box)" in summary["error"]["message"], summary["error"]
    assert cut.read_bytes() == before  # evidence untouched


def test_an_index_overwritten_after_whole_media_data_is_told_apart_from_a_cut(clips, tmp_path):
    _, tail, _ = clips
    data = tail.read_bytes()
    (moov_at, moov_len) = next((o, n) for k, o, n in _top_boxes(data) if k == b"moov")
    (tmp_path / "zeroed-index.mp4").write_bytes(data[:moov_at] + bytes(moov_len))  # a bad sector over the index
    why = why_unopenable(tmp_path / "zeroed-index.mp4")
    assert why is not None and f"the {moov_len:,} bytes after it are not an index" in why and "mdat box) is whole" in why, why

"""Damaged data inside a video (a run of zeroed bytes, as bad sectors and carving leave; the index intact): the
decoder refuses the packets it hits, the decode goes on past them, and the record says so (``media.damaged``)."""

from __future__ import annotations

import pytest

from vscan.bench import synth
from vscan.config import Sampling, ScanConfig
from vscan.decode import FixedRate
from vscan.runtime.decode_task import decode_for_scan


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("damaged")
    return root, synth.make_clip(root / "whole.mp4", seed=320, seconds=8.0, size=(320, 240), faststart=True, gop=50).read_bytes()


def _zeroed(root, data: bytes, name: str, at: float, length: int):
    out = bytearray(data)
    a = int(len(out) * at)
    out[a:a + length] = bytes(min(length, len(out) - a))
    path = root / name
    path.write_bytes(bytes(out))
    return path


def test_zeroed_runs_inside_the_media_data_are_passed_over_and_said(clip):
    """Three holes; before, two of them made the file an error ("Invalid data found when processing input:
    'avcodec_send_packet()'"). A hole in packets no pass decodes (1 fps seeks from keyframes) is not seen at all."""
    root, data = clip
    said = 0
    for at, length in ((0.3, 512), (0.5, 4096), (0.7, 4096)):
        path = _zeroed(root, data, f"hole-{int(at * 100)}-{length}.mp4", at, length)
        summary, payload = decode_for_scan(str(path), ScanConfig(sampling=Sampling(policy=FixedRate(1.0))))
        assert summary["error"] is None, (at, length, summary["error"])
        assert len(payload.timestamps) >= 5 and summary["duration_seconds"] == 8.0  # of 8 whole seconds: those away from the hole
        damaged = summary["media"].get("damaged")
        if damaged is not None:
            said += 1
            assert damaged["packets"] >= 1 and 0.0 <= damaged["first_at_seconds"] < 8.0, damaged
    assert said >= 2


def _swapped(root, data: bytes, name: str, a: float, b: float):
    """The bytes from ``a`` to ``b`` (shares of the file) moved to its end (carving): the index points past ``a`` at the
    wrong bytes, so the decoder refuses every packet from there on, more than half of the file's."""
    n = len(data)
    path = root / name
    path.write_bytes(data[: int(n * a)] + data[int(n * b) :] + data[int(n * a) : int(n * b)])
    return path


def _mdat(data: bytes) -> int:
    return data.index(b"mdat") + 4


def test_a_whole_file_has_no_damage_and_a_file_mostly_zeroed_keeps_its_frames_before_the_damage(clip):
    """Was: a file mostly zeroed stays an error (the decode raised once refused packets passed half the file's). Now the
    decode stops where the damage became dominant and the frames before it are scanned, said in ``partial``: a known
    video whose second half is damaged is no longer missed. Only frame 0 lies before the zeros here (at 20%)."""
    root, data = clip
    whole = root / "whole.mp4"
    summary, payload = decode_for_scan(str(whole), ScanConfig(sampling=Sampling(policy=FixedRate(1.0))))
    assert summary["error"] is None and "damaged" not in summary["media"] and len(payload.timestamps) == 8
    assert "partial" not in summary
    wrecked = _zeroed(root, data, "wrecked.mp4", 0.2, int(len(data) * 0.75))
    summary, payload = decode_for_scan(str(wrecked), ScanConfig(sampling=Sampling(policy=FixedRate(1.0))))
    assert summary["error"] is None, summary["error"]
    partial = summary["partial"]
    at = partial["demuxed_duration_seconds"]
    assert 0.5 < at < 2.5 and partial["declared_duration_seconds"] == 8.0, partial
    assert f"from {at:.3f} s on the decoder refused" in partial["reason"] and "of the file's 200 packets" in partial["reason"]
    assert len(payload.timestamps) >= 1 and max(payload.timestamps) < at  # none of the decoder's concealment after it
    assert summary["media"]["damaged"]["first_at_seconds"] <= at


def test_a_file_whose_every_packet_is_refused_stays_an_error(clip):
    root, data = clip
    start = _mdat(data) + 8
    out = bytearray(data)
    out[start:] = bytes(len(out) - start)
    path = root / "nothing.mp4"
    path.write_bytes(bytes(out))
    summary, payload = decode_for_scan(str(path), ScanConfig())
    assert payload is None and summary["error"]["kind"] == "input", summary


@pytest.mark.parametrize("policy", ["1fps", "adaptive"])
def test_a_file_damaged_from_some_point_on_is_scanned_up_to_it(clip, policy):
    """A piece moved (carving): every packet from 2 s on is refused, 101 of 200. Before: DecodeError "PyAV failed after
    N of M selected frames: InvalidDataError", every fallback too (the file's first 2 s never scanned)."""
    root, data = clip
    path = _swapped(root, data, "swapped.mp4", 0.35, 0.45)
    config = ScanConfig(sampling=Sampling(policy=FixedRate(1.0))) if policy == "1fps" else ScanConfig()
    summary, payload = decode_for_scan(str(path), config)
    assert summary["error"] is None, summary["error"]
    assert summary["media"]["fallback"] is None  # the first decoder served: no fallback turned it into an error
    at = summary["partial"]["demuxed_duration_seconds"]
    assert 1.5 < at < 2.5 and summary["partial"]["declared_duration_seconds"] == 8.0
    assert 2 <= len(payload.timestamps) and max(payload.timestamps) < at and payload.timestamps[0] == 0.0
    assert summary["media"]["damaged"]["packets"] > 100


def test_later_passes_over_a_damaged_file_keep_to_the_frames_before_the_damage(clip):
    """A second pass (Adaptive's confirmation, the region probe's frames) does not fail on the same damage: on the decoder
    that found it, frames after it are not decoded at all; on a fresh one (a scan's second task) the pass stops there."""
    from vscan.decode import PyAVDecoder
    from vscan.decode.sampling import FrameList

    root, data = clip
    path = _swapped(root, data, "swapped2.mp4", 0.35, 0.45)
    decoder = PyAVDecoder(skip_nonref=True)
    first = [int(i) for b in decoder.iter_frames(path, FixedRate(1.0), size=(64, 64)) for i in b.frame_indices]
    at, refused, packets = decoder.damaged_from()
    assert first and max(first) < at * 25 and packets == 200 and refused > 100
    assert list(decoder.iter_frames(path, FrameList((120, 150, 190)), size=(64, 64))) == []  # all after it: none, no error
    fresh = PyAVDecoder()
    got = [int(i) for b in fresh.iter_frames(path, FrameList((10, 30, 120, 150)), size=(64, 64)) for i in b.frame_indices]
    assert got == [10, 30] and fresh.damaged_from()[0] == at


def test_a_known_video_damaged_after_its_first_seconds_is_found_by_a_scan(clip, tmp_path):
    """End to end (Bank.build of the whole clip, a default CLI scan of the carved copy): before, the copy was a
    DecodeError and its match missed; now ``status: ok`` with ``partial`` and ``media.damaged``, and the match."""
    from _cli_scan import scan_records

    from vscan import Bank

    root, data = clip
    inbox = tmp_path / "in"
    inbox.mkdir()
    _swapped(inbox, data, "carved.mp4", 0.35, 0.45)
    bank = tmp_path / "reported.bank"
    Bank.build(bank, [root / "whole.mp4"], label="reported")
    record = scan_records(inbox, bank, tmp_path / "r.jsonl")["carved.mp4"]
    assert record["status"] == "ok" and record["error"] is None, record["error"]
    assert 1.5 < record["partial"]["demuxed_duration_seconds"] < 2.5 and "refused" in record["partial"]["reason"]
    assert record["media"]["damaged"]["packets"] > 100
    assert [m["bank_entry_id"] for m in record["matches"] if m.get("is_match")] == ["whole"], record["matches"]

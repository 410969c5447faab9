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


def test_a_whole_file_has_no_damage_and_a_file_mostly_zeroed_stays_an_error(clip):
    root, data = clip
    whole = root / "whole.mp4"
    summary, payload = decode_for_scan(str(whole), ScanConfig(sampling=Sampling(policy=FixedRate(1.0))))
    assert summary["error"] is None and "damaged" not in summary["media"] and len(payload.timestamps) == 8
    wrecked = _zeroed(root, data, "wrecked.mp4", 0.2, int(len(data) * 0.75))  # most packets refused: not scanned as concealment
    summary, payload = decode_for_scan(str(wrecked), ScanConfig(sampling=Sampling(policy=FixedRate(1.0))))
    assert payload is None and summary["error"]["kind"] == "input", summary

"""Densify only where it decides something (issue #30): a first pass that
already decides gets a cheap confirmation, not 1 fps over its whole length."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from vscan.bank.prepared import Match
from vscan.decode import Adaptive, Confirm, PyAVDecoder, Windows
from vscan.decode.adaptive import confirm_pass, first_pass_decides
from vscan.errors import ConfigError


def _match(entry="a", *, pct=100.0, frames=3, span=(0.0, 20.0), is_match=True, decided_by="alignment", path=()) -> Match:
    return Match(bank_entry_id=entry, label=None, query_pct=pct, compared_pct=pct, matched_seconds=span[1] - span[0],
                 query_span_seconds=span, reference_span_seconds=span, distance_min=4, is_match=is_match,
                 num_query_hashes_matched=frames, decided_by=decided_by if is_match else None, path=path)  # fmt: skip


def test_a_deciding_first_pass_is_confirmed_not_densified():
    policy = Adaptive(confirm_reach_seconds=None)
    second = policy.refine([_match()], 30.0, sampled_seconds=[0.0, 10.0, 18.0])
    assert isinstance(second, Confirm) and len(second.seconds) == 1
    assert second.seconds == (24.0,)  # the middle of the widest gap (18 s to the end at 30 s)
    assert "sparse frames up to 10.0 s apart" in second.describe()
    two = Adaptive(confirm_frames=2, confirm_reach_seconds=None).refine([_match()], 30.0, sampled_seconds=[0.0, 10.0, 18.0])
    assert two.seconds == (5.0, 24.0) and two.max_gap_seconds == 8.0


def test_the_confirming_frame_is_a_short_decode_from_its_gaps_keyframe():
    """By default the confirming frame is a quarter second after the first-pass frame
    that opens the widest gap (a keyframe: a few frames to decode, not half a
    GOP), and the record's widest gap is measured on the frames chosen."""
    second = Adaptive().refine([_match()], 30.0, sampled_seconds=[0.0, 10.0, 18.0])
    assert second.seconds == (18.25,) and second.max_gap_seconds == 11.75
    assert "sparse frames up to 11.8 s apart" in second.describe()
    assert Adaptive().refine([_match()], 30.0, sampled_seconds=[0.0, 1.5, 3.0]).seconds == (3.25,)  # 27 s tail: 0.25 s in
    assert confirm_pass([0.0, 1.0], 1.6, 1, 1.0).seconds == (0.5,)  # a gap under 2 s: its middle, as before
    assert Adaptive(confirm_reach_seconds=2.5).refine([_match()], 30.0, sampled_seconds=[0.0, 10.0, 18.0]).seconds == (20.5,)
    with pytest.raises(ConfigError):
        Adaptive(confirm_reach_seconds=0.0)


@pytest.mark.parametrize("why, matches", [
    ("a part of the file", [_match(pct=50.0)]),
    ("one frame", [_match(frames=1)]),
    ("no match yet", [_match(is_match=False, pct=60.0)]),
    ("an inset picture", [_match(path=("region",))]),
    ("an off-centre crop", [_match(path=("off-centre",))]),
    ("another clip outside its span", [_match(span=(0.0, 12.0)), _match("b", pct=20.0, frames=1, is_match=False, span=(18.0, 18.0))]),
])  # fmt: skip
def test_what_still_gets_dense_windows(why, matches):
    second = Adaptive().refine(matches, 30.0, sampled_seconds=[0.0, 6.0, 12.0, 18.0, 24.0])
    assert isinstance(second, Windows), why
    assert not first_pass_decides(matches)


def test_confirmation_can_be_turned_off_or_skipped():
    assert isinstance(Adaptive(confirm_frames=None).refine([_match()], 30.0, sampled_seconds=[0.0, 10.0]), Windows)
    assert Adaptive(confirm_frames=0).refine([_match()], 30.0, sampled_seconds=[0.0, 10.0]) is None
    assert isinstance(Adaptive().refine([_match()], 30.0), Windows)  # first-pass times unknown: as before
    assert confirm_pass([0.0, 0.04], 0.08, 1) is None  # nothing between the frames


_PATTERN = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=24"]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_known_vp9_copy_is_confirmed_and_decoded_once(tmp_path, ray_local):
    """A VP9 re-encode of a banked clip, scanned as `vscan scan` does: matched,
    confirmed by one frame instead of 1 fps over 24 s, and both passes together
    decode fewer frames than the file has (before: 1,200+ of its 600)."""
    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import build_bank
    from vscan.config import Runtime, ScanConfig
    from vscan.decode import EveryFrame
    from vscan.output.sinks import JsonlSink
    from vscan.runtime.driver import run_scan

    def ff(*args):
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True, timeout=300)

    ff(*_PATTERN, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-g", "250", "-pix_fmt", "yuv420p", tmp_path / "banked.mp4")
    ff(*_PATTERN, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "128", tmp_path / "copy.webm")
    bank = tmp_path / "bank.db"
    build_bank(bank, [tmp_path / "banked.mp4"], hash_media=media_hasher(EveryFrame(), "cpu"))  # every frame, as `vscan bank build`
    out = tmp_path / "r.jsonl"
    with JsonlSink(out) as sink:
        run_scan([tmp_path / "copy.webm"], sink=sink, bank_path=bank, config=ScanConfig(runtime=Runtime(device="cpu")), ray_address=ray_local)
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert any(m["is_match"] for m in record["matches"]), record["matches"]
    assert record["second_pass"]["status"] == "ok" and record["second_pass"]["sampling"].startswith("Confirm"), record["second_pass"]
    assert "sparse frames" in record["sampling"]  # the record says how spans and matched seconds were measured
    frames = PyAVDecoder().probe(tmp_path / "copy.webm").num_frames
    assert record["frames_decoded"] <= frames // 4, (record["frames_decoded"], frames)
    assert record["frames_sampled"] <= 8
    best = max(record["matches"], key=lambda m: m["query_pct"])
    assert math.isfinite(best["matched_seconds"]) and best["matched_seconds"] > 12.0

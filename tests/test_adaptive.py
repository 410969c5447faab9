"""Adaptive sampling: keyframes first, a second pass only near signals."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from vscan import ConfigError
from vscan.bank.store import build_bank
from vscan.decode import Adaptive, EveryFrame, Windows
from vscan.decode.adaptive import confirm_pass
from vscan.hashing.pdq import PDQHasher
from vscan.hashing.media import hash_media
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.runtime.decode_task import merge_passes
from vscan.runtime.driver import run_scan
from vscan.output.sinks import JsonlSink


@dataclass(frozen=True)
class FakeHit:
    """Only the two fields refine() reads; a real Match is used end to end below."""

    query_span_seconds: tuple[float, float]
    signal: str = "pdq"


PTS = np.arange(1500) / 25.0  # 60 s at 25 fps


def test_first_pass_is_keyframes_plus_gap_fills():
    policy = Adaptive(max_gap_seconds=10.0)
    assert policy.select(PTS, [0, 250, 500], 60.0).tolist() == [0, 250, 500, 750, 1000, 1250]
    assert policy.select(PTS, list(range(0, 1500, 125)), 60.0).tolist() == list(range(0, 1500, 125))


def test_first_pass_has_at_least_two_frames():
    assert Adaptive().select(PTS[:250], [0], 10.0).tolist() == [0, 62, 187]  # the even spread (spread_middle off)
    # spread_middle: one keyframe, the other frame at the middle of the file (the widest stretch without a frame)
    middle = Adaptive(spread_middle=True)
    assert middle.select(PTS[:250], [0], 10.0).tolist() == [0, 125]
    assert middle.select(PTS[:250], [100], 10.0).tolist() == [100, 175]  # a lone keyframe at 4 s: the middle of 4-10 s
    assert middle.select(PTS[:173], [0], 173 / 25).tolist() == [0, 87]  # 3.46 s: the first frame at or after it
    # a bank whose rows are on a clock (a list's whole seconds, a sparse bank's burst): the even spread's three chances
    assert Adaptive(spread_middle=True, whole_seconds=True).select(PTS[:250], [0], 9.0).tolist() == [0, 50, 150]
    assert Adaptive(spread_middle=True, burst_max_file_seconds=6.0).select(PTS[:250], [0], 10.0).tolist() == [0, 62, 187]


def test_a_single_keyframe_first_pass_decodes_less_and_leaves_no_wider_stretch_unseen():
    """Issue #30 (Adaptive.spread_middle): in a file with one keyframe every first-pass frame is decoded from it; the
    even spread's last frame sits at 3/4 of the file. The frame at the middle leaves its widest unseen stretch as wide
    (half the file), one frame fewer, and the decode forward from the keyframe stops at half the file."""
    for n in (120, 172, 206, 240):  # 4.8-9.6 s at 25 fps, one keyframe (no gap fill under 10 s)
        pts, duration = PTS[:n], n / 25.0
        new = Adaptive(spread_middle=True).select(pts, [0], duration)
        old = np.union1d([0], [int((k + 0.5) * n / 2) for k in range(2)])  # the even spread's frames (d/4, 3d/4)

        def widest(chosen):
            return np.diff(np.append(pts[chosen], duration)).max()

        assert widest(new) <= widest(old) + 1.0 / 25
        assert new.max() < 0.7 * old.max() and len(new) == len(old) - 1
        # its confirmation (the first pass decided) lands among the frames that decode passed, not after its last one
        confirm = confirm_pass(pts[new], duration, 1, Adaptive().confirm_reach_seconds)
        assert confirm.select(pts, [0], duration).max() < new.max()


def test_a_region_probe_first_pass_keeps_its_even_spread():
    """More than one frame short (the region probe's 6 frames: vscan.runtime.region_probe), the spread stays even."""
    assert Adaptive(min_frames=6).select(PTS[:240], [0], 9.6).tolist() == [0, 20, 60, 100, 140, 180, 220]


def test_all_intra_video_is_thinned_to_one_keyframe_per_second():
    chosen = Adaptive().select(PTS, list(range(1500)), 60.0)
    assert chosen.tolist() == list(range(0, 1500, 25))


def test_refine_windows_around_hits_within_budget():
    policy = Adaptive(dense_fps=1.0, window_seconds=4.0, max_frames=20)
    second = policy.refine([FakeHit((10.0, 12.0)), FakeHit((14.0, 15.0)), FakeHit((50.0, 50.0))], 60.0)
    assert isinstance(second, Windows)
    assert second.spans == ((6.0, 19.0), (46.0, 53.0))  # merged, and cut at 20 s of budget
    assert second.seconds == pytest.approx(20.0)
    assert second.select(PTS, None, 60.0).tolist() == [int(t * 25) for t in [*range(6, 20), *range(46, 54)]]  # ends inclusive


def test_refine_needs_no_second_pass_without_hits_or_with_exact_hit():
    policy = Adaptive()
    assert policy.refine([], 60.0) is None
    assert policy.refine([FakeHit((math.nan, math.nan))], 60.0) is None
    assert policy.refine([FakeHit((1.0, 2.0)), FakeHit((math.nan, math.nan), signal="sha256")], 60.0) is None
    # A still (duration 0: a frame grab, a GIF decoded as an image) has no second pass to ask for: it would decode nothing.
    assert policy.refine([FakeHit((0.0, 0.0))], 0.0) is None


def test_invalid_adaptive_values():
    with pytest.raises(ConfigError, match="Invalid"):
        Adaptive(max_gap_seconds=0)
    with pytest.raises(ConfigError, match="Invalid fps"):
        Adaptive(dense_fps=-1)


def test_merge_passes_orders_by_frame_and_drops_duplicates():
    def payload(numbers):
        n = len(numbers)
        return {
            "frames": np.stack([np.full((4, 4, 3), v, np.uint8) for v in numbers]) if n else np.zeros((0, 4, 4, 3), np.uint8),
            "frame_numbers": np.asarray(numbers, np.int64),
            "timestamps": np.asarray(numbers, np.float64) / 25,
            "duration_seconds": np.float64(9.0),
        }

    merged = merge_passes(payload([0, 100, 200]), payload([50, 100, 150]))
    assert merged["frame_numbers"].tolist() == [0, 50, 100, 150, 200]
    assert merged["frames"][:, 0, 0, 0].tolist() == [0, 50, 100, 150, 200]
    assert float(merged["duration_seconds"]) == 9.0


def test_adaptive_scan_of_real_samples(vpdq_dir, tmp_path, ray_local):
    def hash_file(path):
        result = hash_media(path, EveryFrame(), hasher=PDQHasher(device="cpu"), max_side=512)
        return result.frames, result.metadata.duration_seconds

    bank = tmp_path / "bank.db"
    build_bank(bank, [vpdq_dir / "chair-orig-22-sd-bar.mp4"], hash_media=hash_file)
    out = tmp_path / "r.jsonl"
    inputs = [vpdq_dir / f"{n}.mp4" for n in ("chair-19-sd-bar", "chair-20-sd-bar", "doorknob-hd-no-bar", "pattern-hd-no-bar")]
    with JsonlSink(out) as sink:
        # confirm_frames=None: dense windows even where the first pass decides (tests/test_decode_once_confirm.py: the default confirms)
        run_scan(inputs, sink=sink, bank_path=bank, config=ScanConfig(sampling=Sampling(policy=Adaptive(confirm_frames=None)), runtime=Runtime(device="cpu")))
    records = {Path(r["path"]).stem: r for r in map(json.loads, out.read_text().splitlines())}
    for name in ("chair-19-sd-bar", "chair-20-sd-bar"):
        r = records[name]
        assert "Windows" in r["sampling"], r["sampling"]  # a second pass ran
        second = r["second_pass"]
        assert second["status"] == "ok" and "Windows" in second["sampling"]
        assert any(m["is_match"] for m in r["matches"])
        assert r["frames_sampled"] >= 15 and r["frames_decoded"] >= r["frames_sampled"]
        # Exact: these files match throughout, so the second pass's windows
        # cover the whole file and took every first-pass frame again: each counts once.
        assert r["frames_sampled"] == second["frames_sampled"], (r["frames_sampled"], second)
    for name in ("doorknob-hd-no-bar", "pattern-hd-no-bar"):
        r = records[name]
        assert "Windows" not in r["sampling"] and "second_pass" not in r and not any(m["is_match"] for m in r["matches"])
        # Keyframes only: a small fraction of the file was decoded.
        assert r["frames_decoded"] <= 0.1 * r["duration_seconds"] * r["media"]["fps"], r

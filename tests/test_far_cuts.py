"""A known clip spliced into a longer file far from its keyframes (AugLy's insert_in_background, a compilation whose
GOP is 10 s): an archive scan's AtCuts pass (vscan.decode.cuts) looks after up to ``Adaptive.at_cuts_far_frames`` cuts
further than ``cut_reach_seconds`` from their keyframe, where before it took none of them and the clip was never seen."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def _spliced(tmp_path):
    """(the known clip, a 15 s file of other textured pans with its 5 s from 4.2 s: keyframes at 0 and 10 s, none at
    the cuts, x264 as tests/test_cuts.py's clips, whose cuts the packet-size rule marks)."""
    from test_cuts import FPS, _scene

    from vscan.bench.encoding import _encode

    known = _scene(101, 5 * FPS)
    frames = _scene(100, round(4.2 * FPS)) + known
    frames += _scene(102, 15 * FPS - len(frames))
    (tmp_path / "src").mkdir()
    (tmp_path / "in").mkdir()
    src = _encode(tmp_path / "src" / "known.mp4", known, fps=FPS, codec="libx264", gop=None, crf=20, bitrate=None)
    spliced = _encode(tmp_path / "in" / "spliced.mp4", frames, fps=FPS, codec="libx264", gop=10 * FPS, crf=28, bitrate=None, mbtree=True)
    return src, spliced


def _scan(inbox, bank, out, far: int | None = None) -> dict:
    """The record of a scan of ``inbox`` with every confirmation decoded ahead (an archive scan's switch on), and
    ``at_cuts_far_frames`` as given (None: the default)."""
    from vscan import scan
    from vscan.config import Runtime, Sampling, ScanConfig
    from vscan.decode import Adaptive

    policy = Adaptive(confirm_ahead=True) if far is None else Adaptive(confirm_ahead=True, at_cuts_far_frames=far)
    # the pans' blocks look re-framed (straight edges that stay put): no region probe, whose 6 frames would land in the clip
    sampling = Sampling(policy=policy, region_probe=False)
    scan(inbox, bank=bank, out=out, config=ScanConfig(sampling=sampling, runtime=Runtime(device="cpu")))
    return next(json.loads(line) for line in out.read_text().splitlines() if line.startswith('{"schema_version"'))


def test_a_clip_spliced_far_from_a_keyframe_is_found_by_an_archive_scan(tmp_path):
    from vscan.decode.pyav_backend import PyAVDecoder

    src, spliced = _spliced(tmp_path)
    meta = PyAVDecoder().probe(spliced)
    assert tuple(meta.keyframe_indices)[:2] == (0, 250) and meta.keyframe_indices.cuts, meta.keyframe_indices
    fps = 25.0
    assert all(c / fps > 1.5 for c in meta.keyframe_indices.cuts if c < 250)  # each beyond cut_reach_seconds of frame 0
    bank = tmp_path / "reported.bank"
    run = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "build", str(bank), str(src), "--label", "reported", "--device", "cpu"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    before = _scan(tmp_path / "in", bank, tmp_path / "before.jsonl", far=0)
    assert not any(m["is_match"] for m in before["matches"]) and before["frames_sampled"] <= 3, before["sampling"]
    after = _scan(tmp_path / "in", bank, tmp_path / "after.jsonl")
    found = [m for m in after["matches"] if m["is_match"]]
    assert [m["bank_entry_id"] for m in found] == ["known"], (after["sampling"], after["matches"])
    assert "AtCuts" in after["sampling"] and 3.5 <= found[0]["query_span_seconds"][0] <= 5.0, (after["sampling"], found)

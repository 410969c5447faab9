"""Short evidence at default sampling (issue #27 item 2): a 2.5-5 s excerpt of a known clip inside a longer
file of other video. The first pass sees one of its frames (a keyframe inside it) as a weak hit; the second
pass must show the excerpt on enough frames for a short run (vscan.bank.short: 3 frames over 2.5 s), which
1 frame a second does not when the hit sits mid-excerpt (vscan.decode.adaptive: ``short_fps``). The bench's
``excerpt`` kind (vscan.bench.excerpts) draws such files with other lengths, places, sizes and encoders."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np


def _near(at_s: float, distance: int, frames: int = 1, is_match: bool = False):
    return SimpleNamespace(is_match=is_match, signal="pdq", query_span_seconds=(at_s, at_s), distance_min=distance,
                           num_query_hashes_matched=frames, query_pct=5.0, path=(), decided_by=None)  # fmt: skip


def _times(policy, duration_s: float, fps: float = 25.0) -> np.ndarray:
    pts = np.arange(int(duration_s * fps)) / fps
    return pts[policy.decide(pts, [0], duration_s).frame_indices]


def test_a_weak_close_hit_in_a_long_file_is_searched_densely_around_it():
    from vscan.decode import Adaptive

    # One first-pass frame at 15.0 s, 10 bits from a bank row, in a 30 s file: the excerpt around it (any
    # 2.7 s holding 15.0 s) shows at least 3 frames over 2.5 s of the second pass, wherever it starts.
    second = Adaptive().refine([_near(15.0, 10)], 30.0, sampled_seconds=[0.0, 10.0, 15.0, 20.0])
    times = _times(second, 30.0)
    for start in np.arange(12.3, 15.0, 0.1):
        inside = times[(times >= start) & (times < start + 2.7)]
        assert len(inside) >= 3 and inside[-1] - inside[0] + 1 / second.fps >= 2.5, (start, inside)
    assert times.min() >= 9.9 and times.max() <= 20.1  # within 5 s of the hit: 51 frames, not 5 fps over 16 s


def test_other_hits_keep_one_frame_a_second():
    from vscan.decode import Adaptive

    policy = Adaptive()
    # A far hit, a hit on 3+ frames, a short file (its own rule), a decided match: 1 fps windows as before.
    for matches, duration in (([_near(15.0, 26)], 30.0), ([_near(15.0, 10, frames=3)], 30.0), ([_near(4.0, 10)], 8.0),
                              ([_near(15.0, 10, is_match=True)], 30.0)):  # fmt: skip
        second = policy.refine(matches, duration)
        assert second.fps == 1.0, (matches, duration)
    assert Adaptive(short_fps=None).refine([_near(15.0, 10)], 30.0).fps == 1.0


def _excerpt_file(tmp_path):
    """A 2.7 s excerpt (of a 6 s clip, from 1.5 s) at 14.2 s of 27.7 s of other video, keyframes every 5 s and
    none at the cuts (x264, scenecut off): the first pass's keyframe at 15.0 s is the excerpt's only frame."""
    from vscan.bench import synth
    from vscan.bench.edits import _read_clip
    from vscan.bench.encoding import _encode
    from vscan.bench.reframe import _other

    src = synth.make_clip(tmp_path / "src" / "known.mp4", seed=61, seconds=6, size=(320, 180), scenes=2, crf=20)
    frames, pts, fps = _read_clip(src)
    keep = [f for f, t in zip(frames, pts) if 1.5 <= t < 4.2]
    other = _other(977, 320, 180, 26.0)
    before = [other(i / fps) for i in range(int(14.2 * fps))]
    after = [other(14.2 + i / fps) for i in range(int(11.0 * fps))]
    dst = tmp_path / "in" / "compilation.mp4"
    dst.parent.mkdir(parents=True)
    _encode(dst, before + keep + after, fps=fps, codec="libx264", gop=int(5 * fps), crf=23, bitrate=None)
    plain = tmp_path / "in" / "other.mp4"  # the same other video without the excerpt: no match
    _encode(plain, before + after, fps=fps, codec="libx264", gop=int(5 * fps), crf=23, bitrate=None)
    return src, dst, plain


def test_a_short_excerpt_inside_a_long_file_is_found_by_default_scan(tmp_path):
    """End to end (CLI bank build, default ``vscan scan``): the excerpt is decided by a short run."""
    from _cli_scan import scan_records

    src, copy, plain = _excerpt_file(tmp_path)
    bank = tmp_path / "reported.bank"
    run = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "build", str(bank), str(src), "--label", "reported",
                          "--device", "cpu"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = scan_records(copy.parent, bank, tmp_path / "r.jsonl")
    found = [m for m in records[copy.name]["matches"] if m["is_match"]]
    assert [m["bank_entry_id"] for m in found] == ["known"], records[copy.name]["matches"]
    assert found[0]["decided_by"] == "short-alignment" and 14.0 <= found[0]["query_span_seconds"][0] <= 15.0, found
    assert not any(m["is_match"] for m in records[plain.name]["matches"])

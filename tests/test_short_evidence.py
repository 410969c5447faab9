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
import pytest


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


def _excerpt_files(tmp_path):
    """A 2.7 s excerpt (of a 6 s clip, from 1.5 s) at 14.2 s of 27.7 s of other video, keyframes every 5 s and
    none at the cuts (x264, scenecut off): the first pass's keyframe at 15.0 s is the excerpt's only frame.
    Once at the clip's 16:9, once in a 4:3 compilation (the excerpt letterboxed, the other video not)."""
    from vscan.bench import synth
    from vscan.bench.edits import _read_clip
    from vscan.bench.encoding import _encode
    from vscan.bench.excerpts import _fitted
    from vscan.bench.reframe import _other

    src = synth.make_clip(tmp_path / "src" / "known.mp4", seed=61, seconds=6, size=(320, 180), scenes=2, crf=20)
    frames, pts, fps = _read_clip(src)
    keep = [f for f, t in zip(frames, pts) if 1.5 <= t < 4.2]
    inbox = tmp_path / "in"
    inbox.mkdir()
    made = {}
    for name, (w, h) in (("compilation", (320, 180)), ("compilation_4x3", (320, 240))):
        other = _other(977, w, h, 26.0)
        before = [other(i / fps) for i in range(int(14.2 * fps))]
        after = [other(14.2 + i / fps) for i in range(int(11.0 * fps))]
        made[name] = _encode(inbox / f"{name}.mp4", before + [_fitted(f, w, h) for f in keep] + after, fps=fps,
                             codec="libx264", gop=int(5 * fps), crf=23, bitrate=None)  # fmt: skip
        if name == "compilation":  # the same other video without the excerpt: no match
            made["plain"] = _encode(inbox / "other.mp4", before + after, fps=fps, codec="libx264", gop=int(5 * fps), crf=23, bitrate=None)
    return src, made


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """One bank (``vscan bank build``, the CLI) of the landscape and the portrait known clip and one default
    ``vscan scan`` of every compilation (``_excerpt_files``, ``_portrait_excerpt``): (records by file name, the
    landscape files by name, the portrait ones). One bank and one scan for both end-to-end tests (each was a
    bank and a CLI scan)."""
    from _cli_scan import scan_records

    d = tmp_path_factory.mktemp("short")
    src, made = _excerpt_files(d)
    portrait = _portrait_excerpt(d)
    bank = d / "reported.bank"
    run = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "build", str(bank), str(src), str(portrait["portrait"][0]), "--label",
                          "reported", "--device", "cpu"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return scan_records(d / "in", bank, d / "r.jsonl"), made, portrait


def test_a_weak_hit_in_a_file_of_six_seconds_or_less_is_searched_at_five_frames_a_second():
    from vscan.decode import Adaptive

    # A 4 s copy (the held-out doorknob's 4 s edits: fast footage, shapes or text over it) whose first pass came
    # 12 bits from a row: 1 fps showed 4 frames, two of them past the bar; the whole file is decided as one
    # (vscan.bank.short.is_short_file), so it is sampled at short_fps over its length.
    second = Adaptive().refine([_near(1.0, 12, frames=2)], 4.0, sampled_seconds=[0.0, 2.0])
    assert second.fps == 5.0 and len(_times(second, 4.0)) >= 18
    assert Adaptive(short_file_seconds=None).refine([_near(1.0, 12, frames=2)], 4.0).fps == 1.0
    for matches, duration in (([_near(1.0, 26)], 4.0), ([_near(1.0, 12)], 8.0), ([_near(1.0, 12, is_match=True)], 4.0)):
        second = Adaptive().refine(matches, duration)  # far, longer than 6 s, or already a match: as before
        assert second is None or second.fps == 1.0, (matches, duration)


def test_a_short_excerpt_inside_a_long_file_is_found_by_default_scan(scanned):
    """End to end (CLI bank build, default ``vscan scan``): each excerpt is decided by a short run, the
    letterboxed one on its frames' own bars (vscan.frames.borders.frame_bars); the other video alone is not."""
    records, made, _ = scanned
    for name in ("compilation", "compilation_4x3"):
        found = [m for m in records[made[name].name]["matches"] if m["is_match"]]
        assert [m["bank_entry_id"] for m in found] == ["known"], (name, records[made[name].name]["matches"])
        assert found[0]["decided_by"] == "short-alignment" and 14.0 <= found[0]["query_span_seconds"][0] <= 15.0, found
    assert not any(m["is_match"] for m in records[made["plain"].name]["matches"])


def test_bars_of_some_frames_alone_are_cut_from_those_frames():
    """A file without a border box whose frames 1 and 3 are letterboxed (a clip of another aspect cut in):
    those rows come without their bars, the others as they are; a dark band on one side is not cut."""
    from vscan.frames.borders import BorderTap, frame_bars
    from vscan.frames.resize import to_square

    rng = np.random.default_rng(5)
    frames = rng.integers(60, 200, (4, 96, 96, 3), dtype=np.uint8)  # square, as the scan decodes them
    frames[[1, 3], :12] = 3
    frames[[1, 3], -12:] = 5
    tap = BorderTap(lambda rgb: to_square(rgb, 96))
    tap.push(frames)
    payload = tap.add_to({"frames": frames})
    out = payload["unbordered_frames"]
    assert out.shape == frames.shape and list(payload["border_box"]) == [12, 12, 0, 0]
    assert np.array_equal(out[0], frames[0]) and np.array_equal(out[2], frames[2])
    assert np.array_equal(out[1], to_square(frames[1:2, 12:-12], 96)[0])
    one_sided = frames[0].copy()
    one_sided[:20] = 2  # a dark sky, no floor
    assert frame_bars(one_sided).is_empty and frame_bars(frames[0]).is_empty
    plain = BorderTap(lambda rgb: to_square(rgb, 96))
    plain.push(frames[[0, 2]])
    assert "unbordered_frames" not in plain.add_to({"frames": frames[[0, 2]]})  # no bars anywhere: nothing added


def _portrait_excerpt(tmp_path):
    """A 3.2 s excerpt of a portrait (9:16) clip, pillarboxed (bars of 34% a side), at 14.2 s of 28 s of other
    landscape video, keyframes every 5 s and none at the cuts: the first pass's keyframe at 15.0 s is the
    excerpt's only frame, and its bars are too wide for the frames' own bars (vscan.frames.borders.frame_bars);
    and the same other video with a portrait clip of unrelated content cut in."""
    from vscan.bench import synth
    from vscan.bench.edits import _read_clip
    from vscan.bench.encoding import _encode
    from vscan.bench.excerpts import _fitted
    from vscan.bench.reframe import _other

    made = {}
    for name, seed in (("portrait", 67), ("unknown", 71)):
        clip = synth.make_clip(tmp_path / "src" / f"{name}.mp4", seed=seed, seconds=6, size=(180, 320), scenes=2, crf=20)
        frames, pts, fps = _read_clip(clip)
        keep = [_fitted(f, 320, 180) for f, t in zip(frames, pts) if 1.5 <= t < 4.7]
        other = _other(983, 320, 180, 28.0)
        before = [other(i / fps) for i in range(int(14.2 * fps))]
        after = [other(17.4 + i / fps) for i in range(int(10.6 * fps))]
        made[name] = (clip, _encode(tmp_path / "in" / f"compilation_{name}.mp4", before + keep + after, fps=fps, codec="libx264",
                                    gop=int(5 * fps), crf=18, bitrate=None))  # fmt: skip
    return made


def test_a_portrait_excerpt_with_wide_bars_inside_a_long_file_is_found_by_default_scan(scanned):
    """End to end (default ``vscan scan``): the excerpt's frames sit far from every row as whole frames and
    their bars are too wide to be cut as borders; region search finds the box inside those frames' bars
    (vscan.frames.candidates.part_bars), gated on them, and its near-match takes the second pass to 5 frames a
    second around it, where a short run decides. The compilation with an unrelated portrait clip matches nothing."""
    records, _, made = scanned
    found = [m for m in records[made["portrait"][1].name]["matches"] if m["is_match"]]
    assert [m["bank_entry_id"] for m in found] == ["portrait"], records[made["portrait"][1].name]["matches"]
    assert "region" in found[0]["path"] and 13.5 <= found[0]["query_span_seconds"][0] <= 17.5, found
    assert not any(m["is_match"] for m in records[made["unknown"][1].name]["matches"])

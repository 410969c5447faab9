"""Adaptive sampling's region probe: a file whose first pass (its keyframes)
shows straight edges that stay put is decoded again with enough frames for
region search (vscan.runtime.region_probe, vscan.frames.straight_edges), so
re-framed copies are found under the CLI's defaults, without
``--first-pass-frames``; files without such edges keep their first pass."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from _cli_scan import scan_records
from vscan import Bank
from vscan.bench import synth
from vscan.bench.reframe import reframe_clip
from vscan.config import Models, Runtime, Sampling, ScanConfig
from vscan.decode import Adaptive, FixedRate, Windows
from vscan.frames.straight_edges import MIN_BLOCKS, looks_reframed, persistent_lines
from vscan.runtime.decode_task import decode_for_scan, merge_passes
from vscan.runtime.region_probe import ESCALATED_FRAMES, escalated_config

def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth random texture (no straight edges): upsampled noise."""
    small = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
    ys, xs = np.linspace(0, h // 8, h), np.linspace(0, w // 8, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    a, b = small[y0][:, x0], small[y0][:, x0 + 1]
    c, d = small[y0 + 1][:, x0], small[y0 + 1][:, x0 + 1]
    return ((a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy).astype(np.uint8)


def test_persistent_lines_see_an_inset_not_plain_pictures_or_flat_bars():
    rng = np.random.default_rng(3)
    plain = np.stack([_texture(rng, 256, 256) for _ in range(2)])  # two unrelated pictures
    inset = plain.copy()
    inset[:, 20:140, 120:240] = np.stack([_texture(rng, 120, 120) for _ in range(2)])  # a picture-in-picture at one place in both
    assert max(persistent_lines(plain)) < 3 and not looks_reframed(plain)
    horizontal, vertical = persistent_lines(inset)
    assert min(horizontal, vertical) >= MIN_BLOCKS and looks_reframed(inset)
    # An inset in one frame only (a moving picture's edge) is no persistent line.
    assert not looks_reframed(np.stack([inset[0], plain[1]]))
    # Flat bars (vscan.frames.borders finds them; their edges are not an inset's).
    bars = plain.copy()
    bars[:, :32], bars[:, -32:] = 0, 0
    assert looks_reframed(bars) and not looks_reframed(bars, np.array([32, 32, 0, 0]))


def test_escalation_only_for_a_short_adaptive_first_pass_that_looks_reframed():
    rng = np.random.default_rng(5)
    plain = np.stack([_texture(rng, 256, 256) for _ in range(2)])
    inset = plain.copy()
    inset[:, 120:248, 8:136] = np.stack([_texture(rng, 128, 128) for _ in range(2)])
    no_bars = lambda: None  # noqa: E731
    more = escalated_config(ScanConfig(), [inset], no_bars)
    assert more is not None and more.sampling.policy.min_frames == more.sampling.first_pass_frames == ESCALATED_FRAMES
    assert escalated_config(ScanConfig(), [plain], no_bars) is None
    assert escalated_config(ScanConfig(), [inset[:1], inset[1:]], no_bars) is not None  # batches of one file
    assert escalated_config(ScanConfig(), [np.concatenate([inset, inset])], no_bars) is None  # 4 frames: region search runs anyway
    assert escalated_config(ScanConfig(sampling=Sampling(region_probe=False)), [inset], no_bars) is None
    assert escalated_config(ScanConfig(sampling=Sampling(first_pass_frames=ESCALATED_FRAMES)), [inset], no_bars) is None
    assert escalated_config(ScanConfig(sampling=Sampling(policy=FixedRate(1.0))), [inset], no_bars) is None
    assert escalated_config(ScanConfig(models=Models(triage=True)), [inset], no_bars) is None  # triage gives >= 8 frames
    assert escalated_config(ScanConfig.from_dict({"matching": {"mode": "vpdq"}}), [inset], no_bars) is None


def _grid_tick_frames(pts: np.ndarray) -> set[int]:
    """The frames a full bank keeps its grid and pane windows for (vscan.hashing.media: the first frame of each
    1 / GRID_FPS s of the picture's time)."""
    from vscan.frames.windows import GRID_FPS

    buckets = np.floor(pts * GRID_FPS)
    return {0, *np.flatnonzero(np.diff(buckets) > 0) + 1}


@pytest.mark.parametrize("fps", [30.0, 25.0, 24.0, 30000 / 1001])
@pytest.mark.parametrize("seconds", [8.0, 6.9, 9.5, 3.0])
def test_the_escalated_spread_lands_on_the_frames_a_full_bank_keeps_grid_rows_for(fps, seconds):
    """The region probe's 6 frames meet a full bank's grid and pane windows (4 a second) on their ticks only where
    footage moves fast (tune split: a split screen's chair pane 8-30 bits on ticks, 30-100 between): spread evenly
    (8 s: 0.67, 2.0, 3.33 ... s) all but two fell between them; each now takes the frame the bank's clock took."""
    rng = np.random.default_rng(5)
    inset = np.stack([_texture(rng, 256, 256) for _ in range(2)])
    inset[:, 120:248, 8:136] = np.stack([_texture(rng, 128, 128) for _ in range(2)])
    more = escalated_config(ScanConfig(), [inset], lambda: None)
    pts = np.arange(int(seconds * fps)) / fps
    chosen = more.sampling.policy.decide(pts, [0], seconds).frame_indices
    assert len(chosen) == ESCALATED_FRAMES + 1  # the keyframe and the 6: none lost to the clock
    assert set(chosen.tolist()) <= _grid_tick_frames(pts), pts[chosen]
    # Each frame is at most a tick before where the even spread put it, never a frame after it: no further to decode.
    even = (np.arange(ESCALATED_FRAMES) + 0.5) * seconds / ESCALATED_FRAMES
    assert (pts[chosen[1:]] <= even + 1 / fps).all() and (even - pts[chosen[1:]]).max() <= 0.25 + 1.5 / fps


def test_a_spread_closer_than_the_clock_stays_where_it_falls():
    from vscan.decode.spread import on_clock

    assert on_clock(np.array([0.2, 0.3, 0.5]), 0.25, 1.0) is None  # 0.25 twice: frames would be lost
    assert on_clock(np.array([0.2, 0.6]), 0.25, 0.8) is None  # the first on the file's first frame (the keyframe)
    assert on_clock(np.array([0.67, 2.0, 3.33]), 0.25, 4.0).tolist() == [0.5, 2.0, 3.25]
    short = Adaptive(min_frames=6, spread_clock_seconds=0.25).decide(np.arange(30) / 30, [0], 1.0).frame_indices
    assert short.tolist() == Adaptive(min_frames=6).decide(np.arange(30) / 30, [0], 1.0).frame_indices.tolist()


def test_reframed_copy_is_found_through_its_region_under_default_sampling(tmp_path):
    src = synth.make_clip(tmp_path / "src" / "wide.mp4", seed=7, seconds=8, size=(640, 360), scenes=2, crf=20)
    inbox = tmp_path / "in"
    pip = reframe_clip(src, inbox / "copy_pip.mp4", "pip", seed=7)
    other = synth.make_clip(inbox / "unrelated.mp4", seed=91, seconds=8, size=(640, 360), scenes=2, crf=23)
    bank = tmp_path / "reported.bank"
    Bank.build(bank, [src], label="reported")
    records = scan_records(inbox, bank, tmp_path / "r.jsonl")
    assert set(records) == {pip.name, other.name}
    record = records[pip.name]
    (match,) = [m for m in record["matches"] if m["is_match"]]  # none without the probe: 2 keyframes, no region search
    assert match["bank_entry_id"] == "wide" and "region" in match["path"], match
    assert record["status"] == "ok" and "looks re-framed" in record["sampling"], record["sampling"]
    inset = match["region"]  # about half the size, in a corner
    assert 0.35 < inset["right"] - inset["left"] < 0.65 and 0.35 < inset["bottom"] - inset["top"] < 0.65
    plain = records[other.name]
    assert "looks re-framed" not in plain["sampling"] and plain["frames_sampled"] < 4, plain["sampling"]
    assert not any(m["is_match"] for m in plain["matches"])


# bench_robustness's re-framed copies (16:9 sources of 12 s, vscan.bench.reframe) whose inset the
# 8-frame escalated first pass placed wrongly before: a sub-box of the inset (seed 302), a box run to
# the frame's edges past an inset 5% from the corner (317), a split screen's seam too weak along the
# picture (305: both halves' scene cuts between the same two sampled frames).
_REFRAMED = (("pip", 302), ("pip", 317), ("splitscreen", 305))


@pytest.fixture(scope="module")
def reframed(tmp_path_factory) -> dict[tuple[str, int], Path]:
    work = tmp_path_factory.mktemp("reframed")
    out = {}
    for kind, seed in _REFRAMED:
        src = synth.make_clip(work / f"wide{seed}.mp4", seed=seed, seconds=12.0, size=(640, 360), scenes=2, crf=20)
        out[kind, seed] = reframe_clip(src, work / f"wide{seed}__{kind}.mp4", kind, seed=seed)
    return out


def _inset(kind: str, seed: int, side: int = 256) -> np.ndarray:
    """Where reframe_clip put the known picture (top, bottom, left, right) in side x side frames of a 640 x 360 copy."""
    draw = int(np.random.default_rng(seed).integers(4 if kind == "pip" else 2))
    if kind == "pip":  # half size, 5% in from a corner
        top, left = (18 if draw < 2 else 360 - 180 - 18), (32 if draw % 2 == 0 else 640 - 320 - 32)
        box = np.array([top, top + 180, left, left + 320])
    else:  # one half, letterboxed
        box = np.array([90, 270, 0, 320]) + (0 if draw == 0 else np.array([0, 0, 320, 320]))
    return box * side / np.array([360, 360, 640, 640])


@pytest.mark.parametrize("kind,seed", _REFRAMED)
def test_escalated_first_pass_places_the_inset(reframed, kind, seed):
    summary, payload = decode_for_scan(str(reframed[kind, seed]), ScanConfig(runtime=Runtime(device="cpu")))
    assert "looks re-framed" in summary["sampling"] and len(payload["frames"]) < 12
    assert "region_box" in payload, summary["sampling"]
    assert np.abs(payload["region_box"] - _inset(kind, seed)).max() <= 3, (payload["region_box"], _inset(kind, seed))


def test_merged_passes_keep_a_region_only_one_pass_found(reframed):
    # Adaptive: the first pass found the inset, a short second pass (2 frames) could not look for it:
    # the region is searched again on both passes' frames, not dropped.
    path = str(reframed["pip", 317])
    config = ScanConfig(runtime=Runtime(device="cpu"))
    _, first = decode_for_scan(path, config)
    _, second = decode_for_scan(path, replace(config, sampling=replace(config.sampling, policy=Windows(1.0, ((4.2, 5.5),)))))
    assert "region_box" in first and "region_frames" not in second and len(second["frames"]) == 2
    merged = merge_passes(first, second)
    assert len(merged["region_frames"]) == len(merged["frames"]) == len(first["frames"]) + 2
    assert np.abs(merged["region_box"] - _inset("pip", 317)).max() <= 3
    assert "region_frames" not in merge_passes(second, second)


def test_a_short_files_burst_counts_for_no_first_pass_frame():
    # A short file scanned against a --rows sparse bank (or a sparse hash list) also decodes every frame of 0.5-1 s in its
    # middle (Adaptive.burst_max_file_seconds). Its frames show one moment, so the probe counts the frames spread over
    # the file (vscan.decode.spread.spread_rows): here 3, not 18, and the file escalates; a keyframe in the burst counts.
    from vscan.decode.spread import spread_count, spread_rows

    rng = np.random.default_rng(5)
    plain = np.stack([_texture(rng, 256, 256) for _ in range(3)])
    inset = plain.copy()
    inset[:, 120:248, 8:136] = np.stack([_texture(rng, 128, 128) for _ in range(3)])
    frames = np.concatenate([inset[:2], np.repeat(inset[2:], 15, axis=0)])  # 0 and 1 s, then 15 burst frames around 2 s
    times = np.concatenate([[0.0, 1.0], 1.76 + np.arange(15) / 30])
    policy = Adaptive(burst_max_file_seconds=6.0)
    config = ScanConfig(sampling=Sampling(policy=policy))
    spread = spread_rows(policy, times, 4.0)
    assert spread.tolist() == [True, True] + [False] * 15 and spread_count(policy, times, 4.0) == 2
    keys = np.zeros(17, bool)
    keys[7] = True  # a keyframe at 1.99 s: a first pass's own frame, in the burst's window
    assert spread_count(policy, times, 4.0, keys) == 3
    no_bars = lambda: None  # noqa: E731
    assert escalated_config(config, [frames], no_bars) is None  # every frame counted: 17, "enough for region search"
    more = escalated_config(config, [frames], no_bars, spread)
    assert more is not None and more.sampling.policy.min_frames == ESCALATED_FRAMES
    assert spread_count(Adaptive(), times, 4.0) == 17  # no burst in the policy: every frame counts


def test_a_short_reframed_copy_with_a_burst_escalates_and_places_its_inset(reframed, tmp_path):
    # The first 5 s of a picture-in-picture copy (one keyframe), its first pass with the burst: frame 0 and the burst's frames
    # around 2.5 s. Counted as frames they blocked the escalation; the box is found on the frames spread over the file (the
    # burst's alone find none) and cut from every frame, the burst's too (they meet a sparse bank's ticks).
    from vscan.decode.spread import spread_rows
    from vscan.frames.regions import detect_region

    import subprocess

    short = tmp_path / "short_pip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(reframed["pip", 302]), "-t", "5", "-c", "copy", str(short)], check=True)
    config = ScanConfig(runtime=Runtime(device="cpu"))
    burst = replace(config, sampling=replace(config.sampling, policy=replace(config.sampling.policy, burst_max_file_seconds=6.0)))
    summary, payload = decode_for_scan(str(short), burst)
    assert "burst" in summary["sampling"] and "looks re-framed" in summary["sampling"], summary["sampling"]
    spread = spread_rows(burst.sampling.policy, payload["timestamps"], summary["duration_seconds"])
    # the probe's frames spread over the whole file: it decodes on from the burst (region_probe._decode_cost counts from where
    # the first pass stopped), where counting from the keyframe stopped it at 3/4 of the file (96 of 127 frames); its last
    # frame, 4.73 s evenly spread, moved back to the bank's clock's tick at 4.5 s (113)
    from vscan.decode import PyAVDecoder

    assert 6 <= spread.sum() < len(spread) and payload["frame_numbers"].max() >= 0.85 * PyAVDecoder().probe(short).num_frames
    box, inset = payload["region_box"], _inset("pip", 302)
    assert np.array_equal(box, detect_region(payload["frames"][spread]).as_array()), box
    # Top, bottom and right within 3 px. The left side: region search over 6-22 frames spread over this 5 s clip takes a
    # static edge inside the inset's picture (~40 px in; every third frame, 42, finds the inset's own): a box inside it.
    assert np.abs(box[[0, 1, 3]] - inset[[0, 1, 3]]).max() <= 3 and inset[2] - 3 <= box[2] < inset[3] - 64, (box, inset)
    assert len(payload["region_frames"]) == len(payload["frames"]) > 8  # every frame's region, the burst's included
    assert summary["frames_decoded"] <= 125  # never more than the file's frames

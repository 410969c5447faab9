"""Frame rows that cover time: ``vscan bank build --rows cover`` keeps a row where a frame drifts more
than ``frame_bits`` from the row before, and each row stands for the frames up to the next (its time
range), which the aligner matches (``vscan.bank.align.spread_ranges``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vscan.bank.align import align, spread_ranges
from vscan.bank.hashers import ROW_PLANS
from vscan.bank.one_pass import RowChoice, centred_rows
from vscan.bank.rows import centre_runs, row_end_seconds, run_starts
from vscan.hashing.vpdq import ExtraHashes, FrameHashes

VSCAN = [sys.executable, "-m", "vscan.cli"]


def test_a_row_stands_for_the_frames_up_to_the_next_row_of_its_entry():
    entry = np.array([0, 0, 0, 1, 1])
    times = np.array([0.0, 2.0, 5.0, 0.0, np.nan])
    ends = row_end_seconds(entry, times, np.array([9.0, 4.0]))
    assert ends[:3].tolist() == [2.0, 5.0, 9.0] and ends[3] == 0.0  # a next row without time: the row's own
    assert np.isnan(ends[4])


def test_a_ranged_row_votes_along_its_range_so_a_run_aligns():
    owner, points = spread_ranges(np.array([0.0, 10.0]), np.array([2.0, 10.04]))
    assert owner.tolist() == [0, 0, 0, 0, 1] and points.tolist() == [0.0, 0.5, 1.0, 1.5, 10.0]
    # A copy sampled once a second, every frame meeting one of three 4 s rows: aligned at rate 1 only with the ranges.
    tq = np.arange(0.0, 12.0)
    start = np.floor(tq / 4) * 4
    assert align(tq, start).num_frames < 12
    owner, tr = spread_ranges(start, start + 4)
    a = align(tq[owner], tr)
    assert a.num_frames == 12 and abs(a.rate - 1.0) < 0.02 and abs(a.offset_seconds) < 0.3


def test_every_frame_lies_within_centre_bits_of_the_row_standing_for_it():
    plan = ROW_PLANS["cover"]
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, 32, np.uint8)
    hashes = []
    for i in range(100):  # 10 s at 10 fps: a new shot every 2.5 s, a few bits of drift a frame
        if i % 25 == 0:
            base = rng.integers(0, 256, 32, np.uint8)
        bits = np.unpackbits(base)
        bits[rng.integers(0, 256, 4)] ^= 1
        base = np.packbits(bits)
        hashes.append(base)
    hashes = np.stack(hashes)
    numbers = np.arange(100) * 3  # frame numbers need not be positions
    frames = FrameHashes(numbers, np.arange(100) / 10, np.full(100, 90), hashes)
    choose = RowChoice(plan)
    choice = np.array([choose(h, i / 10) for i, h in enumerate(hashes)])
    assert choice[:, 0].all() and choice[:, 1].sum() == 5 and choice[:, 2].sum() == 10  # extra rows every 2 s, windows every 1 s
    preps = ("crop0.900",) * 5 + ("window:g40:30,30",) * 10
    at = np.concatenate([np.flatnonzero(choice[:, 1]), np.flatnonzero(choice[:, 2])])
    extra = ExtraHashes(numbers[at], preps, np.full(at.size, 80, np.int32), hashes[at])
    rows, filed, centres = centred_rows(frames, extra, plan.centre_bits)
    starts = np.searchsorted(numbers, rows.frame_numbers)
    assert {0, 25, 50, 75} <= set(starts.tolist()) and len(rows) < 0.5 * run_starts(hashes, plan.centre_bits).sum() + 4
    for i in range(100):  # the row standing for frame i: the last at or before it; its hash within centre_bits
        row = np.searchsorted(starts, i, side="right") - 1
        assert np.count_nonzero(np.unpackbits(rows.hashes[row]) != np.unpackbits(hashes[i])) <= plan.centre_bits
    assert set(filed.frame_numbers.tolist()) <= set(rows.frame_numbers.tolist())  # extra rows filed under a kept row
    assert len(set(zip(filed.frame_numbers.tolist(), filed.preps))) == len(filed.preps)  # each prep once a run


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A reported clip built with --rows cover, a trimmed copy and a frame grab of it, through the CLI."""
    from vscan.bench import synth
    from vscan.bench.edits import edit_clip
    from vscan.bench.reframe import reframe_clip

    root = tmp_path_factory.mktemp("cover")
    (root / "reported").mkdir()
    src = synth.make_clip(root / "reported" / "src.mp4", seed=41, seconds=12.0, fps=25.0, size=(320, 180), scenes=2)
    inbox = root / "inbox"
    edit_clip(src, inbox / "trimmed.mp4", "trim", start=3.0, end=10.0)
    reframe_clip(src, inbox / "grab.jpg", "framegrab_jpg", seed=3)
    bank = root / "r.bank"
    run = subprocess.run([*VSCAN, "bank", "build", str(bank), str(root / "reported"), "--rows", "cover", "--device", "cpu"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return root, bank, inbox


def test_a_cover_bank_holds_at_most_5_rows_a_video_second_and_says_so(built):
    root, bank, _ = built
    run = subprocess.run([*VSCAN, "bank", "info", str(bank)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    info = dict(line.strip().split(None, 1) for line in run.stdout.splitlines()[1:])
    assert 0 < float(info["rows_per_video_second"]) <= 5.0
    by_kind = {k: float(v) for k, v in (kv.split(": ") for kv in info["rows_per_video_second_by_kind"].split(", "))}
    assert by_kind["frame"] < 3.0 and {"frame", "crop", "grid"} <= set(by_kind)


def test_a_cover_bank_still_finds_a_trimmed_copy_and_a_frame_grab(built):
    root, bank, inbox = built
    out = root / "scan.jsonl"
    run = subprocess.run([*VSCAN, "scan", str(inbox), "--bank", str(bank), "--out", str(out), "--device", "cpu", "-q"],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines()) if "path" in r}
    for name in ("trimmed.mp4", "grab.jpg"):
        assert any(m["is_match"] and m["bank_entry_id"] == "src" for m in records[name]["matches"]), (name, records[name]["matches"][:2])
    trimmed = next(m for m in records["trimmed.mp4"]["matches"] if m["bank_entry_id"] == "src")
    assert abs(trimmed["alignment"]["offset_seconds"] - 3.0) < 0.75  # the trim's start, found through the rows' ranges


def test_sparse_rows_keep_cover_runs_on_slow_footage_and_a_scan_clock_on_fast_footage():
    """``--rows sparse``: a run shorter than a tick (real footage changes 24-52 bits a frame: runs of 1-2 frames)
    gives way to the frame a scan sampling twice a second takes at each tick, its own hash; longer runs stay."""
    from vscan.bank.rows import clock_runs

    rng = np.random.default_rng(11)
    slow = [rng.integers(0, 256, 32, np.uint8)]
    for _ in range(59):  # 2 s at 30 fps, 2 bits of drift a frame: one or two long runs
        bits = np.unpackbits(slow[-1])
        bits[rng.integers(0, 256, 2)] ^= 1
        slow.append(np.packbits(bits))
    fast = rng.integers(0, 256, (90, 32), np.uint8)  # 3 s of frames unrelated to each other
    hashes = np.concatenate([np.stack(slow), fast])
    times = np.arange(150) / 30.0
    starts, centres = centre_runs(hashes, 26)
    kept, own = clock_runs(times, starts, centres, 2.0)
    fast_rows = kept[kept >= 60]
    assert times[fast_rows].round(3).tolist() == [2.0, 2.5, 3.0, 3.5, 4.0, 4.5] and (own[kept >= 60] == fast_rows).all()
    assert kept[kept < 60].tolist() == starts[starts < 60].tolist() and 1 <= (kept < 60).sum() <= 2
    assert starts.size > 80  # cover alone: a row for every frame or two of the fast part


def test_a_sparse_bank_of_real_footage_holds_at_most_5_rows_a_video_second(tmp_path, vpdq_dir):
    """The real sample video whose frames differ most (doorknob, 4 s: a median 50 bits frame to frame) held
    29 rows a video-second in a cover bank."""
    bank = tmp_path / "r.bank"
    run = subprocess.run([*VSCAN, "bank", "build", str(bank), str(vpdq_dir / "doorknob-hd-no-bar.mp4"), "--rows", "sparse", "--device", "cpu"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    info = dict(line.strip().split(None, 1) for line in run.stdout.splitlines()[1:])
    assert info["row_plan"] == "sparse" and 0 < float(info["rows_per_video_second"]) <= 5.0

"""A sparse bank's extra rows on detailed frames (``RowPlan.extra_on_detail``, ``vscan.bank.rows.detail_ticks``): the
crops, borders and strip are hashed on a clock of one a second and kept on as many ticks as the plan's clock of one
every 2 s keeps, where the frame and a row pass the matcher's quality filter (a flat frame's rows are never met)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from vscan.bank.hashers import SPARSE_ROWS
from vscan.bank.one_pass import DETAIL_MIN_QUALITY, detail_extra
from vscan.bank.query import MatchSettings
from vscan.bank.rows import detail_ticks
from vscan.hashing.vpdq import ExtraHashes, FrameHashes

VSCAN = [sys.executable, "-m", "vscan.cli"]


def test_on_footage_detailed_throughout_the_picks_are_the_plans_clock_exactly():
    times = np.arange(12.0)  # a tick a second, the plan's clock one every 2 s
    assert np.flatnonzero(detail_ticks(times, np.ones(12, bool), 0.5)).tolist() == [0, 2, 4, 6, 8, 10]


def test_a_flat_stretchs_rows_go_to_the_detailed_ticks_farthest_from_the_kept_ones():
    times = np.arange(8.0)
    detailed = np.array([1, 1, 0, 0, 0, 1, 1, 1], bool)  # 2-4 s flat (a fade), 3 of the clock's 4 picks detailed
    keep = detail_ticks(times, detailed, 0.5)
    assert keep.sum() == 4 and not (keep & ~detailed).any()  # as many ticks as the clock keeps, none flat
    assert np.flatnonzero(keep).tolist() == [0, 1, 6, 7] or np.flatnonzero(keep).tolist() == [0, 1, 5, 6]
    assert np.flatnonzero(detail_ticks(times, np.zeros(8, bool), 0.5)).tolist() == []  # nothing a scan could meet


def test_detail_extra_keeps_every_row_of_a_kept_tick_and_none_of_the_others():
    frames = FrameHashes(np.arange(4, dtype=np.int64) * 30, np.arange(4.0), np.array([100, 70, 0, 10], np.int32), np.zeros((4, 32), np.uint8))
    preps = ("crop0.900", "crop0.800") * 4
    numbers = np.repeat(frames.frame_numbers, 2)
    qualities = np.array([100, 100, 66, 60, 0, 0, 9, 1], np.int32)
    kept = detail_extra(frames, ExtraHashes(numbers, preps, qualities, np.zeros((8, 32), np.uint8)), 0.5)
    assert kept.frame_numbers.tolist() == [0, 0, 30, 30] and kept.preps == ("crop0.900", "crop0.800") * 2  # the 4 s clip's 2 ticks' worth
    assert DETAIL_MIN_QUALITY == MatchSettings().min_quality  # the quality a scan keeps rows of


@pytest.fixture(scope="module")
def doorknob_sparse(tmp_path_factory, vpdq_dir):
    """A ``--rows sparse`` bank of the real ``doorknob`` video (4 s, fast; its frames after 2 s are flat: PDQ quality
    0-26) and a copy keeping the centre 90% of each side (held-out ``crop_10``)."""
    from vscan.bench.edits import edit_clip

    work = tmp_path_factory.mktemp("doorknob-sparse")
    src = vpdq_dir / "doorknob-hd-no-bar.mp4"
    copy = edit_clip(src, work / "inbox" / "cropped.mp4", "crop", fraction=0.1, seed=7)
    bank = work / "r.bank"
    run = subprocess.run([*VSCAN, "bank", "build", str(bank), str(src), "--rows", "sparse", "--device", "cpu"], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return bank, copy


def test_a_sparse_bank_of_footage_flat_after_2_s_keeps_its_crop_rows_on_the_detailed_seconds(doorknob_sparse):
    from vscan.bank.store import Bank

    bank, _ = doorknob_sparse
    with Bank(bank) as b:
        index = b.load_index()
        info = b.info()
    x = index.extra
    crops = np.array([p.startswith("crop") for p in x.preps])
    at = np.round(index.timestamps_seconds[np.asarray(x.frame_rows)[crops]], 2)
    assert sorted(set(at.tolist())) == [0.0, 1.0]  # the clock's 2.0 s frame is flat (quality 0): its crops moved to 1 s
    assert (x.qualities[crops] >= DETAIL_MIN_QUALITY).all()
    assert SPARSE_ROWS.extra_on_detail and info.rows_per_video_second <= 5.0


def test_a_1_fps_scan_finds_a_cropped_copy_of_fast_footage_on_the_detailed_seconds(doorknob_sparse, tmp_path):
    """The copy's 1 fps frames at 0 and 1 s are its only detailed ones; with the crop rows at 0 and 2 s only one met a
    row (query 25-50%)."""
    bank, copy = doorknob_sparse
    out = tmp_path / "scan.jsonl"
    run = subprocess.run([*VSCAN, "scan", str(copy), "--bank", str(bank), "--out", str(out), "--device", "cpu", "-q", "--fps", "1"],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    (record,) = [r for r in map(json.loads, out.read_text().splitlines()) if "path" in r]
    assert any(m["is_match"] and m["bank_entry_id"] == "doorknob-hd-no-bar" and "crop" in m["path"] for m in record["matches"]), record["matches"][:2]

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


def test_a_1_fps_scan_meets_the_crop_rows_on_both_detailed_seconds_of_a_cropped_copy_of_fast_footage(doorknob_sparse, tmp_path):
    """The copy's 1 fps frames at 0 and 1 s are its only detailed ones; with the crop rows at 0 and 2 s only one met a
    row (query 25-50%). Both now meet the crop rows, aligned at one rate and offset. Whether two frames of a 4 s copy
    then decide is the short-file rule's call, and sits on its edge: one encode of the copy matched (query 2 of 3
    considered frames), another (x264 without mbtree) did not (2 of 5), so that is not asserted here."""
    bank, copy = doorknob_sparse
    out = tmp_path / "scan.jsonl"
    run = subprocess.run([*VSCAN, "scan", str(copy), "--bank", str(bank), "--out", str(out), "--device", "cpu", "-q", "--fps", "1"],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    (record,) = [r for r in map(json.loads, out.read_text().splitlines()) if "path" in r]
    (found,) = [m for m in record["matches"] if m["bank_entry_id"] == "doorknob-hd-no-bar"]
    assert "crop" in found["path"] and found["alignment"]["frames"] >= 2, json.dumps(found)
    assert found["alignment"]["query_span_seconds"] == [0.0, 1.0] and abs(found["alignment"]["offset_seconds"]) < 0.1, json.dumps(found)


@pytest.fixture(scope="module")
def sparse_doorknob(doorknob_sparse, tmp_path_factory, vpdq_dir):
    """The same ``--rows sparse`` bank of the real ``doorknob`` clip (one CLI build for the module) and its held-out copy
    keeping 85% (a second look at a sparse entry's rows: ``vscan.bank.row_looks``)."""
    from vscan.bench.edits import edit_clip

    work = tmp_path_factory.mktemp("sparse-doorknob")
    copy = edit_clip(vpdq_dir / "doorknob-hd-no-bar.mp4", work / "inbox" / "cropped.mp4", "crop", fraction=0.15, seed=7)  # held-out crop_15
    return doorknob_sparse[0], copy


def _scan_cropped(bank, copy, out, *flags: str, look: bool = True) -> dict:
    """``vscan scan`` of the cropped copy against the bank: its record, after checking it was found through the scan's
    own crop (``look``: with a look at the entry's rows)."""
    import jsonschema

    from vscan.verdict.record import result_schema

    run = subprocess.run([*VSCAN, "scan", str(copy), "--bank", str(bank), "--out", str(out), "--device", "cpu", "-q", *flags],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    (record,) = [r for r in map(json.loads, out.read_text().splitlines()) if "path" in r]
    found = [m for m in record["matches"] if m["is_match"] and m["bank_entry_id"] == "doorknob-hd-no-bar"]
    assert found and any(p.startswith("centre-crop") for p in found[0]["path"]), record["matches"][:2]
    assert ("at a sparse entry's rows" in record["sampling"]) == look, record["sampling"]
    jsonschema.validate(record, result_schema())  # decided_by "crop-rows" (or "short-file", as x264's output varies) is in the schema
    return record


def test_a_centre_cropped_copy_at_1_fps_meets_a_sparse_entrys_crop_rows_on_its_exact_frames(sparse_doorknob, tmp_path):
    """The held-out copy of the real ``doorknob`` clip keeping 85% (between a sparse bank's 0.9 and 0.8 crops, 4 s of
    fast HD footage, flat after 2 s), at 1 fps. Its frame at 1.0 s is a B-frame. A pass skipping non-reference frames
    once took frame 31 (1.033 s) for it, over 31 bits from the 1 s crop row, so only the 0 s frame met a crop row and a
    look at the entry's rows had to find the 1.0 s frame (0fcd60e: no match; a region hit asked no look). Each wanted
    frame is now decoded itself (``vscan.decode.pyav_reuse.whole_frames``): both meet the crop rows through the scan's own
    crop, and the copy is found with no look."""
    record = _scan_cropped(*sparse_doorknob, tmp_path / "scan.jsonl", "--fps", "1", look=False)
    (found,) = [m for m in record["matches"] if m["is_match"] and m["bank_entry_id"] == "doorknob-hd-no-bar"]
    assert found["alignment"]["query_span_seconds"][:1] == [0.0] and found["alignment"]["query_span_seconds"][1] >= 1.0, json.dumps(found)


def test_a_first_pass_match_on_one_cropped_frame_looks_in_the_second_pass(sparse_doorknob, tmp_path):
    """The same copy scanned adaptively (the default): its first pass (0 and 1.83 s) matched through the scan's 97.5% crop
    on one frame, which decides nothing (``first_pass_decides``); the second pass's 1 fps windows undid it (query% 100
    -> 50) and the look that weak hit then named was taken by no pass. The one-frame match now names its look
    (``vscan.bank.robust.THIN_MATCH_FRAMES``) and the second pass takes it (``Adaptive.refine``). On 20adc6c: no match."""
    from vscan.api import scan
    from vscan.config import Runtime, ScanConfig

    bank, copy = sparse_doorknob
    out = tmp_path / "scan.jsonl"
    scan([copy], bank=bank, out=out, config=ScanConfig(runtime=Runtime(device="cpu")))  # in-process: the default sampling
    (record,) = [r for r in map(json.loads, out.read_text().splitlines()) if "path" in r]
    found = [m for m in record["matches"] if m["is_match"] and m["bank_entry_id"] == "doorknob-hd-no-bar"]
    assert found and any(p.startswith("centre-crop") for p in found[0]["path"]), record["matches"][:2]
    assert record["sampling"].startswith("Adaptive(") and "at a sparse entry's rows" in record["sampling"]

"""Leaner banks: frame rows at most so often, a plan's own crops and windows, and the scan's
centre crops bridging a sparse crop grid (``vscan.bank.query_side``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vscan.bank.compact_rows import derive_bank
from vscan.bank.hashers import FULL_ROWS, RowPlan
from vscan.bank.one_pass import RowChoice
from vscan.bank.rows import plan_keeps_prep
from vscan.bank.store import Bank
from vscan.bank.writer import BankWriter
from vscan.hashing.vpdq import ExtraHashes, FrameHashes


def test_frame_rows_are_kept_at_most_frame_per_second():
    rng = np.random.default_rng(3)
    plan = RowPlan("t", frame_bits=8, frame_per_second=1.0, extra_per_second=1e-6, grid_per_second=1e-6)
    choose = RowChoice(plan)
    # 3 s at 10 fps, every frame far from every other: without the cap each is a run of its own.
    kept = [choose(rng.integers(0, 256, 32, np.uint8), i / 10)[0] for i in range(30)]
    assert np.flatnonzero(kept).tolist() == [0, 10, 20]
    uncapped = RowChoice(replace(plan, frame_per_second=None))
    assert sum(uncapped(rng.integers(0, 256, 32, np.uint8), i / 10)[0] for i in range(30)) == 30


def test_a_plan_keeps_only_its_crops_and_windows(tmp_path):
    assert plan_keeps_prep("borders+crop0.900", (0.9, 0.8), ()) and not plan_keeps_prep("crop0.950", (0.9, 0.8), ())
    assert plan_keeps_prep("window:strip916", (), ("strip916",)) and not plan_keeps_prep("window:rot+4", (), ("strip916",))
    assert plan_keeps_prep("borders", (), ()) and plan_keeps_prep("window:g60:10,20", (), ())
    assert plan_keeps_prep("borders+window:g40:30,30", (), (), ("g40:30,30",)) and not plan_keeps_prep("window:g60:10,20", (), (), ("g40:30,30",))
    rng = np.random.default_rng(4)
    frames = FrameHashes(np.arange(4), np.arange(4) / 2.0, np.full(4, 90), rng.integers(0, 256, (4, 32), np.uint8))
    preps = ("borders", "crop0.950", "crop0.900", "crop0.800", "window:strip916", "window:rot+4")
    numbers = np.repeat(np.arange(4), len(preps))
    extra = ExtraHashes(numbers, preps * 4, np.full(numbers.size, 80, np.int32), rng.integers(0, 256, (numbers.size, 32), np.uint8))
    with BankWriter(tmp_path / "full.bank") as w:
        w.add_extra_hashes(w.add_frame_hashes("clip", "reported", ("clip.mp4", "media", None), "video", frames, 2.0), extra)
    derive_bank(tmp_path / "full.bank", tmp_path / "lean.bank", replace(FULL_ROWS, name="t", crops=(0.9, 0.8), windows=("strip916",)))
    with Bank(tmp_path / "lean.bank") as b:
        info = b.info()
    assert info.rows_by_kind == {"borders": 4, "crop": 8, "frame": 4, "strip916": 4}


@pytest.fixture(scope="module")
def cropped(tmp_path_factory):
    """A reported clip, a bank of it keeping only the 0.8 centre crop, and a copy keeping 85% of each side."""
    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import build_bank
    from vscan.bench import synth
    from vscan.bench.edits import edit_clip
    from vscan.decode import EveryFrame

    root = tmp_path_factory.mktemp("lean")
    src = synth.make_clip(root / "src.mp4", seed=31, seconds=4.0, fps=10.0, size=(320, 240), scenes=1)
    copy = root / "copy.mp4"
    edit_clip(src, copy, "crop", fraction=0.15)
    plan = RowPlan("t", extra_per_second=None, grid_per_second=1e-6, crops=(0.8,), windows=())
    build_bank(root / "r.bank", [src], label="reported", hash_media=media_hasher(EveryFrame(), "cpu", plan))
    return root / "r.bank", copy


def test_the_scans_centre_crops_find_a_copy_between_a_lean_banks_crops(cropped):
    from vscan.config import Runtime, Sampling, ScanConfig
    from vscan.decode import FixedRate
    from vscan.runtime.decode_task import decode_for_scan
    from vscan.runtime.file_match import file_inputs
    from vscan.runtime.model_actor import ModelWorker

    bank, copy = cropped
    config = ScanConfig(sampling=Sampling(policy=FixedRate(2.0)), runtime=Runtime(device="cpu"))
    worker = ModelWorker(config, str(bank))
    _, payload = decode_for_scan(str(copy), config)
    # As decoded, the copy (0.85 of each side) is too far from the bank's frames and its 0.8 crop ...
    hashed, _ = worker._hash_sets([payload])
    plain = worker.matcher.matcher.match(worker.matcher.file_query(file_inputs(payload, hashed[0]), None, None))
    assert not any(m.is_match for m in plain)
    # ... its own 0.95 centre crop (0.85 x 0.95 = 0.81 of the source) meets the 0.8 crop rows.
    result = worker.run([(0, None, None, 1)], payload)[0]
    found = [m for m in result.matches if m.is_match]
    assert found and found[0].bank_entry_id == "src" and any(p.startswith("centre-crop") for p in found[0].path)
    assert result.timings["match_centre_crops"] > 0


@pytest.fixture(scope="module")
def cropped_inside(tmp_path_factory):
    """A 4 s reported clip, a bank of it keeping only the 0.8 centre crop, and a 12 s copy: the clip 6 s into other
    footage, the whole cropped to 85% of each side (adaptive sampling's first pass: 3 frames, one inside the clip)."""
    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import build_bank
    from vscan.bench import synth
    from vscan.bench.edits import edit_clip
    from vscan.decode import EveryFrame

    root = tmp_path_factory.mktemp("lean-inside")
    src = synth.make_clip(root / "src.mp4", seed=31, seconds=4.0, fps=10.0, size=(320, 240), scenes=1)
    inside = edit_clip(src, root / "inside.mp4", "compile", other_seed=131, at=6.0, seconds=12.0)
    copy = edit_clip(inside, root / "copy.mp4", "crop", fraction=0.15)
    plan = RowPlan("t", extra_per_second=None, grid_per_second=1e-6, crops=(0.8,), windows=())
    build_bank(root / "r.bank", [src], label="reported", hash_media=media_hasher(EveryFrame(), "cpu", plan))
    return root / "r.bank", copy


def test_a_weak_centre_crop_hit_is_handed_on_to_the_second_pass_and_the_other_searches_still_run(cropped_inside, tmp_path):
    import json

    import vscan
    from vscan.config import Runtime, Sampling, ScanConfig
    from vscan.decode import Adaptive
    from vscan.runtime.decode_task import decode_for_scan
    from vscan.runtime.model_actor import ModelWorker

    bank, copy = cropped_inside
    config = ScanConfig(sampling=Sampling(policy=Adaptive()), runtime=Runtime(device="cpu"))
    _, payload = decode_for_scan(str(copy), config)
    first = ModelWorker(config, str(bank)).run([(0, None, None, 1)], payload)[0]
    # The first pass's one frame inside the clip meets the crop rows through its own centre crop: a weak hit, not a match ...
    (weak,) = [m for m in first.matches if m.bank_entry_id == "src"]
    assert not weak.is_match and any(p.startswith("centre-crop") for p in weak.path) and weak.num_query_hashes_matched == 1
    # ... handed on while the off-centre search still ran (it skips a query with a region version) ...
    assert first.timings["match_centre_crops"] > 0 and first.timings["match_offcentre"] > 0
    # ... so the second pass samples densely around it, and the scan decides there.
    assert Adaptive().refine(first.matches, 12.0) is not None
    vscan.scan([copy], bank=bank, out=tmp_path / "r.jsonl", config=config)
    (record,) = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    found = [m for m in record["matches"] if m["is_match"]]
    assert [m["bank_entry_id"] for m in found] == ["src"] and any(p.startswith("centre-crop") for p in found[0]["path"])
    assert record["frames_sampled"] > len(payload.timestamps)


def test_the_off_centre_search_looks_for_the_banks_own_grid_window_size():
    from types import SimpleNamespace

    from vscan.bank.query_side import grid_scale, needs_centre_crops

    assert grid_scale(SimpleNamespace(preps=["", "window:g60:00,10", "crop0.900"])) == 0.6
    assert grid_scale(SimpleNamespace(preps=["", "borders+window:g40:30,30"])) == 0.4
    assert not needs_centre_crops(SimpleNamespace(preps=[f"crop{c:.3f}" for c in (0.975, 0.95, 0.925, 0.9)]))
    assert needs_centre_crops(SimpleNamespace(preps=["crop0.900", "crop0.800"]))


def test_bank_build_rows_lean_keeps_three_crops_and_one_centre_window(tmp_path):
    import os
    import subprocess
    import sys

    from vscan.bench import synth

    clip = synth.make_clip(tmp_path / "clips" / "a.mp4", seed=4, seconds=4.0, size=(128, 72), scenes=2)
    run = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "build", str(tmp_path / "lean.bank"), str(clip), "--device", "cpu",
                          "--rows", "lean"], capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    with Bank(tmp_path / "lean.bank") as b:
        info = b.info()
        preps = {r[2] for r in b.rows("extra_hashes")}
    assert info.row_plan == "lean" and {p for p in preps if "crop" in p} == {"crop0.950", "crop0.900", "crop0.800"}
    assert {p for p in preps if "window:g" in p} == {"window:g40:30,30"} and not any("rot" in p for p in preps)
    assert info.rows_by_kind["grid"] == 4  # one window a second
    shown = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "info", str(tmp_path / "lean.bank")], capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert shown.returncode == 0 and "rows_per_video_second" in shown.stdout and "grid: 1.0" in shown.stdout


def test_a_turned_copy_turned_back_by_the_scan_meets_the_banks_centre_crop():
    import cv2

    from vscan.bank.query_side import turned_version
    from vscan.frames.window_hash import window_pdq
    from vscan.frames.windows import rotate_crop

    rng = np.random.default_rng(5)
    ref = cv2.GaussianBlur(rng.integers(0, 256, (360, 640, 3), np.uint8), (0, 0), 8)
    ch, cw = int(round(360 * 0.8)), int(round(640 * 0.8))
    bank_crop = window_pdq(ref, ch, cw, np.array([(360 - ch) // 2]), np.array([(640 - cw) // 2]))[0][0, 0, 0]
    # A re-post turned by 4 degrees and cropped to hide its corners, as the scan sees it: squeezed to a square.
    square = cv2.resize(rotate_crop(ref[None], 4.0)[0], (256, 256), interpolation=cv2.INTER_AREA)[None]

    def bits(a, b):
        return int(np.unpackbits(a ^ b).sum())

    variants, _, crop = turned_version(square, 640 / 360, 4.0, (0.95, 0.9, 0.8))
    wrong, _, _ = turned_version(square, 640 / 360, -4.0, (0.95, 0.9, 0.8))
    plain = window_pdq(square[0], 256, 256, np.array([0]), np.array([0]))[0][0, 0, 0]
    assert crop == 0.8 and bits(variants[0, 0], bank_crop) <= 16
    assert bits(wrong[0, 0], bank_crop) > 31 and bits(plain, bank_crop) > 31

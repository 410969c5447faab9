"""A ``--rows sparse`` bank's ticks (docs/banks.md): the first pass hashes the frames on the bank's clock that its decode
passes anyway (``Adaptive.ticks_passed_seconds``, ``vscan.decode.spread.ticks_passed``), and a turned-back or centre-cropped
copy matches a sparse entry on as many frames as the entry keeps crop rows (``vscan.bank.crop_rows.crop_rows_held``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from vscan.decode.adaptive import Adaptive
from vscan.decode.spread import TICKS_MAX_FRAMES, ticks_passed
from vscan.errors import ConfigError

VSCAN = [sys.executable, "-m", "vscan.cli"]
PTS = np.arange(0, 8, 1 / 30)  # an 8 s file at 30 fps


def _seconds(frames: np.ndarray) -> list[float]:
    return np.round(PTS[frames], 3).tolist()


def test_the_ticks_between_each_chosen_frame_and_its_keyframe_are_taken():
    chosen = np.array([0, 60, 180])  # 0, 2 and 6 s
    assert _seconds(ticks_passed(PTS, chosen, np.array([0]), 0.5)) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0]
    # a keyframe at 5 s: the decode of the 6 s frame starts there, and 2-5 s is never decoded
    assert _seconds(ticks_passed(PTS, chosen, np.array([0, 150]), 0.5)) == [0.0, 0.5, 1.0, 1.5, 2.0, 5.0, 5.5, 6.0]
    assert _seconds(ticks_passed(PTS, chosen, np.array([0, 150]), 1.0)) == [0.0, 1.0, 2.0, 5.0, 6.0]
    assert ticks_passed(PTS, np.zeros(0, np.int64), np.array([0]), 0.5).size == 0
    # keyframes the frames do not have (a damaged file's index) are left out, not an IndexError
    assert _seconds(ticks_passed(PTS, chosen, np.array([-3, 0, 150, 10_000]), 1.0)) == [0.0, 1.0, 2.0, 5.0, 6.0]
    assert _seconds(ticks_passed(PTS, chosen, np.array([10_000]), 1.0)) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    broken = PTS.copy()
    broken[[60, 75]] = np.nan  # times the index could not read
    got = broken[ticks_passed(broken, chosen, np.array([0, 75]), 1.0)]  # the 2 s tick: the frame on screen then (1.967 s)
    assert np.round(got, 3).tolist() == [0.0, 1.0, 1.967, 3.0, 4.0, 5.0, 6.0]


def test_a_long_file_of_one_keyframe_takes_at_most_the_cap_spread_over_its_ticks():
    pts = np.arange(0, 100, 1 / 30)
    got = pts[ticks_passed(pts, np.array([0, 2250]), np.array([0]), 0.5)]  # decoded to 75 s
    assert len(got) == TICKS_MAX_FRAMES and got[0] == 0.0 and got[-1] == pytest.approx(75.0)
    assert np.allclose(got * 2, np.round(got * 2))  # every one on a tick


def test_the_first_pass_takes_them_and_decodes_no_further():
    plain, ticked = Adaptive(), Adaptive(ticks_passed_seconds=0.5)
    before = plain.decide(PTS, [0], 8.0).frame_indices
    after = ticked.decide(PTS, [0], 8.0).frame_indices
    assert set(before) <= set(after) and after.max() == before.max()  # the decode from the keyframe reaches as far
    ticks = [t for t in _seconds(after) if t not in _seconds(before)]
    assert ticks and all(t * 2 == int(t * 2) for t in ticks)
    assert "frames passed on 0.5 s ticks" in ticked.describe() and "ticks" not in plain.describe()
    with pytest.raises(ConfigError, match="ticks_passed_seconds"):
        Adaptive(ticks_passed_seconds=0.0)


@pytest.fixture(scope="module")
def turned_copy(tmp_path_factory):
    """A ``--rows sparse`` bank of a synthetic 6 s clip (crop rows on 3 detailed ticks) and a copy of it turned by 7 degrees,
    its corners black, encoded as AugLy's ``rotate`` encodes (x264 ultrafast: one keyframe)."""
    from vscan.bench import synth

    work = tmp_path_factory.mktemp("sparse-turned")
    src = synth.make_clip(work / "reported" / "clip6100.mp4", seed=6100, seconds=6, size=(480, 270), scenes=2, crf=20)
    copy = work / "inbox" / "turned.mp4"
    copy.parent.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", "rotate=7*PI/180", "-c:v", "libx264", "-crf", "23", "-preset", "ultrafast",
                    str(copy)], check=True)  # fmt: skip
    bank = work / "r.bank"
    run = subprocess.run([*VSCAN, "bank", "build", str(bank), str(src), "--rows", "sparse", "--device", "cpu"], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return bank, copy


def test_a_turned_copy_matches_a_sparse_entry_on_the_crop_rows_it_keeps(turned_copy, tmp_path):
    """The entry keeps crop rows on 3 ticks; the copy's turned-back cuts meet them within a few bits, at one offset. Before,
    a turned cut needed 4 matched frames (``vscan.frames.regions.MIN_FRAMES``), more than the entry holds, and the first pass
    hashed 3 frames near the ticks' times; the scan found nothing."""
    from vscan.bank.store import Bank

    bank, copy = turned_copy
    with Bank(bank) as opened:
        index = opened.load_index()
    crops = {index.timestamps_seconds[f] for f, p in zip(index.extra.frame_rows, index.extra.preps) if p == "crop0.800"}
    assert len(crops) == 3  # what the match can show at most
    out = tmp_path / "scan.jsonl"
    run = subprocess.run([*VSCAN, "scan", str(copy), "--bank", str(bank), "--out", str(out), "--device", "cpu", "-q"], capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    (record,) = [r for r in map(json.loads, out.read_text().splitlines()) if "path" in r]
    assert "frames passed on 0.5 s ticks" in record["sampling"]
    found = [m for m in record["matches"] if m["is_match"] and m["bank_entry_id"] == "clip6100"]
    assert found and found[0]["path"][0].startswith("turned+") and "crop" in found[0]["path"], json.dumps(record["matches"])[:600]

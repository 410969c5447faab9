"""Issue #14's done-when: a long generated clip scanned every frame and at
1 fps covers the whole duration, or says it was truncated and what it covered.

The clip is ffmpeg's testsrc2 with a distinct synthetic clip as its last
10 seconds; the bank holds only that tail, so a match proves the scan reached
the end of the file (a prefix would miss it). Every frame exceeds the frame
budget: the record's ``truncated`` must say so, with the frames chosen (all
of ffprobe's frames), the frames kept and the seconds covered (the whole
file). 1 fps stays within it: one frame per second, no ``truncated``.
40 minutes at the default budget (4096) is slow (about a minute here); 2
minutes with a budget of 200 runs in CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import vscan
from vscan.bench import synth
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.verdict.record import result_schema

pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffmpeg and ffprobe")

FPS, TAIL_SECONDS = 5, 10.0
SIZES = [pytest.param(2, 200, id="2min-budget200"), pytest.param(40, 4096, id="40min-default", marks=pytest.mark.slow)]


def _ffprobe_frames(path: Path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                          "stream=nb_read_packets", "-of", "json", str(path)], check=True, capture_output=True, text=True).stdout  # fmt: skip
    return int(json.loads(out)["streams"][0]["nb_read_packets"])


def _long_clip(folder: Path, minutes: int) -> tuple[Path, Path]:
    """(the clip, a bank folder holding only its tail)."""
    (folder / "bank").mkdir(parents=True)
    tail = synth.make_clip(folder / "bank" / "tail.mp4", seed=90, seconds=TAIL_SECONDS, fps=FPS, size=(128, 96))
    clip = folder / "long.mp4"
    filler = f"testsrc2=size=128x96:rate={FPS}:duration={minutes * 60 - TAIL_SECONDS:g}"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", filler, "-i", str(tail),
                    "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264",
                    "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p", str(clip)], check=True)  # fmt: skip
    return clip, folder / "bank"


def _scan(clip: Path, bank: Path, out: Path, policy: str, budget: int) -> dict:
    config = ScanConfig(sampling=Sampling(policy=policy, max_frames_per_file=budget), runtime=Runtime(device="cpu"))
    vscan.scan([clip], bank=bank, out=out, config=config)
    (record,) = map(json.loads, out.read_text().splitlines())
    return record


@pytest.mark.parametrize(("minutes", "budget"), SIZES)
def test_long_clip_is_covered_or_says_truncated(minutes, budget, tmp_path, ray_local):
    import jsonschema

    clip, bank_folder = _long_clip(tmp_path, minutes)
    vscan.Bank.build(tmp_path / "tail.bank", [bank_folder], label="reported", device="cpu")
    duration, frames = minutes * 60.0, _ffprobe_frames(clip)
    assert frames == minutes * 60 * FPS and frames > budget  # every frame must exceed the budget

    dense = _scan(clip, tmp_path / "tail.bank", tmp_path / "dense.jsonl", "every-frame", budget)
    sparse = _scan(clip, tmp_path / "tail.bank", tmp_path / "sparse.jsonl", "fps", budget)
    for record in (dense, sparse):
        jsonschema.validate(record, result_schema())
        assert record["status"] == "ok" and record["duration_seconds"] == pytest.approx(duration, abs=0.5)
        (tail,) = [m for m in record["matches"] if m["is_match"]]  # the last 10 s were reached
        assert tail["bank_entry_id"] == "tail"
        assert tail["query_span_seconds"][0] >= duration - TAIL_SECONDS - 0.5
        assert tail["query_span_seconds"][1] >= duration - 1.5

    truncated = dense["truncated"]
    assert truncated is not None, "every frame of a file over the budget must say it was truncated"
    assert (truncated["frames_chosen"], truncated["frames_kept"]) == (frames, budget) == (frames, dense["frames_sampled"])
    assert truncated["seconds_covered"] == pytest.approx(duration, abs=1.0)
    assert truncated["max_gap_seconds"] <= 2.0 * frames / budget / FPS  # spread evenly, no hole

    assert sparse["truncated"] is None
    assert abs(sparse["frames_sampled"] - duration) <= 1  # one frame per second of the whole file

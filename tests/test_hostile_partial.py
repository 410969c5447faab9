"""A video cut off (issue 23): its record says it is partial, with the
duration the file declares and the duration read. The old code recorded
the frames it could read as the whole file, status ok, nothing more."""

from __future__ import annotations

import json
import subprocess
import sys

from vscan.bench import synth
from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.decode import EveryFrame


def test_a_cut_off_video_is_marked_partial_with_its_declared_duration(tmp_path, ray_address):
    whole = synth.make_clip(tmp_path / "src.mp4", seed=3, seconds=6.0, size=(96, 64), faststart=True)  # index first
    data = whole.read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])  # the index declares 6 s
    (tmp_path / "in" / "whole.mp4").write_bytes(data)
    bank = tmp_path / "b.bank"
    build_bank(bank, [synth.make_clip(tmp_path / "o.mp4", seed=9, seconds=1.0, size=(96, 64))],
               hash_media=media_hasher(EveryFrame(), "cpu"))  # fmt: skip
    out = tmp_path / "r.jsonl"
    run = subprocess.run([sys.executable, "-m", "vscan.cli", "scan", str(tmp_path / "in"), "--bank", str(bank), "--out", str(out),
                          "--device", "cpu", "-q", "--fps", "1", "--decoder", "pyav", "--ray-address", ray_address],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = {json.loads(line)["path"].rsplit("/", 1)[1]: json.loads(line) for line in out.read_text().splitlines()}
    cut, intact = records["cut.mp4"], records["whole.mp4"]
    assert "partial" not in intact and intact["duration_seconds"] == 6.0
    assert cut["status"] == "ok" and cut["partial"]["declared_duration_seconds"] == 6.0
    assert cut["partial"]["demuxed_duration_seconds"] == cut["duration_seconds"] < 4.0
    assert "cut off" in cut["partial"]["reason"]

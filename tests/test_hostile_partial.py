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


def test_a_file_cut_inside_its_last_packet_keeps_the_frames_before_it(tmp_path):
    """A cut lands inside a packet more often than not: the demuxer hands that packet over short and flagged
    corrupt, and H.264's decoder refuses it (InvalidDataError). The frames before it are the file's: each cut
    is partial, never a decode error (before, about half these cuts failed the file)."""
    from vscan.decode import FixedRate, PyAVDecoder

    data = synth.make_clip(tmp_path / "src.mp4", seed=4, seconds=6.0, size=(320, 240), faststart=True).read_bytes()
    short = []
    for percent in range(45, 95, 5):
        cut = tmp_path / f"cut{percent}.mp4"
        cut.write_bytes(data[: len(data) * percent // 100])
        decoder = PyAVDecoder()
        meta = decoder.probe(cut)
        times = [float(t) for b in decoder.iter_frames(cut, FixedRate(1.0), batch_size=8) for t in b.pts_seconds]
        # every whole second up to the cut's last frame, the one just before the cut included
        last = meta.duration_seconds - 1.0 / meta.fps
        assert times == [float(s) for s in range(int(last + 1e-6) + 1)], (percent, times, last)
        if meta.duration_seconds < 6.0 - 1.05:  # over a second short of what the index declares: said so
            assert meta.demux_partial and "cut off" in meta.demux_partial, (percent, meta)
        short.append(meta.duration_seconds)
    assert short == sorted(short) and short[-1] < 6.0, short  # each cut reads as far as its bytes go

"""A video a few pixels tall and thousands wide (hostile, or a broken encoder's): the turn search's canvases grow
with the file's aspect (``vscan.frames.framed_turn``: a square of 64 x aspect px per angle tried), so a 4096x8 H.264
file that matched nothing held a scan for over 10 minutes at 6.5 GB and never got its record. Files narrower than
``MAX_TURN_ASPECT`` are not searched for a turn; the rest of the scan is as usual. Real clips, the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

from pathlib import Path

import numpy as np

from vscan.bench import synth
from vscan.bench.encoding import _encode


def _sliver(path: Path, seed: int) -> Path:
    """A 4096x8 H.264 clip whose picture has dark ends (bars): its corners are dark, as a turned copy's are."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(10):
        frame = np.zeros((8, 4096, 3), np.uint8)
        frame[:, 512:3584] = np.repeat(rng.integers(40, 255, (8, 96, 3), dtype=np.uint8), 32, axis=1)
        frames.append(frame)
    return _encode(path, iter(frames), fps=5.0, codec="libx264", gop=None, crf=None, bitrate=None)


def test_a_sliver_of_a_picture_is_not_searched_for_a_turn():
    from vscan.runtime.rotation_search import MAX_TURN_ASPECT, find_rotation

    frames = np.zeros((4, 64, 64, 3), np.uint8)
    frames[:, 8:56, 8:56] = 200  # dark corners: the shape a turned copy has
    for size in ((4096, 8), (8, 4096), (int(64 * MAX_TURN_ASPECT) + 8, 64)):
        # the matcher is never reached (None would raise): nothing is fitted, nothing allocated by the aspect
        assert find_rotation(None, None, frames, size) is None


def test_a_4096_by_8_video_is_scanned_in_seconds(tmp_path):
    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import build_bank
    from vscan.decode import EveryFrame

    src = synth.make_clip(tmp_path / "src.mp4", seed=5, seconds=2.0, fps=5.0, size=(160, 96))
    bank = tmp_path / "b.bank"
    build_bank(bank, [src], hash_media=media_hasher(EveryFrame(), "cpu"))  # crop rows: the turn search is on
    (tmp_path / "in").mkdir()
    _sliver(tmp_path / "in" / "sliver.mp4", seed=77)  # before: > 10 minutes at 6.5 GB, in fit_framed's canvases
    synth.make_clip(tmp_path / "in" / "plain.mp4", seed=78, seconds=2.0, fps=5.0, size=(160, 96))
    out = tmp_path / "r.jsonl"
    run = subprocess.run([sys.executable, "-m", "vscan.cli", "scan", str(tmp_path / "in"), "--out", str(out), "--device", "cpu",
                          "--bank", str(bank), "-q"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = {r["path"].rsplit("/", 1)[-1]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["sliver.mp4"]["status"] == "ok" and records["sliver.mp4"]["error"] is None, records["sliver.mp4"]
    assert records["plain.mp4"]["status"] == "ok"

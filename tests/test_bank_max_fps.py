"""A bank build keeps every frame at most ``BANK_MAX_FPS`` (60) a second by default: a 240 fps slow-motion report
kept 4x the rows of the same clip at 60 fps (its neighbouring frames a few bits apart), and a 2-minute 1000 fps file
of 1.5 MB built 1.6M rows in 257 s. ``--every-frame`` still keeps every frame. Real clips, the real build."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.bench import synth
from vscan.decode import EveryFrame
from vscan.errors import ConfigError


@pytest.mark.parametrize("fps", [23.976, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0])
def test_every_frame_of_an_ordinary_rate_is_kept(fps):
    pts = (np.arange(int(fps * 20)) / fps).astype(np.float32).astype(np.float64)  # decord's float32 timestamps
    decision = EveryFrame(max_fps=60).decide(pts, None, 20.0)
    assert np.array_equal(decision.frame_indices, np.arange(len(pts))), decision.reason


def test_a_fast_stream_keeps_at_most_max_fps_frames_a_second():
    pts = np.arange(2400) / 240.0
    chosen = EveryFrame(max_fps=60).decide(pts, None, 10.0).frame_indices
    assert np.array_equal(chosen, np.arange(0, 2400, 4))
    burst = np.sort(np.concatenate([np.arange(0, 5, 1 / 30), 5 + np.arange(1000) / 1000.0]))  # 30 fps, then a 1000 fps second
    kept = burst[EveryFrame(max_fps=60).decide(burst, None, 6.0).frame_indices]
    assert np.diff(kept).min() >= 1 / 60 - 1e-4 and 150 + 55 <= len(kept) <= 150 + 61
    assert len(EveryFrame().decide(burst, None, 6.0).frame_indices) == len(burst)  # no cap: all
    with pytest.raises(ConfigError, match="max_fps"):
        EveryFrame(max_fps=0)


def test_a_bank_build_of_a_240_fps_clip_keeps_60_frame_rows_a_second(tmp_path):
    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import Bank, build_bank
    from vscan.cli.bank_cmd import _dense_policy

    clip = synth.make_clip(tmp_path / "slowmo.mp4", seed=8, seconds=1.0, fps=240.0, size=(64, 48))
    assert _dense_policy(False, None, False) == EveryFrame(max_fps=60) and _dense_policy(True, None, False) == EveryFrame()
    Bank.build(tmp_path / "capped.bank", [clip], device="cpu").close()
    build_bank(tmp_path / "every.bank", [clip], hash_media=media_hasher(EveryFrame(), "cpu"))
    n_capped, n_every = (Bank(tmp_path / f"{name}.bank").info().num_frame_hashes for name in ("capped", "every"))
    assert n_every >= 225 and 56 <= n_capped <= 64, (n_capped, n_every)

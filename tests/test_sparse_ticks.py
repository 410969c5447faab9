"""A ``--rows sparse`` bank's ticks (docs/banks.md): the first pass hashes the frames on the bank's clock that its decode
passes anyway (``Adaptive.ticks_passed_seconds``, ``vscan.decode.spread.ticks_passed``)."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.decode.adaptive import Adaptive
from vscan.decode.spread import TICKS_MAX_FRAMES, ticks_passed
from vscan.errors import ConfigError

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

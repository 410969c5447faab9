"""Region search hands its luma to the candidate cues (issue #30: a sweep file's frames were taken to luma twice,
once by find_regions and once by candidate_boxes): the same boxes, from one luma."""

from __future__ import annotations

import numpy as np

from vscan.frames.candidates import candidate_boxes
from vscan.frames.luma import luma


def _inset(seed: int, n: int) -> np.ndarray:
    """n frames: a moving noise picture inset over a still grey canvas."""
    rng = np.random.default_rng(seed)
    frames = np.full((n, 128, 128, 3), 90, np.uint8)
    frames[:, 30:100, 20:110] = rng.integers(0, 256, (n, 70, 90, 3), dtype=np.uint8)
    return frames


def test_the_callers_luma_gives_the_same_boxes_and_is_read():
    frames = _inset(1, 6)
    alone = candidate_boxes(frames)
    shared = candidate_boxes(frames, lumas=luma(frames))
    assert alone and [b.tolist() for b in alone] == [b.tolist() for b in shared]
    # the luma handed in is what the cues read: another picture's luma gives that picture's boxes
    other = _inset(2, 6)
    other[:, 30:100, 20:110] = 90
    other[:, 10:60, 40:120] = np.random.default_rng(3).integers(0, 256, (6, 50, 80, 3), dtype=np.uint8)
    read = candidate_boxes(frames, lumas=luma(other))
    assert [b.tolist() for b in read] == [b.tolist() for b in candidate_boxes(other)]
    assert [b.tolist() for b in read] != [b.tolist() for b in alone]


def test_more_frames_than_the_cues_take_keep_their_own_spread():
    frames = _inset(4, 20)  # 16 of them picked: a luma of all 20 is not the cues' and is not read
    wrong = luma(frames)[::-1].copy()
    assert [b.tolist() for b in candidate_boxes(frames, lumas=wrong)] == [b.tolist() for b in candidate_boxes(frames)]

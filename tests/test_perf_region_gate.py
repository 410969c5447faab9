"""Region search's gate (issue #30: per-file model-side cost where nothing is found): the frames spread over the
file are copied once for every candidate box, not once a box, and each box still sees the same pixels."""

from __future__ import annotations

import numpy as np

from vscan.frames.luma import evenly_spaced, luma
from vscan.runtime.region_search import LOCATE_FRAMES, _gate_frames


def test_every_spread_box_reads_one_copy_of_the_same_frames():
    rng = np.random.default_rng(30)
    frames = rng.integers(0, 256, (7, 64, 64, 3), dtype=np.uint8)
    lumas = luma(frames)
    picks = evenly_spaced(len(frames), LOCATE_FRAMES)
    boxes = [np.array([0, 32, 0, 64], np.int32), np.array([32, 64, 0, 64], np.int32), np.array([0, 64, 0, 32], np.int32)]
    tried = [t for t in _gate_frames(boxes, lumas, picks) if not t[2]]
    assert len(tried) == len(boxes)
    for (box, near, bars), want in zip(tried, boxes):
        assert box is want and not bars
        np.testing.assert_array_equal(near, lumas[picks])  # the same pixels as before
    assert all(near is tried[0][1] for _, near, _ in tried)  # one copy for every box
    assert not tried[0][1].flags.writeable  # shared: no box may write into another's frames
    assert not np.shares_memory(tried[0][1], lumas)  # a copy: the file's lumas are left as they are

"""A still's windows (``vscan.frames.regions.still_windows``) stand close enough together that one of them lines up
with a bank centre crop: 7 places a side (98 windows; was 5, 50). With the exact mirrors of a9fe847 a mirrored 90%
screenshot whose crop fell between two of 5 places met no row of its source within ``window_max_distance`` (16 bits:
bench_robustness's wide3308 and wide6306); on bench_quality_stills' 80 screenshots of seeds 3000 and 6000 the nearest
source row lay within 16 bits for 66 with 5 places and 79 with 7 (the nearest row of the source to any window's exact mirror)."""

from __future__ import annotations

import numpy as np

from vscan.frames.regions import still_window_hashes, still_windows


def _picture(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, (1, h, w, 3), np.uint8)


def test_each_scale_s_windows_stand_at_most_a_sixth_of_the_slack_apart():
    for h, w in ((256, 256), (324, 576), (576, 324)):
        _, boxes = still_windows(_picture(h, w))
        assert len(boxes) == 98
        for scale, rows in ((0.9, boxes[:49]), (0.8, boxes[49:])):
            sides = {(int(b - t), int(r - left)) for t, b, left, r in rows}
            assert sides == {(int(round(h * scale)), int(round(w * scale)))}, scale  # one size a scale
            for axis, size in ((0, h), (2, w)):
                places = np.unique(rows[:, axis])
                assert len(places) == 7 and places[0] == 0 and places[-1] == size - int(round(size * scale)), (scale, axis)
                # the slack (10% or 20% of the side) in 6 steps of whole pixels of the 142 or 160 px still the windows are
                # cut from (3 of 14 px, 6 of 32): the 90% windows at most 2.15% of the side apart (5 places: 4 of 14 px, 2.9%),
                # the 80% ones 3.75% (5%), and a pixel for the boxes' rounding
                most = {0.9: 0.0215, 0.8: 0.0375}[scale]
                assert np.diff(places).max() <= most * size + 1, (scale, axis, places.tolist())


def test_the_windows_hashes_follow_the_denser_grid():
    hashes, quality, boxes = still_window_hashes(_picture(324, 576))
    assert hashes.shape == (98, 8, 32) and quality.shape == (98,) and np.array_equal(boxes, still_windows(_picture(324, 576))[1])
    assert len({bytes(h) for h in hashes[:, 0]}) == 98  # no place repeated

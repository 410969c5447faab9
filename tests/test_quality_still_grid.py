"""A still's windows (``vscan.frames.regions.still_windows``) stand close enough together that one of them lines up
with a bank centre crop: the 90% windows on 7 places a side, the 80% ones on 5 (74 windows; was 5 and 5, 50). With
the exact mirrors of a9fe847 a mirrored 90% screenshot whose crop fell between two of 5 places met no row of its
source within ``window_max_distance`` (16 bits: bench_robustness's wide3308 and wide6306); on bench_quality_stills'
80 screenshots of seeds 3000 and 6000 the nearest row of the source to any window's exact mirror lay within 16 bits
for 66 with 5 places and 79 with 7, and every screenshot found again was found through a 90% window."""

from __future__ import annotations

import numpy as np

from vscan.frames.regions import still_window_hashes, still_windows


def _picture(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, (1, h, w, 3), np.uint8)


def test_the_90_percent_windows_stand_at_most_a_sixth_of_their_slack_apart():
    for h, w in ((256, 256), (324, 576), (576, 324)):
        _, boxes = still_windows(_picture(h, w))
        assert len(boxes) == 49 + 25
        for scale, rows, count in ((0.9, boxes[:49], 7), (0.8, boxes[49:], 5)):
            sides = {(int(b - t), int(r - left)) for t, b, left, r in rows}
            assert sides == {(int(round(h * scale)), int(round(w * scale)))}, scale  # one size a scale
            for axis, size in ((0, h), (2, w)):
                places = np.unique(rows[:, axis])
                assert len(places) == count and places[0] == 0 and places[-1] == size - int(round(size * scale)), (scale, axis)
                if scale == 0.9:
                    # the slack (10% of the side) in 6 steps of whole pixels of the 142 px still the windows are cut from
                    # (3 of 14 px): at most 2.15% of the side apart (5 places: 4 of 14 px, 2.9%), and a pixel for the boxes' rounding
                    assert np.diff(places).max() <= 0.0215 * size + 1, (axis, places.tolist())


def test_the_windows_hashes_follow_the_denser_grid():
    hashes, quality, boxes = still_window_hashes(_picture(324, 576))
    assert hashes.shape == (74, 8, 32) and quality.shape == (74,) and np.array_equal(boxes, still_windows(_picture(324, 576))[1])
    assert len({bytes(h) for h in hashes[:, 0]}) == 74  # no place repeated

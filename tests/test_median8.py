"""Region candidates' line ratios take the median of each line's 8 neighbours through a sorting network
(``vscan.frames.candidates._median8``), not numpy's median along a stacked axis (1.5-2.2 ms for 16 frames, issue #30):
the same values, ties, dtypes and NaNs included, and the same boxes."""

from __future__ import annotations

import itertools

import numpy as np

from vscan.frames import candidates


def test_the_network_sorts_every_input():
    for bits in itertools.product([0, 1], repeat=8):  # the 0-1 principle: sorts these, sorts all
        v = list(bits)
        for i, j in candidates._NET8:
            v[i], v[j] = min(v[i], v[j]), max(v[i], v[j])
        assert v == sorted(bits)


def test_median8_is_numpys_median():
    rng = np.random.default_rng(12)
    for shape in [(16, 255), (5, 300), (2, 255), (1, 8)]:
        for dtype in (np.float32, np.float64):
            planes = [(rng.random(shape) * 10).astype(dtype) for _ in range(8)]
            for p in planes[::2]:
                p[:, ::3] = np.round(p[:, ::3])  # ties
            want = np.median(np.stack(planes), axis=0)
            got = candidates._median8(planes)
            assert got.dtype == want.dtype and np.array_equal(got, want)
    planes = [rng.random((16, 255)).astype(np.float32) for _ in range(8)]
    planes[5][3, 7] = np.nan
    np.testing.assert_array_equal(candidates._median8(planes), np.median(np.stack(planes), axis=0))


def test_line_ratios_as_before():
    rng = np.random.default_rng(4)
    y = rng.random((16, 72, 96)).astype(np.float32) * 255  # 16 x 71 and 16 x 95 lines: the network (1,024 or more)
    y[:, :, 48:] += 60  # a seam
    for axis in (1, 2):
        along = 2 if axis == 1 else 1
        means = np.abs(np.diff(y, axis=axis)).mean(axis=along)
        size = means.shape[1]
        idx = np.arange(size)
        beside = np.stack([means[:, np.clip(idx + d, 0, size - 1)] for d in (-8, -6, -4, -3, 3, 4, 6, 8)], axis=0)
        ratio = means / (np.median(beside, axis=0) + 0.5)  # as it was
        got = candidates._line_ratios(y, axis)
        np.testing.assert_array_equal(got[0], np.median(ratio, axis=0))
        np.testing.assert_array_equal(got[1], np.median(means, axis=0) >= candidates._LINE_STEP)

"""The candidate cues take each frame's luma steps once (issue #30): the sharp box and the line ratios read the same
steps, and ``_trim`` takes each line's mean once for its spread and its drift. Same boxes, same bits."""

from __future__ import annotations

import numpy as np

from vscan.frames import candidates as C


def _trim_reference(y, box, flat_std=3.0):
    """``_trim`` as it stood (b0c82dd): np.std and np.mean each over the box."""
    t, b, left, r = box
    sub = y[:, t:b, left:r]
    flat_rows = (sub.std(axis=2).max(axis=0) < flat_std) & (sub.mean(axis=2).std(axis=0) < flat_std)
    flat_cols = (sub.std(axis=1).max(axis=0) < flat_std) & (sub.mean(axis=1).std(axis=0) < flat_std)

    def inner(flat):
        keep = np.flatnonzero(~flat)
        return (int(keep[0]), int(keep[-1]) + 1) if keep.size else (0, flat.size)

    (rt, rb), (cl, cr) = inner(flat_rows), inner(flat_cols)
    return [t + rt, t + rb, left + cl, left + cr]


def test_trim_is_the_reference_trim_on_flat_margins_and_near_the_threshold():
    rng = np.random.default_rng(40)
    for trial in range(200):
        n, h, w = int(rng.integers(1, 6)), int(rng.integers(20, 60)), int(rng.integers(20, 60))
        y = (rng.random((n, h, w)) * rng.choice([2.0, 6.0, 7.0, 255.0])).astype(np.float32)  # spreads around 3
        y[:, : int(rng.integers(0, 8))] = 16.0  # flat bars
        y[:, :, w - int(rng.integers(0, 8)) :] = rng.random() * 255
        box = [int(rng.integers(0, 8)), int(rng.integers(h - 8, h + 1)), int(rng.integers(0, 8)), int(rng.integers(w - 8, w + 1))]
        assert C._trim(y, box) == _trim_reference(y, box), trial


def test_the_sharp_box_reads_the_steps_it_is_given():
    rng = np.random.default_rng(41)
    y = rng.random((4, 64, 64)).astype(np.float32) * 40
    y[:, :, :16] = 0.0  # a flat strip: no detail there
    steps = C._steps(y)
    assert C._detail_box(y, steps) == C._detail_box(y)
    np.testing.assert_array_equal(steps[1], np.abs(np.diff(y, axis=1)))
    np.testing.assert_array_equal(steps[2], np.abs(np.diff(y, axis=2)))
    # another picture's steps give that picture's sharp box: the steps handed in are the ones read
    other = np.flip(y, axis=2).copy()
    assert C._detail_box(y, C._steps(other)) == C._detail_box(other) != C._detail_box(y)
    ratios = C._all_line_ratios(y, steps)
    for axis in (1, 2):
        for got, want in zip(ratios[axis], C._line_ratios(y, axis)):
            np.testing.assert_array_equal(got, want)

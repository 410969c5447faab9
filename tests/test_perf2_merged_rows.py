"""DecodedFile.merged takes the two passes' rows as runs of slices, copied once (issue #30): the
rows are the passes' joined rows in frame order, the first pass's row where both took a frame
(np.concatenate([a, b])[np.unique(numbers, return_index=True)[1]], as it was computed before),
for every set: frames, times, border-free and overlay-filled frames, an inset region's frames."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.runtime.payload import DecodedFile, FrameSet, RegionSet


def _file(rng, numbers: np.ndarray, *, sets: bool) -> DecodedFile:
    k = numbers.size
    frames = rng.integers(0, 256, (k, 8, 8, 3), dtype=np.uint8)
    extra = {}
    if sets:
        extra = dict(unbordered=FrameSet(frames[:, 1:7] + 1, (1, 7, 0, 8)), unoverlaid=FrameSet(frames ^ 7, np.array([[0, 2, 0, 2]])),
                     region=RegionSet((0.1, 0.9, 0.1, 0.9), frames[:, 2:6, 2:6].copy()),
                     triage_frames=rng.integers(0, 256, (k, 4, 4, 3), dtype=np.uint8))  # fmt: skip
    return DecodedFile(frames=frames, frame_numbers=numbers.astype(np.int64), timestamps=numbers / 25.0, duration_seconds=10.0, **extra)


def _expected(a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.concatenate([a, b])[keep]


@pytest.mark.parametrize("sets", [False, True])
def test_merged_rows_are_the_joined_rows_in_frame_order(sets):
    rng = np.random.default_rng(11)
    tried = 0
    for _ in range(200):
        n1, n2 = int(rng.integers(0, 8)), int(rng.integers(0, 4))
        if n1 + n2 == 0 or (sets and (n1 == 0 or n2 == 0)):
            continue
        first = _file(rng, np.sort(rng.choice(30, n1, replace=False)), sets=sets)
        second = _file(rng, np.sort(rng.choice(30, n2, replace=False)), sets=sets)  # shares frames with the first at times
        keep = np.unique(np.concatenate([first.frame_numbers, second.frame_numbers]), return_index=True)[1]
        both = first.merged(second)
        got = {"frames": both.frames, "timestamps": both.timestamps, "frame_numbers": both.frame_numbers}
        want = {k: _expected(getattr(first, k), getattr(second, k), keep) for k in got}
        if sets:
            got.update(unbordered=both.unbordered.frames, unoverlaid=both.unoverlaid.frames, region=both.region.frames, triage=both.triage_frames)
            want.update(unbordered=_expected(first.unbordered.frames, second.unbordered.frames, keep),
                        unoverlaid=_expected(first.unoverlaid.frames, second.unoverlaid.frames, keep),
                        region=_expected(first.region.frames, second.region.frames, keep),
                        triage=_expected(first.triage_frames, second.triage_frames, keep))  # fmt: skip
        for name, value in got.items():
            assert value.dtype == want[name].dtype and value.flags.c_contiguous, name
            assert np.array_equal(value, want[name]), name
        tried += 1
    assert tried > 100

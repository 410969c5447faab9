"""Region search (``vscan.frames.regions.detect_region``: the decode task's, and the model's for the files it leaves
there) takes the picked frames' luma once: its static pixels are the break maps' own, not a second luma and std of the
same frames (issue #30). The same maps, static pixels and box."""

from __future__ import annotations

import numpy as np

from vscan.frames import regions
from vscan.frames.luma import evenly_spaced, luma


def _inset_clip(seed: int, n: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.full((n, 160, 160, 3), 40, np.uint8)  # a still canvas
    frames[:, 40:120, 30:130] = rng.integers(0, 256, (n, 80, 100, 3), dtype=np.uint8)  # a moving inset
    return frames


def test_detect_region_takes_the_luma_once(monkeypatch):
    frames = _inset_clip(3)
    vert, horiz, static = regions._maps(frames)
    pick = evenly_spaced(len(frames), 48)
    np.testing.assert_array_equal(static, luma(frames[pick]).std(axis=0) < 2.5)  # what detect_region took again before
    np.testing.assert_array_equal(regions.break_maps(frames)[0], vert)
    np.testing.assert_array_equal(regions.break_maps(frames)[1], horiz)
    calls = []
    real = regions.luma
    monkeypatch.setattr(regions, "luma", lambda f: calls.append(len(f)) or real(f))
    box = regions.detect_region(frames)
    assert calls == [len(frames)]  # was twice
    assert box is not None and abs(box.top - 40) <= 3 and abs(box.bottom - 120) <= 3 and abs(box.left - 30) <= 3 and abs(box.right - 130) <= 3

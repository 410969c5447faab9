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


def _translucent_clip(seed: int, n: int = 10) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, 160, 160, 3), dtype=np.uint8)
    box = frames[:, 50:110, 40:120].astype(np.float32)
    frames[:, 50:110, 40:120] = np.clip(box * 0.5 + 60, 0, 255).astype(np.uint8)  # a steady blend over moving content
    return frames


def test_add_region_takes_the_luma_once_for_the_translucent_box_and_the_region(monkeypatch):
    calls = []
    for clip in (_inset_clip(5, 12), _translucent_clip(6)):
        plain = regions.add_region({"frames": clip.copy()})
        monkeypatch.setattr(regions, "_spread", lambda frames, most=48: None)  # each took its own, as before
        before = regions.add_region({"frames": clip.copy()})
        monkeypatch.undo()
        assert plain.keys() == before.keys()
        for key in plain:
            np.testing.assert_array_equal(plain[key], before[key])
        from vscan.frames import translucent

        real = regions.luma
        monkeypatch.setattr(regions, "luma", lambda f: calls.append(len(f)) or real(f))
        monkeypatch.setattr(translucent, "luma", lambda f: calls.append(("again", len(f))) or real(f))
        regions.add_region({"frames": clip.copy()})
        monkeypatch.undo()
        assert calls == [len(clip)]  # was twice: the translucent box's and the break maps'
        calls.clear()
    assert "region_box" in regions.add_region({"frames": _inset_clip(5, 12)})
    assert "unoverlaid_frames" in regions.add_region({"frames": _translucent_clip(6)})  # both searches ran

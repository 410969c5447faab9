"""A file's border box and its frames' own bars from one luma of its frames (issue #30: the scan's border tap took the
luma and the lines' spreads and levels once for the file's box, then again for every frame's own bars)."""

from __future__ import annotations

import numpy as np

from vscan.frames import borders
from vscan.frames.borders import BorderTap, detect_borders, frame_bars, line_stats
from vscan.frames.resize import to_square


def _frames(seed: int, n: int, bars: tuple[int, int] | None) -> np.ndarray:
    """Textured 256 px square frames; ``bars``: (first, last) frame index given dark bars of their own (top/bottom)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, 256, 256, 3), dtype=np.uint8)
    if bars is not None:
        frames[bars[0] : bars[1], :30] = 8
        frames[bars[0] : bars[1], -30:] = 9
    return frames


def test_shared_stats_are_the_bits_each_frame_gives_alone():
    frames = _frames(1, 5, (1, 3)).astype(np.uint8)
    stats = line_stats(frames)
    pick = np.array([0, 2, 4])
    for whole, alone in zip(stats, line_stats(frames[pick])):
        assert np.array_equal(whole[pick], alone)  # each line reduced within its own frame
    for i, f in enumerate(frames):
        assert frame_bars(f, stats=tuple(s[i] for s in stats)) == frame_bars(f)
    assert detect_borders(frames, stats=stats) == detect_borders(frames)


def test_the_tap_takes_the_luma_once_for_the_box_and_the_frames_own_bars(monkeypatch):
    calls = []
    luma = borders.luma
    monkeypatch.setattr(borders, "luma", lambda frames: calls.append(len(frames)) or luma(frames))
    frames = _frames(2, 6, (2, 5))
    tap = BorderTap(lambda rgb: to_square(rgb, 256), lookahead_frames=64)  # as the scan's decode task
    for start in (0, 3):  # two batches, as a decoder yields them
        tap.push(frames[start : start + 3])
    payload = tap.add_to({"frames": frames})
    assert calls == [6]  # one luma of the six frames (before: the box's, then one per frame for its own bars)
    assert tap.box is not None and tap.box.is_empty  # bars on some frames only: no file box
    # the frames with bars of their own are cut to them, the others kept as they are (as without the shared stats)
    want = [frame_bars(f) for f in frames]
    assert [not b.is_empty for b in want] == [False, False, True, True, True, False]
    got = payload["unbordered_frames"]
    assert np.array_equal(got[0], frames[0]) and np.array_equal(got[5], frames[5])
    assert np.array_equal(got[2], to_square(want[2].apply(frames[2][None]), 256)[0])

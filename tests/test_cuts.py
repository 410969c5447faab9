"""Cuts coded without a keyframe, marked from packet sizes (vscan.decode.cuts), and adaptive
sampling's first pass sampling the frame at one that lies in a wide gap, near its keyframe (issue #27:
a short excerpt between keyframes 10 s apart was never seen by the first pass)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from vscan.bench.encoding import _encode
from vscan.decode import Adaptive
from vscan.decode.cuts import KeyframeIndices, cut_fills, mark_cuts
from vscan.decode.pyav_backend import PyAVDecoder

FPS = 25
SIZE = (160, 96)  # width, height


def _scene(seed: int, frames: int, start: int = 0) -> list[np.ndarray]:
    """A textured picture panning slowly: predicted frames stay small, a cut to another is not."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (SIZE[1] // 4 + 1, (SIZE[0] + 2 * (start + frames)) // 4 + 1, 3), dtype=np.uint8)
    base = np.repeat(np.repeat(cells, 4, axis=0), 4, axis=1)  # blocks: texture an encoder can predict
    return [np.ascontiguousarray(base[:SIZE[1], (start + i) * 2:(start + i) * 2 + SIZE[0]]) for i in range(frames)]


def _fixed_gop_clip(tmp_path, cut_seconds: tuple[float, ...], seconds: float = 12.0):
    """x264 with a keyframe every 10 s and none at cuts (scenecut=0): scenes change at ``cut_seconds``."""
    edges = [0, *[round(c * FPS) for c in cut_seconds], round(seconds * FPS)]
    frames: list[np.ndarray] = []
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        frames += _scene(100 + k, b - a)
    path = tmp_path / f"cuts-{len(cut_seconds)}.mp4"
    return _encode(path, frames, fps=FPS, codec="libx264", gop=10 * FPS, crf=28, bitrate=None)


def test_a_cut_without_a_keyframe_is_marked_and_nothing_else(tmp_path):
    path = _fixed_gop_clip(tmp_path, (4.2,))
    meta = PyAVDecoder().probe(path)
    assert tuple(meta.keyframe_indices) == (0, 250)  # no keyframe at the cut
    cuts = meta.keyframe_indices.cuts
    assert len(cuts) == 1 and abs(cuts[0] / FPS - 4.2) <= 0.2, cuts
    plain = PyAVDecoder().probe(_fixed_gop_clip(tmp_path, ()))
    assert plain.keyframe_indices.cuts == ()


def test_the_first_pass_samples_the_frame_at_a_cut_near_its_keyframe(tmp_path):
    # 14 s, keyframes at 0 and 10 s: cuts 1.0 s and 1.2 s after a keyframe are sampled, one 5 s after is not
    # (decoding reaches it through 5 s of frames: cut_reach_seconds), unless the reach is unbounded
    path = _fixed_gop_clip(tmp_path, (1.0, 5.0, 11.2), seconds=14.0)
    decoder = PyAVDecoder()
    meta = decoder.probe(path)
    cuts = sorted(meta.keyframe_indices.cuts)
    assert [round(c / FPS) for c in cuts] == [1, 5, 11], cuts
    pts = np.arange(meta.num_frames) / FPS
    chosen = Adaptive().select(pts, meta.keyframe_indices, meta.duration_seconds)
    assert {0, 250, cuts[0], cuts[2]} <= set(chosen.tolist()) and cuts[1] not in chosen
    got = [f for batch in decoder.iter_frames(path, Adaptive(), max_side=64) for f in batch.frame_indices.tolist()]
    assert got == chosen.tolist()
    assert cuts[1] in Adaptive(cut_reach_seconds=None).select(pts, meta.keyframe_indices, meta.duration_seconds)
    off = Adaptive(cut_frames=0).select(pts, meta.keyframe_indices, meta.duration_seconds)
    assert not set(cuts) & set(off.tolist())
    # a file no longer than short_min_file_seconds keeps its first pass
    short = Adaptive(short_min_file_seconds=20.0).select(pts, meta.keyframe_indices, meta.duration_seconds)
    assert short.tolist() == off.tolist()


def test_cut_fills_bounds_and_gaps():
    pts = np.arange(500) / FPS  # 20 s
    chosen = np.array([0, 250])
    # strongest first: the first two kept; one 0.6 s before a sampled frame is not sampled (that frame shows it)
    cuts = (100, 60, 160, 235)
    assert cut_fills(pts, chosen, cuts, 20.0, max_frames=2).tolist() == [60, 100]
    assert 235 not in cut_fills(pts, chosen, cuts, 20.0).tolist()
    # a gap of 2 s or less is not filled
    assert cut_fills(pts, np.array([0, 50]), (25,), 2.0).tolist() == []


def test_packets_of_a_p_b_pattern_are_not_cuts():
    """x264's default pattern: a P frame 6x the B frames around it every 4th packet is no cut; one 8x the P frames is."""
    n = 300
    pts = np.arange(n) / FPS
    sizes = np.where(np.arange(n) % 4 == 0, 1500, 250)
    key = np.zeros(n, bool)
    key[0] = True
    assert mark_cuts(pts, sizes, key) == ()
    sizes[137] = 12_000
    assert mark_cuts(pts, sizes, key) == (137,)


def test_periodic_reference_frames_are_not_cuts():
    """AV1's golden frames (libaom: a large packet every 32 frames) are not cuts; a lone one as large is."""
    n = 400
    pts = np.arange(n) / 30
    sizes = np.full(n, 300)
    sizes[16::32] = 4000
    key = np.zeros(n, bool)
    key[0] = True
    assert mark_cuts(pts, sizes, key) == ()
    sizes[16::32] = 300
    sizes[201] = 4000
    assert mark_cuts(pts, sizes, key) == (201,)


def test_keyframe_indices_carry_their_cuts_through_pickling():
    keys = KeyframeIndices((0, 250), (101, 190))
    again = pickle.loads(pickle.dumps(keys))
    assert again == (0, 250) and again.cuts == (101, 190) and isinstance(again, tuple)


@pytest.mark.parametrize("bad", [(np.zeros(3), np.zeros(2), np.zeros(3, bool))])
def test_mismatched_lengths_are_refused(bad):
    with pytest.raises(ValueError):
        mark_cuts(*bad)

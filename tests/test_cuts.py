"""Cuts coded without a keyframe, marked from packet sizes (vscan.decode.cuts), and adaptive
sampling's first pass sampling the frame at one that lies in a wide gap, near its keyframe (issue #27:
a short excerpt between keyframes 10 s apart was never seen by the first pass)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from vscan.bench.encoding import _encode
from vscan.bank.prepared import Match
from vscan.decode import Adaptive, Confirm
from vscan.decode.cuts import AtCuts, KeyframeIndices, cut_fills, first_pass_cuts, mark_cuts
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
    """x264 with a keyframe every 10 s and none at cuts (scenecut=0): scenes change at ``cut_seconds``. With x264's
    default rate control (macroblock tree): vscan.decode.cuts' packet-size rule was set on such encodes. Without it
    (bench.encoding's default, for reproducible bytes) x264 sizes its P frames more unevenly on these textured pans:
    a lone 1,088-byte P frame at 0.8 s read as a cut (2.7x its neighbours' 80th percentile, the rule's 2.5x), and a
    1,375-byte one 0.5 s after the 11.2 s cut took that cut's isolation. Encoders without mbtree (hardware ones)
    would do the same: left for the cut rule's owner (the stop 44 note)."""
    edges = [0, *[round(c * FPS) for c in cut_seconds], round(seconds * FPS)]
    frames: list[np.ndarray] = []
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        frames += _scene(100 + k, b - a)
    path = tmp_path / f"cuts-{len(cut_seconds)}.mp4"
    return _encode(path, frames, fps=FPS, codec="libx264", gop=10 * FPS, crf=28, bitrate=None, mbtree=True)


def test_a_cut_without_a_keyframe_is_marked_and_nothing_else(tmp_path):
    path = _fixed_gop_clip(tmp_path, (4.2,))
    meta = PyAVDecoder().probe(path)
    assert tuple(meta.keyframe_indices) == (0, 250)  # no keyframe at the cut
    cuts = meta.keyframe_indices.cuts
    assert len(cuts) == 1 and abs(cuts[0] / FPS - 4.2) <= 0.2, cuts
    plain = PyAVDecoder().probe(_fixed_gop_clip(tmp_path, ()))
    assert plain.keyframe_indices.cuts == ()


def _match(*, is_match: bool = True, frames: int = 2, distance: int = 4, span=(0.0, 10.0)) -> Match:
    pct = 100.0 if is_match else 50.0
    return Match(bank_entry_id="a", label=None, query_pct=pct, compared_pct=pct, matched_seconds=span[1] - span[0],
                 query_span_seconds=span, reference_span_seconds=span, distance_min=distance, is_match=is_match,
                 num_query_hashes_matched=frames, decided_by="vpdq" if is_match else None)  # fmt: skip


def test_cut_frames_are_decoded_only_where_the_first_pass_does_not_decide(tmp_path):
    # 14 s, keyframes at 0 and 10 s, cuts at 1.0, 5.0 and 11.2 s. While a scan decodes confirmations ahead
    # (most first passes decide: an archive) the first pass takes the keyframes alone; a first pass that
    # decides (a known copy, issue #30) is confirmed and never decodes a cut; one that does not (nothing
    # matched, or a weak hit) has a second pass from the cuts near their keyframe (1.0 s, 11.2 s) and up to
    # at_cuts_far_frames further (5.0 s, beyond cut_reach_seconds) on: cut_fps frames over cut_after_seconds
    # (issue #27). Otherwise (a sweep) the first pass takes the frames at the near cuts, and a hit there gets
    # its second pass's windows.
    path = _fixed_gop_clip(tmp_path, (1.0, 5.0, 11.2), seconds=14.0)
    decoder = PyAVDecoder()
    meta = decoder.probe(path)
    cuts = sorted(meta.keyframe_indices.cuts)
    assert [round(c / FPS) for c in cuts] == [1, 5, 11], cuts
    pts = np.arange(meta.num_frames) / FPS
    sweep = Adaptive()
    taken = sweep.select(pts, meta.keyframe_indices, meta.duration_seconds).tolist()
    assert taken == [0, cuts[0], 250, cuts[2]]
    assert sweep.cut_seconds(pts, meta.keyframe_indices, meta.duration_seconds, taken) == ()
    got = [f for batch in decoder.iter_frames(path, sweep, max_side=64) for f in batch.frame_indices.tolist()]
    assert got == taken
    policy = Adaptive(confirm_ahead=True)
    first = policy.select(pts, meta.keyframe_indices, meta.duration_seconds)
    assert first.tolist() == [0, 250]
    seconds = policy.cut_seconds(pts, meta.keyframe_indices, meta.duration_seconds, first)
    assert seconds == tuple(c / FPS for c in cuts)
    near = Adaptive(confirm_ahead=True, at_cuts_far_frames=0).cut_seconds(pts, meta.keyframe_indices, meta.duration_seconds, first)
    assert near == (cuts[0] / FPS, cuts[2] / FPS)
    sampled = pts[first]
    decided = policy.refine([_match()], meta.duration_seconds, sampled_seconds=sampled, cut_seconds=seconds)
    assert isinstance(decided, Confirm)
    assert len(decided.select(pts, meta.keyframe_indices, meta.duration_seconds)) == 1  # its one confirming frame
    for matches in ([], [_match(is_match=False, frames=1, span=(10.0, 10.0))]):
        second = policy.refine(matches, meta.duration_seconds, sampled_seconds=sampled, cut_seconds=seconds)
        assert isinstance(second, AtCuts), matches
        assert ("matched nothing" in second.describe()) == (not matches), second.describe()
        wanted = second.select(pts, meta.keyframe_indices, meta.duration_seconds).tolist()
        after_first = [cuts[0] + int(i * FPS / policy.cut_fps) for i in range(9)]  # 2 fps over 4 s
        after_far = [cuts[1] + int(i * FPS / policy.cut_fps) for i in range(8)]  # the far cut's own, to 250
        assert set(after_first) <= set(wanted) and set(after_far) <= set(wanted) and cuts[2] in wanted
        got = [f for batch in decoder.iter_frames(path, second, max_side=64) for f in batch.frame_indices.tolist()]
        assert got == wanted
        assert first_pass_cuts(second, decoder, meta, str(path), np.asarray(got)) == ()  # a second pass looks after none
    assert first_pass_cuts(policy, decoder, meta, str(path), first) == pytest.approx(seconds)  # as the decode task asks
    assert policy.refine([], meta.duration_seconds, sampled_seconds=sampled) is None  # no cuts, no match: no second pass
    assert Adaptive(confirm_ahead=True, cut_frames=0).cut_seconds(pts, meta.keyframe_indices, meta.duration_seconds, first) == ()
    # a file no longer than short_min_file_seconds: none
    assert Adaptive(confirm_ahead=True, short_min_file_seconds=20.0).cut_seconds(pts, meta.keyframe_indices, meta.duration_seconds, first) == ()


def test_cut_fills_bounds_and_gaps():
    pts = np.arange(500) / FPS  # 20 s
    chosen = np.array([0, 250])
    # strongest first: the first two kept; one 0.6 s before a sampled frame is not sampled (that frame shows it)
    cuts = (100, 60, 160, 235)
    assert cut_fills(pts, chosen, cuts, 20.0, max_frames=2).tolist() == [60, 100]
    assert 235 not in cut_fills(pts, chosen, cuts, 20.0).tolist()
    # a gap of 2 s or less is not filled
    assert cut_fills(pts, np.array([0, 50]), (25,), 2.0).tolist() == []
    # within 1.5 s of the keyframe before them (0 and 10 s here): 30 (1.2 s); 100 and 160 (4 and 6.4 s) only as far
    # frames, strongest first, and 235 (0.6 s before a sampled frame) never
    keys = np.array([0, 250])
    assert cut_fills(pts, chosen, cuts, 20.0, keyframes=keys, reach_seconds=1.5).tolist() == []
    assert cut_fills(pts, chosen, (30, 100, 160), 20.0, keyframes=keys, reach_seconds=1.5).tolist() == [30]
    assert cut_fills(pts, chosen, (30, 160, 100), 20.0, keyframes=keys, reach_seconds=1.5, far_frames=1).tolist() == [30, 160]
    assert cut_fills(pts, chosen, (30, 160, 100), 20.0, keyframes=keys, reach_seconds=1.5, far_frames=2).tolist() == [30, 100, 160]


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


def test_first_pass_cuts_reads_the_decoders_public_frame_times(tmp_path):
    """``first_pass_cuts`` asks the decoder for its frames' times through ``frame_times`` (the index
    pass's, cached), not its private index: a decoder that has it (an object read by range too) serves."""
    path = _fixed_gop_clip(tmp_path, (1.0,), seconds=14.0)
    decoder = PyAVDecoder()
    meta = decoder.probe(path)
    times = decoder.frame_times(path)
    assert len(times) == meta.num_frames and times[0] == 0.0 and np.all(np.diff(times) > 0)

    class TimesOnly:  # the accessor alone, no _index
        frame_times = staticmethod(decoder.frame_times)

    policy = Adaptive(confirm_ahead=True)
    first = policy.select(times, meta.keyframe_indices, meta.duration_seconds)
    assert first_pass_cuts(policy, TimesOnly(), meta, str(path), first) == pytest.approx((sorted(meta.keyframe_indices.cuts)[0] / FPS,))

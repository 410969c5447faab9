"""A stacked copy whose known picture goes flat for a while (issue #27: AugLy's vstack and meme format of the
held-out doorknob clip): the other pane stays busy, so the whole frame's PDQ quality stays 100, yet the pane
holds no detail on those frames. vscan.runtime.region_search matches the region version with the box's own
quality and leaves frames whose box is flat out of the query, as vPDQ leaves out frames under its quality floor;
counted as unmatched, they had pulled the copy's query% under 80."""

from __future__ import annotations

import numpy as np


def _with_flat_stretch(src, dst, start_s: float, end_s: float):
    """``src`` with its frames from ``start_s`` to ``end_s`` a flat grey (a fade, a dark scene, a still wall)."""
    from vscan.bench.edits import _read_clip
    from vscan.bench.encoding import _encode

    frames, times, fps = _read_clip(src)
    flat = [np.full_like(f, 118) if start_s <= t < end_s else f for f, t in zip(frames, times)]
    return _encode(dst, flat, fps=fps, codec="libx264", gop=None, crf=18, bitrate=None)


def _stacked(top, bottom, dst):
    """``top`` over ``bottom`` (same size), as AugLy's vstack stacks two videos."""
    from vscan.bench.edits import _read_clip
    from vscan.bench.encoding import _encode

    a, _, fps = _read_clip(top)
    b, _, _ = _read_clip(bottom)
    dst.parent.mkdir(parents=True, exist_ok=True)
    return _encode(dst, (np.concatenate([f, g], axis=0) for f, g in zip(a, b)), fps=fps, codec="libx264", gop=None, crf=23, bitrate=None)


def test_a_stacked_copy_whose_picture_goes_flat_matches_through_its_pane(tmp_path):
    """End to end (CLI scan, default sampling): the source is flat for 2.5 of its 6 s; its stacked copy over
    busy video is found in its pane, and a stack of two unrelated clips is not."""
    from _cli_scan import scan_records
    from vscan import Bank
    from vscan.bench import synth

    raw = synth.make_clip(tmp_path / "raw" / "src.mp4", seed=53, seconds=6, size=(480, 270), scenes=2, crf=18)
    src = _with_flat_stretch(raw, tmp_path / "src" / "walls.mp4", 1.5, 4.0)
    busy = synth.make_clip(tmp_path / "o" / "busy.mp4", seed=911, seconds=6, size=(480, 270), scenes=2, crf=20)
    third = synth.make_clip(tmp_path / "o" / "third.mp4", seed=912, seconds=6, size=(480, 270), scenes=2, crf=20)
    inbox = tmp_path / "in"
    copy = _stacked(src, busy, inbox / "vstack.mp4")
    unrelated = _stacked(third, busy, inbox / "unrelated_vstack.mp4")
    bank = tmp_path / "reported.bank"
    Bank.build(bank, [src], label="reported")
    records = scan_records(inbox, bank, tmp_path / "r.jsonl")
    (match,) = [m for m in records[copy.name]["matches"] if m["is_match"]]
    assert match["bank_entry_id"] == "walls" and "region" in match["path"], match
    assert not any(m["is_match"] for m in records[unrelated.name]["matches"])


def test_the_box_quality_is_pdq_quality_of_the_window():
    """box_quality gives what the hash model gives for the window cut out (its 64 x 64 picture's gradients)."""
    from vscan.frames.luma import luma
    from vscan.frames.window_hash import window_pdq
    from vscan.runtime.region_search import box_quality

    rng = np.random.default_rng(5)
    frames = np.zeros((3, 256, 256, 3), np.uint8)
    frames[0] = (rng.random((256, 256, 1)) * 255).astype(np.uint8)  # busy everywhere
    frames[1, :, :] = 118  # flat
    frames[2, 128:] = frames[0, 128:]  # busy below, flat box above
    box = (0, 128, 0, 256)
    got = box_quality(luma(frames), box)
    want = [int(window_pdq(f, 128, 256, np.array([0]), np.array([0]))[1][0, 0]) for f in frames]
    assert abs(int(got[0]) - want[0]) <= 2 and got[0] >= 50
    assert got[1] == want[1] == 0 and got[2] == want[2] == 0


def test_the_frame_halves_are_candidates_where_no_cue_finds_a_seam():
    """Two videos stacked whose seam no cue of candidate_boxes finds (tune split: a pattern clip's own bars held
    the only box found): each half of the frame is a candidate box too, once."""
    from vscan.bank.query import FileQuery, QueryVersion
    from vscan.hashing.vpdq import FrameHashes
    from vscan.runtime.region_search import region_candidates

    rng = np.random.default_rng(11)
    frames = (rng.random((6, 256, 256, 3)) * 255).astype(np.uint8)  # busy everywhere: no moving box, no seam
    n = len(frames)
    hashes = FrameHashes(np.arange(n), np.arange(n, dtype=np.float64), np.full(n, 100, np.int32), np.zeros((n, 32), np.uint8))
    query = FileQuery((QueryVersion("frames", hashes, np.zeros((n, 8, 32), np.uint8)),))
    boxes = [tuple(int(v) for v in b) for b in region_candidates(query, frames)]
    for half in [(0, 128, 0, 256), (128, 256, 0, 256), (0, 256, 0, 128), (0, 256, 128, 256)]:
        assert sum(max(abs(a - b) for a, b in zip(half, box)) <= 4 for box in boxes) == 1, (half, boxes)

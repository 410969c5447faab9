"""``window_hashes`` keeps the banded operators of its last few window grids (the off-centre search's coarse grids
are the same for every file of a frame size) and takes a frame's luma from its caller (one for all of a frame's grids,
``offcentre.candidate_windows``): the same hashes as building both each call (issue #30)."""

from __future__ import annotations

import numpy as np

from vscan.frames import window_hash
from vscan.frames.luma import luma
from vscan.hashing.pdq_ops import dct_matrix_np, jarosz_operator_np


def _built_each_call(frame, height, width, tops, lefts, exact):
    """window_hashes as it was: its operators built and the luma taken in every call."""
    dct = dct_matrix_np().astype(np.float32)
    rows = dct @ jarosz_operator_np(height).astype(np.float32)
    cols = dct @ jarosz_operator_np(width).astype(np.float32)
    pack = lambda c: window_hash._pack(window_hash._bits(c))  # noqa: E731
    if not exact:
        coeffs = window_hash._banded(frame, rows, cols, tops, lefts)
        return np.stack([pack(coeffs), pack(coeffs * window_hash._FLIP_SIGNS)], axis=2)
    both = window_hash._banded(frame, rows, np.concatenate([cols, cols[:, ::-1]]), tops, lefts)
    return np.stack([pack(np.ascontiguousarray(both[..., :16])), pack(np.ascontiguousarray(both[..., 16:]))], axis=2)


def test_kept_operators_and_a_callers_luma_give_the_same_hashes(monkeypatch):
    rng = np.random.default_rng(8)
    frames = rng.integers(0, 256, (2, 96, 96, 3), dtype=np.uint8)
    grids = [(60, 60, np.arange(0, 37, 4), np.arange(0, 37, 4)), (40, 52, np.array([3, 20]), np.array([0, 11, 44]))]
    for frame in frames:
        for height, width, tops, lefts in grids:
            for exact in (False, True):
                want = _built_each_call(frame, height, width, tops, lefts, exact)
                for _ in range(2):  # built, then kept
                    np.testing.assert_array_equal(window_hash.window_hashes(frame, height, width, tops, lefts, exact=exact), want)
                got = window_hash.window_hashes(frame, height, width, tops, lefts, exact=exact, y=luma(frame))
                np.testing.assert_array_equal(got, want)
    key_count = len(window_hash._KEPT_OPS)
    assert 0 < key_count <= window_hash._KEPT_OPS_MAX
    built = []
    ops = window_hash._banded_ops
    monkeypatch.setattr(window_hash, "_banded_ops", lambda *a: built.append(1) or ops(*a))
    window_hash.window_hashes(frames[0], *grids[0], exact=False)
    assert not built  # kept


def test_candidate_windows_takes_each_frames_luma_once(monkeypatch):
    from vscan.runtime import offcentre

    rng = np.random.default_rng(9)
    frames = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    grids = [(40, 40, np.arange(0, 25, 4), np.arange(0, 25, 4)), (30, 30, np.array([0, 17]), np.array([5, 30]))]
    calls = []
    real = offcentre.luma
    monkeypatch.setattr(offcentre, "luma", lambda f: calls.append(1) or real(f))
    monkeypatch.setattr(window_hash, "luma", lambda f: calls.append("again") or real(f))
    variants, rows, boxes = offcentre.candidate_windows(frames, np.array([0, 2]), grids, exact=False)
    assert calls == [1, 1]  # once a searched frame, for both its grids
    assert variants.shape == (2 * (49 + 4), 8, 32) and rows.tolist() == [0] * 53 + [2] * 53
    for k, (at, box) in enumerate(zip(rows, boxes)):
        t, b, left, r = (int(v) for v in box)
        one = window_hash.window_hashes(frames[at], b - t, r - left, np.array([t]), np.array([left]), exact=False)[0, 0]
        np.testing.assert_array_equal(variants[k, [0, 4]], one)

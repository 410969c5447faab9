"""best_box (issue #30: ~11 ms a call, two calls an unrelated file's second pass) scores only rectangles whose
bottom is below their top and right beyond their left, and takes each grid line's running max at the grid's lines
alone. The boxes are the whole grid's: checked here against that grid search as it stood (b0c82dd), on random and
inset maps, prominent or not, sizes on and off the grid step."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.frames import boxes
from vscan.frames.boxes import _lowered, _window_max, best_box


def _grid_reference(vert, horiz, moving_mask, *, min_score, min_fraction, max_fraction, step=16, min_inner=2, min_moving=0.7,
                    prominent=False):  # fmt: skip
    """b0c82dd's coarse grid search over every (top, bottom, left, right), then its refinement (shared code)."""

    def widen(m, radius):
        out = m.copy()
        for d in range(1, min(radius, m.shape[-1] - 1) + 1):
            np.maximum(out[..., d:], m[..., :-d], out=out[..., d:])
            np.maximum(out[..., :-d], m[..., d:], out=out[..., :-d])
        return out

    def side_means(cum, starts, ends, lines):
        seg = cum[ends][None, :, :] - cum[starts][:, None, :]
        length = (ends[None, :] - starts[:, None]).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (seg[:, :, lines] / length[:, :, None]).astype(np.float32)

    h, w = moving_mask.shape
    ys, xs = np.arange(0, h + 1, step), np.arange(0, w + 1, step)
    ys[-1], xs[-1] = h, w
    cum_v = np.concatenate([np.zeros((1, w + 1), np.float32), np.cumsum(vert, axis=0)])
    cum_h = np.concatenate([np.zeros((1, h + 1), np.float32), np.cumsum(horiz.T, axis=0)])
    moving = np.concatenate([np.zeros((1, w), np.float32), np.cumsum(moving_mask, axis=0, dtype=np.float32)])
    moving = np.concatenate([np.zeros((h + 1, 1), np.float32), np.cumsum(moving, axis=1)], axis=1)
    v_means, h_means = side_means(cum_v, ys, ys, np.arange(w + 1)), side_means(cum_h, xs, xs, np.arange(h + 1))
    if prominent:
        v_means = np.maximum(v_means, v_means[0, -1][None, None, :])
        h_means = np.maximum(h_means, h_means[0, -1][None, None, :])
    v_side = widen(_lowered(v_means, prominent), step // 2)[:, :, xs]
    h_side = widen(_lowered(h_means, prominent), step // 2)[:, :, ys]
    ny, nx = ys.size, xs.size
    T, B, L, R = np.ix_(range(ny), range(ny), range(nx), range(nx))
    inf = np.float32(np.inf)
    left = np.where(L > 0, v_side[T, B, L], inf)
    right = np.where(R < nx - 1, v_side[T, B, R], inf)
    top = np.where(T > 0, h_side[L, R, T], inf)
    bottom = np.where(B < ny - 1, h_side[L, R, B], inf)
    score = np.minimum(np.minimum(left, right), np.minimum(top, bottom))
    area = (ys[B] - ys[T]) * (xs[R] - xs[L]) / float(h * w)
    inner = (T > 0).astype(np.int8) + (B < ny - 1) + (L > 0) + (R < nx - 1)
    y_t, y_b, x_l, x_r = ys[T], ys[B], xs[L], xs[R]
    inside = moving[y_b, x_r] - moving[y_t, x_r] - moving[y_b, x_l] + moving[y_t, x_l]
    with np.errstate(divide="ignore", invalid="ignore"):
        moving_share = inside / np.maximum((y_b - y_t) * (x_r - x_l), 1)
    valid = (B > T) & (R > L) & (area >= min_fraction) & (area <= max_fraction) & (inner >= min_inner) & (moving_share >= min_moving)
    score = np.where(valid, np.nan_to_num(score, nan=-1.0), -1.0)
    t, b, l, r = np.unravel_index(int(np.argmax(score + 0.05 * inner)), score.shape)
    return None if score[t, b, l, r] < min_score * 0.8 else [int(ys[t]), int(ys[b]), int(xs[l]), int(xs[r])]


def _coarse(monkeypatch, *args, **kwargs):
    """best_box's coarse grid box (its refinement to the pixel left out: shared by both searches)."""
    seen = []

    def stop(horiz, vert, box, k, lo, hi):
        seen.append(list(box))
        raise StopIteration

    monkeypatch.setattr(boxes, "_line_means", stop)
    try:
        found = best_box(*args, **kwargs)
    except StopIteration:
        return seen[0]
    return found


def _maps(rng, h, w, kind):
    if kind == "noise":
        vert, horiz = rng.random((h, w + 1), dtype=np.float32), rng.random((h + 1, w), dtype=np.float32)
    else:  # an inset's edges over weak noise, and a run of exactly flat (zero) lines that makes 0/0 means
        vert, horiz = 0.2 * rng.random((h, w + 1), dtype=np.float32), 0.2 * rng.random((h + 1, w), dtype=np.float32)
        t, b, left, r = sorted(rng.integers(1, h, 2)) + sorted(rng.integers(1, w, 2))
        if b - t > 4 and r - left > 4:
            vert[t:b, [left, r]] = 1.0
            horiz[[t, b], left:r] = 1.0
        vert[:, : w // 8] = 0.0
    moving = rng.random((h, w)) < (0.95 if kind == "noise" else 0.8)
    return vert, horiz, moving


@pytest.mark.parametrize("prominent", [False, True])
def test_the_coarse_box_is_the_whole_grid_s(monkeypatch, prominent):
    rng = np.random.default_rng(30)
    checked = found = 0
    for trial in range(60):
        h, w = (int(v) for v in rng.choice([40, 64, 100, 128, 150], 2))
        step = int(rng.choice([8, 16]))
        vert, horiz, moving = _maps(rng, h, w, "noise" if trial % 2 else "inset")
        kw = dict(min_score=float(rng.choice([0.05, 0.3, 0.55, 0.8])), min_fraction=float(rng.choice([0.02, 0.05, 0.1])),
                  max_fraction=float(rng.choice([0.6, 0.92])), step=step, prominent=prominent,
                  min_inner=int(rng.choice([2, 3])), min_moving=float(rng.choice([0.0, 0.7])))  # fmt: skip
        want = _grid_reference(vert, horiz, moving, **kw)
        assert _coarse(monkeypatch, vert, horiz, moving, **kw) == want, (trial, kw)
        checked, found = checked + 1, found + (want is not None)
    assert checked == 60 and 10 <= found <= 55  # both kinds of answer were compared


def test_window_max_is_the_running_max_at_the_lines():
    rng = np.random.default_rng(31)
    for n in (1, 2, 5, 17, 40):
        m = rng.random((3, 4, n)).astype(np.float32)
        m[0, 0, n // 2] = np.nan  # NaN wins a max whatever its order
        for radius in (0, 1, 3, 8, 50):
            run = m.copy()
            for d in range(1, min(radius, n - 1) + 1):
                np.maximum(run[..., d:], m[..., :-d], out=run[..., d:])
                np.maximum(run[..., :-d], m[..., d:], out=run[..., :-d])
            centres = np.unique(np.r_[np.arange(0, n, 3), n - 1])
            np.testing.assert_array_equal(_window_max(m, centres, radius), run[..., centres])


def test_a_score_floor_at_or_below_minus_one_is_refused():
    # Rectangles upside down or inside out are not scored: they scored -1 and never won while min_score > -1.
    vert, horiz, moving = _maps(np.random.default_rng(32), 64, 64, "inset")
    with pytest.raises(ValueError, match="min_score"):
        best_box(vert, horiz, moving, min_score=-1.0, min_fraction=0.05, max_fraction=0.9)

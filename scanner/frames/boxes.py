"""The rectangle finder shared by region search (``vscan.frames.regions``) and
translucent boxes (``vscan.frames.translucent``): on two boundary maps (how
strongly each boundary between two columns / rows separates its sides), the
rectangle whose weakest inner side is strongest.

With ``prominent=True`` (region search) a side must also stand out from
the lines ``_BESIDE`` pixels away on one side at least: inside a fine
texture every line breaks about as strongly as the picture's edge, so the
plain maximum drifted into the picture (a picture-in-picture lost 18 of its
128 columns); and a side near the frame's edge that stands out from
neither neighbour is the frame's edge (a split screen's half), while a side
on the frame's edge moves in to a line near it that stands out from all
the lines between it and the edge (``_inner_edge``: an inset 5% from the
corner). Also with ``prominent=True``, a side's break is the larger of its
mean along the box and along its whole line, frame edge to frame edge: a
split screen's seam runs the frame's full height; beside the known half's
letterbox bars it is static against moving (break 1), while beside the
picture two halves whose scene cuts fall between the same two sampled
frames correlate (on 8 first-pass frames one seam broke 0.47 along the
picture, 0.73 along the whole line). An inset's side does not continue
past it, so its whole line is the weaker.

Measured on 8-frame adaptive first passes of 24 generated picture-in-picture
and 24 split-screen copies (bench_robustness's kinds, seeds 301-324) and on
bench_robustness's 148 video files (adaptive and 1 fps): these rules and
``_PROMINENCE`` 0.35 (was 0.25) changed only boxes that were wrong, 5 to
within 1 px of the inset (1 a sub-box of the inset, 3 run to the frame's
edge, 1 seam too weak) and none of the others."""

from __future__ import annotations

import numpy as np

__all__ = ["best_box", "box_score"]

#: How far (pixels) the lines a side is compared with lie, beyond the maps' gap of 3.
_BESIDE = 5
#: Coarse grid: a line standing out by less than this is lowered by the shortfall
#: (0.25 let a fine-textured inset's inner line, 0.69 standing out by 0.31, cut
#: off a sub-box whose weakest side, shared with the inset's, was 0.01 stronger).
_PROMINENCE = 0.35
#: Refining: the strongest of the lines that stand out by this much is the side (the
#: plain strongest when none does); a side within a grid step of the frame's edge
#: where none does is the frame's edge.
_SNAP = 0.3
#: A side on the frame's edge moves in to a line this far from it at least (``_inner_edge``).
_EDGE_GAP = 8


def _window_max(m: np.ndarray, centres: np.ndarray, radius: int) -> np.ndarray:
    """Max of ``m`` [..., n] over lines ``centres[k]`` +-``radius`` (within the map): [..., len(centres)]. The running
    max over every line (``_widen``, before issue #30: 2 * ``radius`` maxima of the whole map, ~1.8 ms of each of
    ``best_box``'s two maps) taken at the grid's lines alone: a max is exact and NaN wins it in any order, so these
    are the same bits."""
    n = m.shape[-1]
    r = max(0, min(radius, n - 1))
    lines = np.clip(np.asarray(centres)[:, None] + np.arange(-r, r + 1)[None, :], 0, n - 1)  # [k, 2r+1]
    return m[..., lines].max(axis=-1)


def _side_means(cum: np.ndarray, starts: np.ndarray, ends: np.ndarray, lines: np.ndarray | None = None) -> np.ndarray:
    """Mean of a map along line ``lines[k]`` (None: every line) from ``starts[i]`` to ``ends[j]``:
    float32 [len(starts), len(ends), len(lines)]."""
    seg = cum[ends][None, :, :] - cum[starts][:, None, :]
    length = (ends[None, :] - starts[:, None]).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (seg / length[:, :, None] if lines is None else seg[:, :, lines] / length[:, :, None]).astype(np.float32, copy=False)



def _prominence(means: np.ndarray) -> np.ndarray:
    """How far each line's mean [..., lines] exceeds the weaker of the lines ``_BESIDE`` away
    (beyond the frame: its outermost inner line)."""
    n = means.shape[-1]
    idx = np.arange(n)
    lo = np.take(means, np.clip(idx - _BESIDE, 1, n - 2), axis=-1)
    hi = np.take(means, np.clip(idx + _BESIDE, 1, n - 2), axis=-1)
    return np.nan_to_num(means - np.minimum(lo, hi), nan=0.0)


def _lowered(means: np.ndarray, prominent: bool) -> np.ndarray:
    return means - np.clip(_PROMINENCE - _prominence(means), 0.0, None) if prominent else means


def _inner_edge(lines: np.ndarray, prom: np.ndarray, side: int, lo_lim: int, hi_lim: int, step: int, min_score: float) -> int:
    """A side on the frame's edge moves in to the strongest line within a grid
    step of it (``_EDGE_GAP`` at least) that reaches ``min_score`` and stands
    out (``_SNAP``) from the lines beside it and from every line between it
    and the frame's edge (but the 2 nearest each: the maps' gap blurs an edge
    over them, and clamps at the frame's edge), if any. An inset a few pixels
    from the frame's edge (a picture-in-picture at 5% from the corner) whose
    nearest side was weaker than its others otherwise ranks below the box that
    runs to the frame's edge, which hashes a strip of the content around it too."""
    inward = lines if side == lo_lim else lines[::-1]  # inward[d]: the line d pixels in from this edge
    strength = prom if side == lo_lim else prom[::-1]
    best, best_v = side, -np.inf
    for d in range(_EDGE_GAP, min(step, len(inward) // 4) + 1):
        outer = inward[3 : d - 2].max()
        if inward[d] >= min_score and strength[d] >= _SNAP and inward[d] - outer >= _SNAP and inward[d] > best_v:
            best, best_v = (lo_lim + d if side == lo_lim else hi_lim - d), float(inward[d])
    return best


def box_score(vert: np.ndarray, horiz: np.ndarray, t: int, b: int, l: int, r: int, full: bool = False) -> tuple[float, int]:
    """(the weakest inner side's mean break, the number of inner sides); with
    ``full`` a side's break is the larger of its mean along the box and along
    its whole line (``best_box(prominent=True)``'s rule)."""
    h, w = horiz.shape[0] - 1, vert.shape[1] - 1
    sides = []
    if t > 0:
        sides.append(max(horiz[t, l:r].mean(), horiz[t].mean() if full else 0))
    if b < h:
        sides.append(max(horiz[b, l:r].mean(), horiz[b].mean() if full else 0))
    if l > 0:
        sides.append(max(vert[t:b, l].mean(), vert[:, l].mean() if full else 0))
    if r < w:
        sides.append(max(vert[t:b, r].mean(), vert[:, r].mean() if full else 0))
    return (float(min(sides)) if sides else 0.0), len(sides)



def _line_means(horiz: np.ndarray, vert: np.ndarray, box: list[int], k: int, lo: int, hi: int) -> np.ndarray:
    """Each candidate line's mean break along the box for side ``k`` (rows ``lo..hi`` of ``horiz`` across the box's
    columns, or columns of ``vert`` across its rows), float32: one reduction over a contiguous copy, each line summed
    as its own mean would sum it (the same values to the bit), not ~260 ``mean`` calls a side (issue #30: ~10 ms a
    merged file pass of the held-out AugLy copies)."""
    lines = horiz[lo : hi + 1, box[2] : box[3]] if k < 2 else vert[box[0] : box[1], lo : hi + 1].T
    return np.ascontiguousarray(lines).mean(axis=1)


def best_box(
    vert: np.ndarray,
    horiz: np.ndarray,
    moving_mask: np.ndarray,
    *,
    min_score: float,
    min_fraction: float,
    max_fraction: float,
    step: int = 16,
    min_inner: int = 2,
    min_moving: float = 0.7,
    prominent: bool = False,
) -> list[int] | None:
    """[top, bottom, left, right] of the rectangle whose weakest inner side is
    strongest on boundary maps ``vert`` [H, W+1] / ``horiz`` [H+1, W]: coarse
    grid (``step``), then each inner side refined to the pixel; None below
    ``0.8 * min_score`` on the grid."""
    h, w = moving_mask.shape
    ys, xs = np.arange(0, h + 1, step), np.arange(0, w + 1, step)
    ys[-1], xs[-1] = h, w
    # The coarse grid sees each edge through a max over +-step/2 across it (refined below).
    cum_v = np.concatenate([np.zeros((1, w + 1), np.float32), np.cumsum(vert, axis=0)])  # [H+1, W+1]
    cum_h = np.concatenate([np.zeros((1, h + 1), np.float32), np.cumsum(horiz.T, axis=0)])  # [W+1, H+1]
    moving = np.concatenate([np.zeros((1, w), np.float32), np.cumsum(moving_mask, axis=0, dtype=np.float32)])
    moving = np.concatenate([np.zeros((h + 1, 1), np.float32), np.cumsum(moving, axis=1)], axis=1)  # integral image
    # A grid line stands for the best line within +-step/2 of it: the max of
    # the lines' means (a max per pixel first would lift noise into edges).
    v_means, h_means = _side_means(cum_v, ys, ys), _side_means(cum_h, xs, xs)
    if prominent:  # a side's break: along the box or along its whole line, whichever is larger (_FULL_LINE)
        v_means = np.maximum(v_means, v_means[0, -1][None, None, :])
        h_means = np.maximum(h_means, h_means[0, -1][None, None, :])
    v_side = _window_max(_lowered(v_means, prominent), xs, step // 2)  # [top, bottom, x]
    h_side = _window_max(_lowered(h_means, prominent), ys, step // 2)  # [left, right, y]
    ny, nx = ys.size, xs.size
    # Only rectangles with a bottom below their top and a right side beyond their left (a fifth of the grid's
    # top x bottom x left x right), in the grid's order: every value below is the one the whole grid held there,
    # and the rest never won (issue #30: the whole grid took ~11 ms a call on an unrelated file's second pass).
    # Those others scored -1 (+0.05 an inner side, -0.8 at most) and, chosen, returned None; this returns None
    # whenever the best rectangle here scores below -0.8 too, as min_score > -1 asks.
    if not min_score > -1:
        raise ValueError(f"min_score {min_score} (a mean break): > -1")
    t_i, b_i = np.triu_indices(ny, 1)  # (top, bottom) pairs, top first, as the grid orders them
    l_i, r_i = np.triu_indices(nx, 1)
    if not t_i.size or not l_i.size:
        return None
    T, B, L, R = t_i[:, None], b_i[:, None], l_i[None, :], r_i[None, :]
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
    # Two inner sides at least (one alone cannot say which side is the picture), mostly moving inside.
    valid = (area >= min_fraction) & (area <= max_fraction) & (inner >= min_inner) & (moving_share >= min_moving)
    score = np.where(valid, np.nan_to_num(score, nan=-1.0), -1.0)
    # Near-ties go to the rectangle with more inner sides (a corner inset, not the strip beside it).
    i, j = np.unravel_index(int(np.argmax(score + 0.05 * inner)), score.shape)
    if score[i, j] < min_score * 0.8:
        return None
    t, b, l, r = int(t_i[i]), int(b_i[i]), int(l_i[j]), int(r_i[j])
    box = [int(ys[t]), int(ys[b]), int(xs[l]), int(xs[r])]
    # Refine each inner side to the pixel (two rounds: the sides' extents depend on each other).
    for _ in range(2):
        for k in range(4):
            lo_lim, hi_lim = (0, h) if k < 2 else (0, w)
            lines = _line_means(horiz, vert, box, k, lo_lim, hi_lim)
            if prominent:  # along the box or the whole line (module docstring)
                lines = np.maximum(lines, horiz[lo_lim : hi_lim + 1].mean(axis=1) if k < 2 else vert[:, lo_lim : hi_lim + 1].mean(axis=0))
            prom = _prominence(lines) if prominent else np.zeros_like(lines)
            if box[k] in (lo_lim, hi_lim):
                if prominent:
                    box[k] = _inner_edge(lines, prom, box[k], lo_lim, hi_lim, step, min_score)
                continue
            best, best_v, best_p = box[k], -np.inf, 1.0
            for v in range(max(lo_lim + 1, box[k] - step), min(hi_lim - 1, box[k] + step) + 1):
                trial = list(box)
                trial[k] = v
                if trial[1] - trial[0] < step or trial[3] - trial[2] < step:
                    continue
                value = lines[v - lo_lim] - (prom[v - lo_lim] < _SNAP)  # lines that stand out compete first
                if value > best_v:
                    best, best_v, best_p = v, float(value), float(prom[v - lo_lim])
            if prominent and best_p < _SNAP and min(box[k] - lo_lim, hi_lim - box[k]) <= step:
                best = lo_lim if box[k] - lo_lim <= step else hi_lim  # stands out from neither side: the frame's edge
            box[k] = best
    return box

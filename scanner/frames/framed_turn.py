"""A turned copy whose source had dark bars of its own: the angle from the picture's straight edges.

``vscan.frames.turns.fit_turn`` compares the dark pixels with the corner triangles a turn leaves. A source with
dark bars of its own (a pillarboxed portrait clip, a letterboxed film) turned by AugLy's ``rotate`` is dark in
its corners *and* along its turned bars, so no turn's corners overlap the dark pixels enough, or a wrong one
(the steepest) fits best (held-out ``pattern-sd-grey-bar``: 16 degrees for a 9.25 degree turn; tune
``chair-orig-22-sd-bar``: 16 for 11.44).

``fit_framed`` asks instead which turn makes the picture (the pixels that are not dark) an upright rectangle:
the dark map is turned back by each angle on a canvas that loses nothing, and the picture's upright bounding box
(rows and columns that are mostly picture) is compared with the picture (intersection over union, inside what the
copy showed). Bars of any width, on any sides, and the corners all border the source's upright picture, so the
fit holds with or without bars. A file already upright (letterboxed, not turned) scores best unturned and is
left alone. On the tune split's 15 AugLy rotations the fitted angle falls 0.05-0.73 degrees short of the true
one (``fit_turn``, where it fits, 0.3-0.6 short), and it holds on the three with bars, where ``fit_turn`` fits 16.
"""

from __future__ import annotations

import math

import numpy as np

from vscan.frames.turns import TURN_ANGLES, Turn

__all__ = ["FRAMED_SIDE", "MIN_FRAMED_FIT", "MIN_FRAMED_GAIN", "COARSE_STEP_DEGREES", "WHOLE_PICTURE_SHARE", "framed_score", "fit_framed",
           "picture_box", "picture_cut"]

#: The dark map is compared this small (px of its shorter side): the picture's edges need no more.
FRAMED_SIDE = 64
#: A fit needs the picture to fill its upright box this well at the angle, and this much better than unturned.
MIN_FRAMED_FIT, MIN_FRAMED_GAIN = 0.97, 0.02
#: A picture box keeping this much of each side of the frame is the whole frame (no bars of its own).
WHOLE_PICTURE_SHARE = 0.97
#: Angles are tried this far apart first, then every 0.25 degree within one step of the best.
COARSE_STEP_DEGREES = 1.0


def _canvas(picture: np.ndarray, aspect: float, side: int = FRAMED_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """``picture`` bool [S, S] (a squeezed square) unsqueezed to ``aspect`` and centred on a square canvas that a
    turn by any angle keeps whole: (picture, shown) float32 [D, D]; ``shown`` marks the copy's frame."""
    import cv2

    h, w = (side, int(round(side * aspect))) if aspect >= 1 else (int(round(side / aspect)), side)
    d = int(math.ceil(math.hypot(h, w))) + 2
    top, left = (d - h) // 2, (d - w) // 2
    pic, shown = np.zeros((d, d), np.float32), np.zeros((d, d), np.float32)
    pic[top : top + h, left : left + w] = cv2.resize(picture.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    shown[top : top + h, left : left + w] = 1.0
    return pic, shown


def framed_score(pic: np.ndarray, shown: np.ndarray, degrees: float) -> float:
    """How well the picture ``pic`` (``_canvas``'s) turned back by ``degrees`` fills its upright bounding box, inside
    what the copy showed: intersection over union, 1.0 for a perfect upright rectangle."""
    return _upright(pic, shown, degrees)[0]


def _upright(pic: np.ndarray, shown: np.ndarray, degrees: float) -> tuple[float, tuple[int, int, int, int]]:
    """``framed_score`` and the upright box (top, bottom, left, right: px of the canvas, bottom and right past the end)."""
    import cv2

    d = pic.shape[0]
    turn = cv2.getRotationMatrix2D(((d - 1) / 2, (d - 1) / 2), degrees, 1.0)
    known = cv2.warpAffine(shown, turn, (d, d), flags=cv2.INTER_LINEAR) > 0.99
    inside = (cv2.warpAffine(pic, turn, (d, d), flags=cv2.INTER_LINEAR) > 0.5) & known
    row_share = inside.sum(axis=1) / np.maximum(known.sum(axis=1), 1)
    col_share = inside.sum(axis=0) / np.maximum(known.sum(axis=0), 1)
    rows, cols = np.flatnonzero(row_share > 0.5), np.flatnonzero(col_share > 0.5)
    if not len(rows) or not len(cols):
        return 0.0, (0, d, 0, d)
    span = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    box = np.zeros_like(inside)
    box[span[0] : span[1], span[2] : span[3]] = True
    box &= known
    return float((inside & box).sum() / max((inside | box).sum(), 1)), span


def fit_framed(dark: np.ndarray, aspect: float) -> Turn | None:
    """The turn (within ``TURN_ANGLES``' range, to 0.25 degree) that makes the picture of a file (``dark``: bool
    [S, S], pixels dark on every frame looked at, ``vscan.frames.turns``' mask) an upright rectangle, or None when
    none fits ``MIN_FRAMED_FIT`` and beats the file unturned by ``MIN_FRAMED_GAIN``. ``Turn.overlap`` is the fit."""
    corner = 1  # the extreme pixels: at 5 degrees a 16:9 corner triangle is ~3 px across on the squeezed mask
    if not all(dark[r, c].all() for r in (slice(0, corner), slice(-corner, None)) for c in (slice(0, corner), slice(-corner, None))):
        return None  # a turn inside the frame loses all four of its corners (a dark gradient or one bar is no turn)
    pic, shown = _canvas(~dark, aspect)
    upright = framed_score(pic, shown, 0.0)
    low, high = min(abs(a) for a in TURN_ANGLES), max(abs(a) for a in TURN_ANGLES)
    coarse = [s * a for s in (-1.0, 1.0) for a in np.arange(low, high + 1e-6, COARSE_STEP_DEGREES)]
    best = max((framed_score(pic, shown, a), a) for a in coarse)
    fine = [best[1] + s for s in np.arange(-COARSE_STEP_DEGREES, COARSE_STEP_DEGREES + 1e-6, 0.25) if low <= abs(best[1] + s) <= high]
    score, degrees = max((framed_score(pic, shown, a), a) for a in fine)
    if score < MIN_FRAMED_FIT or score < upright + MIN_FRAMED_GAIN:
        return None
    return Turn(float(degrees), aspect, score)


def picture_box(dark: np.ndarray, aspect: float, degrees: float) -> tuple[float, float, float, float] | None:
    """The source's picture inside its own bars, upright in the frame turned back by ``degrees``
    (``vscan.frames.turns.turn_back``'s frame): (top, bottom, left, right) shares of its sides; None when the
    picture is the whole frame (no bars: the bank's crops are of the whole frame then). Measured at the mask's
    own size: the bank's crops are 2.5% apart."""
    pic, shown = _canvas(~dark, aspect, dark.shape[0])
    _, (top, bottom, left, right) = _upright(pic, shown, degrees)
    d = pic.shape[0]
    h, w = int(shown.sum(axis=0).max()), int(shown.sum(axis=1).max())
    t0, l0 = (d - h) // 2, (d - w) // 2
    box = (max(0.0, (top - t0) / h), min(1.0, (bottom - t0) / h), max(0.0, (left - l0) / w), min(1.0, (right - l0) / w))
    if box[1] - box[0] >= WHOLE_PICTURE_SHARE and box[3] - box[2] >= WHOLE_PICTURE_SHARE:
        return None
    return box


def picture_cut(kept: np.ndarray, picture: tuple[float, float, float, float], cuts: tuple[float, ...],
                slack: float) -> tuple[float, tuple[int, int, int, int]] | None:
    """The largest of ``cuts`` (share of each side of ``picture``, centred in it: the bank's crops of a picture
    without its bars, ``borders+crop``) whose box lies inside ``kept`` (bool [h, w], what the copy kept of the
    turned-back frame) but for ``slack`` of its pixels: (cut, (top, bottom, left, right) px), or None."""
    h, w = kept.shape
    top, bottom, left, right = picture[0] * h, picture[1] * h, picture[2] * w, picture[3] * w
    for c in sorted(cuts, reverse=True):
        ch, cw = (bottom - top) * c, (right - left) * c
        t, lft = int(round(top + ((bottom - top) - ch) / 2)), int(round(left + ((right - left) - cw) / 2))
        box = (t, t + max(16, int(round(ch))), lft, lft + max(16, int(round(cw))))
        if box[1] <= h and box[3] <= w and kept[box[0] : box[1], box[2] : box[3]].mean() >= 1.0 - slack:
            return c, box
    return None

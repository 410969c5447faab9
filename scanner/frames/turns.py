"""Copies turned by a few degrees inside their own frame: find the angle, turn them back.

A rotation as ffmpeg's ``rotate`` filter (AugLy's ``rotate``, phone and
editor tools) makes it keeps the frame's size and fills the corners the
picture leaves with one colour, usually black. Those corner triangles give
the angle away: ``fit_turn`` compares where the frames stay dark on every
sampled frame with the corners a turn by each angle of ``TURN_ANGLES`` would
leave, at the file's own aspect (the scan's frames are squeezed squares), so
a file pays one small mask comparison unless its corners fit a turn.

``turn_back`` turns the frames' luma back by that angle: the picture then
shows the source's own pixels inside the turned rectangle, and its centre box
keeping ``inscribed(aspect, degrees)`` of each side holds them alone
(``vscan.runtime.rotation_search`` cuts the bank's nearest crop out of it).
For a bank of plain frame rows only (a hash list) ``filled`` paints the lost
corners from the picture around them, so the whole frame can be hashed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["TURN_ANGLES", "DARK_LUMA", "MASK_SIDE", "FILL_SIDE", "UNSURE_SIGMAS", "Turn", "inscribed", "turn_valid", "fit_turn", "turn_back", "kept_pixels", "picture_mask", "unsure_bits", "filled"]

#: Angles searched (degrees, counter-clockwise to undo): beyond the bank's own +-4 degree rows, up to 16, in 0.25 steps
#: (PDQ moves ~15 bits per degree of turn left over on a crop keeping ~80% of each side).
TURN_ANGLES = tuple(float(a) for a in np.concatenate([-np.arange(4.5, 16.01, 0.25)[::-1], np.arange(4.5, 16.01, 0.25)]))
#: A corner pixel is fill when it stays at most this dark (luma 0-255) on every frame looked at.
DARK_LUMA = 48.0
#: Side of the squeezed mask the corners are compared on (px).
MASK_SIDE = 128
#: A fit needs the corners the turn leaves to be dark on this share of their pixels, this overlap (intersection over
#: union) with the dark pixels, and at least this share of the frame in corners.
MIN_DARK_SHARE, MIN_OVERLAP, MIN_CORNER_SHARE = 0.8, 0.6, 0.02
#: The lost corners are painted on a square this small (px): PDQ keeps only the picture's lowest frequencies.
FILL_SIDE = 64
#: A hash bit of a painted frame is unsure when its coefficient lies within this many deviations (what the lost
#: pixels could add) of the median (``unsure_bits``; tune split: ~20 of 256 bits unsure on copies turned 6-14 degrees).
UNSURE_SIGMAS = 1.0


@dataclass(frozen=True)
class Turn:
    """A fitted turn: ``degrees`` to turn the frames back (counter-clockwise positive, cv2's sense), the copy's
    ``aspect`` (width / height) and the overlap of its corners with the dark pixels."""

    degrees: float
    aspect: float
    overlap: float


def inscribed(aspect: float, degrees: float) -> float:
    """The share of each side of the largest centred box of the frame's aspect inside the frame turned by ``degrees``."""
    a = math.radians(abs(degrees))
    return 1.0 / (math.cos(a) + max(aspect, 1.0 / aspect) * math.sin(a))


def turn_valid(aspect: float, degrees: float, side: int = MASK_SIDE) -> np.ndarray:
    """bool [side, side] (a squeezed square): where a copy turned by ``-degrees`` still shows its source's pixels."""
    v, u = (np.mgrid[0:side, 0:side].astype(np.float64) + 0.5) / side - 0.5
    x, y = u * aspect, v  # unsqueezed, centred, height 1
    a = math.radians(degrees)
    # cv2.getRotationMatrix2D(centre, degrees): restored = [[c, s], [-s, c]] @ copy; valid where restored is inside.
    xr, yr = math.cos(a) * x + math.sin(a) * y, -math.sin(a) * x + math.cos(a) * y
    return (np.abs(xr) <= aspect / 2) & (np.abs(yr) <= 0.5)


def _dark_mask(lumas: np.ndarray) -> np.ndarray:
    """bool [MASK_SIDE, MASK_SIDE]: pixels dark on every one of ``lumas`` [K, S, S] (float32 0-255)."""
    import cv2

    brightest = lumas.max(axis=0)
    return cv2.resize(brightest, (MASK_SIDE, MASK_SIDE), interpolation=cv2.INTER_AREA) <= DARK_LUMA


def fit_turn(lumas: np.ndarray, aspect: float) -> Turn | None:
    """The turn of ``TURN_ANGLES`` whose corners best fit where ``lumas`` (a few frames' luma, [K, S, S]) stay dark,
    or None when no turn's corners are dark enough (most files: no dark corners at all)."""
    dark = _dark_mask(lumas)
    if dark.mean() < MIN_CORNER_SHARE:
        return None
    best: Turn | None = None
    for degrees in TURN_ANGLES:
        corners = ~_valid_cached(round(aspect, 3), degrees)
        n = corners.sum()
        if n < MIN_CORNER_SHARE * corners.size or dark[corners].mean() < MIN_DARK_SHARE:
            continue
        overlap = float((dark & corners).sum() / (dark | corners).sum())
        if overlap >= MIN_OVERLAP and (best is None or overlap > best.overlap):
            best = Turn(degrees, aspect, overlap)
    return best


_VALID: dict[tuple[float, float], np.ndarray] = {}


def _valid_cached(aspect: float, degrees: float) -> np.ndarray:
    key = (aspect, degrees)
    if key not in _VALID:
        if len(_VALID) > 4096:
            _VALID.clear()
        _VALID[key] = turn_valid(aspect, degrees)
    return _VALID[key]


def unsqueezed(lumas: np.ndarray, aspect: float) -> list[np.ndarray]:
    """``lumas`` [N, S, S] (squeezed squares) resized to the file's aspect, frame by frame: what ``turn_back`` turns
    (a search that turns the same frames by several angles resizes them once, issue #30)."""
    import cv2

    side = lumas.shape[1]
    h, w = (side, int(round(side * aspect))) if aspect >= 1 else (int(round(side / aspect)), side)
    return [cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in lumas]


def turn_back(lumas: np.ndarray, aspect: float, degrees: float, *, wide: list[np.ndarray] | None = None) -> np.ndarray:
    """``lumas`` [N, S, S] (squeezed squares) unsqueezed to the file's aspect and turned by ``degrees``: float32 [N, h, w].
    ``wide``: ``unsqueezed(lumas, aspect)``, where the caller has it."""
    import cv2

    wide = unsqueezed(lumas, aspect) if wide is None else wide
    h, w = wide[0].shape[:2] if len(wide) else (0, 0)
    turn = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    return np.stack([cv2.warpAffine(f, turn, (w, h), flags=cv2.INTER_LINEAR) for f in wide])


def kept_pixels(h: int, w: int, degrees: float) -> np.ndarray:
    """bool [h, w]: the pixels of a frame turned back by ``degrees`` that the copy kept (the rest it lost to its corners)."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    x, y = u - w / 2, v - h / 2
    a = math.radians(degrees)
    # Source pixel (x, y) was seen by the copy when the copy's turn of it (by -degrees) lies inside the frame.
    xc, yc = math.cos(a) * x - math.sin(a) * y, math.sin(a) * x + math.cos(a) * y
    return (np.abs(xc) <= w / 2 - 1.5) & (np.abs(yc) <= h / 2 - 1.5)


def picture_mask(h: int, w: int, picture: tuple[float, float, float, float] | None) -> np.ndarray:
    """bool [h, w]: the source's picture inside bars of its own (``picture``: top, bottom, left, right shares, as
    ``vscan.frames.framed_turn.picture_box`` gives them); all True without bars."""
    inside = np.ones((h, w), bool)
    if picture is not None:
        inside[:] = False
        inside[int(picture[0] * h) : int(math.ceil(picture[1] * h)), int(picture[2] * w) : int(math.ceil(picture[3] * w))] = True
    return inside


def unsure_bits(filled_frames: np.ndarray, degrees: float, k: float = UNSURE_SIGMAS, picture=None) -> np.ndarray:
    """uint8 [N, 32] in PDQ's bit order: the bits of each whole-frame PDQ of ``filled_frames`` (``filled``'s [N, h, w])
    that what the copy lost could flip. Bit (u, v) is its DCT coefficient against the median; the lost pixels add to
    that coefficient ``sum over lost pixels of basis(u, v)^2`` times the picture's variance, so a coefficient closer to
    the median than ``k`` such deviations is unsure (the painted guess may have it on the wrong side). With
    ``picture`` (the source's bars, ``filled``'s), lost pixels on the bars are known, not guessed."""
    from vscan.frames.window_hash import _pack
    from vscan.hashing.pdq_ops import dct_matrix_np, jarosz_operator_np

    n, h, w = filled_frames.shape
    lost = (~kept_pixels(h, w, degrees) & picture_mask(h, w, picture)).astype(np.float64)
    rows, cols = dct_matrix_np() @ jarosz_operator_np(h), dct_matrix_np() @ jarosz_operator_np(w)  # [16, h], [16, w]
    spread = np.sqrt((rows**2) @ lost @ (cols**2).T).ravel()  # [256]: each coefficient's deviation per unit of pixel spread
    out = np.zeros((n, 256), bool)
    for i, f in enumerate(filled_frames.astype(np.float64)):
        coeffs = (rows @ f @ cols.T).ravel()
        median = np.partition(coeffs, 127)[127]
        out[i] = np.abs(coeffs - median) <= k * spread * f[lost == 0].std()
    return _pack(out)


def filled(turned: np.ndarray, degrees: float, picture=None) -> np.ndarray:
    """``turned`` [N, h, w] (``turn_back``'s) with what the copy lost (outside the frame turned twice) painted from the
    picture nearby: a normalised blur of the kept pixels, coarse to fine, so a hash of the whole frame stays near
    the source's. ``picture``: the source's picture inside dark bars of its own (``vscan.frames.framed_turn``): a
    lost pixel on the bars is the bars' level (the median of the bar pixels the copy kept), not the picture's: a
    hash list's whole-frame row holds the bars (held-out ``pattern-sd-grey-bar``: 36-50 bits painted, 18-28 so)."""
    import cv2

    _, h, w = turned.shape
    keep = kept_pixels(h, w, degrees).astype(np.float32)
    small = (FILL_SIDE, FILL_SIDE)
    keep_small = cv2.resize(keep, small, interpolation=cv2.INTER_AREA)
    out = np.empty_like(turned)
    for i, f in enumerate(turned):
        kept = cv2.resize(f * keep, small, interpolation=cv2.INTER_AREA)
        fill = np.zeros(small, np.float32)
        for sigma in (16.0, 8.0, 3.0):  # coarse to fine (px of FILL_SIDE): far corners take the broad picture, near ones the edge
            num, den = cv2.GaussianBlur(kept, (0, 0), sigma), cv2.GaussianBlur(keep_small, (0, 0), sigma)
            ok = den > 0.05
            fill[ok] = num[ok] / den[ok]
        out[i] = np.where(keep > 0, f, cv2.resize(fill, (w, h), interpolation=cv2.INTER_LINEAR))
    if picture is not None:
        bars = ~picture_mask(h, w, picture)
        seen, lost = bars & (keep > 0), bars & (keep == 0)
        for i, f in enumerate(turned):
            out[i][lost] = float(np.median(f[seen])) if seen.any() else 0.0
    return out

"""PDQ hashes of many same-size windows of one frame, at once, in numpy.

Locating an off-centre crop (``vscan.runtime.offcentre``) hashes a hundred
windows of a frame, one per position. PDQ is linear up to its threshold
(luma, Jarosz filter and decimation, DCT: ``D R_h Y R_w^T D^T``), so the
window at rows ``y:y+h`` and columns ``x:x+w`` has coefficients
``(D R_h) Y[y:y+h, x:x+w] (D R_w)^T``, and every window of a grid of tops
and lefts comes out of two matrix products with banded operators (those
blocks placed at each top / left), with no window cut out or resized. The bits
equal the hash model's for the same window cut out (tested).

``window_hashes`` does not compute quality (it needs the 64 x 64 picture):
callers use the frame's. ``window_pdq`` does, with the same trick one step
earlier: the Jarosz operators placed at each top / left give every window's
64 x 64 picture ``R_h Y[y:y+h, x:x+w] R_w^T`` (two matrix products), whose
gradients give the quality and whose DCT gives all 8 dihedral variants. Each
variant is the PDQ of the window turned or mirrored (its operators reversed:
the Jarosz filter and PDQ's cell centres are not symmetric, so the hash's own
mirror, its DCT's odd columns negated, lies 20-60 bits from the mirrored
picture's hash): a mirrored or turned copy meets its source's rows as closely as
a plain one. ``original`` and ``transpose`` are the hash model's bits, the others
the model's bits of the turned window cut out (tested).
Windows up to 128 px a side (a still's 74 windows, ``vscan.frames.regions``)
need no product: PDQ's filter is then 1 px wide and the 64 x 64 picture is
the window's luma at the cell centres, ~1 ms for 25 windows with 8 variants.
"""

from __future__ import annotations

import numpy as np

from vscan.frames.luma import luma
from vscan.hashing.pdq_ops import LUMA, dct_matrix_np, jarosz_operator_np

__all__ = ["window_hashes", "window_pdq"]

#: Mirroring a window left-right multiplies DCT column u (= 1..16) by (-1)**u.
_FLIP_SIGNS = np.where(np.arange(1, 17) % 2 == 1, -1.0, 1.0).astype(np.float32)


def _pack(bits: np.ndarray) -> np.ndarray:
    """[..., 256] bool -> [..., 32] uint8 in PDQ's hex byte order (``pack_permutation``): byte m holds bits
    8 (31 - m) to 8 (31 - m) + 7, lowest first, so the bytes packed in order, reversed. Was a gather of every bit
    through the permutation first: 0.41 -> 0.013 ms for a frame's 225 coarse windows (issue #30; the same bytes,
    ``tests/test_window_pack.py``)."""
    return np.ascontiguousarray(np.packbits(bits, axis=-1, bitorder="little")[..., ::-1])


def _bits(coeffs: np.ndarray) -> np.ndarray:
    flat = coeffs.reshape(*coeffs.shape[:-2], 256)
    median = np.partition(flat, 127, axis=-1)[..., 127:128]  # the reference's lower median
    return flat > median


def _check(frame: np.ndarray, height: int, width: int, tops: np.ndarray, lefts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = frame.shape[:2]
    tops, lefts = np.asarray(tops, np.int64), np.asarray(lefts, np.int64)
    if height < 5 or width < 5 or (tops.size and tops.max() + height > h) or (lefts.size and lefts.max() + width > w):
        raise ValueError(f"Invalid windows ({height}x{width} at tops {tops.tolist()}, lefts {lefts.tolist()}) for a {h}x{w} frame")
    return tops, lefts


def _model_luma(frame: np.ndarray) -> np.ndarray:
    """float32 luma summed as the hash model does (``vscan.kernels.pdq.luminance``): the last bits of the
    64 x 64 picture decide quality's floors and the median's ties, which ``frames.luma``'s dot product can move."""
    x = frame.astype(np.float32)
    return x[..., 0] * np.float32(LUMA[0]) + x[..., 1] * np.float32(LUMA[1]) + x[..., 2] * np.float32(LUMA[2])


def _banded_ops(rows: np.ndarray, cols: np.ndarray, tops: np.ndarray, lefts: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Banded operators ([len(tops) * r, h], [w, len(lefts) * c]): block i of ``down`` is ``rows`` placed at tops[i];
    block j of ``across``, ``cols`` at lefts[j]."""
    down = np.zeros((tops.size, rows.shape[0], h), np.float32)
    across = np.zeros((w, lefts.size, cols.shape[0]), np.float32)
    for i, t in enumerate(tops):
        down[i, :, t : t + rows.shape[1]] = rows
    for j, left in enumerate(lefts):
        across[left : left + cols.shape[1], j] = cols.T
    return down.reshape(-1, h), across.reshape(w, -1)


def _banded(frame: np.ndarray, rows: np.ndarray, cols: np.ndarray, tops: np.ndarray, lefts: np.ndarray, *, exact: bool = False,
            y: np.ndarray | None = None, ops: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:  # fmt: skip
    """[len(tops), len(lefts), r, c]: ``rows`` [r, height] @ window @ ``cols``.T [width, c] at each (top, left).
    ``y``: the frame's luma as ``exact`` takes it, where the caller has it; ``ops``: ``_banded_ops``', where kept."""
    h, w = frame.shape[:2]
    down, across = _banded_ops(rows, cols, tops, lefts, h, w) if ops is None else ops
    y = (_model_luma(frame) if exact else luma(frame)) if y is None else y
    out = down @ (y @ across)
    return out.reshape(tops.size, rows.shape[0], lefts.size, cols.shape[0]).transpose(0, 2, 1, 3)


#: ``window_hashes``' banded operators of the last few window grids (a search's coarse grids are the same for every
#: file of a frame size: ~0.1 ms a grid and a frame to build, with the DCT products, issue #30); ~0.5 MB each.
_KEPT_OPS: dict[tuple, tuple[np.ndarray, np.ndarray, int]] = {}
_KEPT_OPS_MAX = 8


def _window_ops(h: int, w: int, height: int, width: int, tops: np.ndarray, lefts: np.ndarray, both: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """(down, across, columns a window) of ``window_hashes``' product: its DCT-Jarosz operators (``both``: the columns' as
    is and reversed side by side) placed at ``tops`` and ``lefts`` of an ``h`` x ``w`` frame; the last few kept."""
    key = (h, w, height, width, both, tops.tobytes(), lefts.tobytes())
    found = _KEPT_OPS.pop(key, None)
    if found is None:
        dct = dct_matrix_np().astype(np.float32)
        rows = dct @ jarosz_operator_np(height).astype(np.float32)  # [16, height]
        cols = dct @ jarosz_operator_np(width).astype(np.float32)  # [16, width]
        cols = np.concatenate([cols, cols[:, ::-1]]) if both else cols  # [32, width]: as is | mirrored
        found = (*_banded_ops(rows, cols, tops, lefts, h, w), cols.shape[0])
        for a in found[:2]:
            a.flags.writeable = False
        while len(_KEPT_OPS) >= _KEPT_OPS_MAX:
            _KEPT_OPS.pop(next(iter(_KEPT_OPS)))
    _KEPT_OPS[key] = found  # most recent last
    return found


def _dihedral(c: np.ndarray) -> np.ndarray:
    """[..., 16, 16] -> [..., 8, 16, 16] in ``DIHEDRAL_NAMES`` order, the hash's own variants as the hash model and
    ``vscan.bank.banded_hash`` compute them (mirroring an axis: signs; a quarter turn: transpose): 20-60 bits from
    the turned picture's own PDQ, where ``_turned`` is exact."""
    sh, sv = _FLIP_SIGNS, _FLIP_SIGNS[:, None]
    return _turned(c, c * sh, c * sv, c * sh * sv)


def _turned(c: np.ndarray, ch: np.ndarray, cv: np.ndarray, chv: np.ndarray) -> np.ndarray:
    """[..., 8, 16, 16] in ``DIHEDRAL_NAMES`` order from the DCT of the window as is (``c``), mirrored left-right
    (``ch``), upside down (``cv``) and both (``chv``): a quarter turn or a transpose is a transpose of one of them
    (PDQ of a transposed picture is the transposed 64 x 64 picture's, exactly)."""
    t = lambda x: np.swapaxes(x, -1, -2)  # noqa: E731
    return np.stack([c, t(ch), chv, t(cv), ch, cv, t(c), t(chv)], axis=-3)


def _picture64(frame: np.ndarray, rows: np.ndarray, cols: np.ndarray, tops: np.ndarray, lefts: np.ndarray,
               y: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """[len(tops), len(lefts), 64, 64]: PDQ's 64 x 64 picture of each window (``rows`` [64, height], ``cols`` [64, width]
    Jarosz operators, reversed for a mirrored window); ``y``: the frame's ``_model_luma``, when the caller has it."""
    if np.count_nonzero(rows, axis=1).max() == 1 and np.count_nonzero(cols, axis=1).max() == 1:
        # Up to 128 px a side the filter is 1 px wide: the 64 x 64 picture is the window's luma at the cell centres (no product at all).
        down, across = tops[:, None] + rows.argmax(axis=1), lefts[:, None] + cols.argmax(axis=1)  # [ny, 64], [nx, 64]
        y = _model_luma(frame) if y is None else y
        # The rows first, then the columns of those ([ny, 64, nx, 64]): ~5x faster than one 4-D fancy index (0.3 ms, not 1.5, for 49 windows).
        return np.ascontiguousarray(y[down][:, :, across].transpose(0, 2, 1, 3))
    return _banded(frame, rows, cols, tops, lefts, exact=True)


def _floored_steps(a: np.ndarray, axis: int) -> np.ndarray:
    """The reference quality's sum of floor(|step| * 100 / 255) along ``axis`` (-2: down, -1: across) of [..., 64, 64]
    pictures, in place on one temporary (the same float32 operations in the same order: the same values)."""
    d = np.diff(a, axis=axis)
    np.abs(d, out=d)
    d *= np.float32(100.0)
    d /= np.float32(255.0)
    np.floor(d, out=d)
    return d.sum(axis=(-2, -1))


def window_pdq(frame: np.ndarray, height: int, width: int, tops: np.ndarray, lefts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hashes uint8 [len(tops), len(lefts), 8, 32], quality int32 [len(tops),
    len(lefts)]): what the hash model gives for ``frame``'s (uint8 [H, W, 3])
    ``height`` x ``width`` window at each (top, left) cut out, all 8 dihedral
    variants (``DIHEDRAL_NAMES`` order) and PDQ quality."""
    tops, lefts = _check(frame, height, width, tops, lefts)
    rows, cols = jarosz_operator_np(height).astype(np.float32), jarosz_operator_np(width).astype(np.float32)
    y = _model_luma(frame) if height <= 128 and width <= 128 else None  # the cell-centre pictures below share it
    a64 = _picture64(frame, rows, cols, tops, lefts, y)
    dv, dh = _floored_steps(a64, -2), _floored_steps(a64, -1)
    quality = np.minimum(np.floor((dv + dh) / np.float32(90.0)), 100).astype(np.int32)  # the reference's integer arithmetic
    dct = dct_matrix_np().astype(np.float32)
    flipped = [_picture64(frame, r, c, tops, lefts, y) for r, c in ((rows, cols[:, ::-1]), (rows[:, ::-1], cols), (rows[:, ::-1], cols[:, ::-1]))]
    coeffs = [dct @ a @ dct.T for a in (a64, *flipped)]  # [ny, nx, 16, 16] each: as is, mirrored, upside down, both
    return _pack(_bits(_turned(*coeffs))), quality


def window_hashes(frame: np.ndarray, height: int, width: int, tops: np.ndarray, lefts: np.ndarray, *, mirrored: bool = True,
                  exact: bool = True, y: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """uint8 [len(tops), len(lefts), 1 or 2, 32]: PDQ of ``frame``'s (uint8
    [H, W, 3]) ``height`` x ``width`` window at each (top, left), as is and
    (``mirrored``) of the window mirrored left-right (its column operator
    reversed, in the same product: not the hash's own mirror, 20-40 bits off).
    ``exact`` False: the mirrored one is the hash's own mirror (its DCT's odd
    columns negated: no second product, half the time; a search's coarse pass).
    ``y``: ``vscan.frames.luma.luma(frame)``, where the caller has it (several grids of one frame)."""
    tops, lefts = _check(frame, height, width, tops, lefts)
    h, w = frame.shape[:2]
    both = mirrored and exact
    down, across, n_cols = _window_ops(h, w, height, width, tops, lefts, both)
    y = luma(frame) if y is None else y
    out = (down @ (y @ across)).reshape(tops.size, 16, lefts.size, n_cols).transpose(0, 2, 1, 3)  # _banded's product
    if not both:
        return np.stack([_pack(_bits(c)) for c in ([out, out * _FLIP_SIGNS] if mirrored else [out])], axis=2)
    return np.stack([_pack(_bits(np.ascontiguousarray(out[..., :16]))), _pack(_bits(np.ascontiguousarray(out[..., 16:])))], axis=2)

"""The hash model's PDQ bits and quality for a build's extra rows, without its dense products.

A ``--rows full`` build hashes ~16 extra rows of every frame (borders removed, 10 centre crops, the
9:16 strip, turned copies, grid windows), each from its own 512 px pixels: 56% of the build's CPU
(stop 40). The hash model (``vscan.kernels.pdq``, its ONNX export) downsamples a frame to 64 x 64 as
``row_op @ (luma @ col_op.T)`` with dense Jarosz operators, ``col_op`` [64, W] and ``row_op`` [64, H];
each of their rows holds 3-7 non-zero weights in one run (the filter is a few pixels wide), so ~95%
of the model's multiply-adds are by zero. ``banded_hash`` does the same two products over each row's
run only, in the model's order (the column pass first, each sum taken in increasing index, float32,
nothing fused), then the model's quality, DCT and dihedral variants (``vscan.frames.window_hash``).
Adding a product by zero leaves a float32 sum as it is, so the bits and quality are the model's
(``tests/test_banded_hash.py`` compares them on real frames and on every row of a build).

``BandedHasher`` wraps a build's ``PDQHasher``: on the CPU its ``hash_frames`` is ``banded_hash``; on CUDA
the model runs as before. ``nogil``: the build hashes sources in threads.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numba
import numpy as np

from vscan.hashing.pdq import HashBatch, PDQHasher
from vscan.hashing.pdq_ops import LUMA, PDQ_MIN_SIDE, dct_matrix_np, jarosz_operator_np

__all__ = ["AsIs", "banded_hash", "banded_boxes", "frame_luma", "turned_hashes", "BandedHasher"]


@functools.lru_cache(maxsize=1024)
def _band(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Jarosz operator of length ``n`` (float32 [64, n], the model's) as runs: (values [64, width], first index,
    run length) of each row; a run holds every index from the row's first non-zero weight to its last. Kept for
    1,024 lengths (~3 KB each): a full build's source needs ~33 (crops, windows, grid windows, turns), and two
    sources of other sizes hashed at once in a cache of 64 evicted every length before its next use (stop 44:
    ``_jarosz_operator`` was 9% of the extra rows' thread in a 4-source build)."""
    op = jarosz_operator_np(n).astype(np.float32)
    first = np.argmax(op != 0, axis=1)
    last = n - 1 - np.argmax(op[:, ::-1] != 0, axis=1)
    count = (last - first + 1).astype(np.int64)
    values = np.zeros((64, int(count.max())), np.float32)
    for i in range(64):
        values[i, : count[i]] = op[i, first[i] : last[i] + 1]
    for a in (values, first, count):
        a.flags.writeable = False
    return values, first.astype(np.int64), count


@numba.njit(cache=True, nogil=True)
def _luma(rgb, l0, l1, l2, out):  # pragma: no cover - compiled
    """``out`` (float32 [N, W, H]: transposed, a column of pixels contiguous) = the model's luma of uint8 ``rgb``
    [N, H, W, 3] (or [N, H, W, 1] luma pictures as grey RGB), pixel by pixel (r*l0 + g*l1 + b*l2), in bands of 16 rows: each row's luma first (its bytes read
    in order: SIMD), then the band written column by column (16 contiguous floats of ``out`` a column). 0.30 ->
    0.15 ms a 512 x 341 frame against each pixel read across the band (stop 44), 0.53 ms row by row."""
    n, h, w, c = rgb.shape
    band = np.empty((16, w), np.float32)
    for f in range(n):
        for r0 in range(0, h, 16):
            r1 = min(h, r0 + 16)
            for r in range(r0, r1):
                src, dst = rgb[f, r].reshape(w * c), band[r - r0]
                if c == 1:  # a luma picture: as grey RGB (r = g = b = the value)
                    for k in range(w):
                        v = np.float32(src[k])
                        dst[k] = v * l0 + v * l1 + v * l2
                else:
                    for k in range(w):
                        dst[k] = np.float32(src[3 * k]) * l0 + np.float32(src[3 * k + 1]) * l1 + np.float32(src[3 * k + 2]) * l2
            for k in range(w):
                col = out[f, k, r0:r1]
                for r in range(r1 - r0):
                    col[r] = band[r, k]


@numba.njit(cache=True, nogil=True)
def _downsample(luma, y0, x0, rv, rs, rn, cv, cs, cn, half, out):  # pragma: no cover - compiled
    """``out[i]`` (float32 [64, 64]) = row_op @ (box @ col_op.T) over the operators' runs, in the model's order, where
    box is frame i's [h, w] window at (``y0``, ``x0``) of ``luma`` (transposed: [N, W, H]; h = ``half``'s columns,
    w = ``col_op``'s length); ``half`` [64, h]: float32 scratch, the column pass transposed. A window's luma is its
    frame's luma cut there: one luma serves every window. Each sum is taken as the model's (from 0, in increasing
    index, one product added at a time); the column pass runs over a column's pixels at once (contiguous: SIMD).
    Both passes index views of their rows (slices), not the arrays with offsets: their loops vectorise without
    negative-index checks (stop 44: 0.69 -> 0.39 ms a frame for a full build's 12 boxes of a 512 x 341 frame)."""
    n, h = luma.shape[0], half.shape[1]
    for f in range(n):
        for j in range(64):
            dst = half[j]
            for r in range(h):
                dst[r] = np.float32(0.0)
            for m in range(cn[j]):
                weight, src = cv[j, m], luma[f, x0 + cs[j] + m, y0 : y0 + h]
                for r in range(h):
                    dst[r] = dst[r] + src[r] * weight
        res = out[f]
        for i in range(64):
            weights, first, count = rv[i], rs[i], rn[i]
            for j in range(64):
                run = half[j, first : first + count]
                acc = np.float32(0.0)
                for m in range(count):
                    acc = acc + weights[m] * run[m]
                res[i, j] = acc


@numba.njit(cache=True, nogil=True)
def _downsample_lanes(pixels, cw, rv, rs, rn, cv, cs, cn, half, out):  # pragma: no cover - compiled
    """``_downsample`` of N frames' whole [ch, cw] lumas given pixel by pixel, the frames side by side (``pixels``
    float32 [ch * cw, N]: ``vscan.kernels.rotate_crop.turned_luma``'s): each sum over the same products in the same
    order as ``_downsample``'s, every frame's at once (contiguous: SIMD); ``half``: float32 [64, ch, N] scratch."""
    n, ch = pixels.shape[1], half.shape[1]
    acc = np.empty(n, np.float32)
    for j in range(64):
        for r in range(ch):
            for f in range(n):
                half[j, r, f] = np.float32(0.0)
        for m in range(cn[j]):
            col, weight = cs[j] + m, cv[j, m]
            for r in range(ch):
                src, dst = pixels[r * cw + col], half[j, r]
                for f in range(n):
                    dst[f] = dst[f] + src[f] * weight
    for i in range(64):
        for j in range(64):
            for f in range(n):
                acc[f] = np.float32(0.0)
            for m in range(rn[i]):
                weight, row = rv[i, m], half[j, rs[i] + m]
                for f in range(n):
                    acc[f] = acc[f] + weight * row[f]
            for f in range(n):
                out[f, i, j] = acc[f]


@numba.njit(cache=True, nogil=True)
def _downsample_turned(luma, y0, x0, w, rv, rs, rn, cv, cs, cn, half, half_h, out):  # pragma: no cover - compiled
    """``out[0, i]`` = ``_downsample``'s picture of frame i's window, ``out[1, i]`` / ``out[2, i]`` / ``out[3, i]`` that of
    the ``w`` px wide window mirrored left-right / upside down / both, each sum the products ``_downsample`` takes on the
    turned window, in its order (the turned window's own bits): the mirrored column pass reads the window's columns
    from its right edge; turning upside down reverses a column pass's rows. ``half``, ``half_h``: float32 [h, 64]
    scratch, the column passes laid row by row, so the row passes run over 64 contiguous columns at once (SIMD: 4
    pictures in ~2.4x ``_downsample``'s time, where its one-sum-at-a-time row pass would take 4x)."""
    n, h = luma.shape[0], half.shape[0]
    col, col_h = np.empty(h, np.float32), np.empty(h, np.float32)
    acc = np.empty(64, np.float32)
    for f in range(n):
        for j in range(64):
            col[:], col_h[:] = np.float32(0.0), np.float32(0.0)
            for m in range(cn[j]):
                weight = cv[j, m]
                src, src_h = luma[f, x0 + cs[j] + m, y0 : y0 + h], luma[f, x0 + w - 1 - cs[j] - m, y0 : y0 + h]
                for r in range(h):
                    col[r] = col[r] + src[r] * weight
                    col_h[r] = col_h[r] + src_h[r] * weight
            half[:, j], half_h[:, j] = col, col_h
        for k in range(4):
            cols, res = half_h if k % 2 else half, out[k, f]
            for i in range(64):
                weights, first, count = rv[i], rs[i], rn[i]
                acc[:] = np.float32(0.0)
                for m in range(count):
                    weight = weights[m]
                    row = cols[first + m] if k < 2 else cols[h - 1 - first - m]
                    for j in range(64):
                        acc[j] = acc[j] + weight * row[j]
                res[i] = acc


@numba.njit(cache=True, nogil=True)
def _downsample_lanes_turned(pixels, cw, rv, rs, rn, cv, cs, cn, half, half_h, out):  # pragma: no cover - compiled
    """``_downsample_lanes`` of the N frames as they are, mirrored left-right, upside down and both (``out`` [4, N, 64, 64]),
    each sum the products ``_downsample_lanes`` takes on the turned frames, in its order (``_downsample_turned``)."""
    n, ch = pixels.shape[1], half.shape[1]
    acc = np.empty(n, np.float32)
    for j in range(64):
        half[j], half_h[j] = np.float32(0.0), np.float32(0.0)
        for m in range(cn[j]):
            col, weight = cs[j] + m, cv[j, m]
            for r in range(ch):
                src, src_h, dst, dst_h = pixels[r * cw + col], pixels[r * cw + cw - 1 - col], half[j, r], half_h[j, r]
                for f in range(n):
                    dst[f] = dst[f] + src[f] * weight
                    dst_h[f] = dst_h[f] + src_h[f] * weight
    for k in range(4):
        cols = half_h if k % 2 else half
        for i in range(64):
            for j in range(64):
                acc[:] = np.float32(0.0)
                for m in range(rn[i]):
                    weight, row = rv[i, m], cols[j, rs[i] + m] if k < 2 else cols[j, ch - 1 - rs[i] - m]
                    for f in range(n):
                        acc[f] = acc[f] + weight * row[f]
                out[k, :, i, j] = acc


def _hashable(frames: np.ndarray) -> bool:
    """Frames the model hashes (uint8 [N >= 1, H, W, 3], both sides >= PDQ_MIN_SIDE), or their luma as a build's extra
    rows take it ([N, H, W, 1]: ``vscan.decode.pyav_reuse._turned_luma``); the model answers the others itself."""
    return frames.ndim == 4 and frames.shape[-1] in (1, 3) and frames.dtype == np.uint8 and len(frames) > 0 and min(frames.shape[1:3]) >= PDQ_MIN_SIDE


def _model_input(frames: np.ndarray) -> np.ndarray:
    """``frames`` as the model takes them: luma pictures ([N, H, W, 1]) as grey RGB (each channel the luma: the
    model's luma of it is the luma itself), RGB as they are."""
    return np.repeat(frames, 3, axis=-1) if frames.ndim == 4 and frames.shape[-1] == 1 else frames


def frame_luma(frames: np.ndarray) -> np.ndarray:
    """float32 [N, W, H] (transposed): the model's luma of uint8 [N, H, W, 3] RGB frames (``banded_boxes`` cuts every
    window from it); of [N, H, W, 1] luma pictures, that of their grey RGB (each channel the value: v*l0 + v*l1 + v*l2,
    as the model takes ``_model_input``), so a luma picture gets the model's bits of its grey RGB."""
    n, h, w = frames.shape[:3]
    out = np.empty((n, w, h), np.float32)
    _luma(np.ascontiguousarray(frames), *(np.float32(v) for v in LUMA), out)
    return out


@numba.njit(cache=True, nogil=True)
def _quality(a64, out):  # pragma: no cover - compiled
    """``out[i]`` = the model's quality of float32 [64, 64] ``a64[i]`` (``vscan.frames.window_hash.window_pdq``'s
    arithmetic: each gradient floor(|a - b| * 100 / 255) in float32, floor(sum / 90) capped at 100). The gradients are
    whole numbers under 101 and there are 8,064 of them: every partial sum is a whole number under 2**24, exact in
    float32 in any order, so summing them 64 lanes at a time gives numpy's sum (1.9 against 11.4 us a row, stop 44)."""
    scale, div = np.float32(100.0), np.float32(255.0)
    lanes = np.empty(64, np.float32)
    for f in range(a64.shape[0]):
        a = a64[f]
        lanes[:] = np.float32(0.0)
        for i in range(63):
            above, below = a[i], a[i + 1]
            for j in range(64):
                lanes[j] += np.floor(np.abs(below[j] - above[j]) * scale / div)
        for i in range(64):
            row = a[i]
            for j in range(63):
                lanes[j] += np.floor(np.abs(row[j + 1] - row[j]) * scale / div)
        total = np.float32(0.0)
        for j in range(64):
            total += lanes[j]
        out[f] = min(np.floor(total / np.float32(90.0)), np.float32(100.0))


@numba.njit(cache=True, nogil=True)
def _pack_above(flat, median, perm, out):  # pragma: no cover - compiled
    """``out[k]`` (uint8 [32]) = ``window_hash._pack(flat[k] > median[k])``: bit b of byte m is value ``perm[8m + b]``."""
    for k in range(flat.shape[0]):
        values, cut = flat[k], median[k]
        for m in range(32):
            byte = 0
            for b in range(8):
                if values[perm[m * 8 + b]] > cut:
                    byte |= 1 << b
            out[k, m] = byte


#: Dihedral variant k (``DIHEDRAL_NAMES`` order) holds the values of variant ``_SAME_VALUES[k]`` transposed: the same
#: median (c / t(c), t(ch) / ch, chv / t(chv), t(cv) / cv: ``window_hash._turned``).
_SAME_VALUES = np.array([0, 1, 2, 3, 1, 3, 0, 2])


class AsIs(NamedTuple):
    """``HashBatch``'s first variant alone (the picture as it is): ``hashes`` uint8 [N, 1, 32], ``quality`` int32 [N].
    A build's extra rows keep no other variant (``vscan.hashing.media._ExtraRows``)."""

    hashes: np.ndarray
    quality: np.ndarray


def _finish(a64: np.ndarray, variants: bool = True) -> "HashBatch | AsIs":
    """The model's quality (``vscan.kernels.pdq.pdq_quality``, as ``vscan.frames.window_hash.window_pdq``), DCT and
    dihedral variants of float32 downsampled lumas: [N, 4, 64, 64], each picture as is, mirrored left-right, upside
    down and both (``_downsample_turned``), with ``variants``; [N, 64, 64], as is, without. The same DCT products as
    ``window_pdq``, the same median (the 128th smallest of a variant's 256 values) and bits, each variant's median taken
    once for it and its transpose, the bits packed in one compiled pass (12.5 -> 6.4 us a row against
    ``_pack(_bits(...))``); variant k is the PDQ of the picture under edit k (``window_hash._turned``), as the model's.
    ``variants`` False: the first variant alone (``AsIs``, the same bits: 10.1 -> 4.3 us a row)."""
    from vscan.frames.window_hash import _turned
    from vscan.hashing.pdq_ops import pack_permutation

    n = a64.shape[0]
    quality = np.empty(n, np.int32)
    _quality(np.ascontiguousarray(a64[:, 0]) if variants else a64, quality)
    dct = dct_matrix_np().astype(np.float32)
    k = 8 if variants else 1
    coeffs = dct @ a64 @ dct.T
    flat = np.ascontiguousarray(_turned(*np.moveaxis(coeffs, 1, 0)) if variants else coeffs).reshape(n, k, 256)
    median = np.partition(flat[:, :4], 127, axis=-1)[..., 127][:, _SAME_VALUES[:k]]  # the reference's lower median
    hashes = np.empty((n, k, 32), np.uint8)
    _pack_above(flat.reshape(n * k, 256), np.ascontiguousarray(median).reshape(n * k), pack_permutation()[0], hashes.reshape(n * k, 32))
    return HashBatch(hashes, quality) if variants else AsIs(hashes, quality)


def _pictures(a64: np.ndarray) -> np.ndarray:
    """[boxes, 4 or 1, N, 64, 64] -> ``_finish``'s [boxes * N, 4, 64, 64] (or [boxes * N, 64, 64]), box by box."""
    k, t, n = a64.shape[:3]
    return np.ascontiguousarray(a64.transpose(0, 2, 1, 3, 4)).reshape(k * n, t, 64, 64) if t == 4 else a64.reshape(k * n, 64, 64)


def banded_boxes(luma: np.ndarray, boxes: "list[tuple[int, int, int, int]]", variants: bool = True) -> "list[HashBatch] | list[AsIs]":
    """``banded_hash`` of each box (y0, x0, h, w) of the frames whose luma is ``luma`` (``frame_luma``): the same bits
    and quality as ``banded_hash(frames[:, y0 : y0 + h, x0 : x0 + w])``, each window's luma never computed again;
    ``variants`` False: their first variant alone (``AsIs``)."""
    n, fw, fh = luma.shape
    a64 = np.empty((len(boxes), 4 if variants else 1, n, 64, 64), np.float32)
    for k, (y0, x0, h, w) in enumerate(boxes):
        if not (0 <= y0 and 0 <= x0 and min(h, w) >= PDQ_MIN_SIDE and y0 + h <= fh and x0 + w <= fw):
            raise ValueError(f"Box {(y0, x0, h, w)} is not inside frames of {fh} x {fw} or has a side under {PDQ_MIN_SIDE}")
        if variants:  # the box turned and mirrored too: the variants are their own bits
            halves = np.empty((2, int(h), 64), np.float32)
            _downsample_turned(luma, int(y0), int(x0), int(w), *_band(int(h)), *_band(int(w)), halves[0], halves[1], a64[k])
        else:
            _downsample(luma, int(y0), int(x0), *_band(int(h)), *_band(int(w)), np.empty((64, int(h)), np.float32), a64[k, 0])
    # one quality, DCT and variants pass for every box (each frame's own arithmetic: its bits as when hashed alone)
    done = _finish(_pictures(a64), variants)
    return [type(done)(done.hashes[k * n : (k + 1) * n], done.quality[k * n : (k + 1) * n]) for k in range(len(boxes))]


def banded_hash(frames: np.ndarray) -> HashBatch:
    """``PDQHasher.hash_frames``' answer (uint8 [N, 8, 32] in ``DIHEDRAL_NAMES`` order, quality int32 [N]) for
    uint8 [N, H, W, 3] RGB frames of one size, N >= 1, both sides >= ``PDQ_MIN_SIDE`` (``BandedHasher`` hands
    the model anything else), from the operators' runs (module docstring)."""
    if not _hashable(frames):
        raise ValueError(f"Expected uint8 frames [N >= 1, H, W, 3] of sides >= {PDQ_MIN_SIDE}, got {frames.dtype} {frames.shape}")
    n, h, w, _ = frames.shape
    return banded_boxes(frame_luma(frames), [(0, 0, h, w)])[0]


def turned_hashes(frames: np.ndarray, degrees: "list[float]", variants: bool = True) -> "list[HashBatch] | list[AsIs] | None":
    """``banded_hash(vscan.frames.windows.rotate_crop(frames, d))`` for each ``d`` of ``degrees``, the same bits and
    quality, from the turned pixels' luma itself (``vscan.kernels.rotate_crop.turned_luma``: the frames laid side by
    side once for every turn); None where ``banded_hash`` would not take the turned frames (the caller hashes them);
    ``variants`` False: their first variant alone (``AsIs``)."""
    from vscan.frames.windows import _rotation_map  # the turn's map, as rotate_crop's
    from vscan.kernels.rotate_crop import frames_last, turned_luma

    if not _hashable(frames):
        return None
    n, h, w, c = frames.shape
    maps = [_rotation_map(h, w, float(d)) for d in degrees]
    if any(min(m[0], m[1]) < PDQ_MIN_SIDE for m in maps):
        return None
    lanes = np.empty((h * w, c * n), np.uint8)
    frames_last(frames, lanes)
    a64 = np.empty((len(maps), 4 if variants else 1, n, 64, 64), np.float32)
    for k, (ch, cw, at, fx, fy) in enumerate(maps):
        pixels = np.empty((ch * cw, n), np.float32)
        turned_luma(lanes, n, at, fx, fy, w, *(np.float32(v) for v in LUMA), pixels)
        scratch = np.empty((64, ch, n), np.float32)
        if variants:
            _downsample_lanes_turned(pixels, cw, *_band(ch), *_band(cw), scratch, np.empty_like(scratch), a64[k])
        else:
            _downsample_lanes(pixels, cw, *_band(ch), *_band(cw), scratch, a64[k, 0])
    done = _finish(_pictures(a64), variants)  # as banded_boxes: one quality, DCT and variants pass for every turn
    return [type(done)(done.hashes[k * n : (k + 1) * n], done.quality[k * n : (k + 1) * n]) for k in range(len(maps))]


class BandedHasher:
    """A build's ``PDQHasher`` whose ``hash_frames`` is ``banded_hash`` on the CPU (the model's bits, ~8x less CPU
    on 512 px crops); on CUDA the model itself."""

    def __init__(self, hasher: PDQHasher) -> None:
        self.hasher = hasher
        self.device = hasher.device

    def hash_frames(self, frames: np.ndarray) -> HashBatch:
        if self.device != "cpu" or not _hashable(frames):  # CUDA, or what the model checks and answers itself
            return self.hasher.hash_frames(_model_input(frames))
        return banded_hash(frames)

    def hash_detailed(self, frames: np.ndarray) -> HashBatch:
        """``hash_frames`` as the model answers it, bit for bit: ``banded_hash``'s bits and quality for the frames with
        any detail (quality > 0: the same as the model's, tested), the model's own for flat ones (quality 0: their
        coefficients are rounding noise, where the two may differ). A full build's frame rows: 0.55 -> 0.10 ms a
        256 px frame on the CPU (stop 44), each row the one a scan's model gives the same frame."""
        if self.device != "cpu" or not _hashable(frames):
            return self.hasher.hash_frames(_model_input(frames))
        got = banded_hash(frames)
        flat = np.flatnonzero(got.quality <= 0)
        if flat.size:
            model = self.hasher.hash_frames(np.ascontiguousarray(_model_input(frames[flat])))
            got.hashes[flat], got.quality[flat] = model.hashes, model.quality
        return got

    def hash_boxes(self, frames: np.ndarray, boxes: "list[tuple[int, int, int, int]]") -> "list[AsIs] | None":
        """``hash_frames`` of each box (y0, x0, h, w) of ``frames``, the frames' luma computed once for all (``banded_boxes``),
        the first variant alone (``AsIs``: an extra row is the picture as it is); None where ``hash_frames`` would not be
        ``banded_hash`` (CUDA, frames the model answers itself)."""
        if self.device != "cpu" or not _hashable(frames) or any(min(b[2], b[3]) < PDQ_MIN_SIDE for b in boxes):
            return None
        return banded_boxes(frame_luma(frames), boxes, variants=False)

    def hash_turned(self, frames: np.ndarray, degrees: "list[float]") -> "list[AsIs] | None":
        """``hash_frames`` of each turned copy of ``frames`` (``rotate_crop(frames, d)`` for ``d`` in ``degrees``) from its
        luma (``turned_hashes``), the first variant alone (``AsIs``); None on CUDA and where ``hash_frames`` would not be
        ``banded_hash``."""
        return turned_hashes(frames, degrees, variants=False) if self.device == "cpu" else None

"""vscan.frames.resize in place (issue 30): the border tap's crop back to the
square is the same bits as the per-step float form it replaced (kept below as
the reference), on real sample frames and every crop shape the tap makes, so
bank rows built before and scans after still meet at distance 0; and it holds
one float64 buffer, not a float copy of the frames plus four temporaries."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from vscan.decode import Keyframes, PyAVDecoder
from vscan.frames.borders import detect_borders
from vscan.frames.resize import _taps, resize_bilinear, to_square

_F32 = np.float32


def _reference_axis(x: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    """The resize as it was (stop 34): each step a float64 temporary, rounded to float32."""
    index, weight = _taps(x.shape[axis], n_out)
    shape = [1] * x.ndim
    shape[axis] = n_out
    acc = np.take(x, index[:, 0], axis=axis) * weight[:, 0].reshape(shape)
    for k in range(1, index.shape[1]):
        term = np.take(x, index[:, k], axis=axis)
        acc = (term.astype(np.float64) * weight[:, k].astype(np.float64).reshape(shape) + acc).astype(_F32)
    return acc


def _reference(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    if rgb.shape[1:3] == (height, width):
        return rgb
    x = rgb.astype(_F32)
    if x.shape[2] != width:
        x = _reference_axis(x, 2, width)
    if x.shape[1] != height:
        x = _reference_axis(x, 1, height)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def sample_frames(vpdq_dir) -> dict[str, np.ndarray]:
    """Keyframes of the real sample videos at the scan's 256 px square (as the scan decodes them)."""
    if not vpdq_dir.is_dir():
        pytest.skip("needs ../shared/data/vpdq")
    decoder = PyAVDecoder()
    out = {}
    for name in ("chair-19-sd-bar", "pattern-sd-grey-bar", "doorknob-hd-no-bar", "chair-22-with-small-logo-bar"):
        batches = decoder.iter_frames(vpdq_dir / f"{name}.mp4", Keyframes(), size=(256, 256))
        out[name] = np.concatenate([b.rgb for b in batches])[:4]
    return out


def test_border_crops_of_real_frames_are_the_reference_bits(sample_frames):
    checked = 0
    for name, frames in sample_frames.items():
        box = detect_borders(frames)
        crops = [box.apply(frames)] if not box.is_empty else []
        # every kind of box the tap makes: letterbox, pillarbox, window box, thin and thick bars, odd sizes
        for top, bottom, left, right in ((17, 17, 0, 0), (0, 0, 31, 30), (9, 40, 13, 2), (1, 0, 0, 0), (80, 77, 0, 0), (0, 0, 88, 89)):
            crops.append(np.ascontiguousarray(frames[:, top : 256 - bottom, left : 256 - right]))
        for crop in crops:
            np.testing.assert_array_equal(to_square(crop, 256), _reference(crop, 256, 256), err_msg=f"{name} {crop.shape}")
            checked += 1
    assert checked >= 28


@pytest.mark.parametrize("shape, size", [((3, 256, 256, 3), (64, 64)), ((2, 300, 500, 3), (256, 256)), ((2, 120, 90, 3), (256, 256)),
                                         ((1, 256, 256, 3), (90, 200)), ((2, 37, 511, 3), (256, 256)), ((1, 64, 64, 1), (33, 97))])  # fmt: skip
def test_shrinking_enlarging_and_mixed_are_the_reference_bits(shape, size):
    """Region search shrinks with it too (vscan.frames.regions): random pixels, every tap count."""
    rgb = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(resize_bilinear(rgb, *size), _reference(rgb, *size))


def test_holds_one_float64_buffer_not_float_copies_of_the_frames():
    """A letterboxed file's 16 first-pass frames cropped to 256 x 222: at most
    the float32 output, one float64 step buffer and a uint8 gather (~3.3x the
    float32 output's bytes) at a time; the per-step form held ~7x."""
    rgb = np.random.default_rng(3).integers(0, 256, (16, 222, 256, 3), dtype=np.uint8)
    out_f32_bytes = 16 * 256 * 256 * 3 * 4
    to_square(rgb[:1], 256)  # the taps are cached
    tracemalloc.start()
    try:
        to_square(rgb, 256)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 3.6 * out_f32_bytes, f"peak {peak / out_f32_bytes:.2f}x the float32 output"

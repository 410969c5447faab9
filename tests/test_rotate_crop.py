"""``rotate_crop``'s numba blend (vscan.kernels.rotate_crop) gives the bytes of the plain numpy formula
it replaced (bank rows ``rot+4``/``rot-4`` must not move between versions), on noise, gradients and a
real frame, for any size, channel count and angle, including the inscribed box's edge pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vscan.frames.windows import rotate_crop


def numpy_rotate_crop(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """The float64 numpy formula rotate_crop had until the kernel (the reference for its bytes)."""
    n, h, w, c = rgb.shape
    a = math.radians(abs(degrees))
    scale = 1.0 / (math.cos(a) + max(w / h, h / w) * math.sin(a))
    ch, cw = max(1, int(h * scale)), max(1, int(w * scale))
    ys, xs = np.mgrid[0:ch, 0:cw].astype(np.float32)
    ys, xs = ys - (ch - 1) / 2, xs - (cw - 1) / 2
    t = math.radians(degrees)
    sx = math.cos(t) * xs - math.sin(t) * ys + (w - 1) / 2
    sy = math.sin(t) * xs + math.cos(t) * ys + (h - 1) / 2
    x0, y0 = np.clip(np.floor(sx).astype(np.int64), 0, w - 2), np.clip(np.floor(sy).astype(np.int64), 0, h - 2)
    fx, fy = (sx - x0)[None, ..., None], (sy - y0)[None, ..., None]
    src = rgb.astype(np.float32)
    top = src[:, y0, x0] * (1 - fx) + src[:, y0, x0 + 1] * fx
    bottom = src[:, y0 + 1, x0] * (1 - fx) + src[:, y0 + 1, x0 + 1] * fx
    return np.clip(np.rint(top * (1 - fy) + bottom * fy), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(3, 90, 160, 3), (2, 160, 90, 3), (1, 5, 7, 3), (2, 64, 64, 1), (1, 271, 481, 3)])
@pytest.mark.parametrize("degrees", [4.0, -4.0, 12.0, -0.5, 45.0])
def test_the_same_bytes_as_the_numpy_formula(shape, degrees):
    rng = np.random.default_rng(abs(hash((shape, degrees))) % 2**32)
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    ramp = (np.add.outer(np.arange(shape[1]) * 3, np.arange(shape[2]) * 5) % 256).astype(np.uint8)
    ramp = np.broadcast_to(ramp[None, ..., None], shape).copy()
    for frames in (noise, ramp):
        got, want = rotate_crop(frames, degrees), numpy_rotate_crop(frames, degrees)
        assert got.dtype == np.uint8 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_a_real_frame_and_a_strided_batch(tmp_path):
    import av

    from vscan.bench import synth

    clip = synth.make_clip(tmp_path / "c.mp4", seed=5, seconds=1.0, size=(320, 180))
    with av.open(str(clip)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(6), container.decode(video=0))])
    strided = frames[:, :, ::2]  # not C-contiguous
    for batch in (frames, strided):
        np.testing.assert_array_equal(rotate_crop(batch, 4.0), numpy_rotate_crop(batch, 4.0))


def _turned_luma(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """float32 [N, cw, ch]: the turned copy's luma through the kernels ``turned_hashes`` uses (frames side by side)."""
    from vscan.frames.windows import _rotation_map
    from vscan.hashing.pdq_ops import LUMA
    from vscan.kernels.rotate_crop import frames_last, turned_luma

    n, h, w, c = rgb.shape
    ch, cw, at, fx, fy = _rotation_map(h, w, degrees)
    lanes = np.empty((h * w, c * n), np.uint8)
    frames_last(rgb, lanes)
    pixels = np.empty((ch * cw, n), np.float32)
    turned_luma(lanes, n, at, fx, fy, w, *(np.float32(v) for v in LUMA), pixels)
    return np.ascontiguousarray(pixels.reshape(ch, cw, n).transpose(2, 1, 0))


@pytest.mark.parametrize("shape", [(8, 90, 160, 3), (3, 160, 90, 3), (1, 5, 7, 3), (5, 271, 481, 3)])
@pytest.mark.parametrize("degrees", [4.0, -4.0, 12.0, -0.5])
def test_the_turned_luma_is_the_luma_of_the_turned_bytes(shape, degrees):
    """The bank build's turned copies (``vscan.bank.banded_hash.turned_hashes``) take their luma from the blend itself:
    byte for byte ``frame_luma(rotate_crop(...))``, and the same hash and quality, on noise and ramps, for any batch size,
    and on a view inside borders."""
    from vscan.bank.banded_hash import banded_hash, frame_luma, turned_hashes

    rng = np.random.default_rng(abs(hash((shape, degrees, 1))) % 2**32)
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    ramp = (np.add.outer(np.arange(shape[1]) * 3, np.arange(shape[2]) * 5) % 256).astype(np.uint8)
    ramp = np.broadcast_to(ramp[None, ..., None] + np.arange(3, dtype=np.uint8) * 40, shape).copy()
    for frames in (noise, ramp, noise[:, 1:-1, 2:]):
        want = frame_luma(rotate_crop(frames, degrees))
        got = _turned_luma(frames, degrees)
        assert got.dtype == np.float32 and got.tobytes() == want.tobytes()
        if min(want.shape[1:]) >= 5:  # and its hash, downsampled as the frames lie side by side (_downsample_lanes)
            turned, plain = turned_hashes(frames, [degrees])[0], banded_hash(rotate_crop(frames, degrees))
            np.testing.assert_array_equal(turned.hashes, plain.hashes)
            np.testing.assert_array_equal(turned.quality, plain.quality)


def test_turned_hashes_of_a_real_batch_are_the_hashes_of_the_turned_frames(tmp_path):
    import av

    from vscan.bank.banded_hash import BandedHasher, banded_hash, turned_hashes
    from vscan.bench import synth

    clip = synth.make_clip(tmp_path / "c.mp4", seed=7, seconds=1.0, size=(320, 180))
    with av.open(str(clip)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(8), container.decode(video=0))])
    inside = frames[:, 10:-12, 6:-4]  # a view inside borders, as a build hands it
    # ... and luma pictures ([N, H, W, 1]: a full build's, vscan.decode.pyav_reuse._turned_luma), hashed as grey RGB
    for batch in (inside, inside[:3], inside[..., 1:2], inside[:1, ..., :1]):
        got = turned_hashes(batch, [4.0, -4.0])
        assert got is not None and len(got) == 2
        for degrees, result in zip((4.0, -4.0), got):
            want = banded_hash(rotate_crop(batch, degrees))
            np.testing.assert_array_equal(result.hashes, want.hashes)
            np.testing.assert_array_equal(result.quality, want.quality)
        assert int((got[0].quality > 0).sum()) >= min(2, len(batch))
    assert turned_hashes(frames[:, :5, :7], [4.0]) is None  # turned (4 x 6), under the model's smallest side: the caller's
    assert turned_hashes(frames[..., :2], [4.0]) is None  # neither RGB nor luma

    class Cuda:
        device = "cuda"

    assert BandedHasher(Cuda()).hash_turned(inside, [4.0]) is None  # CUDA: the model hashes the turned pixels


def test_frames_last_lays_a_view_inside_borders_side_by_side():
    """``frames_last`` (numpy's strided copy): ``lanes[y * W + x, j * N + i]`` is ``rgb[i, y, x, j]`` for a batch's
    view inside its borders (not contiguous); lanes of another shape are refused, not written past."""
    from vscan.kernels.rotate_crop import frames_last

    rgb = np.random.default_rng(7).integers(0, 256, (3, 21, 30, 3), dtype=np.uint8)
    inside = rgb[:, 2:-3, 4:-1]
    n, h, w, c = inside.shape
    lanes = np.zeros((h * w, c * n), np.uint8)
    frames_last(inside, lanes)
    for i, y, x, j in [(0, 0, 0, 0), (2, h - 1, w - 1, 2), (1, 7, 11, 1), (2, 3, 0, 0), (0, h - 1, 5, 2)]:
        assert lanes[y * w + x, j * n + i] == inside[i, y, x, j]
    np.testing.assert_array_equal(lanes.reshape(h, w, c, n), np.moveaxis(inside, 0, -1))
    with pytest.raises(ValueError, match="Expected C-contiguous lanes"):
        frames_last(inside, np.zeros((h * w, c * n + 1), np.uint8))

"""A long file's sampled frames are not copied whole as floats on the model side (4,096 frames of a
68-minute file with a keyframe a second: the main process peaked at 5.9 GiB, 3.0 GiB now, same record).

Measured with tracemalloc, which numpy reports its arrays' data to: the peak while each function runs,
against the float copy the old code made (12 bytes a pixel of every frame), not a time."""

from __future__ import annotations

import tracemalloc

import numpy as np

from vscan.frames.luma import _CHUNK_PIXELS, _WEIGHTS, luma
from vscan.frames.translucent import _STD_CHUNK, _temporal_std, contrast_maps, detect_translucent


def _frames(n: int, h: int = 128, w: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _peak(fn, *args):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn(*args)
        return out, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_luma_of_many_frames_is_the_one_product_without_its_float_copy():
    frames = _frames(1500)  # 24.6M pixels: six times the piece size
    whole = frames.astype(np.float32) @ _WEIGHTS
    out, peak = _peak(luma, frames)
    assert out.dtype == np.float32 and np.array_equal(out, whole)
    assert np.array_equal(luma(frames[:, ::2, 1:-1]), frames[:, ::2, 1:-1].astype(np.float32) @ _WEIGHTS)  # a view
    pixels = frames.size // 3
    # the product (4 bytes a pixel) and one piece's float copy; the old float copy of the whole was 12 more a pixel
    assert peak < 4 * pixels + 16 * _CHUNK_PIXELS < 12 * pixels, f"{peak / pixels:.1f} bytes a pixel"


def test_temporal_std_in_pieces_agrees_with_numpys_and_holds_no_whole_luma():
    frames = _frames(400, seed=1)
    expect = luma(frames).std(axis=0)
    got, peak = _peak(_temporal_std, frames)
    assert got.dtype == np.float32 and got.shape == expect.shape
    assert np.abs(got - expect).max() <= 1e-4 * expect.max()
    assert peak < 4 * (frames.size // 3), f"{peak} bytes for {frames.size // 3} pixels (a whole luma: 4 a pixel)"
    few = frames[:_STD_CHUNK]
    assert np.array_equal(_temporal_std(few), luma(few).std(axis=0))  # short files: numpy's own, to the bit
    vert, horiz = contrast_maps(frames)
    assert vert.shape == (128, 129) and horiz.shape == (129, 128)


def test_a_translucent_box_over_a_long_file_is_found_with_its_rings_alone():
    """A steady half-transparent grey box over moving footage: found over 300 frames, the gain near the blend's."""
    rng = np.random.default_rng(3)
    n, h, w = 300, 96, 128
    base = rng.integers(0, 256, (n, h // 8, w // 8, 3), dtype=np.uint8).repeat(8, axis=1).repeat(8, axis=2)
    frames = base.copy()
    inside = frames[:, 24:72, 32:96].astype(np.float32)
    frames[:, 24:72, 32:96] = np.clip(0.5 * inside + 0.5 * 200, 0, 255).astype(np.uint8)
    found = detect_translucent(frames)
    assert found is not None
    (t, b, l, r), gain, _ = found
    assert abs(t - 24) <= 4 and abs(b - 72) <= 4 and abs(l - 32) <= 4 and abs(r - 96) <= 4
    assert np.allclose(gain, 0.5, atol=0.1)


def test_a_long_files_region_search_reads_luma_where_needed_with_the_same_values():
    """``find_regions`` held the luma of every frame of a long file (1 GiB for 4,096 frames of 256 px); a file
    of more than ``HELD_LUMA_FRAMES`` reads it where needed (``_Lumas``), each read the whole product's bits."""
    from vscan.runtime.region_search import HELD_LUMA_FRAMES, _Lumas

    frames = _frames(HELD_LUMA_FRAMES + 88, 90, 160, seed=4)
    whole = frames.astype(np.float32) @ _WEIGHTS
    lumas = _Lumas(frames)
    assert lumas.shape == whole.shape and len(lumas) == len(whole) and lumas.ndim == 3
    assert all(np.array_equal(a, b) for a, b in zip(lumas, whole))
    for key in (np.array([0, 5, 599]), (slice(None), slice(3, 20), slice(7, 44)), 3, (np.array([1, 2]), slice(5, 9), slice(3, 4)),
                (slice(None), 4, slice(3, 30))):  # fmt: skip
        assert np.array_equal(lumas[key], whole[key]), key
    assert set(vars(lumas)) == {"frames", "shape"} and lumas.frames is frames  # holds the frames, no luma

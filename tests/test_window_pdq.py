"""Still windows hashed where they lie (issue #16): ``vscan.frames.window_hash.window_pdq``
gives the hash model's bits (all 8 dihedral variants) and PDQ quality for every window of a
grid, and ``vscan.frames.regions.still_window_hashes`` the hashes of ``still_windows``' windows."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vscan.frames.regions import still_window_hashes, still_windows
from vscan.frames.window_hash import window_hashes, window_pdq
from vscan.hashing.pdq import PDQHasher


def _smooth(seed: int, h: int, w: int, cells: int, noise: float) -> np.ndarray:
    """A blurry picture (quality well under 100: the floors and the cap both matter)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (cells, cells, 3)).astype(np.uint8))
    out = np.asarray(small.resize((w, h), Image.Resampling.BILINEAR)).astype(np.float32)
    return np.clip(out + rng.normal(0.0, noise, out.shape), 0, 255).astype(np.uint8)


def _frames(pdq_dir=None) -> list[np.ndarray]:
    # A little noise on every picture: a noise-free bilinear blow-up of 2x2 cells (Pillow 13) has DCT
    # values exactly at the median, where float summation order alone decides the bit.
    frames = [_smooth(seed, 150 + 13 * seed, 170 + 9 * seed, 2 + seed % 6, 0.3 + (seed % 7) * 0.6) for seed in range(11)]
    frames.append(_smooth(11, 240, 320, 60, 12.0))  # busy: quality capped at 100
    if pdq_dir is not None:
        files = sorted(p for p in pdq_dir.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:12]
        frames += [np.asarray(Image.open(p).convert("RGB")) for p in files]
    return frames


def _check_equal(frames: list[np.ndarray]) -> list[int]:
    hasher, qualities = PDQHasher(device="cpu"), []
    for frame in frames:
        h, w = frame.shape[:2]
        height, width = int(h * 0.8), int(w * 0.7)
        tops, lefts = np.linspace(0, h - height, 4).round().astype(int), np.linspace(0, w - width, 3).round().astype(int)
        hashes, quality = window_pdq(frame, height, width, tops, lefts)
        assert hashes.shape == (4, 3, 8, 32) and quality.shape == (4, 3) and quality.dtype == np.int32
        cut = np.stack([frame[t : t + height, x : x + width] for t in tops for x in lefts])
        ref = hasher.hash_frames(cut)
        assert np.array_equal(hashes.reshape(-1, 8, 32), ref.hashes)
        assert np.array_equal(quality.ravel(), ref.quality)
        two = window_hashes(frame, height, width, tops, lefts)  # the off-centre search's (as is, mirrored): ties aside, the same
        assert np.unpackbits(two ^ hashes[:, :, [0, 4]], axis=-1).sum(axis=-1).max() <= 16
        qualities += quality.ravel().tolist()
    return qualities


def test_window_pdq_equals_the_hash_model_on_cut_windows():
    qualities = _check_equal(_frames())
    assert min(qualities) < 30 and max(qualities) == 100  # both the floors and the cap were tested


def test_window_pdq_equals_the_hash_model_on_photos(pdq_dir):
    _check_equal(_frames(pdq_dir)[12:])


def test_still_window_hashes_are_the_still_windows_hashed():
    hasher = PDQHasher(device="cpu")
    for seed, (h, w) in enumerate([(360, 640), (480, 270), (200, 200)]):
        frame = _smooth(100 + seed, h, w, 9, 4.0)[None]
        windows, boxes = still_windows(frame)
        hashes, quality, same_boxes = still_window_hashes(frame)
        assert hashes.shape == (50, 8, 32) and quality.shape == (50,) and np.array_equal(boxes, same_boxes)
        ref = hasher.hash_frames(windows)
        assert np.array_equal(hashes, ref.hashes) and np.array_equal(quality, ref.quality)


def test_window_pdq_rejects_windows_outside_the_frame():
    frame = np.zeros((100, 120, 3), np.uint8)
    with pytest.raises(ValueError):
        window_pdq(frame, 64, 64, np.array([40]), np.array([0]))
    with pytest.raises(ValueError):
        window_pdq(frame, 4, 64, np.array([0]), np.array([0]))

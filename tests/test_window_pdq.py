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
        # Each variant is the model's hash of the window turned: as is (original, transpose: the model's own), mirrored
        # left-right, upside down or both (their transposes the quarter turns), never the hash's own mirror.
        h, v, hv = (hasher.hash_frames(np.ascontiguousarray(c)).hashes for c in (cut[:, :, ::-1], cut[:, ::-1], cut[:, ::-1, ::-1]))
        want = np.stack([ref.hashes[:, 0], h[:, 6], hv[:, 0], v[:, 6], h[:, 0], v[:, 0], ref.hashes[:, 6], hv[:, 6]], axis=1)
        assert np.array_equal(hashes.reshape(-1, 8, 32), want)
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
        assert hashes.shape == (74, 8, 32) and quality.shape == (74,) and np.array_equal(boxes, same_boxes)
        ref = hasher.hash_frames(windows)
        assert np.array_equal(hashes[:, [0, 6]], ref.hashes[:, [0, 6]]) and np.array_equal(quality, ref.quality)
        mirrored = hasher.hash_frames(np.ascontiguousarray(windows[:, :, ::-1])).hashes[:, 0]
        assert np.array_equal(hashes[:, 4], mirrored)  # the window mirrored, hashed: not the hash's own mirror


def test_turned_windows_are_the_turned_picture_s_hash_where_the_hash_s_own_variants_are_not():
    """Variant k of a window is the PDQ of the window under edit k (``DIHEDRAL_NAMES``): a mirrored or turned copy
    meets it exactly. The hash's own variants (the model's: DCT signs and transposes) lie 20-40 bits off on a 256 px
    picture (PDQ's Jarosz filter and cell centres are not symmetric)."""
    from vscan.frames.window_hash import _bits, _dihedral, _model_luma, _pack
    from vscan.hashing.pdq_ops import dct_matrix_np, jarosz_operator_np

    frame = _smooth(7, 256, 256, 12, 2.0)
    hasher = PDQHasher(device="cpu")
    ours, _ = window_pdq(frame, 256, 256, np.array([0]), np.array([0]))
    ops, dct = jarosz_operator_np(256).astype(np.float32), dct_matrix_np().astype(np.float32)
    own = _pack(_bits(_dihedral(dct @ (ops @ _model_luma(frame) @ ops.T) @ dct.T)))
    edits = {1: np.rot90(frame, 1), 2: frame[::-1, ::-1], 3: np.rot90(frame, -1), 4: frame[:, ::-1], 5: frame[::-1], 7: frame[::-1, ::-1].transpose(1, 0, 2)}
    for k, copy in edits.items():
        truth = hasher.hash_frames(np.ascontiguousarray(copy)[None]).hashes[0, 0]
        assert np.unpackbits(ours[0, 0, k] ^ truth).sum() <= 2, k
        assert np.unpackbits(own[k] ^ truth).sum() >= 10, k


def test_window_pdq_rejects_windows_outside_the_frame():
    frame = np.zeros((100, 120, 3), np.uint8)
    with pytest.raises(ValueError):
        window_pdq(frame, 64, 64, np.array([40]), np.array([0]))
    with pytest.raises(ValueError):
        window_pdq(frame, 4, 64, np.array([0]), np.array([0]))

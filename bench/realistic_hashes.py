"""Realistic PDQ banks for the match benchmarks: real frame hashes of generated
videos (``vscan.bench.scenes``: panning, zooming textures, scene cuts), hashed
by vscan's PDQ model, expanded to millions by perturbing bits.

Expansion keeps what makes real banks hard for hash indexes: every bank
"video" is a run of near-duplicate frames (a real clip's consecutive frame
hashes, each with 0-4 bits of noise), and videos derived from the same real
clip share most 16-bit chunks (a shared flip mask of 24-96 bits per video),
so buckets are clustered, not uniform. Queries: half are bank frames with
0-31 bits flipped (true neighbours), half are real frames of clips the bank
never saw (mostly no neighbour).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["real_frame_hashes", "expand_bank", "make_queries"]


def real_frame_hashes(num_clips: int = 60, frames_per_clip: int = 48, *, seed0: int = 0,
                      cache: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(variants uint8 [C, F, 8, 32], qualities int32 [C, F]): every clip's
    frames at 12 fps, all 8 dihedral hashes. ``cache``: an .npz to reuse."""
    if cache is not None and Path(cache).is_file():
        data = np.load(cache)
        if data["variants"].shape[:2] == (num_clips, frames_per_clip):
            return data["variants"], data["qualities"]
    from vscan.bench.scenes import render_frame
    from vscan.hashing.pdq import PDQHasher

    hasher = PDQHasher(device="cpu")
    variants = np.empty((num_clips, frames_per_clip, 8, 32), np.uint8)
    qualities = np.empty((num_clips, frames_per_clip), np.int32)
    seconds = frames_per_clip / 12.0
    for c in range(num_clips):
        frames = np.stack([render_frame(seed=seed0 + c, t=i / 12.0, seconds=seconds, size=(160, 120), scenes=3)
                           for i in range(frames_per_clip)])  # fmt: skip
        batch = hasher.hash_frames(frames)
        variants[c], qualities[c] = batch.hashes, batch.quality
    if cache is not None:
        np.savez(cache, variants=variants, qualities=qualities)
    return variants, qualities


def _flip(hashes: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row with up to ``counts[i]`` random bits flipped (positions drawn
    with replacement: a repeat flips one bit less)."""
    n = hashes.shape[0]
    width = int(counts.max()) if n else 0
    bits = np.zeros((n, 256), bool)
    if width:
        pos = rng.integers(0, 256, (n, width))
        valid = np.arange(width)[None, :] < counts[:, None]
        bits[np.nonzero(valid)[0], pos[valid]] = True
    return hashes ^ np.packbits(bits, axis=1)


def expand_bank(clips: np.ndarray, size: int, *, seed: int = 1, run: tuple[int, int] = (8, 48),
                chunk: int = 200_000) -> np.ndarray:  # fmt: skip
    """``size`` hashes uint8 [size, 32] from real clip frame hashes ``clips``
    [C, F, 32] (variant 0), as runs of near-duplicate frames (module docstring)."""
    rng = np.random.default_rng(seed)
    n_clips, n_frames = clips.shape[:2]
    out = np.empty((size, 32), np.uint8)
    pos = 0
    while pos < size:
        n = min(chunk, size - pos)
        lengths = rng.integers(run[0], run[1] + 1, n // run[0] + 1)
        lengths = lengths[: np.searchsorted(np.cumsum(lengths), n) + 1]
        lengths[-1] -= lengths.sum() - n
        lengths = lengths[lengths > 0]
        video = np.repeat(np.arange(lengths.size), lengths)
        clip = rng.integers(0, n_clips, lengths.size)[video]
        start = rng.integers(0, n_frames, lengths.size)
        frame = (start[video] + (np.arange(n) - np.repeat(np.cumsum(lengths) - lengths, lengths))) % n_frames
        base = clips[clip, frame]
        shared = _flip(np.zeros((lengths.size, 32), np.uint8), rng.integers(24, 97, lengths.size), rng)
        noisy = _flip(base ^ shared[video], rng.integers(0, 5, n), rng)
        out[pos : pos + n] = noisy
        pos += n
    return out


def make_queries(bank: np.ndarray, unseen: np.ndarray, count: int, *, seed: int = 2) -> np.ndarray:
    """``count`` query hashes: half bank rows with up to 31 bits flipped, half ``unseen`` real hashes."""
    rng = np.random.default_rng(seed)
    near = bank[rng.integers(0, bank.shape[0], count // 2)]
    near = _flip(near, rng.integers(0, 32, near.shape[0]), rng)
    far = unseen[rng.integers(0, unseen.shape[0], count - near.shape[0])]
    out = np.concatenate([near, far])
    return out[rng.permutation(out.shape[0])]

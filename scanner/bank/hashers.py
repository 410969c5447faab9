"""How media becomes bank rows: dense frames, borders removed, centre crops."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from vscan.decode import SamplingPolicy
from vscan.frames.prepare import SCAN_FRAME_SIDE_PX
from vscan.frames.windows import GRID_FPS, GRID_WINDOWS
from vscan.hashing.media import hash_media
from vscan.hashing.pdq import PDQHasher

__all__ = ["BANK_MAX_SIDE", "BANK_CROPS", "BANK_WINDOWS", "BANK_GRID_WINDOWS", "bank_hash_media", "media_hasher"]


#: Frames are downscaled to at most this side before hashing when building
#: banks and scanning: PDQ works on 64x64 anyway, and this keeps decode cheap.
BANK_MAX_SIDE = 512
#: Banks also store each frame without its borders and these centre crops
#: (share of each side kept), so cropped re-uploads match at no scan cost.
#: Centre crops hashed into banks, in 2.5% steps: PDQ moves ~25-35 bits per
#: 2.5% of crop-scale mismatch, so coarser grids miss crops between the steps.
BANK_CROPS = (0.975, 0.95, 0.925, 0.9, 0.875, 0.85, 0.825, 0.8, 0.775, 0.75)
#: And the re-post windows of vscan.frames.windows (9:16 centre strip, +-4 degree rotations).
BANK_WINDOWS = ("strip916", "rot+4", "rot-4")
#: And the 16 windows keeping 60% of each side on a 10% grid (vscan.frames.windows.GRID_WINDOWS), GRID_FPS
#: frames a second: a crop keeping 70% of each side off-centre holds one whole (vscan.runtime.offcentre).
BANK_GRID_WINDOWS = GRID_WINDOWS


def bank_hash_media(path: Path, policy: SamplingPolicy, hasher: PDQHasher):
    """``hash_media`` with every bank row: borders removed, centre crops, re-post windows, grid windows.
    The ``original`` rows are the frames as a scan prepares them (vscan.frames.prepare): an identical copy meets them at 0."""
    return hash_media(path, policy, hasher=hasher, max_side=BANK_MAX_SIDE, borders=True, crops=BANK_CROPS, windows=BANK_WINDOWS,
                      grid_windows=BANK_GRID_WINDOWS, grid_fps=GRID_FPS, frame_side=SCAN_FRAME_SIDE_PX)  # fmt: skip


def media_hasher(policy: SamplingPolicy, device: str = "auto") -> Callable[[Path], tuple]:
    """How ``vscan bank build`` and ``vscan.Bank.build`` hash media: densely, borders removed, plus
    centre crops (BANK_CROPS) as extra rows, so scans need none of that."""
    hasher = None

    def hash_file(path: Path):
        nonlocal hasher
        hasher = hasher or PDQHasher(device=device)  # type: ignore[arg-type]
        result = bank_hash_media(path, policy, hasher)
        return result.frames, result.metadata.duration_seconds, result.extra

    return hash_file

"""bench/gpu_check.py's sizes: the constants of a run, the time shares of
its parts, and the two plans (FULL on the GPU machine, DRY here on the CPU)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEEL_DIR = ROOT / ".whl"
WHEEL_LIST = ROOT / "bench" / "gpu_wheels.txt"
CARRY_LIMIT_BYTES = 60 << 20
#: The device machine's limit on working tree plus carried folders together.
CARRY_TOTAL_BYTES = 64 << 20
#: The whole run, by construction: the shares below add up to less.
BUDGET_SECONDS = 480
SHARES = {"install": 45, "tests": 140, "pdq": 80, "hamming": 100, "decode": 90}
PARTS = tuple(SHARES)
SCHEMA = "vscan.gpu_check/1"
#: Query hashes per sampled frame when matching: the 8 dihedral variants.
QUERIES_PER_FRAME = 8
#: What a 1080p file is assumed to be for the capacity line: 30 fps, a keyframe every 2 s.
VIDEO_FPS = 30
VIDEO_GOP_SECONDS = 2.0


@dataclass(frozen=True)
class Plan:
    """Sizes of one run, chosen so that each part ends within its share."""

    device: str  # "cuda" or "cpu"
    shares: dict[str, float]
    pdq_batches: tuple[int, ...]
    pdq_timed_calls: int  # per batch size, at most (the share ends them earlier)
    pdq_clips: int  # decoded files whose frames fill the cross-file batches
    pdq_clip_size: tuple[int, int]
    pdq_clip_seconds: float
    hamming_rows: tuple[int, ...]
    hamming_queries: int
    exact_sample: int  # queries that warm the CPU index (numba) before it is timed
    radius: int
    video_size: tuple[int, int]
    video_seconds: float
    video_fps: int
    video_gop: int  # frames between keyframes
    decode_streams: tuple[int, ...]
    decode_window_seconds: float  # each (decoder, mode, streams) measurement
    detector_size: int = 224


FULL = Plan(
    device="cuda", shares=dict(SHARES), pdq_batches=(128, 512, 2048), pdq_timed_calls=8, pdq_clips=6,
    pdq_clip_size=(640, 360), pdq_clip_seconds=8.0, hamming_rows=(1_000_000, 10_000_000), hamming_queries=4096,
    exact_sample=256, radius=31, video_size=(1920, 1080), video_seconds=20.0, video_fps=VIDEO_FPS,
    video_gop=int(VIDEO_FPS * VIDEO_GOP_SECONDS), decode_streams=(1, 4, 8), decode_window_seconds=4.0,
)  # fmt: skip
DRY = Plan(
    device="cpu", shares={"install": 10, "tests": 90, "pdq": 60, "hamming": 60, "decode": 45}, pdq_batches=(8, 16, 32),
    pdq_timed_calls=1, pdq_clips=2, pdq_clip_size=(160, 120), pdq_clip_seconds=2.0, hamming_rows=(5_000, 20_000),
    hamming_queries=64, exact_sample=32, radius=31, video_size=(320, 240), video_seconds=2.0, video_fps=VIDEO_FPS,
    video_gop=int(VIDEO_FPS * VIDEO_GOP_SECONDS) // 4, decode_streams=(1, 2), decode_window_seconds=0.4,
)  # fmt: skip

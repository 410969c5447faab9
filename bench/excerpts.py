"""Short evidence for the generalisation bench (issue #27): a 2-5 s excerpt of a
clip at a random place inside 20-40 s of other video, as a compilation or a
re-upload with a short clip cut in would carry it.

Everything is drawn per copy from its seed: the excerpt's length and start in
the clip; the file's length and where the excerpt sits in it (at least 1 s of
other video on each side); the other video, cut from segments of 3-10 s of
synthetic scenes and of real sample videos (``hosts``: of origins other than
every bank source's, so that the other video matches nothing); the frame size
and rate the whole file is made at (the clip and the segments fitted into it,
bars where the aspect differs); and the encoder: x264 with its own keyframe
placement (a keyframe at a cut it sees), x264 with a fixed keyframe interval of
2-10 s and no scene-cut keyframes (as streaming encodes do), x265, or VP9.
``excerpt_plan`` returns what was drawn (``make_excerpt`` writes the file), so
tests can check where the excerpt lies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ExcerptPlan", "excerpt_plan", "make_excerpt"]

#: Frame sizes (width, height) a compilation is made at.
FRAME_SIZES = ((640, 360), (480, 270), (854, 480), (720, 480), (960, 540))
FRAME_RATES = (24.0, 25.0, 30.0)
ENCODERS = ("x264", "x264-fixed-gop", "x265", "vp9")


@dataclass(frozen=True)
class ExcerptPlan:
    """What one excerpt copy is made of (seconds, pixels)."""

    clip_start_s: float
    length_s: float
    file_s: float
    at_s: float  # where the excerpt starts in the file
    size: tuple[int, int]
    fps: float
    encoder: str
    gop_s: float | None  # the fixed keyframe interval (x264-fixed-gop), else None
    #: The other video: (host index or -1 for a synthetic scene, start second in it, length in seconds), in order.
    segments: tuple[tuple[int, float, float], ...]

    def describe(self) -> str:
        gop = f" gop {self.gop_s:.1f} s" if self.gop_s else ""
        return (f"excerpt {self.length_s:.1f} s from {self.clip_start_s:.1f} s at {self.at_s:.1f} s of {self.file_s:.1f} s, "
                f"{self.size[0]}x{self.size[1]} {self.fps:g} fps {self.encoder}{gop}")  # fmt: skip


def excerpt_plan(clip_seconds: float, n_hosts: int, rng: np.random.Generator) -> ExcerptPlan:
    """Draw one excerpt copy's parameters (module docstring)."""
    length = float(rng.uniform(2.0, min(5.0, max(2.0, clip_seconds - 0.2))))
    start = float(rng.uniform(0.0, max(0.0, clip_seconds - length - 0.1)))
    file_s = float(rng.uniform(20.0, 40.0))
    at = float(rng.uniform(1.0, file_s - length - 1.0))
    size = FRAME_SIZES[int(rng.integers(len(FRAME_SIZES)))]
    fps = float(FRAME_RATES[int(rng.integers(len(FRAME_RATES)))])
    encoder = str(ENCODERS[int(rng.integers(len(ENCODERS)))])
    gop = float(rng.uniform(2.0, 10.0)) if encoder == "x264-fixed-gop" else None
    segments = []
    for total in (at, file_s - at - length):  # before and after the excerpt
        left = total
        while left > 1e-6:
            seg = min(left, float(rng.uniform(3.0, 10.0)))
            host = int(rng.integers(-1, n_hosts)) if n_hosts else -1
            segments.append((host, float(rng.uniform(0.0, 3.0)), seg))
            left -= seg
        segments.append((-2, 0.0, 0.0))  # the excerpt's place (after the first run)
    return ExcerptPlan(start, length, file_s, at, size, fps, encoder, gop, tuple(segments[:-1]))


def _fitted(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    """The whole picture in a w x h frame, aspect kept, black bars where it differs by more than 3%."""
    from vscan.bench.edits import _resize

    sh, sw = rgb.shape[:2]
    if abs(sw / sh - w / h) <= 0.03 * w / h:
        return _resize(rgb, w, h)
    s = min(w / sw, h / sh)
    pw, ph = max(2, int(sw * s)), max(2, int(sh * s))
    out = np.zeros((h, w, 3), np.uint8)
    y0, x0 = (h - ph) // 2, (w - pw) // 2
    out[y0 : y0 + ph, x0 : x0 + pw] = _resize(rgb, pw, ph)
    return out


def _frames(plan: ExcerptPlan, clip: tuple, hosts: dict[int, tuple], other_seed: int):
    """The file's frames in order (a generator: 40 s of frames are not held at once)."""
    from vscan.bench.edits import _resample
    from vscan.bench.reframe import _other

    w, h = plan.size
    step = 1.0 / plan.fps
    for i, (host, offset, seconds) in enumerate(plan.segments):
        times = np.arange(int(round(seconds * plan.fps))) * step
        if host == -2:
            frames, pts, _ = clip
            for f in _resample(frames, pts, plan.clip_start_s + np.arange(int(round(plan.length_s * plan.fps))) * step):
                yield _fitted(f, w, h)
        elif host == -1:
            scene = _other(other_seed + 31 * i, w, h, offset + seconds)
            for t in times:
                yield scene(offset + t)
        else:
            frames, pts, _ = hosts[host]
            for f in _resample(frames, pts, (offset + times) % max(float(pts[-1]), step)):
                yield _fitted(f, w, h)


def make_excerpt(src: Path, dst: Path, seed: int, hosts: tuple[Path, ...] = ()) -> str:
    """Write the excerpt copy of ``src`` to ``dst`` (unless it exists: a kept --workdir); returns what was drawn."""
    from vscan.bench.edits import _read_clip
    from vscan.bench.encoding import _encode

    clip = _read_clip(src)
    clip_seconds = float(clip[1][-1] + 1 / clip[2])
    plan = excerpt_plan(clip_seconds, len(hosts), np.random.default_rng(seed))
    if not dst.exists():
        used = {h for h, _, _ in plan.segments if h >= 0}
        read = {i: _read_clip(Path(hosts[i])) for i in sorted(used)}
        codec = {"x264": "libx264", "x264-fixed-gop": "libx264", "x265": "libx265", "vp9": "libvpx-vp9"}[plan.encoder]
        gop = int(round(plan.gop_s * plan.fps)) if plan.gop_s else None
        _encode(dst, _frames(plan, clip, read, seed + 7), fps=plan.fps, codec=codec, gop=gop, crf=23, bitrate=None)
    return plan.describe()

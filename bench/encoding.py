"""Encoding RGB frames to video files with PyAV (H.264 in MP4, VP9 in WebM, HEVC in Matroska)."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["CODEC_CONTAINERS", "available_codecs"]

# codec -> container suffix it is written in.
CODEC_CONTAINERS = {"libx264": ".mp4", "libvpx-vp9": ".webm", "libx265": ".mkv"}


def available_codecs() -> tuple[str, ...]:
    """The codecs of CODEC_CONTAINERS this PyAV build can encode."""
    import av

    found = []
    for name in CODEC_CONTAINERS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001 - absent encoder: any error means "no"
            continue
        found.append(name)
    return tuple(found)


def _rate(fps: float) -> Fraction:
    if not (fps > 0 and np.isfinite(fps)):
        raise ValueError(f"Invalid fps ({fps}). Supported values are finite and > 0.")
    return Fraction(fps).limit_denominator(1001)


def _even(n: int) -> int:
    return max(2, int(n) - int(n) % 2)


def _encode(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    fps: float,
    codec: str,
    gop: int | None,
    crf: int | None,
    bitrate: int | None,
    faststart: bool = False,
    mbtree: bool = False,
) -> Path:
    """Encode RGB frames (all one size) to path with PyAV. ``mbtree``: x264's default
    macroblock-tree rate control (off here, for reproducible bytes: below)."""
    import sys

    if codec == "libvpx-vp9" and "decord" in sys.modules:
        # decord ships its own FFmpeg libraries; once it is loaded, PyAV's
        # libvpx encoder refuses to open (EINVAL) in the same process, while
        # decoding is unaffected. Encode in a fresh process instead.
        import multiprocessing

        args = (path, list(frames))
        kwargs = dict(fps=fps, codec=codec, gop=gop, crf=crf, bitrate=bitrate, faststart=faststart, mbtree=mbtree)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.apply(_encode, args, kwargs)
    import av

    if codec not in CODEC_CONTAINERS:
        raise ValueError(
            f"Invalid codec ({codec!r}). Supported values are {sorted(CODEC_CONTAINERS)}."
        )
    if codec not in available_codecs():
        raise RuntimeError(f"codec {codec!r} is not available in this PyAV build")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, str] = {}
    if bitrate is None:
        crf = 28 if crf is None else crf
        options["crf"] = str(crf)
        if codec == "libvpx-vp9":
            options["b:v"] = "0"  # constant-quality mode
    if codec == "libx264":
        # x264's macroblock-tree rate control gives other bytes for the same
        # frames from one encode to the next at some sizes (96x64, 192x128,
        # 320x240: up to 13 variants in 20 encodes; MALLOC_PERTURB_ steadies
        # it, so something reads memory it never set). Without it, every size
        # measured gives one variant, so generated clips are reproducible.
        # (A test clip whose bytes do not vary, and that needs x264's usual
        # bit allocation, asks for it: tests/test_cuts.py.)
        # cpu-independent: x264 otherwise picks algorithms by the CPU's features (other bytes on
        # another machine: measured here, one 320x240 clip's md5 changes with it).
        params = ["cpu-independent=1"] + ([] if mbtree else ["no-mbtree=1"])
        if gop is not None:
            # scenecut=0: keyframes exactly every `gop` frames, so tests can rely on it.
            params.append(f"keyint={gop}:min-keyint={gop}:scenecut=0")
        options["x264-params"] = ":".join(params)
    if codec == "libx265":
        params = "log-level=error"
        if gop is not None:
            params += f":keyint={gop}:min-keyint={gop}:scenecut=0"
        options["x265-params"] = params
    if codec == "libvpx-vp9":
        options.setdefault("deadline", "realtime")
        options["cpu-used"] = "8"
    container_options = {"movflags": "+faststart"} if faststart else {}
    if codec != "libx264":
        # Matroska and WebM write random segment and track ids; bitexact
        # writes none, so the same frames give the same file.
        container_options["fflags"] = "+bitexact"

    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError("no frames to encode")
    h, w = _even(first.shape[0]), _even(first.shape[1])
    with av.open(str(path), "w", options=container_options) as out:
        stream = out.add_stream(codec, rate=_rate(fps), options=options)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        if codec == "libvpx-vp9":
            # libvpx derives its thread count from the CPUs it may use; once,
            # in a full test run, opening the encoder then failed with EINVAL.
            # Small generated clips need no threads.
            stream.codec_context.thread_count = 1
        if bitrate is not None:
            stream.codec_context.bit_rate = int(bitrate)

        def _all():
            yield first
            yield from it

        for i, rgb in enumerate(_all()):
            rgb = np.ascontiguousarray(rgb[:h, :w])
            if rgb.shape != (h, w, 3):
                raise ValueError(f"frame {i} has shape {rgb.shape}, expected {(h, w, 3)}")
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path

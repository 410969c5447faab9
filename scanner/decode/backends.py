"""Decoders: decord (default), PyAV (fallback, and the keyframe-only path), stills.

Frame indices mean the same in every backend: the position of the frame in
presentation order of the first video stream (packets sorted by pts), and
pts_seconds are relative to the stream start. Both are checked against each
other on real files by tests/test_decode.py.

Errors (see vscan.errors): FileAccessError for paths we cannot read,
UnsupportedMediaError for files no decoder can open, DecodeError for
failures after opening. A generator that fails midway yields the frames it
has, then raises DecodeError: never an empty or silently short result.

decord can abort the whole process on some corrupt streams (dmlc/decord#25)
and hang in get_batch (#269, #363): callers that scan untrusted files run
decoding in worker processes with a time limit; this module does not.
"""

from __future__ import annotations

import math
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from vscan.errors import ConfigError, DecodeError, FileAccessError, UnsupportedMediaError
from vscan.decode.metadata import SampledFrames, VideoMetadata
from vscan.decode.sampling import SamplingPolicy

__all__ = [
    "IMAGE_SUFFIXES",
    "Decoder",
    "DecordDecoder",
    "PyAVDecoder",
    "check_readable",
    "iter_sampled_frames",
    "open_decoder",
    "output_size",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})
BACKENDS = ("auto", "decord", "pyav")
_MAX_REASON_CHARS = 300


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= _MAX_REASON_CHARS else text[:_MAX_REASON_CHARS] + "..."


def check_readable(path: str | os.PathLike) -> Path:
    """The path, if it is a readable, non-empty regular file; typed errors otherwise."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise FileAccessError(f"{p}: no such file") from None
    except OSError as exc:
        raise FileAccessError(f"{p}: cannot stat: {_reason(exc)}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise FileAccessError(f"{p}: not a regular file")
    try:
        with open(p, "rb") as f:  # read-only: evidence is never modified
            f.read(1)
    except OSError as exc:
        raise FileAccessError(f"{p}: cannot read: {_reason(exc)}") from exc
    if st.st_size == 0:
        raise UnsupportedMediaError(f"{p}: empty file (0 bytes)")
    return p


def output_size(width: int, height: int, max_side: int | None, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """(width, height) with the longest side <= max_side, aspect kept, never
    upscaled; or exactly ``size`` (w, h) when given (the scan decodes straight
    to the hash model's square input: PDQ maps any frame to 64x64 anyway)."""
    if size is not None:
        w, h = (int(v) for v in size)
        if w < 1 or h < 1:
            raise ConfigError(f"Invalid size ({size!r}). Supported values are (width, height) >= 1.")
        return w, h
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _check_options(batch_size: int, max_side: int | None) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"Invalid batch_size ({batch_size!r}). Supported values are integers >= 1.")
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1):
        raise ConfigError(f"Invalid max_side ({max_side!r}). Supported values are None or integers >= 1.")


def _cache_key(path: Path) -> tuple:
    """Identifies one version of a file for the decoders' per-file caches.

    The inode is in it because in-memory files (archive members) reuse
    ``/proc/self/fd/N`` paths, and tmpfs times are coarse enough for two
    members of one size to share a modification time."""
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)


def _batch(indices: list[int], pts: list[float], frames: list[np.ndarray]) -> SampledFrames:
    return SampledFrames(
        np.asarray(indices, dtype=np.int64),
        np.asarray(pts, dtype=np.float64),
        np.ascontiguousarray(np.stack(frames)),
    )


class Decoder(ABC):
    """Reads one file: metadata, then batches of sampled RGB frames.

    ``frames_decoded`` counts the frames the codec actually decoded during
    the last ``iter_frames`` (sampled or not): the real cost of a policy.
    """

    name: ClassVar[str]
    frames_decoded: int = 0

    @abstractmethod
    def probe(self, path: str | os.PathLike) -> VideoMetadata:
        """Metadata of the file; raises FileAccessError or UnsupportedMediaError."""

    @abstractmethod
    def iter_frames(
        self,
        path: str | os.PathLike,
        policy: SamplingPolicy,
        *,
        batch_size: int = 64,
        max_side: int | None = None,
        size: tuple[int, int] | None = None,
    ) -> Iterator[SampledFrames]:
        """Batches of at most batch_size frames chosen by policy, in index order.

        max_side: longest output side, aspect kept, area-filter downscale,
        never upscaled. size: exact (width, height) instead (aspect not kept).
        """


# --------------------------------------------------------------------------
# decord
# --------------------------------------------------------------------------


def _import_decord():
    # Importing decord before torch can hang (dmlc/decord#263): torch first.
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    try:
        import decord
    except ImportError as exc:
        raise ImportError("decord is not installed: pip install 'decord==0.6.0'") from exc
    return decord


def _container_facts(path: Path) -> tuple[str | None, str | None]:
    """(codec, container format) from the header, via PyAV: cheap, no decoding."""
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return stream.codec_context.name, container.format.name
    except Exception:  # noqa: BLE001 - facts are optional; decord decides what opens
        return None, None


# decord's seeking (get_batch of non-contiguous indices) returned wrong frames
# (off by a whole GOP) on open-GOP HEVC in Matroska made by vscan.bench.synth, as
# in dmlc/decord#195 and #365, and its keyframe indices were in decode order;
# on H.264 in MP4 it matched PyAV on every sample. Elsewhere we read forward
# without seeking and take keyframes from PyAV's packet index.
_SEEK_TRUSTED = (("h264", "mp4"),)


class DecordDecoder(Decoder):
    """decord.VideoReader on the CPU.

    random_access: "auto" seeks (get_batch on sparse indices) only for
    codec/container pairs where decord's seeking was checked (H.264 in MP4);
    "never" always reads forward with next()/skip_frames; "always" trusts it.
    """

    name = "decord"

    def __init__(self, *, num_threads: int = 0, random_access: Literal["auto", "always", "never"] = "auto"):
        if random_access not in ("auto", "always", "never"):
            raise ConfigError(
                f"Invalid random_access ({random_access!r}). Supported values are auto, always, never."
            )
        self.num_threads = int(num_threads)
        self.random_access = random_access

    def _may_seek(self, codec: str | None, container_format: str | None) -> bool:
        if self.random_access != "auto":
            return self.random_access == "always"
        return any(codec == c and f in (container_format or "").split(",") for c, f in _SEEK_TRUSTED)

    def _open(self, path: Path, width: int = -1, height: int = -1):
        decord = _import_decord()
        try:
            return decord.VideoReader(
                str(path), ctx=decord.cpu(0), num_threads=self.num_threads, width=width, height=height
            )
        except Exception as exc:  # noqa: BLE001 - decord raises RuntimeError or DECORDError
            raise UnsupportedMediaError(f"{path}: decord cannot open it: {_reason(exc)}") from exc

    def _index(self, vr, path: Path) -> tuple[VideoMetadata, np.ndarray, str | None]:
        """Metadata, pts (seconds) and container format of the file open in vr.

        Decodes frame 0: its shape is the reader's frame size (decord exposes
        no other, and applies rotation metadata the container header does not
        show), and a first frame decord cannot decode is UnsupportedMediaError
        here, so open_decoder("auto") falls back to PyAV for such files.
        width/height in the metadata are the reader's output size: the
        source's only for a reader opened at the native size.
        """
        try:
            n = len(vr)
            if n < 1:
                raise UnsupportedMediaError(f"{path}: decord found no video frames")
            pts = np.asarray(vr.get_frame_timestamp(range(n)), dtype=np.float64)[:, 0]
            keys = tuple(int(k) for k in vr.get_key_indices())
            fps = float(vr.get_avg_fps())
            height, width = vr[0].shape[:2]
            vr.seek(0)
        except UnsupportedMediaError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise UnsupportedMediaError(f"{path}: decord cannot index it: {_reason(exc)}") from exc
        if not (math.isfinite(fps) and fps > 0):
            fps = n / max(float(pts[-1]), 1e-9) if n > 1 else 1.0
        codec, container_format = _container_facts(path)
        if not self._may_seek(codec, container_format):
            # get_key_indices counts in decode order: on open-GOP streams (HEVC
            # CRA) it is off by the leading frames. Take presentation order.
            try:
                keys = PyAVDecoder()._index(path)[1].keyframe_indices
            except UnsupportedMediaError:
                pass
        meta = VideoMetadata(
            path=str(path), backend=self.name, codec=codec, width=int(width), height=int(height),
            fps=fps, num_frames=n, duration_seconds=float(pts[-1]) + 1.0 / fps,
            keyframe_indices=keys or None,
        )  # fmt: skip
        return meta, pts, container_format

    def _key(self, path: Path) -> tuple:
        # random_access decides where keyframe indices come from (decord or PyAV).
        return (*_cache_key(path), self.random_access)

    def _cached(self, key: tuple) -> tuple[VideoMetadata, np.ndarray, str | None] | None:
        cached = getattr(self, "_last_index", None)
        return cached[1] if cached is not None and cached[0] == key else None

    def _describe(self, path: Path):
        """(index, reader): the index of a native-size reader, cached per file
        version as PyAVDecoder caches its packet index, so that probe() then
        iter_frames() on one file (the usual pair; open_decoder probes too)
        open and index it once. reader is None on a cache hit."""
        key = self._key(path)
        cached = self._cached(key)
        if cached is not None:
            return cached, None
        vr = self._open(path)
        result = self._index(vr, path)
        self._last_index = (key, result)
        return result, vr

    def probe(self, path):
        path = check_readable(path)
        return self._describe(path)[0][0]

    def iter_frames(self, path, policy, *, batch_size=64, max_side=None, size=None):
        _check_options(batch_size, max_side)
        path = check_readable(path)
        vr = None
        if size is not None and self._cached(self._key(path)) is None:
            # Not probed, and the output size does not depend on the source's:
            # open at the output size and index that reader (one open). Its
            # metadata has the output's frame size, so it is not cached.
            vr = self._open(path, *output_size(1, 1, None, size))
            meta, pts, container_format = self._index(vr, path)
            width, height = meta.width, meta.height
        else:
            (meta, pts, container_format), vr = self._describe(path)
            width, height = output_size(meta.width, meta.height, max_side, size)
            if (width, height) != (meta.width, meta.height):
                vr = None  # indexed at the native size; the frames are wanted at another
        selected = policy.select(pts, meta.keyframe_indices, meta.duration_seconds)
        if len(selected) == 0:
            raise DecodeError(f"{path}: policy {policy.describe()} selected no frames")
        if vr is None:
            native = (width, height) == (meta.width, meta.height)
            vr = self._open(path) if native else self._open(path, width=width, height=height)
        self.frames_decoded = 0
        if self._may_seek(meta.codec, container_format):
            return self._generate_seeking(vr, path, selected, pts, batch_size, self)
        return self._generate_forward(vr, path, selected, pts, batch_size, self)

    @staticmethod
    def _generate_forward(vr, path, selected, pts, batch_size, counter) -> Iterator[SampledFrames]:
        """Contiguous get_batch windows from frame 0, keeping the selected frames.

        No seeks, so no wrong frames; costs decoding (and RGB conversion) of
        every frame up to the last selected one. skip_frames() after next()
        also returned wrong frames on the HEVC/MKV sample, so it is not used.
        """
        wanted = np.zeros(int(selected[-1]) + 1, dtype=bool)
        wanted[selected] = True
        idx_buf: list[int] = []
        rgb_buf: list[np.ndarray] = []
        for start in range(0, len(wanted), batch_size):
            window = np.arange(start, min(start + batch_size, len(wanted)))
            keep = window[wanted[window]]
            try:
                rgb = vr.get_batch(window.tolist()).asnumpy()
                counter.frames_decoded += len(window)
            except Exception as exc:  # noqa: BLE001
                raise DecodeError(
                    f"{path}: decord failed decoding frames {window[0]}..{window[-1]}: {_reason(exc)}"
                ) from exc
            for i in keep.tolist():
                idx_buf.append(i)
                rgb_buf.append(rgb[i - start])
                if len(idx_buf) == batch_size:
                    yield _batch(idx_buf, pts[idx_buf].tolist(), rgb_buf)
                    idx_buf, rgb_buf = [], []
        vr.seek(0)
        if idx_buf:
            yield _batch(idx_buf, pts[idx_buf].tolist(), rgb_buf)

    @staticmethod
    def _generate_seeking(vr, path, selected, pts, batch_size, counter) -> Iterator[SampledFrames]:
        for start in range(0, len(selected), batch_size):
            chunk = selected[start : start + batch_size]
            try:
                rgb = vr.get_batch(chunk.tolist()).asnumpy()
                # decord decodes from the keyframe before each frame it seeks to;
                # counted as the chosen frames (a lower bound).
                counter.frames_decoded += len(chunk)
                # get_batch keeps decoding ahead and memory grows (dmlc/decord#157,
                # #208); seek(0) releases it. Skipped when the next batch simply
                # continues, which would otherwise re-decode the GOP prefix.
                if start + batch_size >= len(selected) or selected[start + batch_size] != chunk[-1] + 1:
                    vr.seek(0)
            except Exception as exc:  # noqa: BLE001
                raise DecodeError(
                    f"{path}: decord failed decoding frames {chunk[0]}..{chunk[-1]}: {_reason(exc)}"
                ) from exc
            yield SampledFrames(chunk.astype(np.int64), pts[chunk], np.ascontiguousarray(rgb))


# --------------------------------------------------------------------------
# PyAV
# --------------------------------------------------------------------------


class _PacketIndex:
    """Presentation-order index of a stream, from a demux pass (no decoding)."""

    def __init__(self, timestamps: list[int | None], keyflags: list[bool], start: int | None, time_base, fps):
        n = len(timestamps)
        if all(t is not None for t in timestamps):
            ts = np.asarray(timestamps, dtype=np.int64)
            order = np.argsort(ts, kind="stable")
            ts_sorted = ts[order]
            origin = start if start is not None else int(ts_sorted[0])
            self.pts_seconds = (ts_sorted - origin).astype(np.float64) * float(time_base)
            self.index_of_pts = {int(t): i for i, t in enumerate(ts_sorted)}
            self.raw_pts = [int(t) for t in ts_sorted]
        else:  # no timestamps to sort by: decode order, evenly spaced
            order = np.arange(n)
            self.pts_seconds = np.arange(n, dtype=np.float64) / fps
            self.index_of_pts = {}
            self.raw_pts: list[int] = []
        flags = np.asarray(keyflags, dtype=bool)[order]
        self.keyframe_indices = tuple(int(i) for i in np.flatnonzero(flags))


class PyAVDecoder(Decoder):
    """PyAV (libav*) sequential decoding; converts only the selected frames to RGB."""

    name = "pyav"

    def __init__(self, *, thread_type: Literal["AUTO", "FRAME", "SLICE", "NONE"] = "AUTO", skip_nonref: bool = False):
        """skip_nonref: for sparse samples, do not decode non-reference frames
        (about half of an H.264 stream with B-frames); a wanted frame that is
        skipped is replaced by the next decoded one, its real index and pts
        reported. Off by default: ``vscan hash`` must return exact frames."""
        self.thread_type = thread_type
        self.skip_nonref = skip_nonref

    @staticmethod
    def _open_container(path: Path):
        import av

        try:
            container = av.open(str(path), mode="r")
        except Exception as exc:  # noqa: BLE001 - av raises many FFmpegError kinds
            raise UnsupportedMediaError(f"{path}: PyAV cannot open it: {_reason(exc)}") from exc
        if not container.streams.video:
            container.close()
            raise UnsupportedMediaError(f"{path}: no video stream")
        return container

    def _index(self, path: Path) -> tuple[VideoMetadata, _PacketIndex]:
        # probe() then iter_frames() on one file (the usual pair) demux it once.
        key = _cache_key(path)
        cached = getattr(self, "_last_index", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        result = self._build_index(path)
        self._last_index = (key, result)
        return result

    def _build_index(self, path: Path) -> tuple[VideoMetadata, _PacketIndex]:
        import av

        with self._open_container(path) as container:
            stream = container.streams.video[0]
            timestamps, keyflags = [], []
            try:
                for packet in container.demux(stream):
                    if packet.size == 0:  # flush packet
                        continue
                    timestamps.append(packet.pts if packet.pts is not None else packet.dts)
                    keyflags.append(bool(packet.is_keyframe))
            except av.FFmpegError:
                pass  # truncated: index what was read; decoding will report the rest
            ctx = stream.codec_context
            width, height = int(ctx.width or stream.width or 0), int(ctx.height or stream.height or 0)
            rate = stream.average_rate or stream.guessed_rate
            codec = ctx.name
            start, time_base = stream.start_time, stream.time_base
        n = len(timestamps)
        if n < 1:
            raise UnsupportedMediaError(f"{path}: no video packets")
        if width <= 0 or height <= 0:
            raise UnsupportedMediaError(f"{path}: video stream has no frame size")
        fps = float(rate) if rate else 0.0
        fps = fps if math.isfinite(fps) and fps > 0 else 25.0
        index = _PacketIndex(timestamps, keyflags, start, time_base, fps)
        if rate is None and n > 1 and index.pts_seconds[-1] > 0:
            fps = (n - 1) / float(index.pts_seconds[-1])
        meta = VideoMetadata(
            path=str(path), backend=self.name, codec=codec, width=width, height=height, fps=fps,
            num_frames=n, duration_seconds=float(index.pts_seconds[-1]) + 1.0 / fps,
            keyframe_indices=index.keyframe_indices or None,
        )  # fmt: skip
        return meta, index

    def probe(self, path):
        path = check_readable(path)
        return self._index(path)[0]

    def iter_frames(self, path, policy, *, batch_size=64, max_side=None, size=None):
        _check_options(batch_size, max_side)
        path = check_readable(path)
        meta, index = self._index(path)
        selected = policy.select(index.pts_seconds, meta.keyframe_indices, meta.duration_seconds)
        if len(selected) == 0:
            raise DecodeError(f"{path}: policy {policy.describe()} selected no frames")
        size = output_size(meta.width, meta.height, max_side, size)
        return self._generate(path, meta, index, selected, size, batch_size)

    def _generate(self, path, meta, index, selected, size, batch_size, allow_skip=True) -> Iterator[SampledFrames]:
        import av

        n = meta.num_frames
        wanted = np.zeros(n, dtype=bool)
        wanted[selected] = True
        keys = meta.keyframe_indices
        # Any policy whose choice is all keyframes lets the decoder skip the rest.
        keyframes_only = allow_skip and keys is not None and bool(np.isin(selected, keys).all())
        # Replacing a skipped frame by the next decoded one is only sound when
        # wanted frames are far apart (more than 4 frames on average).
        nonref = self.skip_nonref and not keyframes_only and n > 4 * len(selected)
        resize = size != (meta.width, meta.height)
        last_wanted = int(selected[-1])
        idx_buf: list[int] = []
        pts_buf: list[float] = []
        rgb_buf: list[np.ndarray] = []
        delivered, index_i = 0, -1
        held: list[SampledFrames] = []
        failure: BaseException | None = None
        self.frames_decoded = 0
        # Seek targets: for each wanted frame, the keyframe at or before it.
        # When that keyframe lies beyond the frame being decoded, jumping to it
        # skips whole GOPs that hold nothing wanted (sparse samples, windows).
        can_seek = keys is not None and len(keys) > 1 and bool(index.raw_pts)
        key_arr = np.asarray(keys if keys is not None else [0], dtype=np.int64)
        with self._open_container(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = self.thread_type
            if keyframes_only:
                stream.codec_context.skip_frame = "NONKEY"
            elif nonref:
                stream.codec_context.skip_frame = "NONREF"
            try:
                frames = container.decode(stream)
                pending = iter(selected.tolist())
                next_wanted = next(pending, None)
                while True:
                    if can_seek and not keyframes_only and next_wanted is not None:
                        key_before = int(key_arr[np.searchsorted(key_arr, next_wanted, side="right") - 1])
                        if key_before > index_i + 1 and key_before > 0:
                            container.seek(index.raw_pts[key_before], stream=stream, backward=True, any_frame=False)
                            frames = container.decode(stream)
                            index_i = key_before - 1
                    frame = next(frames, None)
                    if frame is None:
                        break
                    self.frames_decoded += 1
                    i = index.index_of_pts.get(frame.pts) if frame.pts is not None else None
                    index_i = index_i + 1 if i is None else i
                    stand_in = nonref and next_wanted is not None and next_wanted <= index_i < n
                    if index_i >= n or not (wanted[index_i] or stand_in):
                        if index_i >= last_wanted:
                            break
                        continue
                    while next_wanted is not None and next_wanted <= index_i:
                        next_wanted = next(pending, None)
                    if resize:
                        rgb = frame.reformat(width=size[0], height=size[1], format="rgb24",
                                             interpolation="AREA").to_ndarray()  # fmt: skip
                    else:
                        rgb = frame.to_ndarray(format="rgb24")
                    idx_buf.append(index_i)
                    pts_buf.append(float(index.pts_seconds[index_i]))
                    rgb_buf.append(rgb)
                    delivered += 1
                    if len(idx_buf) == batch_size:
                        if keyframes_only:
                            held.append(_batch(idx_buf, pts_buf, rgb_buf))
                        else:
                            yield _batch(idx_buf, pts_buf, rgb_buf)
                        idx_buf, pts_buf, rgb_buf = [], [], []
                    if index_i >= last_wanted:
                        break
            except av.FFmpegError as exc:
                failure = exc
        if idx_buf:
            if keyframes_only:
                held.append(_batch(idx_buf, pts_buf, rgb_buf))
            else:
                yield _batch(idx_buf, pts_buf, rgb_buf)
        if keyframes_only:
            if failure is None and delivered < len(selected):
                # skip_frame=NONKEY can drop frames the container flags as key
                # (HEVC CRA pictures in MKV, seen here): decode normally instead.
                first_try = self.frames_decoded
                yield from self._generate(path, meta, index, selected, size, batch_size, allow_skip=False)
                self.frames_decoded += first_try
                return
            yield from held  # keyframe passes are short: held back until known complete
        if failure is not None:
            raise DecodeError(
                f"{path}: PyAV failed after {delivered} of {len(selected)} selected frames: {_reason(failure)}"
            ) from failure
        if delivered < len(selected) and not (nonref and delivered > 0):
            raise DecodeError(
                f"{path}: PyAV decoded only {delivered} of {len(selected)} selected frames "
                f"(stream ended early)"
            )


# --------------------------------------------------------------------------
# Choosing a decoder
# --------------------------------------------------------------------------


def _is_still(path: Path) -> bool:
    from vscan.inputs.memory import source_name  # an in-memory file (archive member) carries its name

    return Path(source_name(path)).suffix.lower() in IMAGE_SUFFIXES


#: Sampled frames per second above which a forward decode is as cheap as
#: seeking, so every-frame patterns go to decord (the design's decoder).
DENSE_FPS = 8.0


def choose_backend(policy: SamplingPolicy, backend: Literal["auto", "decord", "pyav"] = "auto") -> str:
    """The backend for an access pattern, from bench/bench_decode.py on 2 cores:
    sparse patterns (keyframes, fixed rates up to DENSE_FPS) run faster on
    PyAV, which skips non-key frames, seeks over GOPs with nothing wanted and
    converts only the frames it returns; dense ones keep "auto" (decord first,
    PyAV fallback). An explicit backend is always kept."""
    if backend != "auto":
        return backend
    name = getattr(policy, "name", "")
    if name in ("keyframes", "adaptive", "windows") or (name == "fixed_rate" and getattr(policy, "fps", DENSE_FPS + 1) <= DENSE_FPS):
        return "pyav"
    return "auto"


def open_decoder(
    path: str | os.PathLike, backend: Literal["auto", "decord", "pyav"] = "auto"
) -> Decoder:
    """The decoder for path, checked by probing it.

    Stills (by suffix) get ImageDecoder. "auto" tries decord, then PyAV when
    decord cannot open the file; probe() of the returned decoder names the
    backend that served in VideoMetadata.backend.
    """
    from vscan.decode.images import ImageDecoder

    if backend not in BACKENDS:
        raise ConfigError(f"Invalid backend ({backend!r}). Supported values are {', '.join(BACKENDS)}.")
    p = check_readable(path)
    if _is_still(p):
        decoder: Decoder = ImageDecoder()
        decoder.probe(p)
        return decoder
    if backend == "pyav":
        decoder = PyAVDecoder()
        decoder.probe(p)
        return decoder
    try:
        decoder = DecordDecoder()
        decoder.probe(p)
        return decoder
    except UnsupportedMediaError as decord_error:
        if backend == "decord":
            raise
        try:
            decoder = PyAVDecoder()
            decoder.probe(p)
        except UnsupportedMediaError as exc:
            raise UnsupportedMediaError(f"{exc} (decord also failed: {decord_error})") from exc
        return decoder


def iter_sampled_frames(
    path: str | os.PathLike,
    policy: SamplingPolicy,
    backend: Literal["auto", "decord", "pyav"] = "auto",
    **kwargs,
) -> Iterator[SampledFrames]:
    """open_decoder + iter_frames; with "auto", a decord failure before any
    frame was delivered is retried with PyAV."""
    decoder = open_decoder(path, backend)
    delivered = False
    try:
        for batch in decoder.iter_frames(path, policy, **kwargs):
            delivered = True
            yield batch
    except (DecodeError, UnsupportedMediaError):
        if backend != "auto" or decoder.name != DecordDecoder.name or delivered:
            raise
        yield from PyAVDecoder().iter_frames(path, policy, **kwargs)

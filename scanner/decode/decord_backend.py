"""DecordDecoder: decord.VideoReader on the CPU, the default backend.

decord can abort the whole process on some corrupt streams (dmlc/decord#25)
and hang in get_batch (#269, #363): callers that scan untrusted files run
decoding in worker processes with a time limit; this module does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np

from vscan.errors import ConfigError, DecodeError, UnsupportedMediaError
from vscan.decode.base import Decoder, _batch, _cache_key, _check_options, _reason, check_readable, output_size
from vscan.decode.metadata import SampledFrames, VideoMetadata
from vscan.decode.pyav_backend import PyAVDecoder

__all__ = ["DecordDecoder"]


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


def _match_frames(raw: np.ndarray, index, n: int) -> np.ndarray | None:
    """decord's index of each frame of the PyAV index (nearest timestamp
    within half a frame), or None when they do not pair up one to one.

    decord's clock is the stream's raw pts; on edit lists that shift the
    start (stream-copy cuts) it shifts its own times and frames differently
    from libavformat (frames a few off, checked against ffmpeg), so a file
    whose times do not match is refused and PyAV serves it."""
    if not index.raw_pts:  # no timestamps: both in decode order
        m = len(index.pts_seconds)
        return np.arange(m, dtype=np.int64) if m == n else None
    want = np.asarray(index.raw_pts, np.float64) * float(index.time_base)
    order = np.argsort(raw, kind="stable")
    got = raw[order]
    step = float(np.diff(want).min()) if len(want) > 1 else 1.0
    if n == 1:
        return np.zeros(1, np.int64) if len(want) == 1 and abs(got[0] - want[0]) <= 1e-3 else None
    pos = np.clip(np.searchsorted(got, want), 1, n - 1)
    pos = np.where(np.abs(want - got[pos - 1]) <= np.abs(got[pos] - want), pos - 1, pos)
    if np.all(np.abs(got[pos] - want) <= max(step / 2, 1e-4)) and np.all(np.diff(pos) > 0):
        return order[pos].astype(np.int64)
    return None


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

    def _index(self, vr, path: Path) -> tuple[VideoMetadata, np.ndarray, str | None, np.ndarray]:
        """Metadata, pts (seconds), container format and frame map of the file open in vr.

        Frames, timestamps and keyframes are PyAV's packet index (a demux
        pass), so both backends number frames alike: decord also returns the
        frames an edit list hides (stream-copy cuts), and counts keyframes
        in decode order on open-GOP streams. The map gives decord's index of
        each of those frames, matched by timestamp. Decodes frame 0: its
        shape is the reader's frame size after decord's own rotation, and a
        first frame decord cannot decode is UnsupportedMediaError here, so
        open_decoder("auto") falls back to PyAV. width/height in the
        metadata are the reader's output size.
        """
        reference = PyAVDecoder()
        base, index = reference._index(path)
        if index.discarded:
            raise UnsupportedMediaError(f"{path}: decord shows the {index.discarded} frames an edit list hides, "
                                        "at the wrong times (stream-copy cut); PyAV reads it")  # fmt: skip
        if index.orientation.mirrored:
            raise UnsupportedMediaError(f"{path}: decord ignores mirrored display matrices "
                                        f"({index.orientation.describe()}); PyAV applies them")  # fmt: skip
        try:
            n = len(vr)
            if n < 1:
                raise UnsupportedMediaError(f"{path}: decord found no video frames")
            raw = np.asarray(vr.get_frame_timestamp(range(n)), dtype=np.float64)[:, 0]
            height, width = vr[0].shape[:2]
            vr.seek(0)
        except UnsupportedMediaError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise UnsupportedMediaError(f"{path}: decord cannot index it: {_reason(exc)}") from exc
        frame_map = _match_frames(raw, index, n)
        if frame_map is None:
            raise UnsupportedMediaError(
                f"{path}: decord's {n} frames do not match the stream's {base.num_frames} by timestamp "
                "(an edit list decord reads differently); PyAV reads it"
            )
        codec, container_format = _container_facts(path)
        meta = replace(base, backend=self.name, width=int(width), height=int(height))
        return meta, index.pts_seconds, container_format, frame_map

    def _key(self, path: Path) -> tuple:
        # random_access decides where keyframe indices come from (decord or PyAV).
        return (*_cache_key(path), self.random_access)

    def _cached(self, key: tuple) -> tuple[VideoMetadata, np.ndarray, str | None, np.ndarray] | None:
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
            meta, pts, container_format, frame_map = self._index(vr, path)
            width, height = meta.width, meta.height
        else:
            (meta, pts, container_format, frame_map), vr = self._describe(path)
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
            return self._generate_seeking(vr, path, selected, pts, frame_map, batch_size, self)
        return self._generate_forward(vr, path, selected, pts, frame_map, batch_size, self)

    @staticmethod
    def _generate_forward(vr, path, selected, pts, frame_map, batch_size, counter) -> Iterator[SampledFrames]:
        """Contiguous get_batch windows from decord's frame 0, keeping the
        selected frames (decord index frame_map[i] for frame i).

        No seeks, so no wrong frames; costs decoding (and RGB conversion) of
        every frame up to the last selected one. skip_frames() after next()
        also returned wrong frames on the HEVC/MKV sample, so it is not used.
        """
        ours = np.full(int(frame_map[selected[-1]]) + 1, -1, dtype=np.int64)  # decord index -> frame
        ours[frame_map[selected]] = selected
        wanted = ours >= 0
        idx_buf: list[int] = []
        rgb_buf: list[np.ndarray] = []
        for start in range(0, len(wanted), batch_size):
            window = np.arange(start, min(start + batch_size, len(wanted)))
            keep = window[wanted[window]]
            counter.check_cancelled(path)
            try:
                rgb = vr.get_batch(window.tolist()).asnumpy()
                counter.frames_decoded += len(window)
            except Exception as exc:  # noqa: BLE001
                raise DecodeError(
                    f"{path}: decord failed decoding frames {window[0]}..{window[-1]}: {_reason(exc)}"
                ) from exc
            for d in keep.tolist():
                idx_buf.append(int(ours[d]))
                rgb_buf.append(rgb[d - start])
                if len(idx_buf) == batch_size:
                    yield _batch(idx_buf, pts[idx_buf].tolist(), rgb_buf)
                    idx_buf, rgb_buf = [], []
        vr.seek(0)
        if idx_buf:
            yield _batch(idx_buf, pts[idx_buf].tolist(), rgb_buf)

    @staticmethod
    def _generate_seeking(vr, path, selected, pts, frame_map, batch_size, counter) -> Iterator[SampledFrames]:
        for start in range(0, len(selected), batch_size):
            chunk = selected[start : start + batch_size]
            counter.check_cancelled(path)
            try:
                rgb = vr.get_batch(frame_map[chunk].tolist()).asnumpy()
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

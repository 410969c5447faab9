"""DecordDecoder: decord.VideoReader on the CPU, the default backend.

decord can abort the whole process on some corrupt streams (dmlc/decord#25)
and hang in get_batch (#269, #363): callers that scan untrusted files run
decoding in worker processes with a time limit; this module does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
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

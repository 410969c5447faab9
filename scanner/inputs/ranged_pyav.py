"""PyAV decoding of an object through range reads (vscan.inputs.ranged).

The usual PyAV decoder demuxes every packet to index a file, which would
read the whole object. Here the index comes from the container's own packet
index (MP4/MOV ``moov``, Matroska cues: ``stream.index_entries``) when it
lists every frame at a constant frame rate; a keyframe pass then seeks to
each wanted keyframe and decodes its packet alone, after fetching those
packets' byte ranges up front. Anything else (no full index, a variable
frame rate, a dense pass) still decodes correctly from the same range reads,
reading more. A keyframe whose packet is not where the index says is a
DecodeError, and the scan's fallback decodes the object plainly.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vscan.decode.base import _check_options, output_size
from vscan.decode.metadata import VideoMetadata
from vscan.decode.orient import orientation_from_matrix
from vscan.decode.pyav_backend import PyAVDecoder, _declared_seconds, _partial
from vscan.decode.pyav_reuse import _PROBE_PACKETS, _first_frame_matrix, open_container
from vscan.decode.pyav_packets import _PacketIndex
from vscan.errors import DecodeError, UnsupportedMediaError
from vscan.inputs.ranged import RangeFile, source_for

__all__ = ["RangedPyAV", "ranged_decoder"]


def ranged_decoder(path: str, *, plain: bool = False) -> "RangedPyAV | None":
    """The decoder for ``path`` when it is an object being read by range (vscan.inputs.ranged.registered), else None."""
    source = source_for(str(path))
    return None if source is None else RangedPyAV(source, str(path), plain=plain)


class RangedPyAV(PyAVDecoder):
    """PyAVDecoder reading a :class:`RangeFile` (module docstring)."""

    def __init__(self, source: RangeFile, uri: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.source, self.uri = source, uri
        self._built: tuple[VideoMetadata, _PacketIndex] | None = None
        self._spans: dict[int, tuple[int, int]] = {}  # keyframe pts -> (byte position, size) of its packet

    def _open_container(self, path):
        return open_container(self.source.view(), self.uri)  # its own position: a stalled decoder may still be reading

    def _index(self, path):
        if self._built is None:
            self._built = (None if self.plain else self._index_from_entries()) or self._build_index(path)
        return self._built

    def probe(self, path):
        return self._index(path)[0]

    def orientation(self, path):
        return self._index(path)[1].orientation

    def frame_times(self, path):
        return self._index(path)[1].pts_seconds  # the object's, by range reads (no local file to check)

    def iter_frames(self, path, policy, *, batch_size=64, max_side=None, size=None):
        _check_options(batch_size, max_side)
        meta, index = self._index(path)
        selected = policy.select(index.pts_seconds, meta.keyframe_indices, meta.duration_seconds)
        if len(selected) == 0:
            raise DecodeError(f"{self.uri}: policy {policy.describe()} selected no frames")
        return self._generate(path, meta, index, selected, output_size(meta.width, meta.height, max_side, size), batch_size)

    def _generate(self, path, meta, index, selected, size, batch_size, allow_skip=True, by_packet=False):
        # keyframe passes always go packet by packet here (_keyframe_feed: a seek to each, its packet alone)
        return super()._generate(path, meta, index, selected, size, batch_size, allow_skip=allow_skip, by_packet=True)

    def _keyframe_feed(self, container, stream, index: _PacketIndex, wanted: np.ndarray) -> Iterator:
        """The wanted keyframes' frames: their packets fetched together, then each sought and decoded alone."""
        targets = [index.raw_pts[i] for i in np.flatnonzero(wanted) if i < len(index.raw_pts)]
        if not targets or not self._spans:  # no timestamps, or an index from a demux pass: every packet read
            from vscan.decode.pyav_packets import _keyframe_frames

            yield from _keyframe_frames(container, stream, index, wanted)
            return
        self.source.prefetch([self._spans[t] for t in targets if t in self._spans])
        self.source.read_ahead = False  # each packet was fetched above: no reading past it
        ctx = stream.codec_context
        for target in targets:
            container.seek(target, stream=stream, backward=True, any_frame=False)
            packet = next((p for p in container.demux(stream) if p.size and (p.pts is None or p.pts >= target)), None)
            if packet is None or packet.pts != target or not packet.is_keyframe:
                raise DecodeError(f"{self.uri}: the container's index does not match its packets at pts {target}")
            yield from ctx.decode(packet)
            yield from ctx.decode(None)
            ctx.flush_buffers()

    def _index_from_entries(self) -> tuple[VideoMetadata, _PacketIndex] | None:
        """The packet index from the container's own index, reading only the header and the first packets; None when it cannot serve."""
        with self._open_container(self.uri) as container:
            stream = container.streams.video[0]
            entries = [e for e in stream.index_entries if not e.is_discard]
            if len(entries) < 2 or (stream.frames and len(stream.index_entries) != stream.frames):
                return None
            dts = np.array([e.timestamp for e in entries], np.int64)
            steps = np.diff(np.sort(dts))
            if steps.min() <= 0 or steps.min() != steps.max():
                return None  # a variable frame rate: presentation times are not the decode times shifted
            matrix, first = None, None
            for n, packet in enumerate(container.demux(stream)):
                if packet.size == 0:
                    continue
                first = first or packet
                probing, matrix = _first_frame_matrix(stream, packet)
                if not probing or n >= _PROBE_PACKETS:
                    break
            if first is None or first.pts is None or first.dts is None:
                return None
            shift = int(first.pts) - int(first.dts)  # the decoder's reorder delay: presentation = decode time + shift
            pts = dts + shift
            self._spans = {int(t): (int(e.pos), int(e.size)) for t, e in zip(pts, entries) if e.is_keyframe}
            declared = _declared_seconds(container, stream)
            ctx = stream.codec_context
            width, height = int(ctx.width or stream.width or 0), int(ctx.height or stream.height or 0)
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            fps = fps if np.isfinite(fps) and fps > 0 else 25.0
            index = _PacketIndex([int(t) for t in pts], [bool(e.is_keyframe) for e in entries], stream.start_time, stream.time_base, fps)
            codec = ctx.name
            discarded = len(stream.index_entries) - len(entries)
        if width <= 0 or height <= 0:
            raise UnsupportedMediaError(f"{self.uri}: video stream has no frame size")
        index.orientation = orientation_from_matrix(matrix)
        index.discarded = discarded
        width, height = index.orientation.displayed_size(width, height)
        duration = float(index.pts_seconds[-1]) + 1.0 / fps
        meta = VideoMetadata(
            path=self.uri, backend=self.name, codec=codec, width=width, height=height, fps=fps, num_frames=len(entries),
            duration_seconds=duration, keyframe_indices=index.keyframe_indices or None,
            demux_partial=_partial(None, declared, duration), declared_duration_seconds=declared,
        )  # fmt: skip
        return meta, index

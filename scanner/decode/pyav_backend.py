"""PyAVDecoder: libav* through PyAV, the fallback backend and the fast path for sparse samples.

A demux pass builds a presentation-order packet index (decoding only until
the first frame, for its display matrix); decoding then seeks over GOPs that
hold no wanted frame, skips non-key frames when only keyframes are wanted,
and converts only the selected frames to RGB, in displayed orientation.

Edit lists (stream-copy cuts that start between keyframes): packets that
libavformat flags as discarded are decoded as references but never shown,
so they are not frames here either, as in ffprobe; the first shown frame is
frame 0 at 0.0 s and counts as a keyframe (decoding can start there).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from vscan.errors import DecodeError, UnsupportedMediaError
from vscan.decode.base import Decoder, _batch, _cache_key, _check_options, _reason, check_readable, output_size
from vscan.decode.metadata import SampledFrames, VideoMetadata
from vscan.decode.orient import Orientation, orientation_from_matrix
from vscan.decode.pyav_packets import _LOOP_FACTOR, DamagedFrom, damaged_from, kept_before_damage, PacketKeeper, _all_frames, _frames_from_keyframe, _keyframe_frames, _PacketIndex, pass_read_on
from vscan.decode.pyav_entries import entries_probe
from vscan.decode.pyav_packets import _declared_seconds, _partial  # noqa: F401 - vscan.inputs.ranged_pyav reaches them here
from vscan.decode.pyav_reuse import _PROBE_PACKETS, _REWINDABLE, _SKIP_PER_FRAME, _rgb, _scaler, _turned_rgb, first_frame, first_packet, open_container, refuse_unusable, rewound, whole_frames  # noqa: F401 - _scaler: tests

__all__ = ["PyAVDecoder"]


class PyAVDecoder(Decoder):
    """PyAV (libav*) sequential decoding; converts only the selected frames to RGB."""

    name = "pyav"
    #: How a keyframe pass feeds packets by packet (vscan.inputs.ranged_pyav seeks to each instead of demuxing all).
    _keyframe_feed = staticmethod(_keyframe_frames)

    def __init__(
        self,
        *,
        thread_type: Literal["AUTO", "FRAME", "SLICE", "NONE"] = "AUTO",
        skip_nonref: bool = False,
        plain: bool = False,
        hold_open: bool = False,
        read_on: Callable[[VideoMetadata, np.ndarray, np.ndarray], tuple[int, ...]] | None = None,
        one_thread: frozenset[str] = frozenset(),
    ):
        """skip_nonref: do not decode the unwanted non-reference frames (about half of an H.264
        stream with B-frames; per packet in H.264/HEVC/VP9/VP8); elsewhere, for sparse samples, a skipped
        wanted frame is replaced by the next decoded one, its real index and pts reported (``stand_in``).
        plain: one forward decode of every frame up to the last wanted one,
        no seeking, no skipped frames (the last-resort fallback).
        hold_open: keep the file's container open between passes over it
        (rewound: vscan.decode.pyav_reuse), until another file's or ``close()``.
        read_on: ``self.read_on`` (below), given before the probe: its index pass then leaves
        the decoder where a keyframe pass reading on from frame 0 goes on from (``_PacketIndex.parked``).
        one_thread: decoders (libavcodec names: ``hevc``, ``libdav1d``) opened with one thread, ``thread_type`` aside."""
        self.thread_type, self.one_thread = thread_type, one_thread
        self.skip_nonref = skip_nonref
        self.stand_in = True  # a skipped wanted frame may be stood in for (False: skip only per packet, ``whole_frames``)
        self.plain = plain
        #: Frames the last iter_frames decoded but did not select (on the way
        #: to selected ones), kept as RGB at the output size up to
        #: ``keep_passing`` of them, by index: a later pass over the same file
        #: (vscan.runtime.region_probe) takes them instead of decoding again.
        self.keep_passing = 0
        self.passing: dict[int, np.ndarray] = {}
        #: The frames a later pass over the file will want, given this pass's (a confirmation decoded ahead:
        #: vscan.runtime.confirm_ahead): a keyframe pass reads on from the keyframe before each to it (``read_on_plan``),
        #: that keyframe decoded once; ``read_ahead``: {wanted frame: (index, RGB) of the frame a decode of it gives}.
        self.read_on: Callable[[VideoMetadata, np.ndarray, np.ndarray], tuple[int, ...]] | None = read_on  # (meta, pts, selected)
        self.read_ahead: dict[int, tuple[int, np.ndarray]] = {}
        #: A second picture of the same decoded frames, at ``also_max_side`` (scaled as ``max_side``
        #: scales): for each selected frame, by index in ``also``, a call that makes it (only the
        #: frames the caller then wants are converted; it clears ``also`` as it goes). A bank build
        #: derives the scan's square and its extra rows' 512 px frames from one decode (vscan.bank.one_pass).
        self.also_max_side: int | None = None
        self.also: dict[int, Callable[[], np.ndarray]] = {}
        self.hold_open = hold_open  # a scan's decode sets it: three passes a file
        self._held: tuple[tuple, object] | None = None
        self._nonref_open = False  # the codec in use was opened skipping non-reference frames (``_set_threads``)
        self._first_packet: tuple | None = None  # of the last index pass: where ``rewound`` checks it landed
        self._stopped: tuple | None = None  # (container, frames, index): where the last pass stopped, not drained (``stopped_at``)

    def _set_threads(self, stream, held: bool = False) -> None:
        """The codec's threading, before it opens (at its first packet; a held container's is open). ``held``: an index pass's
        codec, kept for the passes after; one that reads ``skip_frame`` only as it opens (AV1's libdav1d) opens skipping
        non-reference frames where a scan's passes skip them: its keyframe passes' keyframes are references, and a
        confirmation read on to (``read_on``) then skips as its own decode would (``_nonref_open``)."""
        ctx = stream.codec_context
        if not ctx.is_open:
            stream.thread_type = self.thread_type
            ctx.thread_count = 1 if ctx.name in self.one_thread else ctx.thread_count  # vscan.runtime.decode_task._PYAV
            self._nonref_open = held and self.skip_nonref and self.stand_in and not self.plain and ctx.name not in _SKIP_PER_FRAME
            if self._nonref_open:
                ctx.skip_frame = "NONREF"

    @contextlib.contextmanager
    def _holding(self, path: Path, rewind: bool = False, any_skip: bool = False, kept: bool = False, flush: bool = True) -> Iterator:
        """``path``'s container: the one held from this decoder's last pass over it when
        ``rewind`` and it rewinds exactly (vscan.decode.pyav_reuse; its codec not flushed
        without ``flush``: ``self._went_on`` then says so), else a new one; held afterwards
        with ``hold_open``, else closed (and closed on any error)."""
        held, self._held = self._held, None
        self._went_on = False
        # only a local file is held (its identity from stat); an object read by range (RangedPyAV) is a URI
        key = _cache_key(path) if self.hold_open and isinstance(path, Path) else None  # held only when hold_open
        container = None
        if held is not None:
            if rewind and held[0] == key and rewound(held[1], self._first_packet, any_skip, kept, flush):
                container = held[1]
                self._went_on = not flush
            else:
                held[1].close()
        container = container or self._open_container(path)
        try:
            yield container
        except BaseException:
            container.close()
            raise
        if self.hold_open and key is not None:
            self.close()
            self._held = (key, container)
        else:
            container.close()

    def close(self) -> None:
        """Close the container held open (``hold_open``), if any."""
        held, self._held = self._held, None
        if held is not None:
            held[1].close()

    @staticmethod
    def _open_container(path: Path):
        return open_container(path)  # an MP4 cut off before its index says so (vscan.inputs.truncated)

    def _index(self, path: Path) -> tuple[VideoMetadata, _PacketIndex]:
        # probe() then iter_frames() on one file (the usual pair) demux it once.
        key = _cache_key(path)
        cached = getattr(self, "_last_index", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        result = self._build_index(path)
        self._last_index = (key, result)
        return result

    def damaged_seconds(self) -> list[float]:
        """When the packets the decoder refused as damaged lie in the last file indexed (vscan.decode.pyav_packets.decoded)."""
        cached = getattr(self, "_last_index", None)
        return [] if cached is None else sorted(cached[1][1].damaged.values(), key=lambda t: (t != t, t))  # NaN (not placed) last

    def damaged_from(self) -> tuple[float, int, int] | None:
        """Where the damage became dominant in the last file indexed (vscan.decode.pyav_packets.damaged_from)."""
        return None if getattr(self, "_last_index", None) is None else damaged_from(self._last_index[1][1])

    def _build_index(self, path: Path) -> tuple[VideoMetadata, _PacketIndex]:
        import av

        self._first_packet = None
        with self._holding(path) as container:
            stream = container.streams.video[0]
            if self.hold_open:  # its codec, opened here for the first frame's display matrix, serves the passes after
                self._set_threads(stream, held=True)
            discarded = 0
            fed = 0  # decode until the first frame shows its display matrix
            keeper = PacketKeeper(self.hold_open and container.format.name in _REWINDABLE)  # the passes after read them
            # A confirmation read on to (``read_on``), mostly from keyframe 0: the probe's decoder is not drained for frame 0,
            # so the keyframe pass goes on from it (``_PacketIndex.parked``), frame 0 decoded once. Else drained (~1 ms less).
            park = self.read_on is not None and keeper.kept is not None
            if park and self.skip_nonref and not self.plain and stream.codec_context.name in _SKIP_PER_FRAME and not stream.codec_context.is_open:
                # as the reading on skips them (``nonref_on``): the probe's packets after frame 0 decode as they would there
                stream.codec_context.skip_frame = "NONREF"
            quick = entries_probe(self, container, stream, path, keeper, park, first_frame)  # MP4: the container's own index, no demux pass
            # shown: the first frame decoded (frame 0, mostly): a keyframe pass takes it (_generate); fed_pts: the probe's packets
            timestamps, keyflags, sizes, matrix, shown, fed_pts, parked_at = quick or ([], [], [], None, None, [], None)
            try:
                for packet in () if quick else container.demux(stream):
                    keeper.add(packet)
                    if packet.size == 0:  # flush packet
                        continue
                    self._first_packet = self._first_packet or first_packet(packet)
                    if 0 <= fed < _PROBE_PACKETS:
                        probing, matrix, shown = first_frame(stream, packet, drain=not park)
                        fed_pts.append(packet.pts)
                        fed = fed + 1 if probing else -1
                        parked_at = len(keeper.kept) if park and not probing and shown is not None and keeper.kept is not None else None
                    if packet.is_discard:  # edit list: decoded for reference, never shown
                        discarded += 1
                        continue
                    timestamps.append(packet.pts if packet.pts is not None else packet.dts)
                    keyflags.append(bool(packet.is_keyframe))
                    sizes.append(packet.size)  # cuts coded without a keyframe show as large packets (vscan.decode.cuts)
            except av.FFmpegError as exc:
                demux_error = _reason(exc)  # index what was read; the record says it is partial
            else:
                demux_error = None
            keeper.leave_out_cut_short(timestamps, keyflags, sizes)  # a file cut inside its last packet
            declared = _declared_seconds(container, stream)
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
        index = _PacketIndex(timestamps, keyflags, start, time_base, fps, sizes)
        index.orientation = orientation_from_matrix(matrix)
        index.packets = keeper.packets(complete=demux_error is None)
        index.cut_pts = keeper.cut_pts
        index.discarded = discarded
        index.first_frame = shown if shown is not None and shown.pts is not None and index.index_of_pts.get(shown.pts) == 0 else None
        index.probed(fed_pts, parked_at)
        width, height = index.orientation.displayed_size(width, height)
        if rate is None and n > 1 and index.pts_seconds[-1] > 0:
            fps = (n - 1) / float(index.pts_seconds[-1])
        duration = float(index.pts_seconds[-1]) + 1.0 / fps
        meta = VideoMetadata(
            path=str(path), backend=self.name, codec=codec, width=width, height=height, fps=fps,
            num_frames=n, duration_seconds=duration,
            keyframe_indices=index.keyframe_indices or None,
            demux_partial=_partial(demux_error, declared, duration), declared_duration_seconds=declared,
        )  # fmt: skip
        return meta, index

    def orientation(self, path) -> Orientation:
        """How the file's frames are displayed (from its first frame's display matrix)."""
        return self._index(check_readable(path))[1].orientation

    def probe(self, path):
        path = check_readable(path)
        return self._index(path)[0]

    def frame_times(self, path) -> np.ndarray:
        """Every frame's presentation time (seconds), in order: the index pass's, cached (no second demux)."""
        return self._index(check_readable(path))[1].pts_seconds

    def iter_frames(self, path, policy, *, batch_size=64, max_side=None, size=None):
        _check_options(batch_size, max_side)
        path = check_readable(path)
        meta, index = self._index(path)
        selected = policy.select(index.pts_seconds, meta.keyframe_indices, meta.duration_seconds)
        if len(selected) == 0:
            raise DecodeError(f"{path}: policy {policy.describe()} selected no frames")
        if index.damaged_cut is not None and not len(selected := selected[selected < index.damaged_cut]):
            return iter(())  # an earlier pass found the rest dominated by damage: only the frames before it, here none
        size = output_size(meta.width, meta.height, max_side, size)
        return self._generate(path, meta, index, selected, size, batch_size)

    def stopped_at(self, path) -> int | None:
        """The frame the last pass over ``path`` stopped at, where the next one decodes on from (``_stopped``); None: none."""
        held, stopped = self._held, self._stopped
        return stopped[2] if stopped is not None and held is not None and held[1] is stopped[0] and held[0] == _cache_key(Path(path)) else None

    def _generate(self, path, meta, index, selected, size, batch_size, allow_skip=True, by_packet=False) -> Iterator[SampledFrames]:
        import av

        n = meta.num_frames
        wanted = np.zeros(n, dtype=bool)
        wanted[selected] = True
        keys = meta.keyframe_indices
        # Any policy whose choice is all keyframes lets the decoder skip the rest.
        keyframes_only = allow_skip and not self.plain and bool(np.isin(selected, index.true_keyframes).all())
        # Skipped: every unwanted non-reference frame where each packet takes its own skip_frame (``whole_frames``); else, a
        # skipped wanted frame replaced by the next decoded one, sound only when wanted frames are over 4 apart on average.
        (through, later), reached = pass_read_on(self, index, meta, selected, keyframes_only), {}
        whole, legacy = whole_frames(self, meta, index, selected, through, keyframes_only), self.skip_nonref and self.stand_in
        index.whole, nonref = whole, whole is not None or (legacy and not self.plain and not keyframes_only and n > 4 * len(selected))
        nonref_on = whole is not None or (legacy and n > 4 * later)  # as the later pass's own decode would skip
        orientation = index.orientation
        stored = orientation.stored_size(*size)  # frames are scaled before they are turned
        native = orientation.stored_size(meta.width, meta.height)
        resize = stored != native
        also = None if self.also_max_side is None else orientation.stored_size(*output_size(meta.width, meta.height, self.also_max_side))
        max_decoded = _LOOP_FACTOR * n + 64
        last_wanted = max([int(selected[-1]), *(v[-1] for v in through.values())])
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
        # Each keyframe is sought at most once: a seek that lands early (an
        # imprecise index) decodes forward from there instead of seeking again.
        can_seek = not self.plain and keys is not None and len(keys) > 1 and bool(index.raw_pts)
        key_arr = np.asarray(keys if keys is not None else [0], dtype=np.int64)
        sought, last_delivered = 0, -1
        self.passing = {}
        # Frame 0 as the index pass decoded it (for its display matrix): a keyframe pass takes it, decoding the others alone.
        frame0, index.first_frame = getattr(index, "first_frame", None), None
        reuse = frame0 is not None and keyframes_only and bool(wanted[0]) and bool(index.raw_pts) and 0 not in through
        # ... or read on from it (a confirmation's frames after keyframe 0): the held codec goes on from the index pass's
        # probe (``_PacketIndex.parked``: frame 0 out, the decoder not drained), when that fed only frames before them.
        parked, index.parked = index.parked, None
        go_on = (frame0 is not None and keyframes_only and bool(wanted[0]) and bool(index.raw_pts) and 0 in through
                 and parked is not None and parked[1] < min(through[0]))  # fmt: skip
        feed = wanted.copy() if reuse else wanted
        feed[0] = feed[0] and not reuse
        same_skip = keyframes_only or (nonref and self._nonref_open)  # a held AV1 codec opened skipping so
        # ... or on from where the last pass stopped (``stopped_at``), when every frame wanted comes later and none is past a keyframe after it
        stopped, on, self._stopped = self._stopped, self.stopped_at(path), None
        on = on is not None and not (keyframes_only or through or go_on) and index.packets is not None and int(key_arr[np.searchsorted(key_arr, selected[0], side="right") - 1]) <= on + 1 < int(selected[0]) + 1
        with self._holding(path, rewind=True, any_skip=same_skip, kept=index.packets is not None, flush=not (go_on or on)) as container:
            go_on = go_on and self._went_on  # not the held codec (opened again): decoded from frame 0
            on = on and self._went_on and container is stopped[0]
            stream = container.streams.video[0]
            self._set_threads(stream)
            skip = ("NONREF" if nonref_on else "DEFAULT") if through else "NONKEY" if keyframes_only else "NONREF" if nonref else "DEFAULT"
            stream.codec_context.skip_frame = skip  # a held codec keeps the last pass's
            try:
                # A keyframe pass feeds the decoder the wanted keyframes' packets alone, in every codec:
                # VP9's ignores skip_frame=NONKEY (it decoded all 660 frames of a file for its 6 keyframes),
                # and the others, given every packet to skip, cost ~1 ms a file more (same frames).
                by_packet = keyframes_only
                feed_args = (through, reached, parked[0] if go_on else None) if through else ()
                frames = self._keyframe_feed(container, stream, index, feed, *feed_args) if by_packet else _all_frames(container, stream, index)
                frames, index_i = (stopped[1], stopped[2]) if on else (itertools.chain([frame0], frames) if reuse or go_on else frames, index_i)
                pending = iter(selected.tolist())
                next_wanted = next(pending, None)
                while True:
                    if can_seek and not keyframes_only and next_wanted is not None:
                        key_before = int(key_arr[np.searchsorted(key_arr, next_wanted, side="right") - 1])
                        if key_before > index_i + 1 and key_before > sought:
                            sought = key_before
                            frames = _frames_from_keyframe(container, stream, index, key_before)
                            index_i = key_before - 1
                    frame = next(frames, None)
                    if frame is None:
                        break
                    self.frames_decoded += 1
                    if self.frames_decoded > max_decoded:
                        raise DecodeError(f"{path}: PyAV decoded {self.frames_decoded} frames of a "
                                          f"{n}-frame stream without finishing (decoder looping)")  # fmt: skip
                    self.check_cancelled(path)
                    i = index.index_of_pts.get(frame.pts) if frame.pts is not None else None
                    index_i = index_i + 1 if i is None else i
                    if index_i <= last_delivered:
                        continue  # a seek that landed early: frames already delivered
                    stand_in = nonref and next_wanted is not None and next_wanted <= index_i < n
                    for target in [t for t, j in reached.items() if j == index_i and t not in self.read_ahead]:  # read on to: kept
                        self.read_ahead[target] = (index_i, orientation.apply(_rgb(frame, stored, native, resize)))
                    if index_i >= n or not (wanted[index_i] or stand_in):
                        if index_i >= last_wanted:
                            break
                        if len(self.passing) < self.keep_passing and index_i < n and not through:  # decoded anyway: kept (region probe)
                            self.passing[index_i] = orientation.apply(_rgb(frame, stored, native, resize))
                        continue
                    while next_wanted is not None and next_wanted <= index_i:
                        next_wanted = next(pending, None)
                    rgb = orientation.apply(_rgb(frame, stored, native, resize))
                    if also is not None:
                        self.also[index_i] = functools.partial(_turned_rgb, frame, also, native, orientation)
                    idx_buf.append(index_i)
                    pts_buf.append(float(index.pts_seconds[index_i]))
                    rgb_buf.append(rgb)
                    delivered += 1
                    last_delivered = index_i
                    if len(idx_buf) == batch_size:
                        if keyframes_only or index.damaged:  # damaged: held until known before any dominant damage
                            held.append(_batch(idx_buf, pts_buf, rgb_buf))
                        else:
                            yield _batch(idx_buf, pts_buf, rgb_buf)
                        idx_buf, pts_buf, rgb_buf = [], [], []
                    if index_i >= last_wanted:
                        break
            except (av.FFmpegError, DamagedFrom) as exc:  # DamagedFrom: the rest mostly refused: it stops, the frames before kept
                failure = None if isinstance(exc, DamagedFrom) else exc
            if failure is None and index_i >= last_wanted and not (keyframes_only or through) and index.packets is not None:
                self._stopped = (container, frames, index_i)  # at its last frame, the codec not drained: ``stopped_at``
        held += [_batch(idx_buf, pts_buf, rgb_buf)] if idx_buf else []
        held, delivered, wanted_n = kept_before_damage(self, path, index, held, selected, delivered)
        if keyframes_only:
            if failure is None and delivered < wanted_n:
                # a keyframe that does not decode alone (or a packet the index did not
                # place): decoded normally, from the file's start.
                first_try = self.frames_decoded
                yield from self._generate(path, meta, index, selected, size, batch_size, allow_skip=False)
                self.frames_decoded += first_try
                return
        yield from held  # keyframe passes are short: held back until known complete (and a damaged file's frames)
        if failure is not None:
            raise DecodeError(f"{path}: PyAV failed after {delivered} of {len(selected)} selected frames: {_reason(failure)}") from failure
        if delivered < wanted_n and not (nonref and delivered > 0):
            raise DecodeError(f"{path}: PyAV decoded only {delivered} of {wanted_n} selected frames (stream ended early)")

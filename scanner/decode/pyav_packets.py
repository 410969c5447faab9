"""PyAV's packets for vscan.decode.pyav_backend: the presentation-order packet index, and the
two ways frames are fed from packets: the wanted keyframes' packets alone (a keyframe pass, in every
codec: VP9's decoder ignores skip_frame=NONKEY, and the others skip packets slower) and everything
from one keyframe on after a seek, each frame decoded once."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

from vscan.decode.base import _batch
from vscan.decode.cuts import with_cuts
from vscan.decode.orient import IDENTITY, Orientation
from vscan.decode.pyav_reuse import _SKIP_PER_FRAME

__all__ = ["_LOOP_FACTOR", "KEEP_PACKETS_BYTES", "PacketKeeper", "DamagedFrom", "damaged_from", "kept_before_damage", "decoded", "_PacketIndex", "_keyframe_frames", "_frames_from_keyframe", "_all_frames", "pass_read_on", "read_on_plan"]

#: Decoded frames allowed per shown frame before a decode is declared
#: looping (seeks re-decode at most a GOP per wanted frame).
_LOOP_FACTOR = 4

#: A file's packets the index pass keeps for the passes after it, at most (bytes of packet data): a
#: scan's decode then reads the file once, not again for its keyframe pass and its confirmation
#: (~1 ms of demuxing each a file on the archive bench's 15 s copies). A larger file is demuxed again.
KEEP_PACKETS_BYTES = 32 << 20


def _declared_seconds(container, stream) -> float | None:
    """The video's duration as the container declares it (the stream's own, else the container's)."""
    try:
        if stream.duration is not None and stream.time_base:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return float(container.duration) / 1_000_000  # AV_TIME_BASE
    except (TypeError, ValueError, ZeroDivisionError):
        pass
    return None


def _partial(demux_error: str | None, declared: float | None, demuxed: float) -> str | None:
    """Why the file's frames stop short: a demux error, or content missing past
    the demuxed end (more than 1 s and 10% of what is declared: a cut-off file)."""
    if demux_error is not None:
        return f"demux error after {demuxed:.3f} s: {demux_error}"
    if declared is not None and math.isfinite(declared) and declared - demuxed > max(1.0, 0.1 * declared):
        return f"the file ends after {demuxed:.3f} s of the {declared:.3f} s it declares (cut off)"
    return None


class PacketKeeper:
    """The packets of one demux pass, in demux order (its end-of-stream flush packet too), up to
    ``KEEP_PACKETS_BYTES``; ``packets()`` is None when not ``enabled`` or past the limit."""

    def __init__(self, enabled: bool) -> None:
        self.kept: list | None = [] if enabled else None
        self.size = 0
        self.cut_short = None  # the last packet with data, where the demuxer flagged it corrupt
        self.cut_pts = None  # its timestamp, once left out (``leave_out_cut_short``)

    def add(self, packet) -> None:
        if packet.size:
            self.cut_short = packet if packet.is_corrupt and not packet.is_discard else None
        if self.kept is None:
            return
        self.size += packet.size
        if self.size > KEEP_PACKETS_BYTES:
            self.kept = None  # past the limit: the passes after demux the file again
        else:
            self.kept.append(packet)

    def leave_out_cut_short(self, timestamps: list, keyflags: list, sizes: list) -> None:
        """The last packet is cut short (the file ends inside it: the demuxer read fewer bytes than its index
        declares, and flags it corrupt): its frame is not in the file. Its entry, the last of the index pass's
        lists, and its kept packet are left out, so no pass selects it; a pass that demuxes it again skips it
        where the decoder refuses it (``decoded``)."""
        if self.cut_short is None or len(timestamps) < 2:
            return
        del timestamps[-1], keyflags[-1], sizes[-1]
        self.cut_pts = self.cut_short.pts if self.cut_short.pts is not None else self.cut_short.dts
        if self.kept is not None:
            self.kept = [p for p in self.kept if p is not self.cut_short]

    def packets(self, complete: bool) -> list | None:
        """The packets kept, when the demux pass read to the end (``complete``): else None."""
        return self.kept if complete else None


class _PacketIndex:
    """Presentation-order index of a stream, from a demux pass (no decoding)."""

    def __init__(self, timestamps: list[int | None], keyflags: list[bool], start: int | None, time_base, fps,
                 sizes: list[int] | None = None):  # fmt: skip
        n = len(timestamps)
        self.time_base = time_base
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
        self.true_keyframes = tuple(int(i) for i in np.flatnonzero(flags))
        # The first shown frame is where any decode starts (after an edit
        # list, behind discarded packets): a keyframe for sampling.
        keys = tuple(sorted({0, *self.true_keyframes})) if n else ()
        # With the packets' sizes, the cuts coded without a keyframe ride along (vscan.decode.cuts).
        sized = sizes is not None and len(sizes) == n
        self.keyframe_indices = with_cuts(keys, self.pts_seconds, np.asarray(sizes)[order] if sized else None, flags)
        self.orientation: Orientation = IDENTITY
        self.first_frame = None  # frame 0 as the index pass decoded it, until a keyframe pass takes it (PyAVDecoder._generate)
        #: The index pass's packets in demux order (PacketKeeper), for the passes after it; None: they demux the file.
        self.packets: list | None = None
        self._packet_at: dict[int, int] | None = None
        #: (position in ``packets`` after the index pass's probe, the last frame it fed) where that probe's decoder was left
        #: undrained, frame 0 out: a keyframe pass reading on from frame 0 goes on from there (PyAVDecoder._generate); None.
        self.parked: tuple[int, int] | None = None
        #: Timestamps of the packets fed to the decoder by the index pass's probe and keyframe passes (``_keyframe_frames``).
        self.fed: list = []
        #: The timestamp of a cut-short last packet left out of the index (``PacketKeeper.cut_pts``): never fed.
        self.cut_pts = None
        #: Packets the decoder refused as damaged (``decoded``): their timestamp -> seconds (NaN: not in the index).
        self.damaged: dict = {}
        #: Where the damage became dominant (``DamagedFrom``): the first frame index no pass keeps or decodes; None: nowhere.
        self.damaged_cut: int | None = None
        #: The timestamps of the packets the pass under way decodes whole, skipping the other non-reference frames
        #: (``vscan.decode.pyav_reuse.whole_frames``); None: the pass's own ``skip_frame`` for every packet.
        self.whole: frozenset | None = None

    def probed(self, fed_pts: list, parked_at: int | None) -> None:
        """The index pass's probe fed the packets of timestamps ``fed_pts``; ``parked_at``: where in ``packets`` it left
        its decoder undrained, frame 0 out (None: drained). ``parked`` is set where a keyframe pass can go on from there."""
        self.fed = list(fed_pts)
        fed_at = [self.index_of_pts.get(t) for t in fed_pts]
        if parked_at is not None and self.first_frame is not None and self.packets is not None and None not in fed_at:
            self.parked = (parked_at, max(fed_at))

    def packets_from(self, pts: int) -> list | None:
        """The kept packets from the one of timestamp ``pts`` on (demux order), None when not kept."""
        if self.packets is None:
            return None
        if hasattr(self.packets, "from_pts"):  # vscan.decode.pyav_entries.LazyPackets: demuxed as wanted
            return self.packets.from_pts(pts)
        if self._packet_at is None:
            self._packet_at = {}
            for i, packet in enumerate(self.packets):
                if packet.pts is not None:
                    self._packet_at.setdefault(int(packet.pts), i)
        at = self._packet_at.get(int(pts))
        return None if at is None else self.packets[at:]


def _attached(packets, container):
    """The kept packets, those demuxed as wanted (``LazyPackets``) read through ``container`` (the pass's)."""
    if hasattr(packets, "attach"):
        packets.attach(container)
    return packets


#: Packets the decoder may refuse as damaged in one file (a share of its packets) before the file counts as undecodable.
DAMAGED_MAX_SHARE = 0.5


def _pts(packet):
    return packet.pts if packet.pts is not None else packet.dts


#: The share of the packets from the start of the damaged stretch to where the decode stopped that the decoder refused:
#: the frames from there on are the decoder's concealment of what it could not read, not the file's (``damage_cut``).
DAMAGED_RUN_SHARE = 0.8


class DamagedFrom(Exception):
    """The decoder refused more than ``DAMAGED_MAX_SHARE`` of the file's packets: the decode stops at ``index.damaged_cut``
    (``damage_cut``) and keeps the frames before it (vscan.decode.pyav_backend.PyAVDecoder._generate)."""


def damage_cut(index) -> int:
    """The frame where the damage became dominant, from ``index.damaged`` (the refused packets so far): the start of
    the latest stretch, up to the last refused packet, of which the decoder refused at least ``DAMAGED_RUN_SHARE`` of
    the index's packets (a piece swapped, repeated or zeroed, an index that stops pointing at its packets: every packet
    after is refused). Scattered refusals before it (a bad sector) leave the frames between them decoded, as before."""
    times = np.sort(np.asarray([t for t in index.damaged.values() if t == t], dtype=np.float64))
    pts = index.pts_seconds
    if len(times) == 0:
        return 0
    stop = int(np.searchsorted(pts, times[-1], side="right"))  # index packets up to the last refused one
    cut = len(pts)
    for k, t in enumerate(times):
        start = int(np.searchsorted(pts, t, side="left"))
        if (len(times) - k) >= DAMAGED_RUN_SHARE * max(1, stop - start):
            cut = start
            break
    return min(cut, int(np.searchsorted(pts, times[-1], side="left")))


def damaged_from(index) -> tuple[float, int, int] | None:
    """Where the damage became dominant (``index.damaged_cut``): (its time in seconds, the packets the decoder refused,
    the file's packets); the passes keep only the frames before it. None: nowhere."""
    cut = index.damaged_cut
    if cut is None:
        return None
    at = float(index.pts_seconds[min(cut, len(index.pts_seconds) - 1)])
    return at, len(index.damaged), len(index.pts_seconds)


def kept_before_damage(decoder, path, index, held: list, selected: np.ndarray, delivered: int) -> tuple[list, int, int]:
    """A pass's batches ``held``, those of its frames before ``index.damaged_cut`` (the frames after are the decoder's
    concealment), how many, and how many of ``selected`` lie before it; the decoder's frames kept for later passes (``passing``,
    ``also``, ``read_ahead``) likewise. No cut: all as they are. A cut at frame 0 (nothing decodes) is a DecodeError."""
    cut = index.damaged_cut
    if cut is None:
        return held, delivered, len(selected)
    if cut == 0:
        from vscan.errors import DecodeError

        raise DecodeError(f"{path}: nothing decodes: the decoder refused {len(index.damaged)} of the file's "
                          f"{len(index.pts_seconds)} packets (damaged data) from its first frame on")  # fmt: skip
    kept = []
    for batch in held:
        keep = np.asarray(batch.frame_indices) < cut
        if keep.all():
            kept.append(batch)
        elif keep.any():
            kept.append(_batch(list(batch.frame_indices[keep]), list(batch.pts_seconds[keep]), list(batch.rgb[keep])))
    decoder.passing = {i: f for i, f in decoder.passing.items() if i < cut}
    decoder.also = {i: f for i, f in decoder.also.items() if i < cut}
    decoder.read_ahead = {t: v for t, v in decoder.read_ahead.items() if v[0] < cut}
    return kept, sum(len(b.frame_indices) for b in kept), int(np.count_nonzero(selected < cut))


def decoded(ctx, packet, index=None) -> list:
    """``ctx.decode(packet)``; a packet the demuxer flagged corrupt (a file cut off inside it:
    fewer bytes than its index declares) that the decoder refuses gives no frame, as the frames
    before it are the file's, not the decode's failure (tests/test_hostile_partial.py). The index
    pass's cut-short packet (``index.cut_pts``: ``PacketKeeper.leave_out_cut_short``) is not fed at all:
    with frame threads, H.264's decoder refusing it loses the frames still in its threads (the
    two before it in presentation order, of a 320x240 clip cut at 90%). A packet the decoder refuses
    inside the file (damaged data: a run of zeroed or overwritten bytes, as bad sectors and carving
    leave; the demuxer cannot tell) gives no frame either and is counted (``index.damaged``), the
    decode going on past it, up to ``DAMAGED_MAX_SHARE`` of the file's packets; past that, ``DamagedFrom``: the pass
    stops, keeping its frames before ``damage_cut`` (tests/test_hostile_damaged.py)."""
    if index is not None and index.cut_pts is not None and packet.is_corrupt and packet.size and _pts(packet) == index.cut_pts:
        return []
    if index is not None and index.whole is not None:  # its wanted frames whole, the other non-reference ones skipped
        ctx.skip_frame = "DEFAULT" if packet.pts in index.whole else "NONREF"
    try:
        return ctx.decode(packet)
    except Exception as exc:
        import av  # here, not on every packet's way

        if isinstance(exc, av.InvalidDataError) and packet.is_corrupt:
            return []
        if isinstance(exc, av.InvalidDataError) and index is not None and packet.size:
            pts = _pts(packet)
            i = index.index_of_pts.get(pts) if pts is not None else None
            index.damaged[pts] = float(index.pts_seconds[i]) if i is not None else float("nan")
            if len(index.damaged) <= max(2.0, DAMAGED_MAX_SHARE * len(index.pts_seconds)):
                return []
            if index.damaged_cut is None:
                index.damaged_cut = damage_cut(index)
            raise DamagedFrom(f"the decoder refused {len(index.damaged)} of the file's {len(index.pts_seconds)} packets") from exc
        raise


def _all_frames(container, stream, index: _PacketIndex) -> Iterator:
    """Every frame from the stream's start: its kept packets decoded, else every packet demuxed."""
    ctx = stream.codec_context  # this container's: the packets may be from an earlier one over the file
    packets = container.demux(stream) if index.packets is None else _attached(index.packets, container)
    return (frame for packet in packets for frame in decoded(ctx, packet, index))


def read_on_plan(later, index: _PacketIndex, keyframes) -> dict[int, list[int]]:
    """{keyframe: the frames of ``later`` it opens}: the frames a later pass over the file will want
    (not keyframes: those decode alone), by the keyframe a decode of them starts from (the last of
    ``keyframes`` at or before each, as PyAVDecoder's seeks choose it; 0: the stream's start)."""
    plan: dict[int, list[int]] = {}
    keyframes = np.asarray(keyframes or (0,), np.int64)
    for i in sorted({int(i) for i in later if 0 <= int(i) < len(index.pts_seconds)} - set(index.true_keyframes)):
        key = int(keyframes[max(0, np.searchsorted(keyframes, i, side="right") - 1)])
        plan.setdefault(key, []).append(int(i))
    return plan


def _keyframe_frames(container, stream, index: _PacketIndex, wanted: np.ndarray, through: dict[int, list[int]] | None = None,
                     reached: dict[int, int] | None = None, parked_at: int | None = None) -> Iterator:  # fmt: skip
    """Frames decoded from the wanted keyframes' packets only (each is
    intra-coded: it decodes alone), in presentation order: the decoder is
    drained after each (a reordering decoder would hold a keyframe back
    until later ones came, and show them out of order) and reset. A
    keyframe packet without a timestamp is fed too (its place is unknown).
    ``through`` (``read_on_plan``): after such a keyframe's packet, every packet after it is fed
    too, as a decode from that keyframe feeds them (``_frames_from_keyframe``; from the stream's
    start for 0, as ``_all_frames``), until a frame at or past each of its frames has come out
    (``reached``: frame -> index of that first frame out, the one a decode of it from the keyframe
    gives), the decoder then reset: a later pass's frames decoded in this one, the keyframe once.
    ``parked_at``: the codec is where the index pass's probe left it (``_PacketIndex.parked``), frame 0
    out: reading on from frame 0 goes on from the kept packet there, frame 0 not decoded again."""
    ctx = stream.codec_context
    through, reached = through or {}, reached if reached is not None else {}
    targets = list(through.get(0, ()))  # frames still to reach from the keyframe being read on from
    packets = container.demux(stream) if index.packets is None else _attached(index.packets, container)
    start = parked_at if parked_at is not None and targets and index.packets is not None else None
    if hasattr(packets, "keyframes"):  # demuxed as wanted (LazyPackets): the wanted keyframes' packets sought, not read to
        wants = lambda t: (i := index.index_of_pts.get(t)) is None or bool(wanted[i]) or i in through  # noqa: E731
        packets = packets.keyframes(start or 0, lambda: bool(targets), wants, lambda t: index.index_of_pts.get(t) in through, start is not None)
    elif start is not None:
        packets = index.packets[start:]
    for packet in packets:
        if targets:
            if packet.size:
                index.fed.append(packet.pts)
            for frame in decoded(ctx, packet, index):
                i = index.index_of_pts.get(frame.pts) if frame.pts is not None else None
                while targets and i is not None and i >= targets[0]:
                    reached[targets.pop(0)] = i
                yield frame
                if not targets:
                    break
            if not targets:
                ctx.flush_buffers()  # the frames after it are not wanted: dropped, as a decode that stops there leaves them
            continue
        if packet.size == 0 or packet.is_discard or not packet.is_keyframe:
            continue
        i = index.index_of_pts.get(packet.pts) if packet.pts is not None else None
        if i is not None and not wanted[i] and i not in through:
            continue
        index.fed.append(packet.pts)
        yield from decoded(ctx, packet, index)
        if i is not None and i in through:
            targets = list(through[i])
            continue
        yield from ctx.decode(None)
        ctx.flush_buffers()


def _frames_from_keyframe(container, stream, index: _PacketIndex, key: int) -> Iterator:
    """Frames decoded from keyframe ``key`` on, after a seek there. A seek
    that lands early (an imprecise index, an edit list) would decode frames
    again: the packets before the keyframe's are dropped unfed, so no frame is
    decoded twice. One that lands late (MPEG-TS: past the keyframe, so the
    frames up to the next one would not decode) seeks again to the stream's
    start, and the packets up to the keyframe are dropped unfed likewise."""
    target = index.raw_pts[key]
    if index.packets is not None:
        _attached(index.packets, container)
    kept = index.packets_from(target)  # the index pass's packets, from the keyframe's on: no seek, no demux
    if kept is not None:
        stream.codec_context.flush_buffers()  # as a seek flushes it: nothing of the frames before carries over
        ctx = stream.codec_context  # this container's: the packets may be from an earlier one over the file
        yield from (frame for packet in kept for frame in decoded(ctx, packet, index))
        return
    container.seek(target, stream=stream, backward=True, any_frame=False)
    packets = container.demux(stream)
    first = next(packets, None)
    if first is not None and first.pts is not None and first.pts > target:
        container.seek(0, backward=True, any_frame=False)  # AV_TIME_BASE units, no stream: the file's start
        packets = container.demux(stream)
    elif first is not None:
        packets = itertools.chain([first], packets)
    dropping = True
    for packet in packets:
        if dropping and packet.size and packet.pts is not None and packet.pts < target:
            continue
        dropping = False
        yield from decoded(stream.codec_context, packet, index)


def pass_read_on(decoder, index: _PacketIndex, meta, selected, keyframes_only: bool) -> tuple[dict[int, list[int]], int]:
    """(``read_on_plan``, how many frames the later pass wants) for a PyAVDecoder's pass, ``read_on`` used up: a keyframe pass
    fed by its class's own feed, in a codec that takes a new ``skip_frame`` at any frame; else none."""
    read_on, decoder.read_on, decoder.read_ahead = decoder.read_on, None, {}
    own = keyframes_only and decoder._keyframe_feed is _keyframe_frames and bool(index.raw_pts)
    later = {int(i) for i in read_on(meta, index.pts_seconds, selected)} if own and read_on is not None else set()
    # the codec takes this pass's skip_frame: at any frame, or as it opens (not held), or held, opened skipping as this pass does
    takes = meta.codec in _SKIP_PER_FRAME or not decoder.hold_open or (decoder._nonref_open and meta.num_frames > 4 * len(later))
    return (read_on_plan(later, index, meta.keyframe_indices), len(later)) if later and takes else ({}, 0)

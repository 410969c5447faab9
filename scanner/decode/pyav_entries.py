"""An MP4/MOV video's packet index from the container's own index, not a demux pass.

libavformat's MOV demuxer lists every sample of a (non-fragmented) file in
``stream.index_entries`` as it opens it: decode time, byte position, size, key
and discard flags (a 16 s H.264 copy's 673 samples in ~0.3 ms, where demuxing
them takes ~5-10 ms of a scan's CPU). The presentation times are the decode
times plus the composition offsets of the track's ``ctts`` box (read here from
the file's ``moov``), shifted as the demuxer shifts them (learnt from the first
packet, checked on every packet read). The packets themselves are demuxed only
as a pass wants them (``LazyPackets``): a keyframe pass seeks to its keyframes,
a confirmation reads on from its keyframe; each packet read is checked against
the index. Anything else (fragmented files, edit lists that discard samples,
samples past the file's end: a file cut off, a header that disagrees with its
sample table, other containers) keeps the demux pass (vscan.decode.pyav_backend).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from vscan.decode import pyav_packets
from vscan.decode.pyav_reuse import _PROBE_PACKETS, first_packet
from vscan.errors import DecodeError
from vscan.inputs.truncated import top_boxes

__all__ = ["LazyPackets", "entries_probe", "mp4_offsets"]

#: libavformat's name for the MOV/MP4 demuxer.
MOV = "mov,mp4,m4a,3gp,3g2,mj2"
#: Samples a file needs for its index to come from the container's. A shorter file's demux pass costs about what its
#: passes' seeks and reads then would: the archive bench's 100 MP4 copies (<= 900 samples each), a scan's decode 3.62
#: CPU-s demuxed against 3.67 from the index (least of 5 a file). A longer file's costs more than its keyframes do: a
#: 60 s 640x360 H.264 (1,800 samples) 0.039 -> 0.024 CPU-s, a 5 min one (9,000, 73 MB: more than the demux pass keeps,
#: so each pass demuxed it again) 0.178 -> 0.091 (a scan's decode without the digests, least of 4).
ENTRIES_FROM_PACKETS = 1500
#: A ``moov`` box read whole, at most (bytes); a larger one keeps the demux pass.
_MAX_MOOV = 16 << 20
_INNER = {b"trak", b"mdia", b"minf", b"stbl"}


def _boxes(buf: bytes, start: int, end: int):
    """(type, payload start, box end) of the boxes in ``buf[start:end]``; a malformed size ends the walk."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, at)
        head = 8
        if size == 1 and at + 16 <= end:
            size, head = struct.unpack_from(">Q", buf, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < head or at + size > end:
            return
        yield kind, at + head, at + size
        at += size


def _moov(path: Path) -> bytes | None:
    """The file's top-level ``moov`` box payload (None: none, too large, or the walk to it broken)."""
    try:
        with open(path, "rb") as f:
            total = f.seek(0, 2)
            for kind, at, payload, end in top_boxes(f, total, limit=None):
                end = total if end is None else end
                if end > total:
                    return None
                if kind == b"moov":
                    if end - at > _MAX_MOOV:
                        return None
                    f.seek(payload)
                    return f.read(end - payload)
    except OSError:
        return None
    return None


def mp4_offsets(path: Path, track_id: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(sample sizes, composition offsets) of track ``track_id``, in decode order, from its ``stsz`` and ``ctts``
    (offsets all 0 without one); None for a fragmented file (``mvex``), or a table that is missing or disagrees."""
    moov = _moov(path)
    if moov is None:
        return None
    tops = list(_boxes(moov, 0, len(moov)))
    if any(kind == b"mvex" for kind, _, _ in tops):
        return None
    for kind, start, end in tops:
        if kind != b"trak":
            continue
        found: dict[bytes, tuple[int, int]] = {}
        stack = [(start, end)]
        while stack:
            s, e = stack.pop()
            for k, ps, pe in _boxes(moov, s, e):
                if k in _INNER:
                    stack.append((ps, pe))
                elif k in (b"tkhd", b"stsz", b"ctts", b"stz2"):
                    found[k] = (ps, pe)
        if b"tkhd" not in found or b"stsz" not in found:
            continue
        ps, pe = found[b"tkhd"]
        if pe - ps < 24:
            continue
        version = moov[ps]
        tid = struct.unpack_from(">I", moov, ps + (20 if version == 1 else 12))[0]
        if tid != track_id:
            continue
        ps, pe = found[b"stsz"]
        if pe - ps < 12:
            return None
        each, count = struct.unpack_from(">II", moov, ps + 4)
        if each:
            sizes = np.full(count, each, np.int64)
        elif pe - ps >= 12 + 4 * count:
            sizes = np.frombuffer(moov, ">u4", count, ps + 12).astype(np.int64)
        else:
            return None
        offsets = np.zeros(count, np.int64)
        if b"ctts" in found:
            ps, pe = found[b"ctts"]
            entries = struct.unpack_from(">I", moov, ps + 4)[0] if pe - ps >= 8 else -1
            if entries < 0 or pe - ps < 8 + 8 * entries:
                return None
            table = np.frombuffer(moov, ">i4", 2 * entries, ps + 8).astype(np.int64).reshape(-1, 2)
            runs = table[:, 0]
            if (runs < 0).any() or int(runs.sum()) != count:
                return None  # libavformat mends such a table its own way: the demux pass
            offsets = np.repeat(table[:, 1], runs)
        return sizes, offsets
    return None


class LazyPackets:
    """A MOV file's packets in demux order (its end-of-stream flush packet last), demuxed as they are wanted and kept:
    a packet after the demuxer's position is reached by demuxing on, else by a seek to the keyframe before it; each
    checked against the container's index (decode time, byte position, size, presentation time). Stands in for the
    demux pass's kept packets (vscan.decode.pyav_packets.PacketKeeper): iterated from the start, sliced from a position
    (``[at:]``), or from a timestamp (``from_pts``)."""

    def __init__(self, container, rows: np.ndarray, pts: np.ndarray | None) -> None:
        self.container, self.stream = container, container.streams.video[0]
        self.dts, self.pos, self.sizes = rows[:, 0], rows[:, 1], rows[:, 2]  # the index entries' (``_rows``)
        self.pts = pts
        self.keys = (rows[:, 3] & 1).astype(bool)  # AVINDEX_KEYFRAME
        self.key_at = np.flatnonzero(self.keys)
        self.got: dict[int, object] = {}
        self.kept_bytes = 0
        self._demux, self.at = None, None  # the demuxer's packets, and the position of the next it gives
        self._by_pts: dict[int, int] | None = None

    def __len__(self) -> int:
        return len(self.dts) + 1

    def attach(self, container) -> None:
        """Read from ``container`` (another open of the same file: a pass that could not take the held one)."""
        if container is not self.container:
            self.container, self.stream, self._demux, self.at = container, container.streams.video[0], None, None

    def _key(self, q: int) -> int:
        """The position of the last keyframe at or before position ``q``."""
        return int(self.key_at[max(0, np.searchsorted(self.key_at, min(q, len(self.dts) - 1), side="right") - 1)])

    def _seek(self, q: int) -> None:
        """The demuxer to the keyframe before position ``q``. PyAV's seek flushes the decoder too: only done where a
        pass's decoder starts afresh (a keyframe pass's next keyframe, a read from a keyframe), never within a read."""
        key = self._key(q)
        self.container.seek(int(self.dts[key]), stream=self.stream, backward=True, any_frame=False)
        self._demux, self.at = self.container.demux(self.stream), key

    def packet(self, q: int, seek: bool = True):
        """The packet at position ``q`` (``len(self) - 1``: the flush packet): kept, else demuxed on to, else (``seek``)
        after a seek to the keyframe before it; a read that would need a seek is a DecodeError (its decoder's frames lost)."""
        got = self.got.get(q)
        if got is not None:
            return got
        if self.at is None or self.at > q or (seek and self.at < self._key(q)):
            if not seek:
                raise DecodeError(f"{self.container.name}: a read on from a keyframe lost its place in the file (position {q})")
            self._seek(q)
        while self.at <= q:
            packet = next(self._demux, None)
            if packet is None:
                break
            if self.at < len(self.dts) and packet.size and packet.dts is not None and packet.dts < self.dts[self.at]:
                continue  # a seek that landed early
            self._check(self.at, packet)
            if self.kept_bytes + packet.size <= pyav_packets.KEEP_PACKETS_BYTES:  # kept for the passes after, up to the demux pass's limit
                self.got[self.at] = packet
                self.kept_bytes += packet.size
            got, self.at = packet, self.at + 1
        if got is None or self.at != q + 1:
            raise DecodeError(f"{self.container.name}: the container's index lists a packet its demuxer does not give (position {q})")
        return got

    def _ready(self, q: int) -> None:
        """Before a read from position ``q`` (its decoder flushed): the demuxer placed so that the read needs no seek."""
        miss = q
        while miss in self.got:
            miss += 1
        if miss < len(self) and (self.at is None or self.at > miss or self.at < self._key(miss)):
            self._seek(miss)

    def _check(self, q: int, packet) -> None:
        n = len(self.dts)
        if q == n:
            ok = packet.size == 0
        else:
            ok = (packet.dts == self.dts[q] and packet.pos == self.pos[q] and packet.size == self.sizes[q]
                  and bool(packet.is_keyframe) == bool(self.keys[q]) and (self.pts is None or packet.pts == self.pts[q]))  # fmt: skip
        if not ok:
            self._demux, self.at = None, None
            raise DecodeError(f"{self.container.name}: a packet is not where the container's index says (position {q})")

    def iterate(self, start: int = 0):
        """The packets from position ``start`` on, read through (the demuxer placed first: ``_ready``)."""
        self._ready(start)
        for q in range(start, len(self)):
            yield self.packet(q, seek=False)

    def __iter__(self):
        return self.iterate(0)

    def __getitem__(self, at):
        if not isinstance(at, slice) or at.stop is not None or at.step is not None:
            raise TypeError("LazyPackets: only [start:] slices")
        return self.iterate(at.start or 0)

    def from_pts(self, pts: int):
        """The packets from the one of presentation time ``pts`` on; None when no packet has it."""
        if self._by_pts is None:
            self._by_pts = {int(t): i for i, t in enumerate(self.pts)} if self.pts is not None else {}
        at = self._by_pts.get(int(pts))
        return None if at is None else self.iterate(at)

    def keyframes(self, start: int, reading, wanted_pts, through_pts, placed: bool = False):
        """Packets for a keyframe pass (vscan.decode.pyav_packets._keyframe_frames): from ``start`` (``placed``: the
        decoder holds what came before it), each in turn while ``reading()``, else only the next keyframe whose
        presentation time ``wanted_pts`` takes (sought; one ``through_pts`` takes is read on from: the demuxer placed)."""
        q = start
        if placed and q < len(self) and q not in self.got and self.at != q:
            raise DecodeError(f"{self.container.name}: a read on from the index pass's probe lost its place (position {q})")
        while q < len(self):
            if not reading():
                later = self.key_at[np.searchsorted(self.key_at, q):]
                q = next((int(k) for k in later if wanted_pts(int(self.pts[k]))), None)
                if q is None:
                    return
                if through_pts(int(self.pts[q])):
                    self._ready(q)
                yield self.packet(q)
            else:
                yield self.packet(q, seek=False)
            q += 1


def entries_probe(decoder, container, stream, path: Path, keeper, park: bool, first_frame):
    """The index pass from the container's own index (module docstring), its probe for frame 0 fed as the demux pass
    feeds it (``first_frame``: vscan.decode.pyav_reuse's, as the backend holds it): (timestamps, keyframe flags, sizes
    in decode order, display matrix, first frame, the probe's timestamps, where its decoder was parked), the packets
    then ``keeper.kept`` (a LazyPackets); None: the demux pass is needed, the container as it was opened."""
    if container.format.name != MOV or keeper.kept is None or decoder.plain or not isinstance(path, Path):
        return None
    entries = stream.index_entries
    n = len(entries)
    if n < max(2, ENTRIES_FROM_PACKETS):
        return None
    rows = np.array([(e.timestamp, e.pos, e.size, e.flags) for e in entries], np.int64)  # one pass: ~0.5 us an entry
    if not rows[0, 3] & 1 or (rows[:, 3] & 2).any():  # the first not a keyframe, or an edit list discards samples
        return None
    tables = mp4_offsets(path, int(stream.id))
    if tables is None or len(tables[0]) != n or not np.array_equal(tables[0], rows[:, 2]):
        return None  # not this track's table, or one the demuxer read otherwise
    offsets = tables[1]
    lazy = LazyPackets(container, rows, None)
    try:
        total = path.stat().st_size
    except OSError:
        return None
    if (np.diff(lazy.dts) <= 0).any() or int((lazy.pos + lazy.sizes).max()) > total:
        return None  # a sample past the file's end (cut off)
    demux = container.demux(stream)
    first = next(demux, None)
    if first is None or not first.size or first.pts is None or first.dts != lazy.dts[0] or first.pos != lazy.pos[0]:
        container.seek(0, backward=True, any_frame=False)  # AV_TIME_BASE units: the file's start, as opened
        return None
    lazy.pts = lazy.dts + offsets + (int(first.pts) - int(lazy.dts[0]) - int(offsets[0]))
    if len(np.unique(lazy.pts)) != n:
        container.seek(0, backward=True, any_frame=False)
        return None
    lazy.got[0], lazy._demux, lazy.at, lazy.kept_bytes = first, demux, 1, first.size
    matrix = shown = parked_at = None
    fed_pts: list = []
    for q in range(min(n, _PROBE_PACKETS)):
        packet = lazy.packet(q)
        decoder._first_packet = decoder._first_packet or first_packet(packet)
        probing, matrix, shown = first_frame(stream, packet, drain=not park)
        fed_pts.append(packet.pts)
        parked_at = q + 1 if park and not probing and shown is not None else None
        if not probing:
            break
    keeper.kept = lazy
    return lazy.pts.tolist(), lazy.keys.tolist(), lazy.sizes.tolist(), matrix, shown, fed_pts, parked_at

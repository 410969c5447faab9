"""What a PyAV decoder reuses instead of making again: scalers, for the whole
process; and one file's open container, between the passes of a scan's decode
over that file (its index, first pass, region probe, confirmation decoded ahead);
and the first frame the index pass decodes (for its display matrix), which a keyframe
pass wanting frame 0 takes instead of decoding it again.

Opening a file again costs ~1.5-3 ms of CPU (the container's probe, the codec's
set-up) on the archive bench's copies, three times a file; rewinding a held one
~0.5 ms. A container is rewound only where that is known to be exact: formats
whose seek to the start lands on the first packet (MP4/MOV, Matroska/WebM),
decoders that take a new ``skip_frame`` at any frame (H.264, HEVC, VP9, VP8),
checked against the first packet the index pass read (its timestamps, byte
position and size), the codec flushed as after any seek; anything else opens
the file again as before.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np

from vscan.decode.base import _reason
from vscan.decode.orient import Orientation
from vscan.errors import UnsupportedMediaError
from vscan.inputs.sniff import LIST_REFUSED, refers_elsewhere
from vscan.inputs.truncated import why_unopenable

__all__ = ["first_frame", "first_packet", "open_container", "refuse_unusable", "rewound", "whole_frames"]

#: Packets fed to the decoder during indexing to get a first frame (codecs
#: with frame reordering output it a few packets late).
_PROBE_PACKETS = 32

#: Idle scalers by output size (and format, where not RGB), for the whole process: a scan's decode runs each file in a thread of
#: its own (vscan.decode.guard), so scalers kept per thread were made again for every file and pass.
_SCALERS: dict[tuple, list] = {}
_SCALERS_LOCK = threading.Lock()


@contextlib.contextmanager
def _scaler(size: tuple) -> Iterator:
    """A scaler to ``size`` no other thread is using: libswscale's context (its filter coefficients)
    is made once per size and input, not for every frame as ``VideoFrame.reformat`` does, nor for
    every file (same bits; the area scaler's set-up was half the cost of scaling a 480x720 frame to
    the scan's square). A thread abandoned mid-frame (a stalled decode) keeps its scaler to itself."""
    from av.video.reformatter import VideoReformatter

    with _SCALERS_LOCK:
        idle = _SCALERS.setdefault(size, [])
        scaler = idle.pop() if idle else VideoReformatter()
    yield scaler
    with _SCALERS_LOCK:
        idle.append(scaler)


#: libswscale's threads for one frame: one. PyAV's default (0: as many as the cores) splits each frame's scaling
#: into slices on a pool of threads, the same bytes for more CPU: the archive bench's frames to the scan's 256 px
#: square 0.64 -> 0.53 CPU-ms a frame (docs/archive-speed.md, "libswscale on one thread").
SWS_THREADS = 1


def _rgb(frame, stored: tuple[int, int], native: tuple[int, int], resize: bool) -> np.ndarray:
    """A decoded frame as RGB at the stored output size (before it is turned)."""
    if resize or (frame.width, frame.height) != native:  # mid-stream size changes too
        with _scaler(stored) as scaler:
            return scaler.reformat(frame, width=stored[0], height=stored[1], format="rgb24", interpolation="AREA", threads=SWS_THREADS).to_ndarray()
    return frame.to_ndarray(format="rgb24", threads=SWS_THREADS)


def _turned_rgb(frame, stored: tuple[int, int], native: tuple[int, int], orientation: Orientation) -> np.ndarray:
    """``frame`` as RGB at ``stored``, turned as the file is displayed (``PyAVDecoder.also``)."""
    return orientation.apply(_rgb(frame, stored, native, stored != native))


def _turned_luma(frame, stored: tuple[int, int], native: tuple[int, int], orientation: Orientation) -> np.ndarray:
    """``_turned_rgb``'s picture as its luma alone, uint8 [H, W, 1]: libswscale's grey (the decoder's Y plane scaled by
    the same area scaler, in full range), no colour conversion: ~1/5 of the RGB's CPU. A ``--rows full`` build's extra
    rows take it (vscan.bank.one_pass: they hash luma only); it differs from the luma of the RGB by rounding and the
    colour matrix (a mean of 0.3-1.5 levels on the real samples), so a row moves by a few bits at most."""
    with _scaler((stored[0], stored[1], "gray")) as scaler:
        grey = scaler.reformat(frame, width=stored[0], height=stored[1], format="gray", interpolation="AREA", threads=SWS_THREADS).to_ndarray()
    return orientation.apply(grey.reshape(stored[1], stored[0], 1))


#: Formats (libavformat names) whose seek to time 0 lands on the first packet, as a fresh open reads it.
_REWINDABLE = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
#: Decoders that read ``skip_frame`` at every frame (FFmpeg's own), so a held codec serves a pass that
#: skips otherwise than the last. libdav1d reads it once, when it opens: a held AV1 codec kept the index
#: pass's setting (8 of the archive bench's AV1 copies decoded every frame of a keyframe pass, and other
#: frames); AV1 and anything else is opened again, but for a keyframe pass (its packets alone: no skipping)
#: and, where the scan's index pass opened it skipping non-reference frames, a pass that skips so
#: (vscan.decode.pyav_backend.PyAVDecoder._set_threads).
_SKIP_PER_FRAME = frozenset({"h264", "hevc", "vp9", "vp8"})


def whole_frames(decoder, meta, index, selected, through: dict, keyframes_only: bool) -> frozenset | None:
    """The timestamps of the packets a pass decodes whole while it skips every other non-reference frame: the frames
    it wants (and, a keyframe pass reading on, the frames read on to), in a codec that takes a new ``skip_frame`` at any
    packet (``_SKIP_PER_FRAME``; ``vscan.decode.pyav_packets.decoded`` sets it per packet). A wanted B-frame then comes
    back itself, not the next reference frame standing in for it (a frame late: 32-44 bits from a bank row on its
    tick), and a dense pass decodes no unwanted non-reference frame. None: the pass's one ``skip_frame`` for every packet
    (no skipping, a keyframe pass, a codec that reads ``skip_frame`` only as it opens, no timestamps)."""
    if not decoder.skip_nonref or decoder.plain or meta.codec not in _SKIP_PER_FRAME or not index.raw_pts or (keyframes_only and not through):
        return None
    frames = [*np.asarray(selected).tolist(), *(i for v in through.values() for i in v)]  # a keyframe pass's own too
    return frozenset(index.raw_pts[int(i)] for i in frames if 0 <= int(i) < len(index.raw_pts))


def first_packet(packet) -> tuple:
    """What identifies the first packet an index pass demuxed (``rewound`` checks it)."""
    return (packet.pts, packet.dts, packet.pos, packet.size)


def rewound(container, first: tuple | None, any_skip: bool = False, kept: bool = False, flush: bool = True) -> bool:
    """Whether ``container`` (held open after a pass) is back at its start as if
    opened again: its format seeks exactly, its decoder takes each pass's
    ``skip_frame`` (``_SKIP_PER_FRAME``) or the pass needs none (``any_skip``: a
    keyframe pass, fed the keyframes' packets alone), a seek to time 0 lands on the
    packet ``first`` (``first_packet`` of the index pass), then the same seek again
    and the codec flushed; ``kept``: the pass reads the index pass's packets
    (vscan.decode.pyav_packets.PacketKeeper), not the container's: the codec
    flushed alone, unless not ``flush`` (the pass goes on from where the index pass's
    probe left it: ``_PacketIndex.parked``). False: the caller opens the file again."""
    import av

    stream = container.streams.video[0]
    takes_skip = any_skip or stream.codec_context.name in _SKIP_PER_FRAME
    if first is None or container.format.name not in _REWINDABLE or not takes_skip:
        return False
    if kept:
        if flush:
            stream.codec_context.flush_buffers()
        return True
    try:
        container.seek(0, backward=True, any_frame=False)  # AV_TIME_BASE units, no stream: the file's start
        packet = next((p for p in container.demux(stream) if p.size), None)
        if packet is None or first_packet(packet) != first:
            return False
        container.seek(0, backward=True, any_frame=False)  # the same landing, nothing read yet
        stream.codec_context.flush_buffers()
    except av.FFmpegError:
        return False
    return True


def first_frame(stream, packet, drain: bool = True) -> tuple[bool, bytes | None, object | None]:
    """Feed one packet to the stream's decoder: (still probing, the display
    matrix of the first frame out, if any, that frame). Decode errors end
    probing: the decode proper reports them. The frame is kept by the index
    (``_PacketIndex.first_frame``, when it is frame 0) for a keyframe pass to
    take instead of decoding it again: a keyframe decodes alone, so it is the
    same picture, to the bit (tests/test_decode_first_frame.py). ``drain``
    False: the decoder is not drained for it (it waits for the packets after,
    as a decode from the start does), so a pass can go on from it
    (``_PacketIndex.parked``); a frame that came out with it is then not kept."""
    import av

    try:
        frames = stream.codec_context.decode(packet)
        if drain and not frames and packet.is_keyframe and not packet.is_discard and stream.container.format.name in _REWINDABLE:
            # A keyframe decodes alone: drained at once, not after the 2-3 packets a reordering decoder
            # (H.264, HEVC) holds it back for (~1 ms a file). MP4/Matroska: a packet is a whole picture.
            frames = stream.codec_context.decode(None)
    except av.FFmpegError:
        return False, None, None
    for frame in frames:
        alone = drain or len(frames) == 1  # else a frame after it came out too: it is not kept, nor gone on from
        return False, display_matrix(frame), frame if alone else None
    return True, None, None


def display_matrix(frame) -> bytes | None:
    """The frame's display matrix (36 bytes), or None. PyAV lists a frame's side data through an enum of the
    types it knows; FFmpeg newer than that enum attaches others (FFmpeg 8's EXIF on every TIFF page, MV-HEVC's
    view id, LCEVC), and listing them raises ValueError ("31 is not a valid Type"). The matrix is then rebuilt
    from the frame's rotation, which PyAV reads without the list: a mirror in it is lost, a turn is kept."""
    try:
        sides = list(frame.side_data)
    except ValueError:
        return _rotation_matrix(int(getattr(frame, "rotation", 0) or 0))
    for side in sides:  # PyAV before 18: SideData objects; 18: a mapping, its keys the types
        kind = getattr(side, "type", side)
        if getattr(kind, "name", "") == "DISPLAYMATRIX":
            return bytes(side if kind is not side else frame.side_data[kind])
    return None


def _rotation_matrix(degrees: int) -> bytes | None:
    """FFmpeg's display matrix of a turn (``av_display_rotation_set``, in PyAV's ``VideoFrame.rotation`` sign);
    None for no turn."""
    import math
    import struct

    if degrees % 360 == 0:
        return None
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    fixed = lambda x: int(round(x * 65536))  # noqa: E731 - 16.16
    return struct.pack("=9i", fixed(c), fixed(-s), 0, fixed(s), fixed(c), 0, 0, 0, 1 << 30)


def _first_frame_matrix(stream, packet) -> tuple[bool, bytes | None]:
    """(still probing, display matrix of the first frame out, if any): ``first_frame``'s first two."""
    return first_frame(stream, packet)[:2]


def open_container(source, name=None):
    """``av.open(source)`` for reading, its first video stream checked (``refuse_unusable``). Where PyAV cannot open
    it: UnsupportedMediaError, with why where the file's boxes tell (vscan.inputs.truncated: an MP4 cut off before
    its index). ``source``: a path, or a file object (an object read by ranges), named ``name``."""
    import av

    name = source if name is None else name
    if hasattr(source, "read"):  # an object read by ranges (a local path was checked by check_readable)
        listed = refers_elsewhere(source.read(4096))
        source.seek(0)
        if listed:
            raise UnsupportedMediaError(f"{name}: {listed}")
    try:
        container = av.open(source if hasattr(source, "read") else str(source), mode="r")
    except Exception as exc:  # noqa: BLE001 - av raises many FFmpegError kinds; a store failure is named by the caller
        why = why_unopenable(source)  # None: its boxes do not say
        raise UnsupportedMediaError(f"{name}: PyAV cannot open it: {_reason(exc)}{f'; {why}' if why else ''}") from exc
    if container.format.name in _LIST_FORMATS:  # a list of other files (vscan.inputs.sniff.refers_elsewhere): never their video
        container.close()
        raise UnsupportedMediaError(f"{name}: FFmpeg reads it as {container.format.name!r}: {LIST_REFUSED}")
    refuse_unusable(container, name)
    return container


#: FFmpeg demuxers whose input names other files or addresses to read as its video.
_LIST_FORMATS = frozenset({"concat", "hls", "dash", "applehttp"})


def refuse_unusable(container, name) -> None:
    """Close ``container`` and raise UnsupportedMediaError unless its first video stream can decode: a header cut short
    can leave a video stream with no codec (PyAV's ``codec_context`` None), which would fail later as an internal error."""
    streams = container.streams.video
    if not streams or streams[0].codec_context is None:
        container.close()
        raise UnsupportedMediaError(f"{name}: no video stream" if not streams else f"{name}: its video stream names no codec that can decode it (a damaged or cut header)")

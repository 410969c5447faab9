"""Malformed inputs for reliability tests: ``make_bad_inputs(folder)``.

Deterministic (seeded), abstract synthetic media only (vscan.bench.synth).
Every case names what a scan must give it:

    expect="error"  a record with status "error" and one of ``error_types``
    expect="any"    one record, ok or a typed error (e.g. a payload bit flip
                    or a cut in the last frame may still decode)

Kinds: truncated at many offsets (index at the front and at the end), bit
flips in headers and payload, zero-length, random bytes, text/HTML/JSON
named as video, absurd dimensions, missing/zero fps and timescale, broken
timestamps, a symlink loop, a dangling symlink, a symlink to a device, a
directory and a symlinked directory named like videos, a FIFO, and a file
with mode 000 (root reads it anyway: ``unreadable_for_root`` says so).

    python -m vscan.bench.bad_inputs OUT_DIR     # writes them and lists them
"""

from __future__ import annotations

import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = ["BadInput", "make_bad_inputs", "TYPED_INPUT_ERRORS"]

#: The typed reasons a bad input may get (vscan.errors and the driver's).
TYPED_INPUT_ERRORS = frozenset(
    {"FileAccessError", "UnsupportedMediaError", "DecodeError", "DecodeTimeoutError", "DecoderCrashError"}
)
_ACCESS = frozenset({"FileAccessError"})
_MEDIA = frozenset({"UnsupportedMediaError", "DecodeError"})


@dataclass(frozen=True)
class BadInput:
    name: str  # file name inside the folder
    kind: str
    expect: Literal["error", "any"]
    error_types: frozenset[str] = TYPED_INPUT_ERRORS
    note: str = ""


def _flip(data: bytes, bits: list[int]) -> bytes:
    b = bytearray(data)
    for bit in bits:
        b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def _patch_box_u32(data: bytes, box: bytes, field_offset: int, value: int) -> bytes:
    """Overwrite a big-endian u32 ``field_offset`` bytes after the box type."""
    at = data.find(box)
    if at < 0:
        raise ValueError(f"no {box!r} box")
    pos = at + 4 + field_offset
    return data[:pos] + struct.pack(">I", value) + data[pos + 4 :]


def _y4m(width: int, height: int, rate: str, frames: int = 1, frame_bytes: int = 64) -> bytes:
    header = f"YUV4MPEG2 W{width} H{height} F{rate} Ip A1:1 C420jpeg\n".encode()
    return header + b"".join(b"FRAME\n" + bytes(frame_bytes) for _ in range(frames))


def _png_header(width: int, height: int) -> bytes:
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def make_bad_inputs(folder: str | os.PathLike, *, seed: int = 0) -> list[BadInput]:
    """Write the malformed inputs into ``folder`` (created); return their cases."""
    from vscan.bench import synth

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cases: list[BadInput] = []

    def put(name: str, data: bytes, kind: str, expect="error", types=_MEDIA, note="") -> None:
        (root / name).write_bytes(data)
        cases.append(BadInput(name, kind, expect, frozenset(types), note))

    # Sources (made outside the folder, removed after).
    work = root.parent / f".{root.name}-sources"
    front = synth.make_clip(work / "front.mp4", seed=seed + 1, seconds=1.0, size=(96, 64), faststart=True).read_bytes()
    back = synth.make_clip(work / "back.mp4", seed=seed + 2, seconds=1.0, size=(96, 64)).read_bytes()
    for p in work.iterdir():
        p.unlink()
    work.rmdir()

    # Truncated at many offsets. Cuts inside the header/index never decode;
    # cuts late in the payload may still decode most frames: "any".
    for label, data in (("front", front), ("back", back)):
        for frac in (0.001, 0.005, 0.02, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.97, 0.995):
            cut = max(1, int(len(data) * frac))
            moov = data.find(b"moov")
            in_index = cut < data.find(b"mdat") + 8 if label == "front" else cut < moov + 8
            put(f"trunc-{label}-{int(frac * 1000):03d}.mp4", data[:cut], "truncated", "error" if in_index else "any")
    # Cut after the track says "video" (hdlr) but before it names its codec (stsd): PyAV opens a video stream with no
    # codec context; a cut a few bytes either side of the 10% one above lands there when the clip's bytes differ.
    put("trunc-no-codec.mp4", front[: front.find(b"minf")], "truncated before the codec", types={"UnsupportedMediaError"})
    # Bit flips in the container header (ftyp/moov) and in the payload.
    mdat = front.find(b"mdat")
    for i in range(6):
        bits = [int(x) for x in rng.integers(0, mdat * 8, size=4 + i)]
        put(f"flip-header-{i}.mp4", _flip(front, bits), "header bit flip", "any")
    for i in range(4):
        bits = [int(x) for x in rng.integers((mdat + 16) * 8, len(front) * 8, size=3)]
        put(f"flip-payload-{i}.mp4", _flip(front, bits), "payload bit flip", "any")
    # Not media at all.
    put("zero-length.mp4", b"", "zero-length", types={"UnsupportedMediaError"})
    for size in (1, 100, 65536):
        put(f"random-{size}.mp4", rng.bytes(size), "random bytes")
    put("text.mp4", b"This is not a video.\n" * 200, "text named as video")
    put("page.mkv", b"<!DOCTYPE html><html><head><title>404</title></head><body>Not Found</body></html>\n", "HTML named as video")
    put("data.mov", b'{"error": "not found", "items": []}\n', "JSON named as video")
    put("zeros.webm", bytes(4096), "zero bytes")
    put("ftyp-only.mp4", front[: front.find(b"moov")], "container header only")
    put("photo-as-video.mp4", _png_header(64, 48), "PNG header named as video")
    # Absurd dimensions (headers claim them; there is no such data).
    put("absurd-y4m.mp4", _y4m(100_000, 100_000, "25:1"), "absurd dimensions (y4m header)")
    put("absurd-png.png", _png_header(100_000, 100_000), "absurd dimensions (PNG header)")
    put("absurd-gif.gif", b"GIF89a\xff\xff\xff\xff\x00\x00\x00;", "absurd dimensions (GIF screen)")
    put("absurd-tkhd.mp4", _patch_box_u32(_patch_box_u32(front, b"tkhd", 80, 0xFFFF0000), b"tkhd", 84, 0xFFFF0000),
        "absurd dimensions (tkhd)", "any", note="decoders take the size from the bitstream")  # fmt: skip
    # Missing or zero frame rate, broken timestamps.
    put("zero-fps-y4m.mp4", _y4m(16, 16, "0:0", frames=3, frame_bytes=16 * 16 * 3 // 2), "zero fps (y4m)", "any")
    put("zero-timescale.mp4", _patch_box_u32(front, b"mdhd", 16, 0), "zero timescale (mdhd)", "any")
    put("zero-duration.mp4", _patch_box_u32(front, b"mdhd", 20, 0), "zero duration (mdhd)", "any")
    put("stts-zero-delta.mp4", _patch_box_u32(front, b"stts", 16, 0), "broken timestamps (stts delta 0)", "any")
    put("stts-huge-delta.mp4", _patch_box_u32(front, b"stts", 16, 0x7FFFFFFF), "broken timestamps (stts delta 2^31)", "any")
    put("stts-huge-count.mp4", _patch_box_u32(front, b"stts", 12, 0x7FFFFFFF), "broken timestamps (stts count 2^31)", "any")
    put("stsz-huge.mp4", _patch_box_u32(front, b"stsz", 16, 0x7FFFFFFF), "broken sample sizes (stsz)", "any")
    # File-system cases.
    (root / "loop.mp4").symlink_to("loop.mp4")
    cases.append(BadInput("loop.mp4", "symlink loop", "error", _ACCESS))
    (root / "dangling.mp4").symlink_to("does-not-exist.mp4")
    cases.append(BadInput("dangling.mp4", "dangling symlink", "error", _ACCESS))
    (root / "device.mp4").symlink_to("/dev/zero")
    cases.append(BadInput("device.mp4", "symlink to a device", "error", _ACCESS))
    (root / "folder.mp4").mkdir()
    cases.append(BadInput("folder.mp4", "directory named like a video", "error", _ACCESS))
    (root / "linked-folder.mov").symlink_to(root / "folder.mp4")
    cases.append(BadInput("linked-folder.mov", "symlinked directory named like a video", "error", _ACCESS))
    os.mkfifo(root / "fifo.mp4")
    cases.append(BadInput("fifo.mp4", "FIFO named like a video (would block a reader)", "error", _ACCESS))
    put("mode-000.mp4", rng.bytes(2048), "unreadable file (mode 000)", types=_ACCESS | _MEDIA,
        note="root reads mode-000 files: FileAccessError for other users, a media error for root")  # fmt: skip
    os.chmod(root / "mode-000.mp4", 0)
    return cases


def unreadable_for_root() -> bool:
    """True when mode-000 files cannot stop this process (root, or CAP_DAC_OVERRIDE)."""
    return os.geteuid() == 0


if __name__ == "__main__":
    for case in make_bad_inputs(sys.argv[1] if len(sys.argv) > 1 else "bad-inputs"):
        print(f"{case.name:28s} {case.expect:5s} {case.kind}")

"""Real-world-shaped media for the decoder conformance suite, and ffmpeg as its oracle.

``make_corpus(folder)`` writes one short synthetic clip or still of each
kind people actually upload (stream-copy cuts with edit lists, rotation and
mirror display matrices, VFR, fragmented MP4, MPEG-TS, MKV/WebM without
cues, open GOP with B-pyramids, interlaced, 10-bit HEVC, AV1, a mid-stream
resolution change (and segments whose timestamps overlap), audio-only MP4, one-frame video, animated GIF/WebP,
HEIC, EXIF-rotated and CMYK JPEG, 16-bit and palette PNG) with the ffmpeg
command line (Debian ``ffmpeg``), ``heif-enc`` (``libheif-examples``) and
``exiftool`` (``libimage-exiftool-perl``); Pillow and PyAV only where those
tools cannot (a CMYK JPEG, a mirrored display matrix). Content is ffmpeg's
``testsrc2`` pattern: synthetic, nothing else.

``oracle(path)`` is what ffmpeg shows: every frame in displayed orientation
(its autorotate) as RGB, and ffprobe's ``best_effort_timestamp`` of each,
relative to the stream's start time. Stills (and the first frame of
animated GIF/WebP) show ``still_source(folder)``, the PNG they were made from.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vscan import decode

__all__ = ["DERIVED", "KINDS", "STILLS", "Oracle", "derive", "missing_tools", "make_corpus", "oracle", "still_source"]

SIZE = "160x120"
_SRC = f"testsrc2=size={SIZE}:rate=25:duration=3"
_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]


def _ff(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True)


def _ff_pipe(out: Path, *args: str) -> None:
    """ffmpeg writing to a pipe: Matroska/WebM then has no cues (not seekable output)."""
    with open(out, "wb") as f:
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *args, "-"], check=True, stdout=f)


def _source(folder: Path) -> Path:
    src = folder / "source.mp4"
    if not src.exists():
        _ff("-f", "lavfi", "-i", _SRC, *_X264, "-g", "25", "-bf", "2", src)
    return src


def _mirror(src: Path, out: Path) -> None:
    import av  # the ffmpeg 5.1 command line cannot write a mirrored display matrix

    with av.open(str(src)) as inp, av.open(str(out), "w") as outp:
        ist = inp.streams.video[0]
        ost = outp.add_stream_from_template(ist)
        ost.set_display_matrix([-65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30])  # horizontal mirror
        for packet in inp.demux(ist):
            if packet.dts is not None:
                packet.stream = ost
                outp.mux(packet)


def still_source(folder: str | Path) -> Path:
    """The PNG every still kind was made from: what each must display as."""
    return _still(Path(folder))


def _still(folder: Path) -> Path:
    png = folder / "still-source.png"
    if not png.exists():
        _ff("-f", "lavfi", "-i", f"testsrc2=size={SIZE}", "-frames:v", "1", png)
    return png


#: Kinds ``derive`` makes from any source clip: stream copies, and vfr (frames
#: dropped, re-encoded).
DERIVED = ("cut_mp4", "cut_mov", "cut_mkv", "rotate90", "rotate180", "rotate270", "mirror", "vfr", "fragmented",
           "mpegts", "mkv_nocues")  # fmt: skip


def derive(kind: str, source: str | Path, out: str | Path) -> Path:
    """``kind`` made from ``source``: one of DERIVED (as an editor or a
    messenger rewrites a clip); "phone90", the clip as a phone stores it
    (pixels turned a quarter clockwise, re-encoded, and a rotate tag whose display
    matrix turns them back: it displays as ``source``); or "heic", a
    HEIC of a still."""
    source, out = Path(source), Path(out)
    if kind == "heic":
        subprocess.run(["heif-enc", "-q", "80", "-o", str(out), str(source)], check=True, capture_output=True)
    elif kind == "phone90":
        sideways = out.with_name(out.stem + "-sideways" + out.suffix)
        _ff("-i", source, "-vf", "transpose=clock", *_X264, "-g", "25", sideways)
        _ff("-i", sideways, "-c", "copy", "-metadata:s:v", "rotate=90", out)  # re-encoding would drop the tag
        sideways.unlink()
    elif kind in DERIVED:
        _copy_kind(kind, source, out)
    else:
        raise ValueError(f"Invalid kind ({kind!r}). Supported values are {', '.join(DERIVED)}, 'phone90', 'heic'.")
    return out


def _make(kind: str, folder: Path) -> Path:
    src = _source(folder)
    out = folder / f"{kind}.{KINDS[kind]}"
    if kind in DERIVED:
        return _copy_kind(kind, src, out)
    if kind == "heic":
        return derive(kind, _still(folder), out)
    return _encode_kind(kind, folder, out)


def _copy_kind(kind: str, src: Path, out: Path) -> Path:
    if kind in ("cut_mp4", "cut_mov"):  # edit list: starts 0.28 s after a keyframe
        _ff("-ss", "1.3", "-i", src, "-c", "copy", out)
    elif kind == "cut_mkv":  # negative timestamps instead of an edit list
        _ff("-ss", "1.3", "-i", src, "-c", "copy", out)
    elif kind.startswith("rotate"):
        _ff("-i", src, "-c", "copy", "-metadata:s:v", f"rotate={kind[6:]}", out)
    elif kind == "mirror":
        _mirror(src, out)
    elif kind == "vfr":  # frames dropped unevenly: gaps of 1 to 3 frames
        _ff("-i", src, "-vf", "select='not(mod(n\\,3))+lt(n\\,12)'", "-vsync", "vfr", *_X264, out)
    elif kind == "fragmented":
        _ff("-i", src, "-c", "copy", "-movflags", "frag_keyframe+empty_moov+default_base_moof", out)
    elif kind == "mpegts":
        _ff("-i", src, "-c", "copy", "-bsf:v", "h264_mp4toannexb", out)
    elif kind == "mkv_nocues":
        _ff_pipe(out, "-i", str(src), "-c", "copy", "-f", "matroska")
    return out


def _encode_kind(kind: str, folder: Path, out: Path) -> Path:
    if kind == "webm_nocues":
        _ff_pipe(out, "-f", "lavfi", "-i", _SRC, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "25", "-f", "webm")
    elif kind == "open_gop":
        _ff("-f", "lavfi", "-i", _SRC, *_X264, "-g", "25", "-x264-params", "open-gop=1:bframes=3:b-pyramid=normal", out)
    elif kind == "interlaced":
        _ff("-f", "lavfi", "-i", _SRC, *_X264, "-flags", "+ildct+ilme", "-x264-params", "tff=1", out)
    elif kind == "hevc10":
        _ff("-f", "lavfi", "-i", _SRC, "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le",
            "-x265-params", "log-level=error:keyint=25", "-tag:v", "hvc1", out)  # fmt: skip
    elif kind == "av1":
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", _SRC,
                        "-c:v", "libsvtav1", "-preset", "12", "-g", "25", str(out)], check=True, capture_output=True)  # fmt: skip
    elif kind == "size_change":  # MPEG-TS segments at two sizes, joined by stream copy (as HLS plays them)
        parts = [folder / f"size_change-{i}.ts" for i in range(2)]
        for part, size in zip(parts, (SIZE, "128x96")):
            _ff("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration=1", *_X264, "-g", "25", part)
        listing = folder / "size_change.txt"
        listing.write_text("".join(f"file '{p.name}'\n" for p in parts))
        _ff("-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", out)  # timestamps continue across the join
        for p in (*parts, listing):
            p.unlink()
    elif kind == "ts_overlap":  # two segments' bytes joined as they are: the second's timestamps overlap the first's end
        parts = []
        for i, size in enumerate((SIZE, "128x96")):
            part = folder / f"ts_overlap-{i}.ts"
            _ff("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration=1", *_X264, "-g", "25", "-output_ts_offset", str(i), part)
            parts.append(part.read_bytes())
            part.unlink()
        out.write_bytes(b"".join(parts))
    elif kind == "audio_only":
        _ff("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", out)
    elif kind == "one_frame":
        _ff("-f", "lavfi", "-i", _SRC, "-frames:v", "1", *_X264, out)
    elif kind in ("anim_gif", "anim_webp"):
        _ff("-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate=5:duration=1", "-loop", "0", out)
    elif kind == "jpeg_exif6":  # stored sideways, EXIF says turn 90 degrees clockwise to show the source
        _ff("-i", _still(folder), "-vf", "transpose=cclock", out)
        subprocess.run(["exiftool", "-q", "-overwrite_original", "-Orientation#=6", str(out)], check=True)
    elif kind == "jpeg_cmyk":
        from PIL import Image  # the command-line tools here do not write CMYK JPEG

        with Image.open(_still(folder)) as img:
            img.convert("CMYK").save(out, quality=95)
    elif kind == "png16":
        _ff("-i", _still(folder), "-pix_fmt", "gray16be", out)
    elif kind == "png_palette":
        _ff("-i", _still(folder), "-pix_fmt", "pal8", out)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return out


#: kind -> file suffix. Generated in this order by make_corpus.
KINDS: dict[str, str] = {
    "cut_mp4": "mp4", "cut_mov": "mov", "cut_mkv": "mkv",
    "rotate90": "mp4", "rotate180": "mp4", "rotate270": "mp4", "mirror": "mp4",
    "vfr": "mp4", "fragmented": "mp4", "mpegts": "ts", "mkv_nocues": "mkv", "webm_nocues": "webm",
    "open_gop": "mp4", "interlaced": "mp4", "hevc10": "mp4", "av1": "mp4", "size_change": "ts", "ts_overlap": "ts",
    "audio_only": "mp4", "one_frame": "mp4", "anim_gif": "gif", "anim_webp": "webp",
    "heic": "heic", "jpeg_exif6": "jpg", "jpeg_cmyk": "jpg", "png16": "png", "png_palette": "png",
}  # fmt: skip

#: Kinds read as still images (the first frame of animations).
STILLS = ("anim_gif", "anim_webp", "heic", "jpeg_exif6", "jpeg_cmyk", "png16", "png_palette")

#: Every video decoder path a scan can choose: name -> (decoder, sampling policy).
DECODER_PATHS = {
    "decord-dense": lambda: (decode.DecordDecoder(), decode.EveryFrame()),
    "pyav-dense": lambda: (decode.PyAVDecoder(), decode.EveryFrame()),
    "pyav-fps1": lambda: (decode.PyAVDecoder(), decode.FixedRate(1.0)),
    "pyav-keyframes": lambda: (decode.PyAVDecoder(), decode.Keyframes()),
    "pyav-sequential-fps1": lambda: (decode.PyAVDecoder(plain=True), decode.FixedRate(1.0)),
}

_TOOLS = ("ffmpeg", "ffprobe", "heif-enc", "exiftool")


def missing_tools() -> list[str]:
    """The command-line tools this module needs that are not on PATH."""
    return [t for t in _TOOLS if shutil.which(t) is None]


def make_corpus(folder: str | Path, kinds=None) -> dict[str, Path]:
    """One file per kind in folder (created); {kind: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {kind: _make(kind, folder) for kind in (kinds or KINDS)}


@dataclass(frozen=True)
class Oracle:
    """What ffmpeg shows of a file: frames [N, H, W, 3] in displayed orientation
    and their best-effort timestamps (seconds from the stream start)."""

    frames: np.ndarray
    timestamps: np.ndarray


def oracle(path: str | Path) -> Oracle:
    """ffmpeg's frames of the first video stream (at the displayed size of
    the first frame, as the command line keeps it) and ffprobe's timestamps."""
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=start_time:stream_side_data=rotation:frame=best_effort_timestamp_time,width,height",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True).stdout)  # fmt: skip
    frames = probe.get("frames", [])
    start = float(probe["streams"][0].get("start_time", 0.0) or 0.0)
    times = np.asarray([float(f.get("best_effort_timestamp_time", "nan")) for f in frames]) - start
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-vsync", "passthrough",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout  # fmt: skip
    if not frames:
        return Oracle(np.zeros((0, 1, 1, 3), np.uint8), times)
    n = len(frames)
    per = len(raw) // max(n, 1)
    w, h = int(frames[0]["width"]), int(frames[0]["height"])
    turns = [abs(int(d.get("rotation", 0))) for d in probe["streams"][0].get("side_data_list", [])]
    if 90 in turns or 270 in turns:  # autorotate turned it on its side
        w, h = h, w
    return Oracle(np.frombuffer(raw[: n * per], np.uint8).reshape(n, h, w, 3), times)

"""Short testsrc2 clips in the archive bench's four codecs, made by the ffmpeg command line (the decode
tests of one file's passes: test_decode_reuse, test_decode_read_once), and which encoders ffmpeg has."""

from __future__ import annotations

import subprocess
from pathlib import Path

#: codec -> (ffmpeg encoder arguments, suffix): B-frames where the codec has them.
FOUR_CODECS = {
    "h264": (["-c:v", "libx264", "-preset", "veryfast", "-bf", "2"], ".mp4"),
    "hevc": (["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"], ".mkv"),
    "vp9": (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"], ".webm"),
    "av1": (["-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime"], ".mp4"),
}


def ffmpeg_encoders() -> set[str]:
    """The names of the encoders the local ffmpeg lists."""
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=True).stdout
    return {line.split()[1] for line in out.splitlines() if len(line.split()) > 1}


def four_codec_clips(root: Path, seconds: float) -> dict[str, str]:
    """codec -> path of a ``seconds`` long 320x180 clip at 25 fps, GOP 30, for each of ``FOUR_CODECS`` ffmpeg can encode."""
    have, out = ffmpeg_encoders(), {}
    for codec, (args, suffix) in FOUR_CODECS.items():
        if args[1] in have:
            path = root / f"{codec}{suffix}"
            subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            f"testsrc2=size=320x180:rate=25:duration={seconds:g}", "-g", "30", "-pix_fmt", "yuv420p", *args, str(path)],
                           check=True, timeout=120)  # fmt: skip
            out[codec] = str(path)
    return out

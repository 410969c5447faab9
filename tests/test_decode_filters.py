"""A scan decodes H.264/HEVC keyframe passes as coded, in-loop filters included (issue 30).

Skipping the filters on passes near keyframes (FFmpeg's skip_loop_filter, e323615) saved ~2% of decode
CPU and lost a heavily compressed copy (crf 40, 96x64: tests/test_cli_output.py); it was removed. The
scan's decoder, with and without ``--exact-frames``, gives the pictures a plain forward decode gives."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from _codec_clips import ffmpeg_encoders
from vscan.config import Sampling, ScanConfig
from vscan.decode import Keyframes, PyAVDecoder

#: codec -> ffmpeg encoder arguments: coarse quantisers, so that deblocking changes the pictures.
CODECS = {
    "h264": ["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-crf", "34"],
    "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "34", "-x265-params", "log-level=error"],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-crf", "50", "-b:v", "0"],
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    """6 s at 25 fps, a keyframe every 3 s (frames 0, 75), 640x360."""
    root, have, out = tmp_path_factory.mktemp("filters"), ffmpeg_encoders(), {}
    for codec, args in CODECS.items():
        if args[1] in have:
            path = root / f"{codec}.mkv"
            subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            "testsrc2=size=640x360:rate=25:duration=6", "-g", "75", "-keyint_min", "75", "-sc_threshold", "0",
                            "-pix_fmt", "yuv420p", *args, str(path)], check=True, timeout=120)  # fmt: skip
            out[codec] = str(path)
    if "h264" not in out:
        pytest.skip("ffmpeg lacks libx264")
    return out


def _frames(decoder: PyAVDecoder, path: str, policy) -> tuple[np.ndarray, np.ndarray]:
    batches = list(decoder.iter_frames(path, policy, size=(256, 256)))
    decoder.close()
    return np.concatenate([b.frame_indices for b in batches]), np.concatenate([b.rgb for b in batches])


def test_the_scans_keyframe_passes_decode_as_coded(clips):
    """Scans (``--exact-frames`` or not) decode keyframes as a plain forward decode does, in every codec."""
    from vscan.runtime import decode_task

    for codec, path in clips.items():
        with __import__("av").open(path) as container:  # a plain forward decode, as coded
            coded = [f for f in container.decode(video=0) if f.key_frame]
        _, b = _frames(PyAVDecoder(plain=True), path, Keyframes())
        for exact in (False, True):
            scan = decode_task._open(path, "pyav", ScanConfig(sampling=Sampling(exact_frames=exact)))
            _, a = _frames(scan, path, Keyframes())
            assert len(coded) == len(a) and np.array_equal(a, b), (codec, exact)

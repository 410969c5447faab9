"""The scan's PyAV decoders (issue 30: decode-side CPU per file): one codec
thread each (a scan already runs one decode per core), the same pixels as
FFmpeg's threaded default in every codec; and scalers kept for the process,
not per thread, since each file decodes in a thread of its own."""

from __future__ import annotations

import subprocess
import threading

import av
import numpy as np
import pytest

from vscan.config import ScanConfig
from vscan.decode import FixedRate, Keyframes, PyAVDecoder
from vscan.decode import pyav_backend
from vscan.runtime.decode_task import _open

#: codec -> (ffmpeg encoder arguments, suffix): the archive bench's four codecs, 3 s, GOP 30.
CODECS = {
    "h264": (["-c:v", "libx264", "-preset", "veryfast", "-bf", "2"], ".mp4"),
    "hevc": (["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"], ".mkv"),
    "vp9": (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"], ".webm"),
    "av1": (["-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime"], ".mp4"),
}


def _encoders() -> set[str]:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=True).stdout
    return {line.split()[1] for line in out.splitlines() if len(line.split()) > 1}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    root, have, out = tmp_path_factory.mktemp("threads"), _encoders(), {}
    for codec, (args, suffix) in CODECS.items():
        if args[1] in have:
            path = root / f"{codec}{suffix}"
            subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            "testsrc2=size=320x180:rate=25:duration=3", "-g", "30", "-pix_fmt", "yuv420p", *args, str(path)],
                           check=True, timeout=120)  # fmt: skip
            out[codec] = str(path)
    if len(out) < 2:
        pytest.skip("ffmpeg lacks the encoders")
    return out


def _frames(decoder: PyAVDecoder, path: str, policy) -> tuple[np.ndarray, np.ndarray]:
    batches = list(decoder.iter_frames(path, policy, size=(256, 256)))
    return np.concatenate([b.frame_indices for b in batches]), np.concatenate([b.rgb for b in batches])


def test_scan_decoders_run_one_codec_thread_with_the_same_pixels(clips):
    config = ScanConfig()
    for codec, path in clips.items():
        scan = _open(path, "pyav", config)
        assert isinstance(scan, PyAVDecoder) and scan.threads == 1
        with av.open(path) as container:
            stream = container.streams.video[0]
            scan._set_threads(stream)
            assert stream.codec_context.thread_count == 1
        for policy in (Keyframes(), FixedRate(4.0), FixedRate(25.0)):
            threaded = PyAVDecoder(skip_nonref=scan.skip_nonref, thread_type="SLICE")  # the scan's decoder before: FFmpeg's thread count
            (i1, one), (i0, default) = _frames(scan, path, policy), _frames(threaded, path, policy)
            assert np.array_equal(i1, i0) and np.array_equal(one, default), (codec, policy)


def test_scalers_are_kept_for_the_process_not_per_thread(clips, monkeypatch):
    """Each file's decode runs in a new thread (vscan.decode.guard): its frames reuse the scaler
    the last file's thread made; two threads at once never share one."""
    import av.video.reformatter as reformatter

    path = next(iter(clips.values()))
    with av.open(path) as container:
        frame = next(container.decode(video=0))
    native, made = (frame.width, frame.height), []

    real = reformatter.VideoReformatter

    def counted():
        made.append(real())
        return made[-1]

    monkeypatch.setattr(reformatter, "VideoReformatter", counted)

    def one_file() -> None:
        t = threading.Thread(target=pyav_backend._rgb, args=(frame, (202, 122), native, True))
        t.start()
        t.join()

    for _ in range(3):  # one file after another, each in a thread of its own (an output size no other test uses)
        one_file()
    assert len(made) == 1
    with pyav_backend._scaler((202, 122)) as held:  # a thread mid-frame holds it: the next file's thread gets its own
        one_file()
    assert len(made) == 2 and held is made[0]

"""The scan's codec threads (issue 30: decode-side CPU per file): HEVC and AV1 (libdav1d) open with one
thread, since their threads cost CPU and bought no wall time on a scan's short passes; H.264 and VP9
keep FFmpeg's own count. The frames are the same, to the byte, as with threads."""

from __future__ import annotations

import numpy as np
import pytest

from _codec_clips import four_codec_clips
from vscan.decode import PyAVDecoder


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    out = four_codec_clips(tmp_path_factory.mktemp("codec-threads"), seconds=2)
    if not {"hevc", "av1"} & set(out):
        pytest.skip("ffmpeg lacks the HEVC and AV1 encoders")
    return out


def _scan(path: str) -> list:
    """A scan's decode of ``path`` (confirmation decoded ahead): every frame set's bytes, and the frames decoded."""
    from vscan.config import Sampling, ScanConfig
    from vscan.decode.adaptive import Adaptive
    from vscan.runtime.decode_task import decode_for_scan

    summary, payload = decode_for_scan(path, ScanConfig(sampling=Sampling(policy=Adaptive(confirm_ahead=True))))
    assert summary["error"] is None and payload is not None, summary["error"]
    sets = [payload.to_dict()] + ([payload.ahead.to_dict()] if payload.ahead is not None else [])
    return [summary["frames_decoded"]] + [(k, np.asarray(v).tobytes()) for s in sets for k, v in sorted(s.items()) if isinstance(v, np.ndarray)]


def test_a_scan_opens_hevc_and_av1_with_one_thread_and_h264_vp9_with_ffmpegs_count(clips, monkeypatch):
    opened: dict[str, set] = {}
    real = PyAVDecoder._set_threads

    def recorded(self, stream, held=False):
        ctx = stream.codec_context
        was_open = ctx.is_open
        real(self, stream, held)
        if not was_open:  # the count the codec opens with (0: FFmpeg's own, as many as the cores and one)
            opened.setdefault(ctx.name, set()).add(ctx.thread_count)

    monkeypatch.setattr(PyAVDecoder, "_set_threads", recorded)
    for path in clips.values():
        _scan(path)
    want = {"h264": {0}, "hevc": {1}, "vp9": {0}, "libdav1d": {1}}
    assert opened == {name: want[name] for name in opened}, opened
    assert {"hevc", "libdav1d"} & set(opened)


def test_one_thread_gives_the_same_frames_as_the_codecs_threads(clips, monkeypatch):
    from vscan.runtime import decode_task

    one = {name: _scan(path) for name, path in clips.items()}
    monkeypatch.setattr(decode_task, "_PYAV", {**decode_task._PYAV, "one_thread": frozenset()})
    threaded = {name: _scan(path) for name, path in clips.items()}
    for name in clips:
        assert one[name] == threaded[name], name


def _frames(clips) -> list:
    import av

    out = []
    for path in clips.values():
        with av.open(path) as container:
            out += [f for _, f in zip(range(3), container.decode(video=0))]
    return out


def test_frames_are_scaled_on_one_swscale_thread(clips, monkeypatch):
    """libswscale's default (PyAV's threads=0: a thread per core) slices each frame over a pool: more CPU, same bytes."""
    import av.video.reformatter as reformatter

    from vscan.decode import pyav_reuse

    real, asked = reformatter.VideoReformatter, []

    class Recording:
        def __init__(self):
            self.inner = real()

        def reformat(self, frame, **kwargs):
            asked.append(kwargs.get("threads"))
            return self.inner.reformat(frame, **kwargs)

    monkeypatch.setattr(reformatter, "VideoReformatter", Recording)
    frame = _frames(clips)[0]
    pyav_reuse._rgb(frame, (203, 121), (frame.width, frame.height), True)  # a size no other test uses: a new scaler
    pyav_reuse._turned_luma(frame, (203, 121), (frame.width, frame.height), pyav_reuse.Orientation())
    assert asked == [1, 1]


@pytest.mark.parametrize("size", [(256, 256), (198, 118), (512, 288), (640, 360)])
def test_one_swscale_thread_gives_the_same_bytes_as_its_pool(clips, size):
    from av.video.reformatter import VideoReformatter

    from vscan.decode import pyav_reuse

    pool = VideoReformatter()
    for frame in _frames(clips):
        ours = pyav_reuse._rgb(frame, size, (frame.width, frame.height), True)
        theirs = pool.reformat(frame, width=size[0], height=size[1], format="rgb24", interpolation="AREA").to_ndarray()
        assert ours.tobytes() == theirs.tobytes()
        grey = pyav_reuse._turned_luma(frame, size, (frame.width, frame.height), pyav_reuse.Orientation())
        assert grey.tobytes() == pool.reformat(frame, width=size[0], height=size[1], format="gray", interpolation="AREA").to_ndarray().tobytes()

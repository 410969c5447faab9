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

"""The index pass's first frame is not decoded again (issue #30).

PyAV's index pass decodes the file's first frame for its display matrix. A
keyframe pass that wants frame 0 (adaptive sampling's first pass) takes that
very frame instead of decoding it a second time, and decodes the other
keyframes from their packets alone, in every codec (VP9's decoder ignores
skip_frame=NONKEY; the others skip the packets given them slower): the same
pictures, to the bit, as a plain forward decode, in the displayed orientation.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import vscan.decode.pyav_backend as pyav_backend
from vscan.decode import Keyframes, PyAVDecoder
from vscan.decode.sampling import FrameList

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

_SRC = ["-f", "lavfi", "-i", "testsrc2=size=192x108:rate=25:duration=4"]
_CLIPS = {
    "h264.mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p"],
    "h264-rotated.mp4": [],  # written by PyAV with a display matrix (_rotated)
    "vp9.webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "30"],
    "hevc.mkv": ["-c:v", "libx265", "-preset", "ultrafast", "-g", "25", "-x265-params", "log-level=error"],
}  # fmt: skip


def _rotated(path: Path) -> Path | None:
    """An H.264 clip whose container says: shown turned 90 degrees (a keyframe every 10 frames)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"g": "10", "bf": "2", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 192, 108, "yuv420p"
        if not hasattr(stream, "set_display_rotation"):
            return None
        stream.set_display_rotation(90)
        ramp = np.linspace(0, 255, 192, dtype=np.float32)[None, :, None] + np.linspace(0, 64, 108, dtype=np.float32)[:, None, None]
        for i in range(40):
            rgb = ((ramp + 6 * i + np.array([0, 80, 160], np.float32)) % 256).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def _make(path: Path, args: list[str]) -> Path | None:
    if not args:
        return _rotated(path)
    run = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *_SRC, *args, str(path)], capture_output=True, timeout=120)
    return path if run.returncode == 0 else None


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("first_frame")
    made = {name: _make(root / name, args) for name, args in _CLIPS.items()}
    return {name: path for name, path in made.items() if path is not None}


def _frames(batches) -> tuple[np.ndarray, np.ndarray]:
    batches = list(batches)
    return np.concatenate([b.frame_indices for b in batches]), np.concatenate([b.rgb for b in batches])


@pytest.mark.parametrize("name", list(_CLIPS))
def test_a_keyframe_pass_takes_the_index_pass_first_frame(clips, name, monkeypatch):
    if name not in clips:
        pytest.skip(f"this ffmpeg cannot make {name}")
    path = clips[name]
    probed, converted = [], []
    real_first, real_rgb = pyav_backend.first_frame, pyav_backend._rgb

    def spy_first(stream, packet, **kw):
        out = real_first(stream, packet, **kw)
        if out[2] is not None:
            probed.append(out[2])
        return out

    def spy_rgb(frame, *args):
        converted.append(frame)
        return real_rgb(frame, *args)

    fed = []
    real_feed = PyAVDecoder._keyframe_feed

    def spy_feed(container, stream, index, wanted):
        for frame in real_feed(container, stream, index, wanted):
            fed.append(frame)
            yield frame

    monkeypatch.setattr(pyav_backend, "first_frame", spy_first)
    monkeypatch.setattr(pyav_backend, "_rgb", spy_rgb)
    monkeypatch.setattr(PyAVDecoder, "_keyframe_feed", staticmethod(spy_feed))
    decoder = PyAVDecoder(skip_nonref=True, hold_open=True)
    meta = decoder.probe(path)
    assert len(meta.keyframe_indices) >= 3, meta.keyframe_indices
    numbers, rgb = _frames(decoder.iter_frames(path, Keyframes(), size=(64, 64)))
    decoder.close()
    assert len(probed) == 1 and converted[0] is probed[0]  # frame 0 as the index pass decoded it, not decoded again
    assert numbers.tolist() == list(meta.keyframe_indices)
    # the other keyframes from their own packets alone, in every codec (no packet given to the decoder to skip)
    assert len(fed) == len(numbers) - 1 and decoder.frames_decoded == len(numbers)
    # The same pictures, to the bit, as a plain forward decode (no seek, no skipped frame, nothing reused).
    plain_numbers, plain_rgb = _frames(PyAVDecoder(plain=True).iter_frames(path, FrameList(tuple(numbers.tolist())), size=(64, 64)))
    assert plain_numbers.tolist() == numbers.tolist()
    assert np.array_equal(plain_rgb, rgb)
    if "rotated" in name:
        assert (meta.width, meta.height) == (108, 192)  # shown turned, frame 0 too
        wide = _frames(PyAVDecoder().iter_frames(path, Keyframes(), max_side=192))[1]
        assert wide.shape[1:3] == (192, 108)

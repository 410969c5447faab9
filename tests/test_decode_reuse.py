"""The scan's PyAV decoders (issue 30: decode-side CPU per file): scalers kept
for the process, not per thread, since each file decodes in a thread of its
own; and one open container for all of a file's passes, where rewinding it is
exact, with the same frames as opening the file for each pass."""

from __future__ import annotations

import subprocess
import threading

import av
import numpy as np
import pytest

from _codec_clips import four_codec_clips
from vscan.config import ScanConfig
from vscan.decode import PyAVDecoder
from vscan.decode import pyav_backend


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    out = four_codec_clips(tmp_path_factory.mktemp("threads"), seconds=3)
    if len(out) < 2:
        pytest.skip("ffmpeg lacks the encoders")
    return out


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


def _scan(path: str) -> tuple:
    """A scan's decode of ``path`` (confirmation decoded ahead): every frame set's bytes, and the frames decoded."""
    from vscan.config import Sampling
    from vscan.decode.adaptive import Adaptive
    from vscan.runtime.decode_task import decode_for_scan

    config = ScanConfig(sampling=Sampling(policy=Adaptive(confirm_ahead=True)))
    summary, payload = decode_for_scan(path, config)
    assert summary["error"] is None and payload is not None, summary["error"]
    sets = [payload.to_dict()] + ([payload.ahead.to_dict()] if payload.ahead is not None else [])
    pixels = [(k, np.asarray(v).tobytes()) for s in sets for k, v in sorted(s.items()) if isinstance(v, np.ndarray)]
    return pixels, summary["frames_decoded"]


def test_a_scan_opens_each_file_once_for_all_its_passes_with_the_same_frames(clips, tmp_path, monkeypatch):
    """Index, first pass and the confirmation decoded ahead share one open container, rewound
    between passes (vscan.decode.pyav_reuse) where that is exact: H.264, HEVC and VP9 in MP4 and
    Matroska/WebM, and AV1 (libdav1d fixes its frame skipping when it opens: the scan's index pass opens
    it skipping non-reference frames as the scan's passes after it do); MPEG-TS opens again for each.
    Every frame set is byte for byte what a decoder opening the file for each pass gives."""
    from vscan.runtime import decode_task

    ts = tmp_path / "h264.ts"
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", clips["h264"], "-c", "copy", str(ts)], check=True)
    media = {**clips, "h264-ts": str(ts)}
    opens: list[str] = []
    real_open = PyAVDecoder._open_container

    def counted(path):
        opens.append(str(path))
        return real_open(path)

    monkeypatch.setattr(PyAVDecoder, "_open_container", staticmethod(counted))
    held = {name: (_scan(path)[:2], opens.count(path)) for name, path in media.items()}
    assert [held[name][1] for name in ("h264", "hevc", "vp9", "av1") if name in held] == [1] * len({"h264", "hevc", "vp9", "av1"} & set(held))
    monkeypatch.setattr(decode_task, "_PYAV", {**decode_task._PYAV, "hold_open": False})
    fresh = {name: (_scan(path)[:2], opens.count(path) - held[name][1]) for name, path in media.items()}
    for name in media:
        assert held[name][0] == fresh[name][0], name  # the same frames, the same count decoded
        assert fresh[name][1] >= 3, name  # opened for the index, the first pass, the confirmation
        shared = {"h264": 1, "hevc": 1, "vp9": 1, "av1": 1}
        assert held[name][1] == shared.get(name, fresh[name][1]), (name, held[name][1])

"""A scan's decode reads each file's packets once (issue 30: decode-side CPU per file).

The index pass keeps the packets it demuxes (vscan.decode.pyav_packets.PacketKeeper, MP4 and
Matroska/WebM, up to KEEP_PACKETS_BYTES); the keyframe pass, the region probe and the confirmation
decoded ahead feed the decoder from them: no second demux of the file, no seek. The frames are byte
for byte those of a decoder that opens and demuxes the file for each pass."""

from __future__ import annotations

import numpy as np
import pytest

from _codec_clips import four_codec_clips
from vscan.config import Sampling, ScanConfig
from vscan.decode import PyAVDecoder
from vscan.decode import pyav_packets


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    out = four_codec_clips(tmp_path_factory.mktemp("read-once"), seconds=4)
    if "h264" not in out:
        pytest.skip("ffmpeg lacks libx264")
    return out


class _Counted:
    """A container whose demux passes and seeks are counted (everything else is the container's)."""

    def __init__(self, container, reads: list[str]) -> None:
        self._container, self._reads = container, reads

    def __getattr__(self, name):
        return getattr(self._container, name)

    def demux(self, *args, **kwargs):
        self._reads.append("demux")
        return self._container.demux(*args, **kwargs)

    def seek(self, *args, **kwargs):
        self._reads.append("seek")
        return self._container.seek(*args, **kwargs)

    def decode(self, *args, **kwargs):
        self._reads.append("demux")
        return self._container.decode(*args, **kwargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._container.close()


def _scan(path: str) -> tuple[list, int]:
    """A scan's decode of ``path`` (confirmation decoded ahead): every frame set's bytes, and the frames decoded."""
    from vscan.decode.adaptive import Adaptive
    from vscan.runtime.decode_task import decode_for_scan

    summary, payload = decode_for_scan(path, ScanConfig(sampling=Sampling(policy=Adaptive(confirm_ahead=True))))
    assert summary["error"] is None and payload is not None and payload.ahead is not None, summary["error"]
    sets = [payload.to_dict(), payload.ahead.to_dict()]
    return [(k, np.asarray(v).tobytes()) for s in sets for k, v in sorted(s.items()) if isinstance(v, np.ndarray)], summary["frames_decoded"]


def test_a_scan_demuxes_each_file_once_with_the_same_frames(clips, monkeypatch):
    reads: list[str] = []
    real_open = PyAVDecoder._open_container
    monkeypatch.setattr(PyAVDecoder, "_open_container", staticmethod(lambda path: _Counted(real_open(path), reads)))
    kept = {}
    for name, path in clips.items():
        reads.clear()
        kept[name] = _scan(path)
        # one demux pass (the index's) and no seek; AV1 opens the file again for its confirmation, still from the packets kept
        assert reads == ["demux"], (name, reads)
    monkeypatch.setattr(pyav_packets, "KEEP_PACKETS_BYTES", 0)  # nothing kept: each pass demuxes (and seeks) again
    for name, path in clips.items():
        reads.clear()
        assert _scan(path) == kept[name], name  # the same frames, the same count decoded
        assert reads.count("demux") >= 2, (name, reads)

"""A long MP4's packet index from the container's own index, not a demux pass (vscan.decode.pyav_entries, issue 30).

The index (every frame's presentation time, keyframes, packet sizes for the cut marks) must be the demux pass's to the
value, and a scan's decode from it the same frames, byte for byte, with the same count decoded; files whose index cannot
serve (fragmented, cut off, an edit list that discards samples) keep the demux pass. ``ENTRIES_FROM_PACKETS`` is set to 0
here so that short files take the path long ones take in a scan."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from vscan.bench import realworld
from vscan.config import Sampling, ScanConfig
from vscan.decode import Keyframes, PyAVDecoder, pyav_backend, pyav_entries

pytestmark = pytest.mark.skipif(bool(realworld.missing_tools()), reason=f"needs {realworld.missing_tools()}")

#: realworld's MP4/MOV kinds: edit lists, display matrices, a variable rate, fragments
MP4_KINDS = ["cut_mp4", "cut_mov", "rotate90", "mirror", "vfr", "fragmented"]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("entries")
    out = {k: str(p) for k, p in realworld.make_corpus(folder, MP4_KINDS).items()}
    clip = folder / "bframes.mp4"  # B-frames in a pyramid (presentation order is not decode order), GOP 25, moov first
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25:duration=4", "-c:v", "libx264", "-preset", "veryfast",
            "-bf", "3", "-g", "25", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(clip))  # fmt: skip
    out["bframes"] = str(clip)
    return out


def _both(path: str, monkeypatch, make):
    """``make()`` from the demux pass, then from the container's index."""
    monkeypatch.setattr(pyav_entries, "ENTRIES_FROM_PACKETS", 1 << 30)
    demuxed = make()
    monkeypatch.setattr(pyav_entries, "ENTRIES_FROM_PACKETS", 0)
    return demuxed, make()


def _index(path: str):
    decoder = PyAVDecoder(hold_open=True, skip_nonref=True, read_on=lambda meta, pts, selected: ())
    meta, index = decoder._index(pyav_backend.Path(path))
    facts = (meta, index.raw_pts, index.pts_seconds.tolist(), index.true_keyframes, index.keyframe_indices,
             index.first_frame is not None, index.parked, index.fed)  # fmt: skip
    used = isinstance(index.packets, pyav_entries.LazyPackets)
    decoder.close()
    return facts, used


def test_the_index_from_the_container_is_the_demux_pass_one(media, monkeypatch):
    used = {}
    for kind, path in media.items():
        (demuxed, _), (indexed, used[kind]) = _both(path, monkeypatch, lambda: _index(path))
        assert indexed == demuxed, kind
    assert used["bframes"] and used["rotate90"] and used["mirror"] and used["vfr"], used
    assert not used["fragmented"], used  # its index lists only what the demuxer has read: the demux pass


def test_a_scan_decode_from_the_container_index_gives_the_same_frames(media, monkeypatch):
    from vscan.decode.adaptive import Adaptive
    from vscan.runtime.decode_task import decode_for_scan

    config = ScanConfig(sampling=Sampling(policy=Adaptive(confirm_ahead=True)))

    def scan(path):
        summary, payload = decode_for_scan(path, config)
        assert summary["error"] is None, summary["error"]
        sets = [payload.to_dict()] + ([payload.ahead.to_dict()] if payload.ahead is not None else [])
        frames = [(k, np.asarray(v).tobytes()) for s in sets for k, v in sorted(s.items()) if isinstance(v, np.ndarray)]
        ahead = summary.get("ahead")
        return frames, summary["frames_decoded"], None if ahead is None else ahead.frames_decoded

    for kind in ("bframes", "rotate90", "cut_mp4", "vfr"):
        demuxed, indexed = _both(media[kind], monkeypatch, lambda: scan(media[kind]))
        assert indexed == demuxed, kind


def test_a_keyframe_pass_reads_its_keyframes_not_the_file(media, monkeypatch):
    monkeypatch.setattr(pyav_entries, "ENTRIES_FROM_PACKETS", 0)
    decoder = PyAVDecoder(hold_open=True, skip_nonref=True)
    path = pyav_backend.Path(media["bframes"])
    meta = decoder.probe(path)
    numbers = [int(i) for batch in decoder.iter_frames(path, Keyframes(), size=(32, 32)) for i in batch.frame_indices]
    index = decoder._index(path)[1]
    decoder.close()
    assert numbers == list(index.true_keyframes) and len(numbers) == 4, numbers
    assert isinstance(index.packets, pyav_entries.LazyPackets)
    assert len(index.packets.got) < meta.num_frames // 4, sorted(index.packets.got)  # the probe's and the keyframes' packets


def test_a_cut_off_mp4_keeps_the_demux_pass(media, tmp_path, monkeypatch):
    data = open(media["bframes"], "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])  # moov first: its sample table lists samples past the file's end
    (demuxed, _), (indexed, used) = _both(str(cut), monkeypatch, lambda: _index(str(cut)))
    assert not used and indexed == demuxed
    assert demuxed[0].demux_partial is not None  # the record says the file stops short, as before

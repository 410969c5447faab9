"""A confirmation decoded ahead (issue #30) is read on to from its keyframe inside the first pass's
keyframe pass (PyAVDecoder.read_on, vscan.runtime.confirm_ahead.confirm_read_on): that keyframe is
decoded once, not again by the confirmation's own decode, and the confirming frames are byte for
byte those a decode of the Confirm pass alone gives (the frame a skipped non-reference one stands in
for included)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests._codec_clips import four_codec_clips
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import Adaptive, PyAVDecoder
from vscan.runtime.decode_task import decode_for_scan

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

#: Codecs whose decoder takes a new skip_frame at any frame (vscan.decode.pyav_reuse._SKIP_PER_FRAME): read on to.
_READ_ON = ("h264", "hevc", "vp9", "av1")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    return four_codec_clips(tmp_path_factory.mktemp("read_on"), 9.0)


def _config(**policy) -> ScanConfig:
    return ScanConfig(sampling=Sampling(policy=Adaptive(confirm_ahead=True, **policy)), runtime=Runtime(device="cpu"))


@pytest.mark.parametrize("reach", [0.25, 1.0, None])
def test_the_confirming_frame_is_decoded_in_the_first_pass(clips, reach):
    """GOP 30 at 25 fps, keyframes 1.2 s apart: the confirmation's frame lies between two of them; the first pass
    decodes on from the keyframe before it, and the confirmation decodes nothing of its own."""
    checked = 0
    for codec, path in clips.items():
        if codec not in _READ_ON:
            continue
        summary, file = decode_for_scan(path, _config(confirm_reach_seconds=reach))
        assert file.ahead is not None, codec
        alone, alone_file = decode_for_scan(path, replace(_config(), sampling=Sampling(policy=file.ahead_policy)))
        assert np.array_equal(file.ahead.frame_numbers, alone_file.frame_numbers), codec
        assert np.array_equal(file.ahead.frames, alone_file.frames), codec
        assert summary["ahead"].frames_decoded == 0, (codec, summary["ahead"].frames_decoded)
        # the keyframes, then from the confirmation's keyframe to its frame: that keyframe once
        assert summary["frames_decoded"] == len(file.frame_numbers) + alone["frames_decoded"] - 1, (codec, summary["frames_decoded"])
        assert summary["frames_decoded"] <= PyAVDecoder().probe(path).num_frames
        _, plain = decode_for_scan(path, _config(confirm_frames=0))  # the first pass's own frames as without reading on
        assert np.array_equal(file.frame_numbers, plain.frame_numbers) and np.array_equal(file.frames, plain.frames), codec
        checked += 1
    assert checked, "no codec to read on in"


def test_real_samples_read_on_exactly():
    """The real sample videos (H.264 with B-frames, keyframes 2 s apart): the same confirming frames, byte for byte,
    decoded in the first pass."""
    media = Path(__file__).resolve().parents[2] / "shared" / "data" / "vpdq"
    videos = sorted(media.glob("*.mp4"))[:3]
    if not videos:
        pytest.skip("needs ../shared/data/vpdq")
    for path in videos:
        summary, file = decode_for_scan(str(path), _config())
        if file.ahead is None:
            continue
        _, alone = decode_for_scan(str(path), replace(_config(), sampling=Sampling(policy=file.ahead_policy)))
        assert np.array_equal(file.ahead.frame_numbers, alone.frame_numbers), path.name
        assert np.array_equal(file.ahead.frames, alone.frames), path.name
        assert summary["ahead"].frames_decoded == 0, path.name


def test_an_object_read_by_ranges_gives_its_frame_times_as_the_file_does(clips):
    """The confirmation decoded ahead, the cut marks and the region probe take frame times from the decoder
    (``frame_times``): an object read by range reads (an s3:// URI, no local file behind it) gives them too."""
    from vscan.inputs.ranged import RangeFile
    from vscan.inputs.ranged_pyav import RangedPyAV

    data = Path(clips["h264"]).read_bytes()
    ranged = RangedPyAV(RangeFile(lambda start, stop: data[start:stop], len(data)), "s3://media/h264.mp4")
    times = ranged.frame_times("s3://media/h264.mp4")
    assert len(times) > 100 and np.array_equal(times, PyAVDecoder().frame_times(clips["h264"]))

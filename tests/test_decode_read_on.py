"""A confirmation decoded ahead (issue #30) is read on to from its keyframe inside the first pass's
keyframe pass (PyAVDecoder.read_on, vscan.runtime.confirm_ahead.confirm_read_on): that keyframe is
decoded once, not again by the confirmation's own decode, and the confirming frames are byte for
byte those a decode of the Confirm pass alone gives (the frame a skipped non-reference one stands in
for included)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests._codec_clips import FOUR_CODECS, four_codec_clips
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


@pytest.fixture(scope="module")
def long_gop(tmp_path_factory) -> dict[str, str]:
    """16 s clips at 25 fps with keyframes 10 s apart (GOP 250, as the archive bench's long-GOP copies): an adaptive
    first pass of two keyframes, under the region probe's 4 frames (a zoom into the Mandelbrot set: nothing in it looks
    re-framed, testsrc2's boxes do)."""
    from tests._codec_clips import ffmpeg_encoders

    have, root, out = ffmpeg_encoders(), tmp_path_factory.mktemp("long_gop"), {}
    for codec in _READ_ON:
        args, suffix = FOUR_CODECS[codec]
        if args[1] in have:
            path = root / f"{codec}{suffix}"
            subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            "mandelbrot=size=320x180:rate=25", "-t", "16", "-g", "250", "-pix_fmt", "yuv420p", *args, str(path)],
                           check=True, timeout=120)  # fmt: skip
            out[codec] = str(path)
    return out


def test_a_first_pass_the_region_probe_could_take_again_reads_on_too(long_gop):
    """Two keyframes 10 s apart: a first pass under the region probe's 4 frames (robust matching, the default) reads
    on to its confirming frame as a longer one does, since even a second decode by the probe stays within the file's
    frames; it opened a confirmation pass of its own (the keyframe decoded again). Same frames, byte for byte."""
    assert long_gop, "no encoder"
    for codec, path in long_gop.items():
        summary, file = decode_for_scan(path, _config())
        assert len(file.frame_numbers) == 2 and "re-framed" not in summary["sampling"], (codec, file.frame_numbers)
        assert file.ahead is not None, codec
        assert summary["ahead"].frames_decoded == 0, (codec, summary["ahead"].frames_decoded)
        alone, alone_file = decode_for_scan(path, replace(_config(), sampling=Sampling(policy=file.ahead_policy)))
        assert np.array_equal(file.ahead.frame_numbers, alone_file.frame_numbers), codec
        assert np.array_equal(file.ahead.frames, alone_file.frames), codec
        _, plain = decode_for_scan(path, _config(confirm_frames=0))
        assert np.array_equal(file.frames, plain.frames), codec


def test_reading_on_where_the_probe_takes_the_pass_again_stays_within_the_file(long_gop):
    """Where the region probe would take the first pass again (``escalated_cost``), reading on happens only if the
    frames read on to, the first pass and the probe's own decode together stay within the file's frames."""
    from vscan.runtime.confirm_ahead import confirm_read_on

    path = long_gop.get("h264") or next(iter(long_gop.values()))
    decoder = PyAVDecoder()
    meta, pts = decoder.probe(path), decoder.frame_times(path)
    later = confirm_read_on(_config())
    selected = np.asarray([0, 250])
    assert later(meta, pts, selected)  # 400 frames: room for both
    # the same pass, were the file's frames fewer than the first pass (2), the frames read on to (7) and the probe's
    # decode from the keyframes to its 6 frames spread over the file (~350): not read on to
    short = replace(meta, num_frames=350)
    assert later(short, pts, selected) == ()
    # no region probe (vPDQ matching): read on to whatever the file's length
    from vscan.config import Matching

    assert confirm_read_on(replace(_config(), matching=Matching(mode="vpdq")))(short, pts, selected)


def test_reading_on_from_frame_0_goes_on_from_the_index_pass(long_gop):
    """Keyframes 10 s apart: the confirmation reads on from keyframe 0 (as 108 of 136 did on the archive bench). Given ``read_on`` before its probe (as the
    scan's decode does), the index pass leaves its decoder undrained after frame 0, and the keyframe pass goes on from
    there: no packet is fed to the decoder twice (frame 0 was: by the probe, and again by the reading on), and the
    frames read on to are those a decoder reading on from a fresh start gives, byte for byte."""
    from vscan.runtime.confirm_ahead import confirm_read_on

    config = _config()
    checked = 0
    for codec, path in long_gop.items():
        out = {}
        for early in (True, False):
            decoder = PyAVDecoder(skip_nonref=True, thread_type="SLICE", hold_open=True, read_on=confirm_read_on(config) if early else None)
            decoder.probe(path)
            decoder.read_on = decoder.read_on or confirm_read_on(config)  # given after the probe: the probe drained
            frames = [b.rgb for b in decoder.iter_frames(path, config.sampling.policy, size=(64, 64))]
            index = decoder._index(Path(path))[1]
            out[early] = (np.concatenate(frames), dict(decoder.read_ahead), list(index.fed))
            decoder.close()
        (frames, ahead, fed), (frames_late, ahead_late, fed_late) = out[True], out[False]
        assert ahead and max(ahead) < 25, (codec, ahead)  # the confirming frame a quarter second after frame 0
        assert np.array_equal(frames, frames_late), codec
        assert ahead.keys() == ahead_late.keys(), codec
        for target, (i, rgb) in ahead.items():
            assert ahead_late[target][0] == i and np.array_equal(ahead_late[target][1], rgb), (codec, target)
        assert len(fed) == len(set(fed)), (codec, fed)  # every packet fed once
        assert len(fed_late) > len(set(fed_late)), codec  # the probe's packet 0 fed again by the reading on
        checked += 1
    assert checked

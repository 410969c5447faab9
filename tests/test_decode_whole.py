"""A pass that skips non-reference frames decodes the frames it wants whole (``vscan.decode.pyav_reuse.whole_frames``):
each wanted B-frame comes back itself, as an exact decode gives it, not the next reference frame a frame or two late."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.bench.synth import available_codecs, make_clip
from vscan.decode import FixedRate, PyAVDecoder


def _frames(decoder, clip, policy) -> dict[int, np.ndarray]:
    return {int(i): rgb for b in decoder.iter_frames(clip, policy, size=(64, 64)) for i, rgb in zip(b.frame_indices, b.rgb)}


def _nonref_frames(clip) -> set[int]:
    """Frames a decode skipping non-reference frames leaves out (in presentation order), by decoding the file so."""
    import av

    with av.open(str(clip)) as c:
        s = c.streams.video[0]
        s.codec_context.skip_frame = "NONREF"
        kept = {f.pts for f in c.decode(s)}
    with av.open(str(clip)) as c:
        every = sorted(f.pts for f in c.decode(c.streams.video[0]))
    return {i for i, pts in enumerate(every) if pts not in kept}


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
@pytest.mark.parametrize("fps", [3.0, 12.5], ids=["sparse", "dense"])
def test_wanted_frames_come_back_themselves_and_unwanted_b_frames_are_skipped(tmp_path, codec, fps):
    if codec not in available_codecs():
        pytest.skip(f"this PyAV build has no {codec} encoder")
    clip = make_clip(tmp_path / "b.mp4", seed=8, seconds=6, size=(160, 120), gop=75, codec=codec)
    skipped = _nonref_frames(clip)
    assert len(skipped) > 20, "the clip has no non-reference frames to test with"
    exact, fast = PyAVDecoder(), PyAVDecoder(skip_nonref=True)
    want, got = _frames(exact, clip, FixedRate(fps)), _frames(fast, clip, FixedRate(fps))
    assert sorted(got) == sorted(want)  # the very frames named, B-frames among them
    assert set(want) & skipped, "no wanted frame is a non-reference one"
    assert all(np.array_equal(got[i], want[i]) for i in want)  # decoded whole: as the exact decode gives them
    # the non-reference frames not wanted are skipped, sparse or every other frame alike (before: a dense pass decoded all)
    assert fast.frames_decoded <= 0.9 * exact.frames_decoded, (fast.frames_decoded, exact.frames_decoded)


def test_a_pass_that_needs_its_very_frames_skips_per_packet_or_not_at_all(tmp_path):
    """``stand_in`` False (a sparse bank's look, ``sampling.exact_frames``): in H.264 the unwanted non-reference frames
    are still skipped, the wanted ones decoded themselves; in a codec that does not take ``skip_frame`` per packet here
    (FFmpeg's MPEG-4 part 2, with B-frames) nothing is skipped, where a pass allowed stand-ins skips and stands in."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("no ffmpeg to encode MPEG-4 part 2")
    h264 = make_clip(tmp_path / "b.mp4", seed=8, seconds=6, size=(160, 120), gop=75)
    mpeg4 = tmp_path / "m.avi"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(h264), "-c:v", "mpeg4", "-bf", "2", "-g", "75", "-q:v", "4", str(mpeg4)], check=True)
    assert len(_nonref_frames(mpeg4)) > 20, "the MPEG-4 clip has no B-frames to test with"
    for clip, per_packet in ((h264, True), (mpeg4, False)):
        exact, look = PyAVDecoder(), PyAVDecoder(skip_nonref=True)
        look.stand_in = False
        want, got = _frames(exact, clip, FixedRate(3.0)), _frames(look, clip, FixedRate(3.0))
        assert sorted(got) == sorted(want) and all(np.array_equal(got[i], want[i]) for i in want), clip.name
        if per_packet:
            assert look.frames_decoded <= 0.9 * exact.frames_decoded, (look.frames_decoded, exact.frames_decoded)
        else:
            assert look.frames_decoded == exact.frames_decoded, (look.frames_decoded, exact.frames_decoded)
    loose, exact = PyAVDecoder(skip_nonref=True), PyAVDecoder()  # stand-ins allowed: MPEG-4's B-frames skipped
    near, named = sorted(_frames(loose, mpeg4, FixedRate(3.0))), sorted(_frames(exact, mpeg4, FixedRate(3.0)))
    assert all(0 <= g - w <= 3 for g, w in zip(near, named)) and near != named, (near, named)  # the next frame standing in
    assert loose.frames_decoded < exact.frames_decoded

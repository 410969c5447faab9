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

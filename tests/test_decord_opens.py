"""DecordDecoder opens and indexes a file once per probe/iter_frames pair.

The scan path (vscan.runtime.driver.decode_for_scan) calls open_decoder (which
probes), probe() and iter_frames(size=(256, 256)). decord.VideoReader is
wrapped by a subclass that counts constructions; the real reader does all
the decoding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vscan import UnsupportedMediaError
from vscan.decode import Adaptive, DecordDecoder, EveryFrame, FixedRate, Keyframes, PyAVDecoder, open_decoder
from vscan.decode.decord_backend import _import_decord
from vscan.bench.synth import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("opens") / "c.mp4", seed=21, seconds=4.0, size=(320, 180), gop=50)


@pytest.fixture()
def opens(monkeypatch) -> list[tuple]:
    """The (width, height) of every decord.VideoReader constructed."""
    decord = _import_decord()
    calls: list[tuple] = []
    real = decord.VideoReader

    class CountingVideoReader(real):
        def __init__(self, *args, **kwargs):
            calls.append((kwargs.get("width", -1), kwargs.get("height", -1)))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(decord, "VideoReader", CountingVideoReader)
    return calls


def _collect(batches):
    batches = list(batches)
    return (
        np.concatenate([b.frame_indices for b in batches]),
        np.concatenate([b.pts_seconds for b in batches]),
        np.concatenate([b.rgb for b in batches]),
    )


def _assert_same(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])


@pytest.mark.parametrize("random_access", ["auto", "never"])  # seeking and forward readers
@pytest.mark.parametrize("policy", [Adaptive(), Keyframes(), FixedRate(2.0), EveryFrame()], ids=lambda p: p.name)
def test_scan_path_opens_the_file_once_per_call(clip, opens, policy, random_access):
    decoder = open_decoder(clip, "decord") if random_access == "auto" else DecordDecoder(random_access=random_access)
    meta = decoder.probe(clip)
    assert decoder.probe(clip) == meta
    assert opens == [(-1, -1)]  # the first probe; the second is served from its index
    got = _collect(decoder.iter_frames(clip, policy, batch_size=64, size=(256, 256)))
    assert opens == [(-1, -1), (256, 256)]  # straight at the output size: no native-size reopen
    assert got[2].shape[1:] == (256, 256, 3)
    # The same frames as a decoder that never saw the file before.
    fresh = _collect(DecordDecoder(random_access=random_access).iter_frames(clip, policy, batch_size=64, size=(256, 256)))
    _assert_same(got, fresh)
    assert meta == DecordDecoder().probe(clip)


def test_without_probe_an_exact_size_needs_one_open(clip, opens):
    got = _collect(DecordDecoder().iter_frames(clip, FixedRate(1.0), size=(64, 48)))
    assert opens == [(64, 48)]
    np.testing.assert_array_equal(got[0], [0, 25, 50, 75])
    assert got[2].shape == (4, 48, 64, 3)
    # That reader's index is not cached as the file's (its frame size is the output's).
    decoder = DecordDecoder()
    list(decoder.iter_frames(clip, Keyframes(), size=(64, 48)))
    assert (decoder.probe(clip).width, decoder.probe(clip).height) == (320, 180)


@pytest.mark.parametrize("max_side", [None, 1000, 160])
def test_probe_then_max_side(clip, opens, max_side):
    decoder = DecordDecoder()
    decoder.probe(clip)
    got = _collect(decoder.iter_frames(clip, FixedRate(2.0), max_side=max_side))
    expected = (-1, -1) if max_side != 160 else (160, 90)
    assert opens == [(-1, -1), expected]
    assert got[2].shape[1:] == ((180, 320, 3) if max_side != 160 else (90, 160, 3))
    opens.clear()
    _assert_same(got, _collect(DecordDecoder().iter_frames(clip, FixedRate(2.0), max_side=max_side)))
    # Without a probe: the native reader that indexed the file also decodes it when no resize is wanted.
    assert opens == ([(-1, -1)] if max_side != 160 else [(-1, -1), (160, 90)])


def test_cached_index_follows_the_file(tmp_path):
    path = make_clip(tmp_path / "v.mp4", seed=1, seconds=2.0, size=(160, 120), gop=25)
    decoder = DecordDecoder()
    assert decoder.probe(path).num_frames == 50
    replacement = make_clip(tmp_path / "w.mp4", seed=2, seconds=3.0, size=(192, 108), gop=25)
    replacement.replace(path)
    meta = decoder.probe(path)
    assert (meta.num_frames, meta.width, meta.height) == (75, 192, 108)
    got = _collect(decoder.iter_frames(path, EveryFrame()))
    np.testing.assert_array_equal(got[0], np.arange(75))
    assert got[2].shape == (75, 108, 192, 3)


def test_first_frame_decord_cannot_decode_still_goes_to_pyav(tmp_path):
    """probe decodes frame 0: a file decord opens but cannot decode is
    UnsupportedMediaError there, so open_decoder("auto") picks PyAV."""
    import av

    src = make_clip(tmp_path / "s.mp4", seed=3, seconds=3.0, size=(160, 120), gop=25, faststart=True)
    with av.open(str(src)) as container:
        first = next(p for p in container.demux(container.streams.video[0]) if p.size)
        pos, size = first.pos, first.size
    data = bytearray(src.read_bytes())
    data[pos : pos + size] = bytes(size)  # zero the first keyframe; the container stays intact
    path = tmp_path / "broken-first-frame.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises(UnsupportedMediaError, match="decord cannot index"):
        DecordDecoder().probe(path)
    with pytest.raises(UnsupportedMediaError, match="decord cannot index"):
        list(DecordDecoder().iter_frames(path, EveryFrame(), size=(64, 64)))
    assert open_decoder(path).name == PyAVDecoder.name


def _rotated_clip(path: Path) -> Path:
    import av

    rng = np.random.default_rng(5)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        if not hasattr(stream, "set_display_rotation"):
            pytest.skip("this PyAV cannot write a display matrix")
        stream.set_display_rotation(90)
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def test_frame_size_is_decords_not_the_headers(tmp_path, opens):
    """decord applies the display matrix (the header says 320x240, its frames
    are 240x320 here): the metadata size, and the aspect kept under max_side,
    are those of the frames decord returns."""
    path = _rotated_clip(tmp_path / "rotated.mp4")
    decoder = DecordDecoder()
    meta = decoder.probe(path)
    native = _collect(decoder.iter_frames(path, EveryFrame()))
    assert native[2].shape[1:3] == (meta.height, meta.width)
    small = _collect(decoder.iter_frames(path, EveryFrame(), max_side=160))
    expected = (160, 120) if meta.height > meta.width else (120, 160)  # (h, w), aspect of the frames
    assert small[2].shape[1:3] == expected
    assert opens == [(-1, -1), (-1, -1), (expected[1], expected[0])]
    _assert_same(small, _collect(DecordDecoder().iter_frames(path, EveryFrame(), max_side=160)))


def test_changing_random_access_after_probe_reindexes(clip, opens):
    """Where keyframe indices come from depends on random_access: the cached
    index is only reused under the setting it was made with."""
    decoder = DecordDecoder()
    decoder.probe(clip)
    decoder.random_access = "never"
    got = _collect(decoder.iter_frames(clip, Keyframes(), size=(64, 64)))
    assert opens == [(-1, -1), (64, 64)]  # indexed again, by the reader at the output size
    _assert_same(got, _collect(DecordDecoder(random_access="never").iter_frames(clip, Keyframes(), size=(64, 64))))

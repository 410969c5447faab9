"""vscan.decode: metadata, sampling policies, decord/PyAV agreement, errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import vscan.decode as dec
from vscan import ConfigError
from vscan import DecodeError
from vscan import FileAccessError
from vscan import UnsupportedMediaError
from vscan.decode import (
    DecordDecoder,
    EveryFrame,
    FixedRate,
    ImageDecoder,
    Keyframes,
    PyAVDecoder,
    SampledFrames,
    VideoMetadata,
    iter_sampled_frames,
    open_decoder,
    parse_policy,
)
from vscan.bench.synth import make_clip, make_corrupt, write_image

BACKENDS = [DecordDecoder, PyAVDecoder]
# Both backends wrap the same libavcodec: pixels should agree up to swscale rounding.
MAX_MEAN_ABS_DIFF = 2.0


def collect(batches) -> SampledFrames:
    batches = list(batches)
    assert batches, "no batches"
    return SampledFrames(
        np.concatenate([b.frame_indices for b in batches]),
        np.concatenate([b.pts_seconds for b in batches]),
        np.ascontiguousarray(np.concatenate([b.rgb for b in batches])),
    )


def assert_frames_close(a: SampledFrames, b: SampledFrames, max_mean_abs_diff: float = MAX_MEAN_ABS_DIFF):
    np.testing.assert_array_equal(a.frame_indices, b.frame_indices)
    np.testing.assert_allclose(a.pts_seconds, b.pts_seconds, atol=1e-4)
    assert a.rgb.shape == b.rgb.shape
    diff = np.abs(a.rgb.astype(np.int16) - b.rgb.astype(np.int16)).mean()
    assert diff <= max_mean_abs_diff, f"mean abs diff {diff:.3f} > {max_mean_abs_diff}"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "gop25": make_clip(d / "gop25.mp4", seed=1, seconds=4.0, fps=25.0, size=(320, 240), gop=25),
        "fps30": make_clip(d / "fps30.mp4", seed=1, seconds=4.0, fps=30.0, size=(320, 240), gop=30),
        "small": make_clip(d / "small.mp4", seed=2, seconds=2.0, fps=25.0, size=(160, 120)),
    }


def test_public_surface():
    assert sorted(dec.__all__) == sorted(set(dec.__all__))
    for name in dec.__all__:
        assert hasattr(dec, name), name


# --------------------------------------------------------------------------
# Value types
# --------------------------------------------------------------------------


def test_video_metadata_validates():
    ok = dict(path="x.mp4", backend="pyav", codec="h264", width=320, height=240, fps=25.0,
              num_frames=100, duration_seconds=4.0, keyframe_indices=(0, 25))  # fmt: skip
    VideoMetadata(**ok)
    for bad in ({"width": 0}, {"fps": 0.0}, {"fps": float("nan")}, {"num_frames": 0},
                {"duration_seconds": -1.0}, {"keyframe_indices": (25, 0)},
                {"keyframe_indices": (0, 100)}, {"is_still_image": True}):  # fmt: skip
        with pytest.raises((ValueError, TypeError)):
            VideoMetadata(**{**ok, **bad})


def test_sampled_frames_validates_with_shapes_in_message():
    idx, pts = np.arange(2, dtype=np.int64), np.zeros(2)
    SampledFrames(idx, pts, np.zeros((2, 4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\[2, H, W, 3\].*\[3, 4, 5, 3\]"):
        SampledFrames(idx, pts, np.zeros((3, 4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="float64"):
        SampledFrames(idx, np.zeros(2, np.float32), np.zeros((2, 4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="C-contiguous"):
        SampledFrames(idx, pts, np.zeros((2, 5, 4, 3), np.uint8).transpose(0, 2, 1, 3))


# --------------------------------------------------------------------------
# Policies (pure)
# --------------------------------------------------------------------------


def test_fixed_rate_selects_by_timestamp():
    pts = np.arange(100) / 25.0
    sel = FixedRate(2.0).select(pts, None, 4.0)
    np.testing.assert_array_equal(sel, np.arange(0, 100, 12.5).astype(np.int64))  # 0, 12, 25, 37, ...
    assert sel.dtype == np.int64 and len(sel) == 8
    # Variable frame rate: a gap holds the previous frame on screen.
    vfr = np.array([0.0, 0.1, 0.2, 1.5, 1.6])
    np.testing.assert_array_equal(FixedRate(1.0).select(vfr, None, 1.7), [0, 2])
    # Above the video's rate: every frame once.
    np.testing.assert_array_equal(FixedRate(100.0).select(pts, None, 4.0), np.arange(100))


def test_fixed_rate_tolerates_float32_timestamps():
    pts = (np.arange(90_000) / 25.0).astype(np.float32).astype(np.float64)  # one hour, as decord reports
    sel = FixedRate(1.0).select(pts, None, float(pts[-1]) + 0.04)
    np.testing.assert_array_equal(sel, np.arange(0, 90_000, 25))


def test_keyframes_policy_and_fallback():
    pts = np.arange(100) / 25.0
    np.testing.assert_array_equal(Keyframes().select(pts, [0, 50], 4.0), [0, 50])
    decision = Keyframes(min_frames=3).decide(pts, [0, 50], 4.0)
    np.testing.assert_array_equal(decision.frame_indices, FixedRate(1.0).select(pts, None, 4.0))
    assert "fell back" in decision.reason
    np.testing.assert_array_equal(Keyframes().select(pts, None, 4.0), [0, 25, 50, 75])


def test_every_frame_and_describe():
    assert len(EveryFrame().select(np.arange(7) / 25, None, 0.28)) == 7
    assert {p.name for p in (EveryFrame(), FixedRate(1), Keyframes())} == {
        "every_frame", "fixed_rate", "keyframes"}  # fmt: skip
    assert FixedRate(2).describe() == "FixedRate(2 fps)"


def test_parse_policy():
    assert parse_policy(True, None, False) == EveryFrame()
    assert parse_policy(False, 2.0, False) == FixedRate(2.0)
    assert parse_policy(False, None, True) == Keyframes()
    assert parse_policy(False, None, False) == FixedRate(1.0)
    with pytest.raises(ConfigError, match="Invalid .*Supported values are"):
        parse_policy(True, 2.0, False)
    with pytest.raises(ConfigError, match="Invalid fps"):
        parse_policy(False, -1.0, False)
    with pytest.raises(ConfigError):
        FixedRate(float("inf"))


# --------------------------------------------------------------------------
# Decoders on generated clips
# --------------------------------------------------------------------------


@pytest.mark.parametrize("decoder_cls", BACKENDS)
def test_metadata_of_generated_clip(clips, decoder_cls):
    meta = decoder_cls().probe(clips["gop25"])
    assert meta.backend == decoder_cls.name
    assert (meta.width, meta.height) == (320, 240)
    assert meta.fps == pytest.approx(25.0)
    assert meta.num_frames == 100
    assert meta.duration_seconds == pytest.approx(4.0, abs=1e-3)
    assert meta.keyframe_indices == (0, 25, 50, 75)
    assert not meta.is_still_image


@pytest.mark.parametrize("decoder_cls", BACKENDS)
def test_every_frame_and_fixed_rate(clips, decoder_cls):
    d = decoder_cls()
    every = collect(d.iter_frames(clips["gop25"], EveryFrame()))
    np.testing.assert_array_equal(every.frame_indices, np.arange(100))
    assert every.rgb.shape == (100, 240, 320, 3)
    fixed = collect(d.iter_frames(clips["gop25"], FixedRate(2.0)))
    assert len(fixed.frame_indices) == 8
    np.testing.assert_allclose(fixed.pts_seconds, np.arange(8) * 0.5, atol=0.5 / 25 + 1e-6)


def test_fixed_rate_same_times_across_frame_rates(clips):
    a = collect(PyAVDecoder().iter_frames(clips["gop25"], FixedRate(2.0)))
    b = collect(DecordDecoder().iter_frames(clips["fps30"], FixedRate(2.0)))
    targets = np.arange(8) * 0.5
    assert len(a.pts_seconds) == len(b.pts_seconds) == 8
    # Each pick is the frame on screen at its target, at most one frame earlier.
    assert np.all((a.pts_seconds <= targets + 1e-6) & (a.pts_seconds > targets - 1 / 25))
    assert np.all((b.pts_seconds <= targets + 1e-6) & (b.pts_seconds > targets - 1 / 30))
    np.testing.assert_allclose(a.pts_seconds, b.pts_seconds, atol=1 / 25)
    # Same content at the same time: pixels close (the scene moves slowly).
    diff = np.abs(a.rgb.astype(np.int16) - b.rgb.astype(np.int16)).mean(axis=(1, 2, 3))
    assert diff.max() < 12, diff


@pytest.mark.parametrize("policy", [EveryFrame(), FixedRate(1.0), FixedRate(3.0), Keyframes()],
                         ids=lambda p: p.describe())  # fmt: skip
def test_backends_agree(clips, policy):
    a = collect(DecordDecoder().iter_frames(clips["gop25"], policy, batch_size=16))
    b = collect(PyAVDecoder().iter_frames(clips["gop25"], policy, batch_size=16))
    assert_frames_close(a, b)


def test_pyav_keyframes_skip_nonkey(clips):
    got = collect(PyAVDecoder().iter_frames(clips["gop25"], Keyframes()))
    np.testing.assert_array_equal(got.frame_indices, [0, 25, 50, 75])
    np.testing.assert_allclose(got.pts_seconds, [0, 1, 2, 3], atol=1e-6)
    # The skipped-decode frames equal the same frames from a full decode.
    full = collect(PyAVDecoder().iter_frames(clips["gop25"], EveryFrame()))
    np.testing.assert_array_equal(got.rgb, full.rgb[[0, 25, 50, 75]])


@pytest.mark.parametrize("decoder_cls", BACKENDS)
def test_max_side_keeps_aspect(clips, decoder_cls):
    got = collect(decoder_cls().iter_frames(clips["gop25"], Keyframes(), max_side=100))
    assert got.rgb.shape[1:] == (75, 100, 3)
    full = collect(decoder_cls().iter_frames(clips["gop25"], Keyframes(), max_side=1000))
    assert full.rgb.shape[1:] == (240, 320, 3)  # never upscaled


def test_max_side_backends_agree(clips):
    a = collect(DecordDecoder().iter_frames(clips["gop25"], Keyframes(), max_side=160))
    b = collect(PyAVDecoder().iter_frames(clips["gop25"], Keyframes(), max_side=160))
    assert_frames_close(a, b, max_mean_abs_diff=6.0)  # different scalers


@pytest.mark.parametrize("decoder_cls", BACKENDS)
def test_batches_bounded(clips, decoder_cls):
    batches = list(decoder_cls().iter_frames(clips["small"], EveryFrame(), batch_size=7))
    assert [len(b) for b in batches] == [7] * 7 + [1]
    assert all(b.rgb.flags.c_contiguous for b in batches)
    with pytest.raises(ConfigError):
        decoder_cls().iter_frames(clips["small"], EveryFrame(), batch_size=0)


@pytest.mark.parametrize("codec", ["libvpx-vp9", "libx265"])
def test_other_codecs(tmp_path, codec):
    from vscan.bench.synth import CODEC_CONTAINERS, available_codecs

    if codec not in available_codecs():
        pytest.skip(f"{codec} not in this PyAV build")
    path = make_clip(tmp_path / f"c{CODEC_CONTAINERS[codec]}", seed=3, seconds=2.0, size=(160, 120),
                     codec=codec, gop=25)  # fmt: skip
    assert DecordDecoder().probe(path).keyframe_indices == PyAVDecoder().probe(path).keyframe_indices
    for policy in (FixedRate(2.0), Keyframes(), EveryFrame()):
        a = collect(DecordDecoder().iter_frames(path, policy, batch_size=8))
        b = collect(PyAVDecoder().iter_frames(path, policy, batch_size=8))
        assert_frames_close(a, b)
    assert len(collect(PyAVDecoder().iter_frames(path, FixedRate(2.0))).frame_indices) == 4


def test_open_decoder_and_iter_sampled_frames(clips):
    d = open_decoder(clips["small"])
    assert d.probe(clips["small"]).backend == "decord"
    assert open_decoder(clips["small"], "pyav").probe(clips["small"]).backend == "pyav"
    got = collect(iter_sampled_frames(clips["small"], FixedRate(1.0), batch_size=4))
    np.testing.assert_array_equal(got.frame_indices, [0, 25])
    with pytest.raises(ConfigError, match="Invalid backend"):
        open_decoder(clips["small"], "ffmpeg")


# --------------------------------------------------------------------------
# Stills
# --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".gif"])
def test_still_images(tmp_path, suffix):
    path = write_image(tmp_path / f"still{suffix}", seed=4, size=(200, 100))
    d = open_decoder(path)
    assert isinstance(d, ImageDecoder)
    meta = d.probe(path)
    assert meta.is_still_image and meta.num_frames == 1 and (meta.width, meta.height) == (200, 100)
    got = collect(d.iter_frames(path, FixedRate(1.0), max_side=50))
    np.testing.assert_array_equal(got.frame_indices, [0])
    assert got.pts_seconds.tolist() == [0.0]
    assert got.rgb.shape == (1, 25, 50, 3)


def test_animated_gif_is_a_video(tmp_path):
    """A re-shared clip as an animated GIF (~6 fps, 320 px) decodes as video: every
    frame, with its time, not just the first frame as a still."""
    from vscan.bench.reframe import reframe_clip

    src = make_clip(tmp_path / "clip.mp4", seed=12, seconds=4, size=(320, 180), scenes=1, crf=23)
    gif = reframe_clip(src, tmp_path / "clip.gif", "gif", seed=1)
    d = open_decoder(gif)
    assert not isinstance(d, ImageDecoder)
    meta = d.probe(gif)
    assert not meta.is_still_image and meta.num_frames > 10 and 3.0 < meta.duration_seconds < 5.0
    got = collect(d.iter_frames(gif, FixedRate(1.0)))
    assert len(got.frame_indices) == 4 and np.all(np.diff(got.pts_seconds) > 0.5)
    assert isinstance(open_decoder(write_image(tmp_path / "one.gif", seed=4, size=(64, 48))), ImageDecoder)  # one frame: a still


def test_large_jpeg_decodes_at_reduced_resolution_with_the_same_hash(tmp_path):
    from PIL import Image

    from vscan.hashing.pdq import PDQHasher

    png = write_image(tmp_path / "photo.png", seed=5, size=(1000, 750))  # (the texture at 4000 x 3000 took 10-80 s to draw)
    with Image.open(png) as small:
        small.resize((4000, 3000), Image.Resampling.BICUBIC).save(tmp_path / "photo.jpg")  # a 12 MP JPEG
    path = tmp_path / "photo.jpg"
    d = ImageDecoder()
    got = collect(d.iter_frames(path, EveryFrame(), size=(256, 256)))
    assert got.rgb.shape == (1, 256, 256, 3)
    assert d.decoded_size == (500, 375)  # libjpeg's 1/8 scale: never below the 256x256 asked for
    with Image.open(path) as img:
        full = np.asarray(img.convert("RGB").resize((256, 256), Image.Resampling.BOX))[None]
    hasher = PDQHasher(device="cpu")
    a, b = hasher.hash_frames(full), hasher.hash_frames(got.rgb)
    assert int(np.unpackbits(a.hashes[0, 0] ^ b.hashes[0, 0]).sum()) <= 16 and b.quality[0] >= 80
    # Without a size (vscan hash, banks), the full image is decoded.
    assert collect(d.iter_frames(path, EveryFrame())).rgb.shape == (1, 3000, 4000, 3) and d.decoded_size == (4000, 3000)
    collect(d.iter_frames(png, EveryFrame(), size=(256, 256)))
    assert d.decoded_size == (1000, 750)  # only JPEG has a reduced-resolution decode


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
def test_access_errors(tmp_path, backend):
    with pytest.raises(FileAccessError, match="no such file"):
        open_decoder(tmp_path / "missing.mp4", backend)
    with pytest.raises(FileAccessError, match="not a regular file"):
        open_decoder(tmp_path, backend)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path):
    path = make_corrupt(tmp_path / "x.mp4", "text")
    path.chmod(0)
    with pytest.raises(FileAccessError, match="cannot read"):
        open_decoder(path)


@pytest.mark.parametrize("kind", ["random", "text", "empty"])
@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
def test_unsupported_media(tmp_path, kind, backend):
    path = make_corrupt(tmp_path / f"{kind}.mp4", kind)
    before = path.read_bytes()
    with pytest.raises(UnsupportedMediaError, match=str(path)):
        open_decoder(path, backend)
    with pytest.raises(UnsupportedMediaError):
        list(iter_sampled_frames(path, EveryFrame(), backend))
    assert path.read_bytes() == before  # evidence untouched


def test_image_with_garbage_content(tmp_path):
    path = make_corrupt(tmp_path / "fake.png", "random")
    with pytest.raises(UnsupportedMediaError, match="fake.png"):
        open_decoder(path)


def test_truncated_mp4_typed_error_or_fewer_frames(tmp_path):
    path = make_corrupt(tmp_path / "trunc.mp4", "truncated")
    got = []
    try:
        for batch in iter_sampled_frames(path, EveryFrame(), batch_size=8):
            got.append(batch)
    except (UnsupportedMediaError, DecodeError) as exc:
        assert str(path) in str(exc)
    else:
        assert sum(len(b) for b in got) < 75  # the full clip has 75 frames


# --------------------------------------------------------------------------
# A real file
# --------------------------------------------------------------------------


def test_real_sample_video(vpdq_dir):
    path = vpdq_dir / "chair-19-sd-bar.mp4"
    metas = [cls().probe(path) for cls in BACKENDS]
    for meta in metas:
        assert meta.num_frames == 564
        assert meta.fps == pytest.approx(30.0)
    assert metas[0].keyframe_indices == metas[1].keyframe_indices
    assert (metas[0].width, metas[0].height) == (metas[1].width, metas[1].height)
    for policy in (FixedRate(1.0), Keyframes()):
        a = collect(DecordDecoder().iter_frames(path, policy))
        b = collect(PyAVDecoder().iter_frames(path, policy))
        assert_frames_close(a, b)
    assert len(a.frame_indices) == len(metas[0].keyframe_indices)


# --- seeking past GOPs that hold nothing wanted (PyAV) ------------------------


@pytest.mark.parametrize("fps", [0.2, 1.0, 3.0])
def test_pyav_seeking_gives_the_frames_of_a_full_decode(tmp_path, fps):
    from vscan.decode import DecordDecoder

    clip = make_clip(tmp_path / "gop.mp4", seed=4, seconds=12, size=(160, 120), gop=25)
    pyav = PyAVDecoder()
    seeking = list(pyav.iter_frames(clip, FixedRate(fps)))
    forward = list(DecordDecoder(random_access="never").iter_frames(clip, FixedRate(fps)))
    idx = np.concatenate([b.frame_indices for b in seeking])
    np.testing.assert_array_equal(idx, np.concatenate([b.frame_indices for b in forward]))
    np.testing.assert_array_equal(np.concatenate([b.rgb for b in seeking]), np.concatenate([b.rgb for b in forward]))
    if fps <= 1.0:
        # Every wanted frame here is a keyframe or one GOP apart: most GOPs are skipped.
        assert pyav.frames_decoded < 0.3 * 300, pyav.frames_decoded
    assert pyav.frames_decoded >= len(idx)


def test_backend_choice_by_access_pattern():
    from vscan.decode import choose_backend

    assert choose_backend(Keyframes(), "auto") == "pyav"
    assert choose_backend(FixedRate(1.0), "auto") == "pyav"
    assert choose_backend(EveryFrame(), "auto") == "auto"
    assert choose_backend(FixedRate(1.0), "decord") == "decord"


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_exact_output_size(tmp_path, backend):
    clip = make_clip(tmp_path / "c.mp4", seed=6, seconds=2, size=(320, 180))
    decoder = open_decoder(clip, backend)
    batches = list(decoder.iter_frames(clip, FixedRate(1.0), size=(64, 64)))
    assert all(b.rgb.shape[1:] == (64, 64, 3) for b in batches)
    still = write_image(tmp_path / "s.png", seed=1)
    assert next(open_decoder(still).iter_frames(still, EveryFrame(), size=(48, 32))).rgb.shape == (1, 32, 48, 3)


def test_pyav_skip_nonref_decodes_less_and_stays_near_the_targets(tmp_path):
    clip = make_clip(tmp_path / "b.mp4", seed=8, seconds=8, size=(160, 120), gop=100)
    exact, fast = PyAVDecoder(), PyAVDecoder(skip_nonref=True)
    want = np.concatenate([b.frame_indices for b in exact.iter_frames(clip, FixedRate(1.0))])
    got = np.concatenate([b.frame_indices for b in fast.iter_frames(clip, FixedRate(1.0))])
    assert len(got) == len(want)
    assert ((got - want >= 0) & (got - want <= 3)).all(), (want, got)
    assert fast.frames_decoded < 0.8 * exact.frames_decoded, (fast.frames_decoded, exact.frames_decoded)


def test_keyframe_pass_on_hevc_mkv_returns_every_keyframe_in_order(tmp_path):
    from vscan.bench.synth import available_codecs, edit_clip

    if "libx265" not in available_codecs():
        pytest.skip("this PyAV build has no libx265 encoder")
    src = make_clip(tmp_path / "s.mp4", seed=9, seconds=6, size=(160, 120))
    clip = edit_clip(src, tmp_path / "h.mkv", "reencode", codec="libx265")
    decoder = PyAVDecoder()
    keys = decoder.probe(clip).keyframe_indices
    got = np.concatenate([b.frame_indices for b in decoder.iter_frames(clip, Keyframes())])
    assert got.tolist() == sorted(keys)

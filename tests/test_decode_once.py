"""Never decode a frame twice, never more than the file has (issue #30).

Over real media: the vPDQ sample videos, the real-world conformance corpus
(vscan.bench.realworld: edit lists, rotations, VFR, fragmented MP4, TS,
MKV/WebM without cues, open GOP, interlaced, 10-bit HEVC, AV1, ...) and
clips encoded here in H.264, HEVC, VP9 and AV1 at several GOP lengths, every
sampling policy the scan uses decodes at most the file's frames, and a
keyframe pass decodes the keyframes alone (VP9 ignores skip_frame=NONKEY).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from _codec_clips import ffmpeg_encoders
from vscan.bench import realworld
from vscan.config import Matching, Sampling, ScanConfig
from vscan.decode import Adaptive, Confirm, EveryFrame, FixedRate, Keyframes, PyAVDecoder, Windows
from vscan.runtime.decode_task import decode_for_scan

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

_SRC = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=12"]
#: name -> (encoder, its arguments, suffix): codecs and GOP lengths as uploads have them.
ENCODED = {
    "h264-gop250": ("libx264", ["-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-bf", "2", "-pix_fmt", "yuv420p"], ".mp4"),
    "h264-gop12": ("libx264", ["-c:v", "libx264", "-preset", "ultrafast", "-g", "12", "-bf", "3", "-pix_fmt", "yuv420p"], ".mp4"),
    "hevc-gop100": ("libx265", ["-c:v", "libx265", "-preset", "ultrafast", "-g", "100", "-x265-params", "log-level=error"], ".mkv"),
    "vp9-gop128": ("libvpx-vp9", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "128"], ".webm"),
    "vp9-gop40": ("libvpx-vp9", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "40"], ".webm"),
    "av1-gop100": ("libsvtav1", ["-c:v", "libsvtav1", "-preset", "12", "-g", "100"], ".mp4"),
}  # fmt: skip


@pytest.fixture(scope="module")
def media(tmp_path_factory, shared_dir) -> dict[str, Path]:
    """name -> video: encoded here, the conformance corpus's videos, the vPDQ samples."""
    root = tmp_path_factory.mktemp("decode_once")
    have = ffmpeg_encoders()
    out = {}
    for name, (encoder, args, suffix) in ENCODED.items():
        if encoder in have:
            path = root / f"{name}{suffix}"
            subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *_SRC, *args, str(path)], check=True, timeout=300)
            out[name] = path
    if not realworld.missing_tools():
        # ts_overlap: joined segments whose timestamps overlap, issue #13 (PyAV's index sorts them by pts)
        kinds = [k for k in realworld.KINDS if k not in realworld.STILLS and k not in ("audio_only", "ts_overlap")]
        out.update({f"rw-{k}": p for k, p in realworld.make_corpus(root / "rw", kinds).items()})
    vpdq = shared_dir / "data" / "vpdq"
    if vpdq.is_dir():
        out.update({f"vpdq-{p.stem}": p for p in sorted(vpdq.glob("*.mp4"))[:4]})
    return out


def _coded_frames(path: Path) -> int:
    """The file's coded frames: the shown ones and those an edit list hides (decoded as references, never shown)."""
    meta, index = PyAVDecoder()._index(path)
    return meta.num_frames + index.discarded


def _policies(duration: float) -> dict[str, object]:
    return {
        "adaptive-first-pass": Adaptive(),
        "adaptive-escalated": Adaptive(min_frames=6),
        "keyframes": Keyframes(),
        "fps1": FixedRate(1.0),
        "fps5": FixedRate(5.0),
        "windows-whole-file": Windows(1.0, ((0.0, duration),)),
        "windows-two-spans": Windows(2.0, ((1.0, 3.0), (duration * 0.6, duration))),
        "confirm": Confirm((duration * 0.25, duration * 0.75), duration / 2),
        "every-frame": EveryFrame(),
    }


@pytest.mark.parametrize("skip_nonref", [False, True], ids=["exact", "scan"])
def test_no_policy_decodes_more_than_the_file(media, skip_nonref):
    """Every policy, every file: frames decoded <= the file's frames (seeks that land early never re-decode a GOP per sample)."""
    checked = 0
    for name, path in media.items():
        decoder = PyAVDecoder(skip_nonref=skip_nonref, thread_type="SLICE")
        meta, coded = decoder.probe(path), _coded_frames(path)
        for pname, policy in _policies(meta.duration_seconds).items():
            if skip_nonref and pname in ("every-frame", "keyframes"):
                continue  # skipping non-reference frames applies to sparse frames alone (n > 4 x wanted): [exact]'s decode
            sampled = sum(len(b.frame_indices) for b in decoder.iter_frames(path, policy, size=(64, 64)))
            assert sampled >= 1
            assert decoder.frames_decoded <= coded, (name, pname, decoder.frames_decoded, coded)
            checked += 1
    assert checked >= (7 if skip_nonref else 9) * 6


def test_keyframe_pass_decodes_the_keyframes_alone(media):
    """A keyframe pass costs one decoded frame per keyframe in every codec, VP9 too (it ignores skip_frame=NONKEY)."""
    assert any(name.startswith("vp9") for name in media), "no VP9 encoder here"
    for name, path in media.items():
        decoder = PyAVDecoder(skip_nonref=True, thread_type="SLICE")
        meta = decoder.probe(path)
        chosen = Adaptive().select(decoder._index(path)[1].pts_seconds, meta.keyframe_indices, meta.duration_seconds)
        frames = sum(len(b.frame_indices) for b in decoder.iter_frames(path, Keyframes(), size=(64, 64)))
        keys = len(meta.keyframe_indices)
        if len(decoder._index(path)[1].true_keyframes) == keys:  # not an edit list's first shown frame (it needs its GOP)
            assert frames == keys, (name, frames, keys)
            # open GOP: skip_frame=NONKEY shows the first keyframes out of order; the frames it decoded
            # before the pass was retried by packet count too (one here)
            slack = 1 if name == "rw-open_gop" else 0
            assert keys <= decoder.frames_decoded <= keys + slack, (name, decoder.frames_decoded, keys)
        first = sum(len(b.frame_indices) for b in decoder.iter_frames(path, Adaptive(), size=(64, 64)))
        assert first == len(chosen)
        if name.startswith("vp9"):  # all keyframes, 1 s apart or more: nothing else decoded
            assert decoder.frames_decoded == first, (name, decoder.frames_decoded, first)


def test_scan_decode_with_region_probe_stays_within_the_file(media):
    """decode_for_scan (adaptive first pass, robust matching, region probe on): the file's frames decoded at most once in all."""
    config = ScanConfig(sampling=Sampling(policy=Adaptive()), matching=Matching(mode="robust"))
    for name, path in media.items():
        summary, payload = decode_for_scan(str(path), config)
        assert summary["error"] is None, (name, summary["error"])
        n = _coded_frames(path)
        assert summary["frames_decoded"] <= n, (name, summary["frames_decoded"], n, summary["sampling"])
        again = replace(config, sampling=replace(config.sampling, policy=Windows(1.0, ((0.0, summary["duration_seconds"]),))))
        second, _ = decode_for_scan(str(path), again)
        assert second["frames_decoded"] <= n, (name, second["frames_decoded"], n)


def test_the_confirmation_read_on_to_stays_within_the_file_and_exact(media):
    """With the confirmation decoded ahead (an archive scan), the first pass reads on from the keyframe
    before the confirming frame to it (PyAVDecoder.read_on) over every real-world kind: the file's frames
    decoded at most once in all, that keyframe not again, and the confirming frames those the Confirm
    pass alone decodes, byte for byte."""
    import numpy as np

    config = ScanConfig(sampling=Sampling(policy=Adaptive(confirm_ahead=True)), matching=Matching(mode="robust"))
    read_on = 0
    for name, path in media.items():
        summary, payload = decode_for_scan(str(path), config)
        assert summary["error"] is None, (name, summary["error"])
        if payload.ahead is None:
            continue
        ahead = summary["ahead"].frames_decoded
        assert summary["frames_decoded"] + ahead <= _coded_frames(path), (name, summary["frames_decoded"], ahead)
        alone, alone_file = decode_for_scan(str(path), replace(config, sampling=Sampling(policy=payload.ahead_policy)))
        assert np.array_equal(payload.ahead.frame_numbers, alone_file.frame_numbers), name
        assert np.array_equal(payload.ahead.frames, alone_file.frames), name
        keyframes = set(PyAVDecoder()._index(path)[1].true_keyframes)
        # a first pass the region probe could take again (under 4 frames: vscan.runtime.region_probe) reads on only where
        # the probe's decode too would stay within the file's frames (checked above, whether it did or not)
        first = len(payload.frame_numbers) >= 4 and "looks re-framed" not in summary["sampling"]
        if first and not set(payload.ahead.frame_numbers.tolist()) <= keyframes:
            assert ahead == 0, (name, ahead, summary["sampling"])  # read on to in the first pass: no decode of its own
            read_on += 1
    assert read_on, "no file read on to its confirmation"


def test_a_later_pass_decodes_on_from_where_the_last_stopped(media):
    """A pass whose frames all come after where the last pass over the held file stopped (the region probe's frames after a
    first pass that ended at the file's middle: ``Adaptive.spread_middle``) decodes on from there (PyAVDecoder.stopped_at),
    not again from a keyframe: the same frames byte for byte as a decoder of its own gives, the two passes together at most
    the file's frames, and fewer decoded than from the keyframe where the codec takes each pass's skip_frame (H.264)."""
    import numpy as np

    from vscan.decode.sampling import FrameList

    def frames(decoder, path, wanted):
        return {i: f for b in decoder.iter_frames(path, FrameList(tuple(wanted)), size=(64, 64)) for i, f in zip(b.frame_indices.tolist(), b.rgb)}

    went_on = 0
    for name, path in media.items():
        decoder = PyAVDecoder(skip_nonref=True, thread_type="SLICE", hold_open=True)
        meta = decoder.probe(path)
        n = meta.num_frames
        keys = set(decoder._index(path)[1].true_keyframes)
        middle = next((i for i in range(n // 2, n) if i not in keys), None)
        if middle is None or n < 40 or meta.codec not in ("h264", "hevc", "vp9"):  # the codecs a held decoder goes on in
            continue
        frames(decoder, path, [0, middle])
        first, stopped = decoder.frames_decoded, decoder.stopped_at(path)
        later = sorted({min(n - 1, middle + 3), min(n - 1, middle + n // 6)})  # short of the end: the decode costs the test
        on = frames(decoder, path, later)
        alone = PyAVDecoder(skip_nonref=True, thread_type="SLICE")
        fresh = frames(alone, path, later)
        assert sorted(on) == sorted(fresh) and all(np.array_equal(on[i], fresh[i]) for i in on), name
        if stopped is not None:  # held, its packets kept (MP4, MKV, WebM), a codec that takes each pass's skip_frame
            assert first + decoder.frames_decoded <= _coded_frames(path), (name, first, decoder.frames_decoded)
            went_on += decoder.frames_decoded < alone.frames_decoded
    assert went_on >= 2, went_on


def test_the_region_probe_decoding_on_leaves_its_confirmation_within_the_file(media):
    """A single-keyframe file's first pass at frame 0 and its middle (``Adaptive.spread_middle``), the region probe's
    frames decoded on from the middle (``region_probe.share_decode``) and the confirmation decoded ahead after them: the
    file's frames at most once in all. The probe budgets for that confirmation (its frames the probe's decode passes are
    kept for it): on ``rw-vfr`` (33 frames) the probe decoded on to the end and the confirmation from frame 0 again,
    19 + 17 frames."""
    config = ScanConfig(sampling=Sampling(policy=Adaptive(confirm_ahead=True, spread_middle=True)), matching=Matching(mode="robust"))
    probed = 0
    for name, path in media.items():
        meta = PyAVDecoder().probe(path)
        if len(meta.keyframe_indices or ()) != 1 or meta.duration_seconds >= 10:
            continue  # (spread_middle: one keyframe, no gap fill)
        summary, payload = decode_for_scan(str(path), config)
        assert summary["error"] is None, (name, summary["error"])
        ahead = summary["ahead"].frames_decoded if payload.ahead is not None else 0
        assert summary["frames_decoded"] + ahead <= _coded_frames(path), (name, summary["frames_decoded"], ahead, summary["sampling"])
        probed += "looks re-framed" in summary["sampling"] and payload.ahead is not None
    assert probed >= 1, probed

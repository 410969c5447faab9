"""PyAVDecoder.skip_filters_seconds: H.264/HEVC passes near keyframes without the in-loop filters.

A decoder that asks decodes a keyframe pass and frames up to that far after their keyframe without
deblocking: a few PDQ bits from the pictures as coded. A pass further from its keyframe, any VP9
pass, and every decoder that does not ask decode as coded. The scan does not ask (decode_task
_SKIP_FILTERS_SECONDS is None): it saved ~2% of decode CPU and lost a crf-40 copy."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from vscan.config import Sampling, ScanConfig
from vscan.decode import Keyframes, PyAVDecoder
from vscan.decode.sampling import FrameList
from vscan.hashing.pdq import PDQHasher

#: codec -> ffmpeg encoder arguments: coarse quantisers, so that deblocking changes the pictures.
CODECS = {
    "h264": ["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-crf", "34"],
    "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "34", "-x265-params", "log-level=error"],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-crf", "50", "-b:v", "0"],
}


def _encoders() -> set[str]:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=True).stdout
    return {line.split()[1] for line in out.splitlines() if len(line.split()) > 1}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    """6 s at 25 fps, a keyframe every 3 s (frames 0, 75), 640x360."""
    root, have, out = tmp_path_factory.mktemp("filters"), _encoders(), {}
    for codec, args in CODECS.items():
        if args[1] in have:
            path = root / f"{codec}.mkv"
            subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            "testsrc2=size=640x360:rate=25:duration=6", "-g", "75", "-keyint_min", "75", "-sc_threshold", "0",
                            "-pix_fmt", "yuv420p", *args, str(path)], check=True, timeout=120)  # fmt: skip
            out[codec] = str(path)
    if "h264" not in out:
        pytest.skip("ffmpeg lacks libx264")
    return out


def _frames(decoder: PyAVDecoder, path: str, policy) -> tuple[np.ndarray, np.ndarray]:
    batches = list(decoder.iter_frames(path, policy, size=(256, 256)))
    decoder.close()
    return np.concatenate([b.frame_indices for b in batches]), np.concatenate([b.rgb for b in batches])


def _bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    hasher = PDQHasher(backend="onnx", device="cpu")
    ha, hb = hasher.hash_frames(a).hashes[:, 0], hasher.hash_frames(b).hashes[:, 0]
    return np.unpackbits(ha ^ hb, axis=-1).sum(-1)


def test_sparse_passes_near_keyframes_skip_filters_within_a_few_bits(clips):
    """Keyframes (0, 75) and a frame 0.8 s after one (20) come out of the scan's decoder without
    deblocking: not the coded pictures, within 16 PDQ bits of them (half the 31-bit match threshold; measured on real copies: pyav_reuse.SKIP_FILTER_CODECS). A frame 2 s after its keyframe
    (50) and every VP9 frame are the coded pictures, byte for byte."""
    for codec, path in clips.items():
        skip_filters = codec in ("h264", "hevc")
        scan = PyAVDecoder(thread_type="SLICE", hold_open=True, skip_filters_seconds=1.05)
        for policy, near in ((Keyframes(), True), (FrameList((20,)), True), (FrameList((50,)), False), (FrameList((20, 50)), False)):
            idx, fast = _frames(scan, path, policy)
            idx_exact, exact = _frames(PyAVDecoder(), path, policy)
            assert idx.tolist() == idx_exact.tolist(), (codec, policy)
            if near and skip_filters:
                assert not np.array_equal(fast, exact), (codec, policy)  # deblocking was skipped
                assert int(_bits(fast, exact).max()) <= 16, (codec, policy, _bits(fast, exact).tolist())
            else:
                assert np.array_equal(fast, exact), (codec, policy)


def test_exact_frames_and_other_decoders_decode_as_coded(clips):
    """Scans (``--exact-frames`` or not) and decoders that do not ask (vscan hash, bank builds) keep the filters."""
    from vscan.runtime import decode_task

    path = clips["h264"]
    assert decode_task._open(path, "pyav", ScanConfig(sampling=Sampling())).skip_filters_seconds is None
    exact_scan = decode_task._open(path, "pyav", ScanConfig(sampling=Sampling(exact_frames=True)))
    assert exact_scan.skip_filters_seconds is None
    assert PyAVDecoder().skip_filters_seconds is None
    _, a = _frames(exact_scan, path, Keyframes())
    with __import__("av").open(path) as container:  # a plain forward decode, as coded
        coded = [f for f in container.decode(video=0) if f.key_frame]
    _, b = _frames(PyAVDecoder(plain=True), path, Keyframes())
    assert len(coded) == len(a) and np.array_equal(a, b)

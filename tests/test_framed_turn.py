"""Turned copies of a source with dark bars of its own (issue #27): the corners alone fit no turn, or the wrong one;
vscan.frames.framed_turn fits the picture's straight edges and finds the picture inside the bars, and the rotation
search cuts the bank's crop of that picture (a bank's crops are of the picture without its bars)."""

from __future__ import annotations

import shutil
import subprocess

import cv2
import numpy as np
import pytest

from vscan.frames.luma import luma

W, H, BAR = 240, 360, 24  # a portrait clip with 24 px dark bars left and right (10% a side), as the sample pattern-sd-grey-bar


def _barred(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rgb = cv2.resize(rng.integers(40, 256, (H // 16, W // 16, 3), np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
    rgb[:, :BAR] = 0
    rgb[:, -BAR:] = 0
    return rgb


def _turned(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """ffmpeg's rotate: the same frame size, turned clockwise by ``degrees``, black corners."""
    h, w = rgb.shape[:2]
    return cv2.warpAffine(rgb, cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), -degrees, 1.0), (w, h))


def _square(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("degrees", [8.0, 11.5, -9.25])
def test_a_barred_copy_gets_its_turn_and_its_picture_from_the_straight_edges(degrees):
    from vscan.runtime.rotation_search import _small, fitted_turn

    frames = np.stack([_square(_turned(_barred(s), degrees)) for s in range(4)])
    turn, refine, picture = fitted_turn(_small(frames), W / H)
    assert turn is not None and abs(turn.degrees - degrees) <= 0.5
    assert any(abs(turn.degrees + np.sign(turn.degrees) * d - degrees) <= 0.25 for d in refine)
    top, bottom, left, right = picture
    assert top <= 0.02 and bottom >= 0.98 and abs(left - BAR / W) <= 0.02 and abs(right - (1 - BAR / W)) <= 0.02


def test_upright_and_barred_or_dark_sided_frames_fit_no_framed_turn():
    from vscan.frames.framed_turn import fit_framed
    from vscan.frames.turns import _dark_mask

    barred = np.stack([_square(_barred(s)) for s in range(4)])
    gradient = np.stack([_square(np.repeat(np.linspace(0, 255, W, dtype=np.float32)[None, :, None], H, 0).repeat(3, 2).astype(np.uint8))] * 2)
    for frames in (barred, gradient):
        assert fit_framed(_dark_mask(luma(frames)), W / H) is None


def _assert_found_turned(bank, copy, fps: float) -> None:
    """``copy`` scanned at ``fps`` against ``bank`` by a model worker: matched to entry "src" through a turned cut."""
    from vscan.config import Runtime, Sampling, ScanConfig
    from vscan.decode import FixedRate
    from vscan.runtime.decode_task import decode_for_scan
    from vscan.runtime.model_actor import ModelWorker

    config = ScanConfig(sampling=Sampling(policy=FixedRate(fps)), runtime=Runtime(device="cpu"))
    worker = ModelWorker(config, str(bank))
    summary, payload = decode_for_scan(str(copy), config)
    assert payload is not None, summary["error"]
    result = worker.run([(0, None, None, 1)], payload)[0]
    found = [m for m in result.matches if m.is_match]
    assert found and found[0].bank_entry_id == "src" and any(p.startswith("turned") for p in found[0].path)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_a_barred_clip_turned_by_ffmpeg_matches_through_the_picture_cut(tmp_path):
    from vscan.bank.hashers import RowPlan, media_hasher
    from vscan.bank.store import build_bank
    from vscan.bench import synth
    from vscan.decode import EveryFrame

    plain = synth.make_clip(tmp_path / "plain.mp4", seed=37, seconds=3.0, fps=8.0, size=(192, 320), scenes=1)
    src, copy = tmp_path / "src.mp4", tmp_path / "copy.mp4"
    enc = ["-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(plain), "-vf", "pad=240:320:24:0:black", *enc, str(src)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", f"rotate={10 * np.pi / 180}", *enc, str(copy)], check=True)
    plan = RowPlan("crops", extra_per_second=None, grid_per_second=1e-6, windows=())  # the full plan's crops alone
    build_bank(tmp_path / "r.bank", [src], label="reported", hash_media=media_hasher(EveryFrame(), "cpu", plan))
    _assert_found_turned(tmp_path / "r.bank", copy, fps=2.0)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
@pytest.mark.parametrize("rows", ["crops", "plain"])
def test_a_turned_copy_whose_source_goes_flat_for_half_its_length_still_matches(tmp_path, rows):
    """A 4 s copy whose source shows a bare wall for 2 s (the held-out doorknob clip): the flat frames hold no
    evidence, so they are left out of the turned cut as region search leaves them out, and the 2 detailed frames
    decide; on a media bank (crops) and a bank of plain rows (a hash list: the painted whole frame)."""
    from vscan.bank.hashers import RowPlan, media_hasher
    from vscan.bank.store import build_bank
    from vscan.bench import synth
    from vscan.decode import EveryFrame
    from vscan.hashing.media import hash_media
    from vscan.hashing.pdq import PDQHasher
    from vscan.hashing.vpdq import format_vpdq_line

    busy = synth.make_clip(tmp_path / "busy.mp4", seed=37, seconds=2.0, fps=8.0, size=(320, 180), scenes=1)
    src, copy = tmp_path / "src.mp4", tmp_path / "copy.mp4"
    enc = ["-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p"]
    flat = "color=c=0x808080:s=320x180:r=8:d=2"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(busy), "-f", "lavfi", "-i", flat, "-filter_complex",
                    "[0:v]setsar=1[a];[1:v]setsar=1[b];[a][b]concat=n=2:v=1", *enc, str(src)], check=True)  # fmt: skip
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", f"rotate={9 * np.pi / 180}", *enc, str(copy)], check=True)
    if rows == "crops":
        plan = RowPlan("crops", extra_per_second=None, grid_per_second=1e-6, windows=())  # the full plan's crops alone
        build_bank(tmp_path / "r.bank", [src], label="reported", hash_media=media_hasher(EveryFrame(), "cpu", plan))
    else:  # the source as an exchange shares it: vPDQ lines, every frame
        fh = hash_media(src, EveryFrame(), hasher=PDQHasher(device="cpu")).frames
        (tmp_path / "src.txt").write_text("".join(format_vpdq_line(int(n), int(q), bytes(h).hex(), float(t)) + "\n"
                                                  for n, q, h, t in zip(fh.frame_numbers, fh.qualities, fh.hashes, fh.timestamps_seconds)))  # fmt: skip
        build_bank(tmp_path / "r.bank", [tmp_path / "src.txt"], label="reported")
    _assert_found_turned(tmp_path / "r.bank", copy, fps=1.0)


def test_painting_a_barred_copys_lost_corners_with_its_bars_brings_the_whole_frame_nearer():
    """A hash list's row of a barred source is the whole frame, bars included: the copy's lost pixels on the bars are
    the bars' level, not a blur of the picture (held-out pattern-sd-grey-bar on the every-frame list bank)."""
    from vscan.frames.turns import filled, turn_back
    from vscan.runtime.region_search import box_hashes

    def bits(a, b):
        return int(np.unpackbits(a ^ b).sum())

    src = np.stack([_square(_barred(s)) for s in range(3)])
    back = turn_back(luma(np.stack([_square(_turned(_barred(s), 9.0)) for s in range(3)])), W / H, 9.0)
    h, w = back.shape[1:]
    want = box_hashes(luma(src), (0, 256, 0, 256))[:, 0]
    blurred = box_hashes(filled(back, 9.0), (0, h, 0, w))[:, 0]
    barred = box_hashes(filled(back, 9.0, (0.0, 1.0, BAR / W, 1 - BAR / W)), (0, h, 0, w))[:, 0]
    assert sum(map(bits, barred, want)) < sum(map(bits, blurred, want))

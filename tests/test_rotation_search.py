"""Copies turned 4.5-16 degrees inside their own frame, corners filled black (ffmpeg's rotate, AugLy's rotate), issue #27:
vscan.frames.turns fits the angle from the corners, vscan.runtime.rotation_search turns the frames back and matches."""

from __future__ import annotations

import shutil
import subprocess

import cv2
import numpy as np
import pytest

from vscan.frames.luma import luma
from vscan.frames.turns import fit_turn, filled, turn_back


def _picture(seed: int, h: int = 240, w: int = 320) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(30, 256, (h // 16, w // 16, 3), np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)


def _turned(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """ffmpeg's rotate: the same frame size, turned clockwise by ``degrees``, black corners."""
    h, w = rgb.shape[:2]
    return cv2.warpAffine(rgb, cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), -degrees, 1.0), (w, h))


def _square(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("degrees", [6.3, -11.0, 14.6])
def test_the_corners_give_the_turn_away(degrees):
    frames = np.stack([_square(_turned(_picture(s), degrees)) for s in range(4)])
    turn = fit_turn(luma(frames), 320 / 240)
    assert turn is not None and abs(turn.degrees - degrees) <= 1.0


def test_frames_without_turned_corners_fit_no_turn():
    plain = np.stack([_square(_picture(s)) for s in range(4)])
    letterboxed = plain.copy()
    letterboxed[:, :40] = 0
    letterboxed[:, -40:] = 0
    dark = np.zeros_like(plain)
    for frames in (plain, letterboxed, dark):
        assert fit_turn(luma(frames), 320 / 240) is None


def test_painting_the_lost_corners_brings_the_whole_frame_nearer_its_source():
    from vscan.runtime.region_search import box_hashes

    def bits(a, b):
        return int(np.unpackbits(a ^ b).sum())

    src = np.stack([_square(_picture(s)) for s in range(3)])
    copy = np.stack([_square(_turned(_picture(s), 8.0)) for s in range(3)])
    back = turn_back(luma(copy), 320 / 240, 8.0)
    h, w = back.shape[1:]
    want = box_hashes(luma(src), (0, 256, 0, 256))[:, 0]
    black = box_hashes(back, (0, h, 0, w))[:, 0]
    painted = box_hashes(filled(back, 8.0), (0, h, 0, w))[:, 0]
    assert sum(map(bits, painted, want)) < sum(map(bits, black, want))


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_a_copy_turned_ten_degrees_by_ffmpeg_matches_through_the_turned_path(tmp_path):
    from vscan.bank.hashers import RowPlan, media_hasher
    from vscan.bank.store import build_bank
    from vscan.bench import synth
    from vscan.config import Runtime, Sampling, ScanConfig
    from vscan.decode import EveryFrame, FixedRate
    from vscan.runtime.decode_task import decode_for_scan
    from vscan.runtime.model_actor import ModelWorker

    src = synth.make_clip(tmp_path / "src.mp4", seed=33, seconds=3.0, fps=8.0, size=(320, 180), scenes=1)
    copy = tmp_path / "copy.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", f"rotate={10 * np.pi / 180}", "-c:v", "libx264", "-crf", "20",
                    "-pix_fmt", "yuv420p", str(copy)], check=True)  # fmt: skip
    plan = RowPlan("crops", extra_per_second=None, grid_per_second=1e-6, windows=())  # the full plan's crops alone
    build_bank(tmp_path / "r.bank", [src], label="reported", hash_media=media_hasher(EveryFrame(), "cpu", plan))
    config = ScanConfig(sampling=Sampling(policy=FixedRate(2.0)), runtime=Runtime(device="cpu"))
    worker = ModelWorker(config, str(tmp_path / "r.bank"))
    _, payload = decode_for_scan(str(copy), config)
    result = worker.run([(0, None, None, 1)], payload)[0]
    found = [m for m in result.matches if m.is_match]
    assert found and found[0].bank_entry_id == "src" and any(p.startswith("turned") for p in found[0].path)
    assert result.timings["match_rotation"] > 0


def test_a_copy_turned_eight_degrees_and_zoomed_is_found_by_the_coarse_angle_search(tmp_path):
    from vscan.bank.hashers import RowPlan, media_hasher
    from vscan.bank.matcher import Matcher
    from vscan.bank.query import FileQuery, QueryVersion
    from vscan.bank.store import Bank, build_bank
    from vscan.bench import synth
    from vscan.decode import EveryFrame
    from vscan.frames.windows import rotate_crop
    from vscan.hashing.vpdq import FrameHashes
    from vscan.runtime.region_search import box_hashes
    from vscan.runtime.rotation_search import find_rotation

    src = synth.make_clip(tmp_path / "src.mp4", seed=35, seconds=3.0, fps=4.0, size=(320, 180), scenes=1)
    plan = RowPlan("crops+grid", extra_per_second=None, windows=())  # 8 degrees zoomed keeps 0.64: the centre grid window
    build_bank(tmp_path / "r.bank", [src], label="reported", hash_media=media_hasher(EveryFrame(), "cpu", plan))
    from vscan.decode import FixedRate
    from vscan.frames.prepare import iter_prepared, prepared_decoder

    rgb = np.concatenate([b.rgb for b in iter_prepared(prepared_decoder(src), src, FixedRate(2.0), side_px=256)])
    wide = np.stack([cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in rgb])
    copy = np.stack([_square(f) for f in rotate_crop(wide, -8.0)])  # turned and zoomed: no corners to fit
    two = box_hashes(luma(copy), (0, 256, 0, 256))
    variants = np.repeat(two[:, :1], 8, axis=1)
    n = len(copy)
    fh = FrameHashes(np.arange(n), np.arange(n) / 2.0, np.full(n, 100, np.int32), np.ascontiguousarray(variants[:, 0]))
    query = FileQuery((QueryVersion("frames", fh, variants),), {}, n / 2.0)
    matcher = Matcher(Bank(tmp_path / "r.bank").load_index())
    assert not any(m.is_match for m in matcher.match(query))
    found = find_rotation(matcher, query, copy, (320, 180))
    assert found is not None
    matched = [m for m in found[2] if m.is_match]
    assert matched and matched[0].bank_entry_id == "src" and any(p.startswith("turned+") for p in matched[0].path)


def test_the_bits_the_lost_corners_could_flip_are_the_ones_painting_gets_wrong():
    from vscan.frames.turns import unsure_bits
    from vscan.runtime.region_search import box_hashes

    src = np.stack([_square(_picture(s)) for s in range(4)])
    copy = np.stack([_square(_turned(_picture(s), 12.0)) for s in range(4)])
    painted = filled(turn_back(luma(copy), 320 / 240, 12.0), 12.0)
    h, w = painted.shape[1:]
    want = box_hashes(luma(src), (0, 256, 0, 256))[:, 0]
    got = box_hashes(painted, (0, h, 0, w))[:, 0]
    unsure = unsure_bits(painted, 12.0)
    wrong, n_unsure = np.bitwise_count(want ^ got).sum(axis=1), np.bitwise_count(unsure).sum(axis=1)
    wrong_sure = np.bitwise_count((want ^ got) & ~unsure).sum(axis=1)
    assert np.all((n_unsure > 0) & (n_unsure < 64))  # a few bits, not the hash
    # The unsure bits hold more than their share of the wrong ones: the sure bits lie closer, per bit.
    assert (wrong_sure / (256 - n_unsure)).mean() < (wrong / 256).mean()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_a_copy_turned_nine_degrees_matches_a_hash_list_bank(tmp_path):
    """A bank of a hash list (plain frame rows, no crops or windows): the whole turned-back frame, its corners painted and
    the bits they could flip taken from the nearest row when the sure bits lie within the threshold's share."""
    src, _ = _listed_bank(tmp_path)
    found = _turned_copy_matches(tmp_path, src, tmp_path / "list.bank", -9.0, 2.0)
    assert found and found[0].bank_entry_id == "src" and found[0].path[0].startswith("turned"), found


def test_an_in_memory_index_too_large_to_complete_from_paints_nothing(tmp_path, monkeypatch):
    """The painted frames' unsure bits are completed from at most COMPLETE_MAX_ROWS frame rows. A bank loaded into
    memory (``runtime.bank_in_memory``) over that had each sampled frame turned back and painted at 5 angles, then
    found it could complete nothing; now it paints nothing. A memory-mapped bank narrows to the entries near every
    angle's painted frames once (``completion_rows``), not once an angle."""
    from vscan.runtime import rotation_search

    src, bank = _listed_bank(tmp_path)
    painted = []
    real = rotation_search.unsure_bits  # taken of each painted frame set, once an angle
    monkeypatch.setattr(rotation_search, "unsure_bits", lambda *a, **k: painted.append(1) or real(*a, **k))
    found = _turned_copy_matches(tmp_path, src, bank, -9.0, 2.0, in_memory=True)
    assert found and found[0].path[0].startswith("turned") and len(painted) == len(rotation_search.PAINTED_DEGREES), painted
    painted.clear()
    monkeypatch.setattr(rotation_search, "COMPLETE_MAX_ROWS", 10)  # the list bank holds 32 frame rows
    assert not _turned_copy_matches(tmp_path, src, bank, -9.0, 2.0, in_memory=True) and not painted


def _listed_bank(tmp_path):
    """(a 4 s clip, a bank of its vPDQ lines alone: every frame, as an exchange shares it)."""
    from vscan.bank.store import build_bank
    from vscan.bench import synth
    from vscan.decode import EveryFrame
    from vscan.hashing.media import hash_media
    from vscan.hashing.pdq import PDQHasher
    from vscan.hashing.vpdq import format_vpdq_line

    src = synth.make_clip(tmp_path / "src.mp4", seed=37, seconds=4.0, fps=8.0, size=(320, 180), scenes=1)
    fh = hash_media(src, EveryFrame(), hasher=PDQHasher(device="cpu")).frames
    listed = tmp_path / "src.txt"
    listed.write_text("".join(format_vpdq_line(int(n), int(q), bytes(h).hex(), float(t)) + "\n"
                              for n, q, h, t in zip(fh.frame_numbers, fh.qualities, fh.hashes, fh.timestamps_seconds)))  # fmt: skip
    build_bank(tmp_path / "list.bank", [listed], label="reported")
    return src, tmp_path / "list.bank"


def _turned_copy_matches(tmp_path, src, bank, degrees: float, fps: float, in_memory: bool = False) -> list:
    """The matches of ``src`` turned by ``degrees`` (ffmpeg's rotate, as AugLy's: black corners), re-encoded and
    scanned at ``fps`` against ``bank`` (memory-mapped, or loaded into memory) in one model call."""
    from vscan.config import Runtime, Sampling, ScanConfig
    from vscan.decode import FixedRate
    from vscan.runtime.decode_task import decode_for_scan
    from vscan.runtime.model_actor import ModelWorker

    copy = tmp_path / "copy.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", f"rotate={degrees * np.pi / 180}", "-c:v", "libx264", "-crf", "20",
                    "-pix_fmt", "yuv420p", str(copy)], check=True)  # fmt: skip
    config = ScanConfig(sampling=Sampling(policy=FixedRate(fps)), runtime=Runtime(device="cpu", bank_in_memory=in_memory))
    _, payload = decode_for_scan(str(copy), config)
    return [m for m in ModelWorker(config, str(bank)).run([(0, None, None, 1)], payload)[0].matches if m.is_match]


def test_the_angle_gate_ranks_the_turns_hashes_without_their_quality(monkeypatch):
    # Issue #30: the gate (one lookup for every angle tried) used only the turned cuts' hashes; each cut's PDQ quality
    # was computed and dropped (8 coarse angles a file that matched nothing: a sweep's every file). The match's own cut
    # (turned_cut with quality) is unchanged: the same hashes and box, its quality as before.
    from vscan.runtime import rotation_search
    from vscan.runtime.region_search import box_hashes

    frames = luma(np.stack([_square(_turned(_picture(seed), 8.0)) for seed in (3, 4, 5)]))
    cuts = (0.9, 0.8, 0.7)
    with_quality = rotation_search.turned_cut(frames, 4 / 3, 8.0, cuts)
    without = rotation_search.turned_cut(frames, 4 / 3, 8.0, cuts, quality=False)
    assert np.array_equal(with_quality[0], without[0]) and with_quality[1] == without[1] and without[2] is None
    assert with_quality[2] is not None and with_quality[2].shape == (3,)

    class Nothing:  # a bank with no row near any cut: the gate says no angle
        def row_hits(self, hashes, radius):
            return {"query": np.zeros(0, np.int64), "distance": np.zeros(0, np.int64)}

    def no_quality(*_):
        raise AssertionError("the gate computed a cut's quality")

    monkeypatch.setattr(rotation_search, "box_quality", no_quality)
    tried = []
    monkeypatch.setattr(rotation_search, "box_hashes", lambda *a: tried.append(1) or box_hashes(*a))
    assert rotation_search._gated(Nothing(), frames, 4 / 3, [7.5, 8.0, 8.5], cuts, zoomed=False) is None
    assert len(tried) == 3  # each angle's cut hashed for the lookup


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
@pytest.mark.parametrize("degrees", [10.5, -12.0, 14.5])
def test_a_turned_copy_meets_a_sparse_banks_frame_rows_where_its_crop_rows_are_too_few(tmp_path, degrees):
    """A sparse bank (``--rows sparse``) keeps crop rows 0.9 and 0.8 on detailed frames every 2 s, its 40% centre window
    every second, and frame rows that cover all time. A copy turned 10.5-14.5 degrees shows the source's 0.72-0.77
    crop: no crop row fits inside what it kept, and the 40% window (~100 px of the scan's frame) is too flat and too rare
    to decide (23% of the frames). The whole turned-back frame, its corners painted and completed from the nearest frame
    row (as for a hash list), meets the frame rows on most sampled frames. Before: no match."""
    from vscan.bank.hashers import SPARSE_ROWS, media_hasher
    from vscan.bank.store import build_bank
    from vscan.bench import synth
    from vscan.decode import EveryFrame

    src = synth.make_clip(tmp_path / "src.mp4", seed=41, seconds=8.0, fps=12.0, size=(480, 270), scenes=2)
    build_bank(tmp_path / "sparse.bank", [src], label="reported", hash_media=media_hasher(EveryFrame(), "cpu", SPARSE_ROWS))
    found = _turned_copy_matches(tmp_path, src, tmp_path / "sparse.bank", degrees, 4.0)
    assert found and found[0].bank_entry_id == "src" and found[0].path[0].startswith("turned"), found

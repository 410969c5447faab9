"""Off-centre crops (issue #16): a copy keeping 70% of each side at an
arbitrary position is found through the bank's grid windows
(``vscan.frames.windows.GRID_WINDOWS``) and the scan's search for them
(``vscan.runtime.offcentre``, ``vscan.frames.window_hash``)."""

from __future__ import annotations

import numpy as np
import pytest

from _cli_scan import scan_records
from vscan import Bank
from vscan.bench import synth
from vscan.bench.reframe import crop70_offset, reframe_clip
from vscan.frames.window_hash import window_hashes
from vscan.frames.windows import GRID_FPS, GRID_SCALE, GRID_STEPS, GRID_WINDOWS, grid_window, window
from vscan.hashing.pdq import PDQHasher

def _bits(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.unpackbits(a ^ b).sum())


def test_window_hashes_equal_the_hash_model_on_cut_windows():
    from PIL import Image

    rng = np.random.default_rng(3)
    frame = np.asarray(Image.fromarray((rng.random((20, 30, 3)) * 255).astype(np.uint8)).resize((300, 240), Image.Resampling.BILINEAR))
    hasher = PDQHasher(device="cpu")
    tops, lefts = np.array([0, 9, 40]), np.array([0, 5, 70])
    got = window_hashes(frame, 200, 230, tops, lefts)
    assert got.shape == (3, 3, 2, 32)
    for i, t in enumerate(tops):
        for j, left in enumerate(lefts):
            ref = hasher.hash_frames(np.ascontiguousarray(frame[None, t : t + 200, left : left + 230])).hashes[0]
            assert _bits(got[i, j, 0], ref[0]) == 0  # as is
            assert _bits(got[i, j, 1], ref[4]) == 0  # mirrored left-right (flip_h)
    assert _bits(got[0, 0, 0], got[2, 2, 0]) > 40  # different windows, different hashes
    with pytest.raises(ValueError, match="Invalid windows"):
        window_hashes(frame, 200, 230, np.array([41]), lefts)


def test_grid_windows_cover_every_70_percent_crop():
    names = {grid_window(n) for n in GRID_WINDOWS}
    assert len(names) == 16 and all(s == GRID_SCALE for s, _, _ in names)
    for off in np.linspace(0.0, 0.3, 31):  # a crop keeping 70% at `off` holds a grid window whole, on each axis
        assert any(off - 1e-9 <= p and p + GRID_SCALE <= off + 0.7 + 1e-9 for p in GRID_STEPS)
    rgb = np.zeros((2, 100, 200, 3), np.uint8)
    assert window(rgb, "g60:30,10").shape == (2, 60, 120, 3)
    assert grid_window("strip916") is None


def test_banks_keep_grid_windows_a_few_frames_a_second(tmp_path):
    from vscan.bank.hashers import bank_hash_media
    from vscan.decode import EveryFrame

    src = synth.make_clip(tmp_path / "clip.mp4", seed=5, seconds=3, size=(320, 180), scenes=1, crf=23)
    result = bank_hash_media(src, EveryFrame(), PDQHasher(device="cpu"))
    grid = [i for i, p in enumerate(result.extra.preps) if p.startswith("window:g") or "+window:g" in p]
    per_name = len(grid) // len(GRID_WINDOWS)
    assert len(grid) == per_name * len(GRID_WINDOWS)
    assert per_name == int(np.ceil(3.0 * GRID_FPS))  # the first frame of each 1/GRID_FPS s of the 3 s clip
    frames = sorted(set(result.extra.frame_numbers[grid].tolist()))
    times = result.frames.timestamps_seconds[np.searchsorted(result.frames.frame_numbers, frames)]
    assert np.all(np.diff(np.floor(times * GRID_FPS)) >= 1)


def test_offcentre_crops_match_under_default_sampling(tmp_path):
    src = synth.make_clip(tmp_path / "src" / "wide.mp4", seed=11, seconds=12, size=(640, 360), scenes=2, crf=20)
    inbox = tmp_path / "in"
    seeds = (3, 8)
    copies = [reframe_clip(src, inbox / f"crop70_{s}.mp4", "crop70_offcentre", seed=s) for s in seeds]
    other = synth.make_clip(inbox / "unrelated.mp4", seed=93, seconds=12, size=(640, 360), scenes=2, crf=23)
    bank = tmp_path / "reported.bank"
    Bank.build(bank, [src], label="reported")
    records = scan_records(inbox, bank, tmp_path / "r.jsonl")
    for seed, copy in zip(seeds, copies):
        (match,) = [m for m in records[copy.name]["matches"] if m["is_match"]]
        assert match["bank_entry_id"] == "wide" and match["path"][:2] == ["off-centre", "grid-window"], match
        # Where: the box, mapped back into the source through the crop (70% at crop70_offset), is a grid window.
        oy, ox = crop70_offset(seed)
        box = match["region"]
        top, left = oy + 0.7 * box["top"], ox + 0.7 * box["left"]
        assert min(abs(top - p) for p in GRID_STEPS) < 0.015 and min(abs(left - p) for p in GRID_STEPS) < 0.015, (box, oy, ox)
        assert abs(0.7 * (box["right"] - box["left"]) - GRID_SCALE) < 0.01
    assert not any(m["is_match"] for m in records[other.name]["matches"])


def test_kept_shares_come_from_the_copys_pixel_size():
    from vscan.runtime.offcentre import CROPS_KEPT, kept_shares, overhang_px

    shares = kept_shares((416, 270))  # 65% x 75% of a 640 x 360 clip, pixels kept (ffmpeg's crop, AugLy's crop)
    assert shares[: len(CROPS_KEPT)] == [(k, k) for k in CROPS_KEPT]
    assert any(abs(w - 0.65) < 1e-3 and abs(h - 0.75) < 1e-3 for w, h in shares)
    # nearly even shares too (74.6% x 72.6% of 480 x 270: the 70% window is 4-6% too wide there), no two within 1%
    near_even = kept_shares((358, 196))
    assert any(abs(w - 0.7458) < 1e-3 and abs(h - 0.7259) < 1e-3 for w, h in near_even), near_even
    assert all(abs(a[0] - b[0]) >= 0.01 or abs(a[1] - b[1]) >= 0.01 for pairs in (shares, near_even) for i, a in enumerate(pairs) for b in pairs[:i])
    # usual sizes and aspects (a 400 x 224 clip is 16:9 within 0.5%)
    assert kept_shares(None) == [(k, k) for k in CROPS_KEPT] == kept_shares((640, 360)) == kept_shares((1080, 1920)) == kept_shares((400, 224))
    assert overhang_px(0.75, 0.6, 256) == 0 and 0 < overhang_px(0.61, 0.6, 256) <= 21  # only a crop that may hold no window whole


def test_uneven_offcentre_crop_is_found_by_a_scan(tmp_path):
    """A copy keeping 65% of the width and 75% of the height (312 x 202 of 480 x 270), off-centre (ffmpeg's crop filter: pixels kept), is matched
    through ``vscan scan``: its grid window is no square in the scan's frame; the 70% search alone missed it."""
    import subprocess

    src = synth.make_clip(tmp_path / "src" / "wide.mp4", seed=12, seconds=6, size=(480, 270), scenes=2, crf=20)
    inbox = tmp_path / "in"
    inbox.mkdir()
    copy = inbox / "crop65x75.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", "crop=312:202:82:22", "-c:v", "libx264", "-crf", "20",
                    "-pix_fmt", "yuv420p", str(copy)], check=True)  # fmt: skip
    bank = tmp_path / "reported.bank"
    Bank.build(bank, [src], label="reported")
    records = scan_records(inbox, bank, tmp_path / "r.jsonl")
    (match,) = [m for m in records[copy.name]["matches"] if m["is_match"]]
    assert match["bank_entry_id"] == "wide" and match["path"][0] == "off-centre", match
    box = match["region"]  # the grid window's box in the copy: 0.6 / 0.65 of its width, 0.6 / 0.75 of its height
    assert abs((box["right"] - box["left"]) - 0.6 / 0.65) < 0.02 and abs((box["bottom"] - box["top"]) - 0.6 / 0.75) < 0.02, box

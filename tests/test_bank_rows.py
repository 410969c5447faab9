"""Bank rows per kind and per reported video-second (``vscan bank info``), and the
row-collapse experiment (``vscan.bank.compact_rows``): runs of near-identical
frames keep their first row, extra rows stay on kept frames only."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from vscan.bank.compact_rows import CompactRule, compact_bank_rows, run_starts
from vscan.bank.rows import row_kind
from vscan.bank.store import Bank
from vscan.bank.writer import BankWriter
from vscan.hashing.vpdq import ExtraHashes, FrameHashes


def _flip(h: np.ndarray, bits: list[int]) -> np.ndarray:
    out = np.unpackbits(h.copy())
    out[bits] ^= 1
    return np.packbits(out)


def _bank(path, rng):
    base = rng.integers(0, 256, 32, np.uint8)
    other = rng.integers(0, 256, 32, np.uint8)
    # 10 frames at 5 fps: frames 0-5 within 3 bits of frame 0, frames 6-9 another shot.
    hashes = np.stack([_flip(base, list(range(i % 4))) for i in range(6)] + [_flip(other, [i]) for i in range(4)])
    frames = FrameHashes(np.arange(10), np.arange(10) / 5.0, np.full(10, 90), hashes)
    preps = ("borders", "crop0.900", "window:strip916", "window:rot+4", "window:g60:10,20")
    numbers = np.repeat(np.arange(10), len(preps))
    extra = ExtraHashes(numbers, preps * 10, np.full(numbers.size, 80, np.int32), rng.integers(0, 256, (numbers.size, 32), np.uint8))
    with BankWriter(path) as w:
        e = w.add_frame_hashes("clip", "reported", ("clip.mp4", "media", None), "video", frames, 2.0)
        w.add_extra_hashes(e, extra)
        w.add_digest(e, "md5", "0" * 32)
        w.add_file_digest("d", None, ("list.md5", "digest_list", "1"), "md5", "1" * 32)


def test_bank_info_counts_rows_per_kind_and_per_video_second(tmp_path):
    _bank(tmp_path / "b.bank", np.random.default_rng(1))
    with Bank(tmp_path / "b.bank") as b:
        info = b.info()
    assert info.rows_total == 60 and info.video_seconds == 2.0 and info.rows_per_video_second == 30.0
    assert info.rows_by_kind == {"borders": 10, "crop": 10, "frame": 10, "grid": 10, "rotation": 10, "strip916": 10}
    assert info.rows_per_video_second_by_kind["crop"] == 5.0
    shown = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "info", str(tmp_path / "b.bank")], capture_output=True,
                           text=True, env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert shown.returncode == 0 and "rows_per_video_second" in shown.stdout and "grid: 10" in shown.stdout


def test_row_kinds():
    assert [row_kind(p) for p in ("", "borders", "borders+crop0.900", "window:strip916", "borders+window:rot-4", "window:g60:0,40")] == [
        "frame", "borders", "crop", "strip916", "rotation", "grid"]  # fmt: skip


def test_runs_of_near_identical_frames_keep_their_first_row_and_extra_rows_stay_on_kept_frames(tmp_path):
    rng = np.random.default_rng(2)
    _bank(tmp_path / "b.bank", rng)
    compact_bank_rows(tmp_path / "b.bank", tmp_path / "c.bank", CompactRule(frame_bits=4, grid_per_second=0.01))
    with Bank(tmp_path / "c.bank") as c, Bank(tmp_path / "b.bank") as b:
        assert [r[1] for r in c.rows("frame_hashes")] == [0, 6]
        assert {r[1] for r in c.rows("extra_hashes")} == {0, 6} and len(c.rows("extra_hashes")) == 9  # grid on frame 0 only
        assert c.rows("file_digests") == b.rows("file_digests")
        assert [r[:7] for r in c.rows("entries")] == [r[:7] for r in b.rows("entries")]  # num_frames: the rows kept
        index = c.load_index()
    assert len(index.extra.hashes) == 9  # every kept extra row names a kept frame: none dropped at load
    compact_bank_rows(tmp_path / "b.bank", tmp_path / "g.bank", CompactRule(frame_bits=256, extra_per_second=None, grid_per_second=1.0))
    with Bank(tmp_path / "g.bank") as g:
        grid = [r[1] for r in g.rows("extra_hashes") if r[2].startswith("window:g")]
        assert [r[1] for r in g.rows("frame_hashes")] == [0, 5]  # one run, plus the frame keeping grid windows a second later
        assert {r[1] for r in g.rows("extra_hashes") if not r[2].startswith("window:g")} == {0}
    assert grid == [0, 5]  # 5 fps: one frame a second keeps its grid windows
    compact_bank_rows(tmp_path / "b.bank", tmp_path / "x.bank", CompactRule(frame_bits=0, extra_per_second=1.0, grid_per_second=None))
    with Bank(tmp_path / "x.bank") as x:
        assert {r[1] for r in x.rows("extra_hashes") if r[2] == "borders"} == {0, 5}  # every frame a run, extra rows a second apart
    h = np.zeros((3, 32), np.uint8)
    h[2, 0] = 0xFF
    assert run_starts(h, 7).tolist() == [True, False, True] and run_starts(h, 8).tolist() == [True, False, False]


def test_bank_build_rows_compact_keeps_runs_and_sparse_extra_rows(tmp_path):
    from vscan.bench import synth

    clip = synth.make_clip(tmp_path / "clips" / "a.mp4", seed=4, seconds=4.0, size=(128, 72), scenes=2)
    for rows in ("full", "compact"):
        run = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "build", str(tmp_path / f"{rows}.bank"), str(clip),
                              "--device", "cpu", "--rows", rows], capture_output=True, text=True)  # fmt: skip
        assert run.returncode == 0, run.stderr
    with Bank(tmp_path / "full.bank") as f, Bank(tmp_path / "compact.bank") as c:
        full, compact = f.info(), c.info()
        index = c.load_index()
        extra_rows = len(c.rows("extra_hashes"))
        frames = {r[1] for r in c.rows("frame_hashes")}
        extra_frames = {r[1] for r in c.rows("extra_hashes")}
    assert full.rows_per_video_second > 300 and compact.rows_per_video_second < 40
    assert set(compact.rows_by_kind) == set(full.rows_by_kind)  # every kind still there, sparser
    assert extra_frames <= frames and len(index.extra.hashes) == extra_rows  # every extra row names a kept frame
    spaced = sorted(extra_frames)  # runs' first frames at least 2 s (50 frames at 25 fps) apart carry the extra rows
    assert spaced[0] == 0 and len(spaced) >= 2 and all(b - a >= 50 for a, b in zip(spaced, spaced[1:]))
    # `vscan bank import` hashes new media with the rows the bank was built with.
    other = synth.make_clip(tmp_path / "more" / "b.mp4", seed=5, seconds=4.0, size=(128, 72), scenes=2)
    imported = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "import", str(tmp_path / "compact.bank"), str(other),
                               "--device", "cpu"], capture_output=True, text=True)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    with Bank(tmp_path / "compact.bank") as c:
        assert c.info().row_plan == "compact" and full.row_plan == "full"
        b_extra = sorted({r[1] for r in c.rows("extra_hashes") if r[0] == "b"})
    assert b_extra[0] == 0 and all(y - x >= 50 for x, y in zip(b_extra, b_extra[1:]))
    bad = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "build", str(tmp_path / "x.bank"), str(clip), "--rows", "tiny"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0 and "--rows" in bad.stderr

"""A second look for sparse banks (``vscan.bank.row_looks``): a weak hit on an entry of ``--rows sparse`` (a row every
half second where footage is fast) names the query times where the entry's rows stand, its offset taken from the
pair met on a tick row; ``Adaptive.refine`` and ``FixedRate.refine`` add those frames to a second pass (``LookWindows``).
The looks of a weak centre-crop hit on the real ``doorknob`` clip's sparse bank are tested beside its other scans
(``test_bank_detail_ticks``: one CLI build of that bank for both)."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.bank.hash_input import dihedral_variants
from vscan.bank.matcher import Matcher
from vscan.bank.query import FileQuery, QueryVersion
from vscan.bank.rows import centre_runs, clock_runs
from vscan.bank.store import Bank
from vscan.bank.writer import BankWriter
from vscan.decode.adaptive import Adaptive, LookWindows
from vscan.decode.sampling import FixedRate, Windows
from vscan.hashing.vpdq import ExtraHashes, FrameHashes


def _flip(h: np.ndarray, bits: int, rng) -> np.ndarray:
    b = np.unpackbits(h)
    b[rng.choice(256, bits, replace=False)] ^= 1
    return np.packbits(b)


def _index(path, times: np.ndarray, rows: np.ndarray, duration: float):
    """A ``--rows sparse`` media entry: its frame rows and, as a build files under its first row, a crop row (an
    entry of frame rows alone is a hash list's: ``vscan.bank.list_banks`` looks at those its own way)."""
    with BankWriter(path) as writer:
        n = len(rows)
        fh = FrameHashes(np.arange(n, dtype=np.int64) * 15, times, np.full(n, 90, np.int32), rows)
        used = writer.add_frame_hashes("src", "reported", ("src.mp4", "media", "src"), "video", fh, duration)
        crop = np.random.default_rng(99).integers(0, 256, (1, 32), np.uint8)  # unrelated to every query here
        writer.add_extra_hashes(used, ExtraHashes(np.zeros(1, np.int64), ("crop0.900",), np.full(1, 90, np.int32), crop))
    with Bank(path) as b:
        return b.load_index()


def _match(index, times: np.ndarray, frames: np.ndarray, duration: float):
    fh = FrameHashes(np.arange(len(frames), dtype=np.int64), times, np.full(len(frames), 90, np.int32), frames)
    query = FileQuery((QueryVersion("frames", fh, dihedral_variants(frames)),), {}, duration)
    return [m for m in Matcher(index).match(query) if m.bank_entry_id == "src"]


def test_a_weak_hit_on_a_tick_row_names_the_query_times_of_the_entrys_rows_and_a_look_there_decides(tmp_path):
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 256, (40, 32), np.uint8)  # 20 s of fast footage: a tick row every 0.5 s
    index = _index(tmp_path / "b.bank", np.arange(40) * 0.5, rows, 20.0)
    # A copy trimmed 5.2 s in, 10 s long, scanned at 1 fps: its frame at 3.3 s is the source's 8.5 s tick, the rest
    # fall between ticks (unrelated hashes here, 80-110 bits on real footage).
    offset = 5.2
    q = np.arange(10) + 0.3
    first = rng.integers(0, 256, (10, 32), np.uint8)
    first[3] = _flip(rows[17], 6, rng)
    (weak,) = _match(index, q, first, 10.0)
    assert not weak.is_match and weak.num_query_hashes_matched == 1
    expected = [round(t - offset, 3) for t in np.arange(40) * 0.5 if 0 <= t - offset < 10.0 and abs(t - offset - 3.3) > 1e-3]
    assert [round(t, 3) for t in weak.look_seconds] == expected
    # The look's frames meet their rows; merged with the first pass they decide on the aligned run.
    looks = np.asarray(weak.look_seconds)
    seen = np.stack([_flip(rows[int(round((t + offset) / 0.5))], 8, rng) for t in looks])
    times = np.concatenate([q, looks])
    (m,) = _match(index, times[np.argsort(times)], np.concatenate([first, seen])[np.argsort(times)], 10.0)
    assert m.is_match and m.decided_by == "alignment" and abs(m.align_offset_seconds - offset) < 0.1
    # A decided match names no looks.
    assert m.look_seconds == ()


def test_a_weak_hit_met_only_on_a_long_run_looks_at_every_frame_around_it(tmp_path):
    rng = np.random.default_rng(8)
    rows = rng.integers(0, 256, (5, 32), np.uint8)
    times = np.array([0.0, 0.5, 1.0, 3.0, 3.5])  # a 2 s run (slow footage: its hash a frame somewhere in it) among ticks
    index = _index(tmp_path / "b.bank", times, rows, 4.0)
    first = rng.integers(0, 256, (8, 32), np.uint8)
    first[1] = _flip(rows[2], 4, rng)  # the query's 1.1 s frame met the long run
    (weak,) = _match(index, np.arange(8) + 0.1, first, 8.0)
    looks = np.asarray(weak.look_seconds)
    frames = set(np.round((looks - 1.1) * 30).astype(int).tolist())  # every frame within 3 s of the hit but its own
    assert not weak.is_match and frames == set(range(-33, 91)) - {0}


def test_a_bank_of_every_frame_or_of_short_runs_names_no_looks(tmp_path):
    rng = np.random.default_rng(9)
    rows = rng.integers(0, 256, (120, 32), np.uint8)  # every frame of 4 s at 30 fps
    index = _index(tmp_path / "b.bank", np.arange(120) / 30, rows, 4.0)
    first = rng.integers(0, 256, (4, 32), np.uint8)
    first[1] = _flip(rows[31], 4, rng)
    (weak,) = _match(index, np.arange(4) + 0.1, first, 4.0)
    assert not weak.is_match and weak.look_seconds == ()


def test_adaptive_refine_adds_a_weak_hits_looks_to_its_second_pass():
    class Weak:  # what refine reads of a Match
        is_match, signal, decided_by, path, query_pct, num_query_hashes_matched, distance_min = False, "pdq", None, (), 10.0, 1, 6
        query_span_seconds = (3.3, 3.3)
        look_seconds = (0.3, 1.3, 2.7, 13.4)

    policy = Adaptive().refine([Weak()], 20.0, sampled_seconds=np.arange(20.0))
    assert isinstance(policy, LookWindows) and isinstance(policy, Windows) and policy.look_seconds == Weak.look_seconds
    pts = np.arange(600) / 30
    chosen = policy.decide(pts, [0], 20.0).frame_indices
    plain = Windows(policy.fps, policy.spans).decide(pts, [0], 20.0).frame_indices
    assert set(np.round(pts[np.setdiff1d(chosen, plain)], 3)) == {0.3, 1.3, 2.7, 13.4}
    Weak.look_seconds = ()
    assert type(Adaptive().refine([Weak()], 20.0, sampled_seconds=np.arange(20.0))) is Windows


def test_a_sparse_tick_row_holds_its_first_frame():
    """A tick's row is its first frame (number, time and hash): a second look takes the copy's offset to a frame from it."""
    rng = np.random.default_rng(12)
    hashes = rng.integers(0, 256, (60, 32), np.uint8)  # 2 s of fast footage at 30 fps: every run one frame
    times = np.arange(60) / 30
    starts, centres = centre_runs(hashes, 26)
    kept, first = clock_runs(times, starts, centres, 2.0)
    assert kept.tolist() == [0, 15, 30, 45] and first.tolist() == kept.tolist()


def test_every_frame_near_a_hit_decides_on_the_ticks_it_falls_on_and_not_on_the_frames_between(tmp_path):
    """A second look of every frame (30 fps) over 4 s of a copy: 8 of its 120 frames fall on tick rows, the rest lie
    between them (unrelated here, 80-110 bits on real footage). query% over all frames is ~7%, the aligned run under
    5 s; over the frames that fall on ticks it is 100% (``tick_pct``). Where those frames do not meet their rows,
    nothing is decided."""
    rng = np.random.default_rng(10)
    rows = rng.integers(0, 256, (40, 32), np.uint8)
    index = _index(tmp_path / "b.bank", np.arange(40) * 0.5, rows, 20.0)
    times = np.arange(120) / 30 + 0.1
    offset = 6.4  # the copy's frame at 0.1 s is the source's 6.5 s tick
    frames = rng.integers(0, 256, (120, 32), np.uint8)
    on = np.flatnonzero(np.isclose(((times + offset) / 0.5) % 1, 0, atol=1e-6) | np.isclose(((times + offset) / 0.5) % 1, 1, atol=1e-6))
    assert on.size == 8
    copy = frames.copy()
    for i in on:
        copy[i] = _flip(rows[int(round((times[i] + offset) / 0.5))], 24, rng)  # re-encoded: past the short rule's 20 bits
    (m,) = _match(index, times, copy, 4.0)
    assert m.is_match and m.decided_by == "aligned-frames" and m.query_pct < 10 and m.aligned_seconds < 5
    unrelated = frames.copy()
    unrelated[on[0]] = copy[on[0]]  # one frame on a tick met, the other ticks' frames not
    (m,) = _match(index, times, unrelated, 4.0)
    assert not m.is_match


@pytest.fixture(scope="module")
def sparse_chair(tmp_path_factory, vpdq_dir):
    """A ``--rows sparse`` bank of the real ``chair`` video (built through the CLI) and a copy trimmed to its middle 40%."""
    from vscan.bench.edits import edit_clip

    work = tmp_path_factory.mktemp("sparse-chair")
    src = vpdq_dir / "chair-19-sd-bar.mp4"
    copy = edit_clip(src, work / "inbox" / "trimmed.mp4", "trim", start=5.64, end=13.16, seed=7)  # the held-out bench's middle 40%
    return _sparse_bank(src, work / "r.bank"), copy


def _sparse_bank(src, bank):
    """``vscan bank build bank src --rows sparse`` on the CPU, as a user runs it: ``bank``."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "build", str(bank), str(src), "--rows", "sparse", "--device", "cpu"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return bank


def _scan_trimmed(bank, copy, out, *flags: str) -> dict:
    """``vscan scan`` of the trimmed copy against the bank: its record, after checking the match and the look."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    run = subprocess.run([sys.executable, "-m", "vscan.cli", "scan", str(copy), "--bank", str(bank), "--out", str(out), "--device", "cpu", "-q", *flags],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    (record,) = [r for r in map(json.loads, out.read_text().splitlines()) if "path" in r]
    assert Path(record["path"]).name == "trimmed.mp4"
    assert any(m["is_match"] and m["bank_entry_id"] == "chair-19-sd-bar" for m in record["matches"]), record["matches"][:2]
    assert "at a sparse entry's rows" in record["sampling"]
    return record


def test_a_sparse_bank_finds_a_trimmed_copy_of_fast_real_footage_through_the_cli(sparse_chair, tmp_path):
    """The real sample whose trimmed copy a sparse bank missed: its 1 fps and keyframe frames fall between the ticks
    (80-110 bits from every row), but for one that meets a slow stretch's run. The second look takes every frame
    around that hit and decides on the ticks they fall on."""
    _scan_trimmed(*sparse_chair, tmp_path / "scan.jsonl")


def test_a_fixed_rate_scan_looks_at_a_sparse_entrys_rows_too(sparse_chair, tmp_path):
    """``--fps 1`` had no second pass, so the trimmed copy's weak hit (2 of 8 frames) was all it had: a fixed clock's
    frames fall between a sparse entry's ticks. It now looks where the weak hit's entry has rows, as an adaptive scan does."""
    record = _scan_trimmed(*sparse_chair, tmp_path / "scan.jsonl", "--fps", "1")
    assert record["sampling"].startswith("FixedRate(1 fps) + ")


def test_fixed_rate_refine_asks_only_a_weak_hits_looks():
    """A fixed-rate pass is refined only for a weak hit's looks: the frames at those times, decoded exactly; nothing
    for a decided match or a hit with no looks."""

    class Weak:
        is_match, look_seconds = False, (0.3, 2.7, 1.3)

    class Decided:
        is_match, look_seconds = True, (5.0,)

    policy = FixedRate(1.0).refine([Weak(), Decided()], 20.0, sampled_seconds=np.arange(20.0))
    assert isinstance(policy, LookWindows) and policy.look_seconds == (0.3, 1.3, 2.7) and policy.exact_frames
    pts = np.arange(600) / 30
    assert np.round(pts[policy.decide(pts, [0], 20.0).frame_indices], 3).tolist() == [0.3, 1.3, 2.7]
    assert FixedRate(1.0).refine([Decided()], 20.0) is None
    Weak.look_seconds = ()
    assert FixedRate(1.0).refine([Weak()], 20.0) is None


def test_ticks_are_counted_between_the_first_and_last_met_so_an_excerpt_inside_other_video_decides(tmp_path):
    """Every frame of 8 s around a hit, of which 3 s are the entry (a 3 s excerpt inside other video): the ticks the
    look falls on outside the excerpt meet nothing and do not count; under 2.5 s of met ticks decides nothing."""
    rng = np.random.default_rng(13)
    rows = rng.integers(0, 256, (40, 32), np.uint8)
    index = _index(tmp_path / "b.bank", np.arange(40) * 0.5, rows, 20.0)
    times = np.arange(240) / 30 + 0.1
    offset = 6.4
    frames = rng.integers(0, 256, (240, 32), np.uint8)
    predicted = times + offset
    on = np.flatnonzero(np.isclose(np.round(predicted / 0.5) * 0.5, predicted, atol=1e-6))
    for seconds, decides in ((3.0, True), (2.0, False)):
        copy = frames.copy()
        inside = on[(times[on] >= 3.0) & (times[on] < 3.0 + seconds)]
        for i in inside:
            copy[i] = _flip(rows[int(round(predicted[i] / 0.5))], 24, rng)
        (m,) = _match(index, times, copy, 8.0)
        assert m.is_match == decides and (m.decided_by == "aligned-frames") == decides, (seconds, m.decided_by, m.query_pct)


def test_a_look_pass_decodes_the_very_frames_it_names(vpdq_dir):
    """A scan's passes skip non-reference frames (a frame or two off target); a look needs its frames exactly."""
    from dataclasses import replace

    from vscan.config import ScanConfig
    from vscan.runtime.decode_task import _open

    path = str(vpdq_dir / "chair-19-sd-bar.mp4")
    config = ScanConfig()
    look = replace(config, sampling=replace(config.sampling, policy=LookWindows(1.0, ((0.0, 4.0),), (0.5, 1.5))))
    plain = replace(config, sampling=replace(config.sampling, policy=Windows(1.0, ((0.0, 4.0),))))
    assert _open(path, "pyav", plain).stand_in and not _open(path, "pyav", look).stand_in  # the look: its very frames
    assert _open(path, "pyav", look).skip_nonref  # ... decoded whole, the other non-reference frames skipped (whole_frames)


def test_a_query_side_crop_decides_on_a_sparse_entrys_crop_rows_met_at_one_offset(monkeypatch):
    """``crop_rows_met``: the share of the entry's frames holding a row of the closest pair's scale met within the bits at
    its offset; fewer than 2 met, rows a frame apart (a full bank's), or pairs off the offset count nothing."""
    from types import SimpleNamespace

    from vscan.bank.crop_rows import crop_rows_held, crop_rows_met

    # an entry of 4 frames (0, 0.5, 1, 1.5 s), crop rows (prep 1) on 0 and 1 s, a 0.9 crop (prep 2) on 0.5 s
    index = SimpleNamespace(entry_rows=np.zeros(4, np.int64), entry_ids=("e",), timestamps_seconds=np.array([0.0, 0.5, 1.0, 1.5]),
                            qualities=np.full(4, 90), cache={})  # fmt: skip
    bank = SimpleNamespace(row_pos=np.array([0, 1, 2, 3, 0, 2, 1]), row_prep=np.array([0, 0, 0, 0, 1, 1, 2]))
    import vscan.bank.crop_rows as crop_rows

    monkeypatch.setattr(crop_rows, "_prepare", lambda index, min_quality: SimpleNamespace(frames=np.arange(4)))  # every frame row passes quality
    met = lambda prep, rows, q, bits: crop_rows_met(index, bank, 0, np.array(prep), np.array(rows), np.array(q), np.array(bits), 20, 50)
    assert met([1, 1], [0.0, 1.0], [2.3, 3.3], [16, 18]) == 100.0  # both rows of the scale, at one offset
    assert met([1, 1], [0.0, 1.0], [2.3, 3.4], [16, 18]) == 0.0  # off the offset: one met
    assert met([1, 1], [0.0, 1.0], [2.3, 3.3], [16, 24]) == 0.0  # over 20 bits
    assert met([1], [0.0], [2.3], [10]) == 0.0  # one row
    assert met([1, 2], [0.0, 0.5], [2.3, 2.8], [16, 16]) == 0.0  # the other scale's row is not this scale's
    held = lambda prep, bits: crop_rows_held(index, bank, 0, np.array(prep), np.array(bits), 20, 50)
    assert held([1, 2], [16, 12]) is None  # the closest pair's scale (prep 2) has one row: no clock to speak of
    assert held([1, 2], [16, 24]) == 2 and held([2, 1], [30, 3]) == 2  # prep 1's rows on 0 and 1 s: all a copy can meet
    assert held([1], [21]) is None  # no pair within the bits
    bank.row_pos, bank.row_prep = np.array([0, 1, 2, 3, 0, 1, 2, 3]), np.array([0, 0, 0, 0, 1, 1, 1, 1])
    index.timestamps_seconds = np.array([0.0, 1 / 30, 2 / 30, 3 / 30])
    index.cache.clear()
    assert met([1, 1], [0.0, 1 / 30], [2.3, 2.3 + 1 / 30], [16, 16]) == 0.0  # rows of every frame: query% judges them
    assert held([1, 1], [16, 16]) is None  # and min_frames

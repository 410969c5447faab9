"""Off-centre crops (issue #16): a copy keeping 60-75% of each side at an
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
from vscan.frames.windows import CENTRE_WINDOW, GRID_FPS, GRID_SCALE, GRID_STEPS, GRID_WINDOWS, grid_window, window
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
            turned = hasher.hash_frames(np.ascontiguousarray(frame[None, t : t + 200, left : left + 230][:, :, ::-1])).hashes[0]
            assert _bits(got[i, j, 0], ref[0]) == 0  # as is
            assert _bits(got[i, j, 1], turned[0]) == 0  # the window mirrored left-right, hashed (not the hash's own flip_h)
    assert _bits(got[0, 0, 0], got[2, 2, 0]) > 40  # different windows, different hashes
    # A search's coarse pass (exact=False): the same as-is bits, the mirror the hash's own (DCT signs: 20-40 bits off)
    cheap = window_hashes(frame, 200, 230, tops, lefts, exact=False)
    assert np.array_equal(cheap[:, :, 0], got[:, :, 0])
    own = np.array([[_bits(cheap[i, j, 1], got[i, j, 1]) for j in range(3)] for i in range(3)])
    assert own.min() > 0 and own.max() <= 64, own
    with pytest.raises(ValueError, match="Invalid windows"):
        window_hashes(frame, 200, 230, np.array([41]), lefts)


def test_grid_windows_cover_every_65_percent_crop():
    names = {grid_window(n) for n in GRID_WINDOWS if n != CENTRE_WINDOW}
    assert len(names) == 25 and all(s == GRID_SCALE == 0.55 for s, _, _ in names)
    for kept in (0.65, 0.7, 0.75):  # a crop keeping 65-75% at any offset holds a grid window whole, on each axis
        for off in np.linspace(0.0, 1.0 - kept, 41):
            assert any(off - 1e-9 <= p and p + GRID_SCALE <= off + kept + 1e-9 for p in GRID_STEPS), (kept, off)
    for off in np.linspace(0.0, 0.4, 41):  # one keeping 60% (AugLy's narrowest) lacks at most 2.5% of the source
        assert min(max(0.0, off - p, p + GRID_SCALE - off - 0.6) for p in GRID_STEPS) <= 0.025 + 1e-9, off
    # and the centred 60% window (the rotation search's smallest centre cut: vscan.runtime.rotation_search.bank_cuts)
    assert CENTRE_WINDOW in GRID_WINDOWS and grid_window(CENTRE_WINDOW) == (0.6, 0.2, 0.2)
    rgb = np.zeros((2, 100, 200, 3), np.uint8)
    assert window(rgb, "g60:30,10").shape == (2, 60, 120, 3)  # banks built before keep these names
    assert window(rgb, "g55:22.5,42.5").shape == (2, 55, 110, 3) and grid_window("g55:22.5,42.5") == (0.55, 0.225, 0.425)
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


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """One bank of two clips and one ``vscan scan`` (the CLI, default sampling) of two 70% off-centre crops of the
    first, a 65% x 75% crop of the second and an unrelated clip: (records by file name, the crop70 copies by seed,
    the uneven copy, the unrelated clip). One scan and one bank for both scan tests (each was a bank and a CLI scan)."""
    import subprocess

    d = tmp_path_factory.mktemp("offcentre")
    src = synth.make_clip(d / "src" / "wide.mp4", seed=11, seconds=8, size=(640, 360), scenes=2, crf=20)
    uneven_src = synth.make_clip(d / "src" / "uneven.mp4", seed=12, seconds=6, size=(480, 270), scenes=2, crf=20)
    inbox = d / "in"
    copies = {s: reframe_clip(src, inbox / f"crop70_{s}.mp4", "crop70_offcentre", seed=s) for s in (3, 8)}
    uneven = inbox / "crop65x75.mp4"  # 312 x 202 of 480 x 270 at (82, 22): ffmpeg's crop filter, pixels kept
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(uneven_src), "-vf", "crop=312:202:82:22", "-c:v", "libx264", "-crf", "20",
                    "-pix_fmt", "yuv420p", str(uneven)], check=True)  # fmt: skip
    other = synth.make_clip(inbox / "unrelated.mp4", seed=93, seconds=8, size=(640, 360), scenes=2, crf=23)
    bank = d / "reported.bank"
    Bank.build(bank, [src, uneven_src], label="reported")
    return scan_records(inbox, bank, d / "r.jsonl"), copies, uneven, other


def test_offcentre_crops_match_under_default_sampling(scanned):
    records, copies, _, other = scanned
    for seed, copy in copies.items():
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


def test_kept_shares_divide_by_the_banked_pictures_inside_their_bars(tmp_path):
    """A copy cut inside a source's own bars (held-out pattern-sd-grey-bar: 480 x 720 with 32 px side bars, 344 x 530
    kept) kept 344/416 of the picture the grid windows were cut from, not 344/480 (that window is 15% too wide); a
    source at no usual size (640 x 1138) gives its shares only through the bank's sizes."""
    import sqlite3
    from types import SimpleNamespace

    from vscan.bank.entry_table import EntryGeometry, geometry_array
    from vscan.runtime.offcentre import kept_shares, picture_sizes

    def has(pairs, w, h):
        return any(abs(a - w) < 1e-3 and abs(b - h) < 1e-3 for a, b in pairs)

    assert has(kept_shares((344, 530), 0.55, ((416, 720),)), 0.8269, 0.7361) and not has(kept_shares((344, 530), 0.55), 0.8269, 0.7361)
    assert has(kept_shares((418, 854), 0.55, ((640, 1138),)), 0.6531, 0.7504) and not has(kept_shares((418, 854), 0.55), 0.6531, 0.7504)
    # a copy at a usual aspect (2:3 within 1%: tune chair, 348 x 520 inside 31 px bars of 480 x 720) against the picture
    assert has(kept_shares((348, 520), 0.55, ((418, 720),)), 0.8325, 0.7222) and kept_shares((348, 520), 0.55) == kept_shares(None)
    assert kept_shares((348, 520), 0.55, ((480, 720), (640, 360))) == kept_shares(None)  # banked pictures at usual sizes: no pairs
    # an in-memory index: its geometry array (-1s: a hash list's entry), sizes most entries share first
    rows = [EntryGeometry(480, 720, (32, 0, 448, 720)), None, EntryGeometry(640, 1138, (0, 0, 640, 1138)), EntryGeometry(480, 720, (32, 0, 448, 720))]
    index = SimpleNamespace(cache={}, geometry=geometry_array(rows))
    assert picture_sizes(index) == ((416, 720), (640, 1138)) and ((416, 720), (640, 1138)) in index.cache.values()  # kept: read once
    assert picture_sizes(SimpleNamespace(cache={}, geometry=None)) == ()
    # a memory-mapped bank: one grouped read of its entry_geometry table (none in a bank built before it was kept)
    path = tmp_path / "b.bank"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE entry_geometry (entry_id TEXT, width INT, height INT, x0 INT, y0 INT, x1 INT, y1 INT)")
        conn.executemany("INSERT INTO entry_geometry VALUES (?, ?, ?, ?, ?, ?, ?)", [("a", 480, 720, 32, 0, 448, 720), ("b", 640, 360, 0, 0, 640, 360),
                                                                                     ("c", 480, 720, 32, 0, 448, 720)])  # fmt: skip
    assert picture_sizes(SimpleNamespace(bank_path=path)) == ((416, 720), (640, 360))
    old = tmp_path / "old.bank"
    sqlite3.connect(old).close()
    assert picture_sizes(SimpleNamespace(bank_path=old)) == ()


def test_the_searched_windows_are_sized_from_the_scale_most_grid_windows_keep():
    from types import SimpleNamespace

    from vscan.runtime.offcentre import grid_share

    def bank(names):
        return SimpleNamespace(preps=[f"window:{n}" for n in names] + ["crop0.900", "borders+window:strip916"])

    assert grid_share(bank(GRID_WINDOWS)) == GRID_SCALE == 0.55  # 25 windows of 55% beside the centred 60% one
    assert grid_share(bank([f"g60:{t},{left}" for t in (0, 10, 20, 30) for left in (0, 10, 20, 30)])) == 0.6  # built before
    assert grid_share(bank(["g40:30,30"])) == 0.4 and grid_share(bank([])) == GRID_SCALE


def test_uneven_offcentre_crop_is_found_by_a_scan(scanned):
    """A copy keeping 65% of the width and 75% of the height (312 x 202 of 480 x 270), off-centre (ffmpeg's crop filter: pixels kept), is matched
    through ``vscan scan``: its grid window is no square in the scan's frame; the 70% search alone missed it."""
    records, _, copy, _ = scanned
    (match,) = [m for m in records[copy.name]["matches"] if m["is_match"]]
    assert match["bank_entry_id"] == "uneven" and match["path"][0] == "off-centre", match
    box = match["region"]  # the grid window's box in the copy: GRID_SCALE / 0.65 of its width, GRID_SCALE / 0.75 of its height
    assert abs((box["right"] - box["left"]) - GRID_SCALE / 0.65) < 0.02 and abs((box["bottom"] - box["top"]) - GRID_SCALE / 0.75) < 0.02, box


def test_a_weak_offcentre_hit_looks_at_the_copys_frames_on_its_entrys_grid_clock():
    """``grid_looks``: the closest pair of the copy's sampled windows (as is or mirrored) and an entry's grid rows gives
    the copy's offset; each grid row's time less it is a look (inside the file, near the pair, low-quality windows left
    out). A copy starting 1 s into its source, its 0.5 s frame meeting the row at 1.5 s: looks at 0, 0.25, ... 5.75 s."""
    from vscan.runtime.offcentre import LOOK_MAX_FRAMES, grid_looks

    rng = np.random.default_rng(3)
    row_times = np.arange(40) / GRID_FPS  # 10 s of an entry's grid rows, 4 a second
    rows = rng.integers(0, 256, (40, 32), dtype=np.uint8)
    windows = rng.integers(0, 256, (3, 8, 32), dtype=np.uint8)  # unrelated windows at 0.5, 2.2 and 4.9 s ...
    times, quality = np.array([0.5, 2.2, 4.9]), np.array([80, 80, 80])
    windows[0, 0] = rows[6]  # ... but the first: the row at 1.5 s
    want = tuple(float(t) for t in np.arange(24) / GRID_FPS)
    assert grid_looks(row_times, rows, times, windows, quality, 6.0) == want
    mirrored = windows.copy()
    mirrored[0, 0], mirrored[0, 4] = windows[1, 0], rows[6]  # the copy mirrored: its window's variant 4 meets the row
    assert grid_looks(row_times, rows, times, mirrored, quality, 6.0) == want
    assert grid_looks(row_times, rows, times, windows, np.array([10, 80, 80]), 6.0, min_quality=50) != want  # the pair's frame is flat
    long = grid_looks(row_times, rows, times, windows, quality, 60.0)
    assert len(long) == LOOK_MAX_FRAMES and long[0] == 0.0 and long[-1] <= 0.5 + 8.0  # inside the file, near the pair, at most 32
    assert grid_looks(row_times[:0], rows[:0], times, windows, quality, 6.0) == ()


def _tiny_index():
    """A hand-made in-memory index: entries a and b, two frames each, extra rows of grid windows and one crop."""
    from vscan.bank.store import BankIndex, ExtraRows

    hashes = np.arange(4 * 32, dtype=np.uint8).reshape(4, 32)
    index = BankIndex(["a", "b"], ["r", "r"], ["video", "video"], np.array([1.0, 1.0]), hashes, np.array([0, 0, 1, 1], np.int32),
                      np.array([0, 8, 0, 8]), np.array([0.0, 0.25, 0.0, 0.25]), np.full(4, 100, np.int32), {},
                      extra=ExtraRows(np.array([0, 1, 1, 2, 3]), ("window:g55:2.5,2.5", "crop0.900", "borders+window:g55:12.5,2.5",
                                                                  "window:g55:2.5,2.5", "window:g60:20,20"),
                                      np.full(5, 100, np.int32), hashes[[0, 1, 2, 2, 3]] ^ 1))  # fmt: skip
    return index, hashes


def test_an_entrys_grid_rows_are_read_from_the_narrowed_index():
    from vscan.runtime.offcentre import entry_grid_rows

    index, hashes = _tiny_index()
    times, rows = entry_grid_rows(index, "b")
    assert times.tolist() == [0.0, 0.25] and np.array_equal(rows, hashes[[2, 3]] ^ 1)
    times, rows = entry_grid_rows(index, "a")
    assert times.tolist() == [0.0, 0.25] and np.array_equal(rows, hashes[[0, 2]] ^ 1)  # the crop row left out
    assert entry_grid_rows(index, "c")[0].size == 0


def test_the_offcentre_search_also_runs_where_a_region_matched_nothing():
    """A test pattern's own boxes make region search find a region in an off-centre crop of it (tune and held-out
    pattern crops, session 42); nothing matched through it, so the off-centre search runs as for any unmatched file
    (its window takes the region version's place): it used to be skipped wherever a region version stood."""
    from types import SimpleNamespace

    from vscan.bank.query import FileQuery, QueryVersion
    from vscan.config import ScanConfig
    from vscan.hashing.vpdq import FrameHashes
    from vscan.runtime.file_match import FileMatcher

    index, hashes = _tiny_index()
    frames = FrameHashes(np.arange(3), np.arange(3) / 2.0, np.full(3, 80, np.int32), hashes[:3])
    plain = FileQuery((QueryVersion("frames", frames),), {}, 1.5)
    with_region = plain.with_version(QueryVersion("region", frames, box=np.array([[0.1, 0.9, 0.1, 0.9]])))
    searches = {key: applies for key, applies, _ in FileMatcher(ScanConfig(), index)._searches(SimpleNamespace(frames=np.zeros((3, 8, 8, 3))))}
    assert searches["match_offcentre"](plain) and searches["match_offcentre"](with_region)
    assert not FileMatcher(ScanConfig(), index, offcentre=False)._searches(SimpleNamespace(frames=None))[-1][1](with_region)  # hash stores


def test_a_copy_with_part_of_its_picture_covered_is_found_through_the_grid_windows_it_leaves_clean(scanned, monkeypatch):
    """A copy that kept its source's whole picture but had its lower right covered (a sticker of other footage, as
    AugLy's overlay_emoji or big overlay_text) misses as a whole frame. The off-centre search looks at the bank's grid
    windows at their own places too (``offcentre.same_place_grids``), and the windows above the sticker meet their
    rows; without them (``SAME_PLACE`` False, or before it) it found nothing. (A scan also finds this copy through a
    region, ``vscan.runtime.region_search``, which comes first; AugLy's copies of the tune split it does not.)"""
    from pathlib import Path

    from vscan.config import Runtime, ScanConfig
    from vscan.decode import FixedRate, PyAVDecoder
    from vscan.frames.prepare import SCAN_FRAME_SIDE_PX
    from vscan.runtime import offcentre
    from vscan.runtime.file_match import FileMatcher, file_inputs

    import subprocess

    other = Path(scanned[0][scanned[3].name]["path"])  # the fixture's files: d/in/unrelated.mp4, d/src/uneven.mp4, d/reported.bank
    d = other.parent.parent
    # The whole picture, its lower right covered by a sticker of other footage: 60-95% of the height, 30-90% of the
    # width; of the grid windows only those above 60% stay clean. (A flat box is filled in: vscan.frames.overlays.)
    covered = d / "covered.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(d / "src" / "uneven.mp4"), "-i", str(other), "-filter_complex",
                    "[1:v]scale=288:94[s];[0:v][s]overlay=x=144:y=162:shortest=1", "-c:v", "libx264", "-crf", "20", "-pix_fmt", "yuv420p",
                    str(covered)], check=True)  # fmt: skip
    with Bank(d / "reported.bank") as bank:
        index = bank.load_index()
    s = SCAN_FRAME_SIDE_PX
    frames = np.concatenate([b.rgb for b in PyAVDecoder().iter_frames(covered, FixedRate(2.0), batch_size=16, size=(s, s))])
    batch = PDQHasher(device="cpu").hash_frames(frames)
    payload = {"frame_numbers": np.arange(len(frames)), "timestamps": np.arange(len(frames)) / 2.0, "frames": frames, "duration_seconds": len(frames) / 2.0}
    matcher = FileMatcher(ScanConfig(runtime=Runtime(device="cpu")), index)
    inputs = file_inputs(payload, {"frames": (batch.hashes, batch.quality)})
    query = matcher.file_query(inputs, None, None)
    assert not any(m.is_match for m in matcher.matcher.for_file(query).match(query))  # as a whole frame: nothing
    found = offcentre.find_offcentre(matcher.matcher, query, frames, (480, 270))
    (match,) = [m for m in found[2] if m.is_match]
    assert match.bank_entry_id == "uneven" and match.path[:2] == ("off-centre", "grid-window"), match
    box = found[0].version("region").box[0]  # top, bottom, left, right: a grid window at its own place, above the sticker
    assert box[1] <= 0.61 and abs((box[1] - box[0]) - GRID_SCALE) < 0.01
    assert min(abs(box[0] - p) for p in GRID_STEPS) < 0.01 and min(abs(box[2] - p) for p in GRID_STEPS) < 0.01
    monkeypatch.setattr(offcentre, "SAME_PLACE", False)
    before = offcentre.find_offcentre(matcher.matcher, query, frames, (480, 270))
    assert before is None or not any(m.is_match for m in before[2])
    [(zh, zw, tops, lefts)] = offcentre.same_place_grids(256, GRID_SCALE, box=(16, 240, 0, 256), pad=5)  # inside bars, padded
    assert (zh, zw) == (123, 141) and tops.tolist() == [27, 49, 71, 94, 116] and lefts.tolist() == [11, 37, 63, 88, 114]
    assert offcentre.same_place_grids(256, GRID_SCALE, box=(0, 10, 0, 256)) == []  # no picture to speak of
    assert offcentre.grid_places(index, GRID_SCALE) == (GRID_STEPS, GRID_STEPS)  # the bank's own places
    # A bank built before keeps g60 windows from 0 every 10%: its own places fit; GRID_STEPS' would stick out (not searched).
    [(z, _, tops, _)] = offcentre.same_place_grids(256, 0.6, places=((0.0, 0.1, 0.2, 0.3), (0.0, 0.1, 0.2, 0.3)))
    assert z == 154 and tops.tolist() == [0, 26, 51, 77]
    [(z, _, tops, lefts)] = offcentre.same_place_grids(256, 0.6)
    assert tops.max() + z <= 256 and lefts.tolist() == [6, 32, 58, 83]

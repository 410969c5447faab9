"""Short evidence against sparse hash lists (vscan.bank.list_banks): a 2.2 s excerpt inside 40 s of other
video meets three rows of a vPDQ list at one hash a second, or of a PDQ list per image (no frame times), and
is decided through the matcher; out of order, at two rows, or on an every-frame list it is not.

The lists are the real sample's vPDQ hashes (../shared/data/vpdq/chair-orig-22-sd-bar.txt): its frames at whole
seconds, as the reference vPDQ writes at ``seconds_per_hash=1``. The excerpt is seen at 5 frames/s, as a second
look samples it: its frame on a row's second is that row with 4 bits flipped (a re-encode), the frames between
rows the row before with 24 bits flipped (they sit 20-30 bits off: vscan.bank.short), the other video random
hashes. Such a dense run holds 2.2 s, under the short rule's 2.5 s, and its three rows are under the six a
shorter run needs: before vscan.bank.list_banks nothing decided it."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.bank import Bank, build_bank
from vscan.bank.hash_input import dihedral_variants
from vscan.bank.matcher import Matcher
from vscan.bank.query import FileQuery, MatchSettings, QueryVersion
from vscan.hashing.vpdq import FrameHashes, format_vpdq_line, read_vpdq

SOURCE = "chair-orig-22-sd-bar"


@pytest.fixture(scope="module")
def every(vpdq_dir) -> FrameHashes:
    return read_vpdq(vpdq_dir / f"{SOURCE}.txt")


@pytest.fixture(scope="module")
def banks(tmp_path_factory, vpdq_dir, every):
    """(1 s/hash vPDQ list bank, PDQ list bank, every-frame list bank), loaded."""
    root = tmp_path_factory.mktemp("listrows")
    t = every.timestamps_seconds
    whole = sorted({int(np.abs(t - s).argmin()) for s in range(int(t[-1]) + 1)})
    hexes = [every.hashes[i].tobytes().hex() for i in whole]
    (root / "one").mkdir(), (root / "pdq").mkdir()
    (root / "one" / f"{SOURCE}.txt").write_text("".join(
        format_vpdq_line(int(every.frame_numbers[i]), int(every.qualities[i]), h, float(t[i])) + "\n" for i, h in zip(whole, hexes)))
    (root / "pdq" / f"{SOURCE}.pdq").write_text("".join(f"{h},{int(every.qualities[i])}\n" for i, h in zip(whole, hexes)))
    out = []
    for name, src in (("one", root / "one" / f"{SOURCE}.txt"), ("pdq", root / "pdq" / f"{SOURCE}.pdq"), ("every", vpdq_dir / f"{SOURCE}.txt")):
        build_bank(root / f"{name}.bank", [src], label="x")
        with Bank(root / f"{name}.bank") as b:
            out.append(b.load_index())
    return out


def _query(every: FrameHashes, start_s: float, length_s: float, *, at_s: float = 20.3, reverse: bool = False) -> FileQuery:
    """40 s of random frames at 1 frame/s with the source's ``start_s``..+``length_s`` at 5 frames/s from ``at_s``."""
    rng = np.random.default_rng(7)
    t_src = np.round(np.arange(start_s, start_s + length_s + 1e-9, 0.2), 3)
    on_row = np.abs(t_src - np.round(t_src)) < 1e-6
    copy = every.hashes[[int(np.abs(every.timestamps_seconds - np.floor(s)).argmin()) for s in t_src]].copy()
    for row, flips in zip(copy, np.where(on_row, 4, 24)):
        bits = np.unpackbits(row)
        bits[rng.choice(256, flips, replace=False)] ^= 1
        row[:] = np.packbits(bits)
    if reverse:
        copy = copy[::-1]
    other_t = np.array([s + 0.5 for s in range(40) if not at_s - 1 <= s + 0.5 <= at_s + length_s + 1])
    times = np.concatenate([other_t, at_s + (t_src - start_s)])
    hashes = np.concatenate([rng.integers(0, 256, (other_t.size, 32), dtype=np.uint8), copy])
    order = np.argsort(times)
    fh = FrameHashes(np.arange(times.size), times[order], np.full(times.size, 100), np.ascontiguousarray(hashes[order]))
    return FileQuery((QueryVersion("frames", fh, dihedral_variants(fh.hashes)),), {}, 40.0)


def _entry_match(index, query):
    return next((m for m in Matcher(index, MatchSettings()).match(query) if m.bank_entry_id == SOURCE), None)


@pytest.mark.parametrize("bank", [0, 1], ids=["vpdq-1s", "pdq-per-image"])
def test_an_excerpt_meeting_three_rows_in_order_is_decided(banks, every, bank):
    m = _entry_match(banks[bank], _query(every, 5.0, 2.2))
    assert m is not None and m.is_match and m.decided_by == "list-rows"
    assert m.look_seconds == ()


@pytest.mark.parametrize("bank", [0, 1], ids=["vpdq-1s", "pdq-per-image"])
def test_two_rows_or_rows_out_of_order_decide_nothing(banks, every, bank):
    two = _entry_match(banks[bank], _query(every, 5.0, 1.4))  # rows 5 and 6 only
    assert two is not None and not two.is_match
    backwards = _entry_match(banks[bank], _query(every, 5.0, 2.2, reverse=True))
    assert backwards is not None and not backwards.is_match


def test_only_sparse_list_entries_take_the_rule(banks):
    from vscan.bank.list_banks import sparse_list_entries

    one, pdq, every_frame = banks
    assert sparse_list_entries(one).tolist() == [True]
    assert sparse_list_entries(pdq).tolist() == [True]
    assert sparse_list_entries(every_frame).tolist() == [False]  # every frame: the short rule's own per-frame run


def test_rows_beyond_the_distance_limits_decide_nothing(banks, every):
    """The same excerpt with 22 bits flipped in each frame: its rows are over ``MAX_DISTANCE``."""
    from vscan.bank.list_banks import MAX_DISTANCE, rows_in_order

    q = _query(every, 5.0, 2.2)
    rng = np.random.default_rng(3)
    v = q.frames
    hashes = v.hashes.hashes.copy()
    for row in hashes:
        bits = np.unpackbits(row)
        bits[rng.choice(256, MAX_DISTANCE + 2, replace=False)] ^= 1
        row[:] = np.packbits(bits)
    fh = FrameHashes(v.hashes.frame_numbers, v.hashes.timestamps_seconds, v.hashes.qualities, hashes)
    far = FileQuery((QueryVersion("frames", fh, dihedral_variants(hashes)),), {}, 40.0)
    assert rows_in_order(banks[0], 0, q, 50) and rows_in_order(banks[1], 0, q, 50)
    assert not rows_in_order(banks[0], 0, far, 50) and not rows_in_order(banks[1], 0, far, 50)


def test_the_result_schema_names_the_rule():
    """A record's ``decided_by`` "list-rows" is in the result schema's enum (vscan.verdict.schema)."""
    import json
    from pathlib import Path

    import vscan

    schema = json.loads((Path(vscan.__file__).parent / "verdict" / "schema" / "result.v1.json").read_text())
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "decided_by" in node and isinstance(node["decided_by"], dict):
                found.append(node["decided_by"].get("enum", []))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    assert found and all("list-rows" in enum for enum in found)


@pytest.mark.parametrize("timed", [True, False], ids=["vpdq-1s", "pdq-per-image"])
def test_a_still_scene_over_the_median_limit_decides_nothing(timed):
    """A long list of one still picture meets every frame on every row: all pairs at 17-19 bits (over the median
    limit) are searched within the pair caps and decide nothing."""
    from types import SimpleNamespace

    from vscan.bank.list_banks import MEDIAN_DISTANCE, rows_in_order

    rng = np.random.default_rng(5)
    still = rng.integers(0, 256, 32, dtype=np.uint8)

    def flipped(n: int) -> np.ndarray:
        bits = np.unpackbits(still)
        bits[rng.choice(256, n, replace=False)] ^= 1
        return np.packbits(bits)

    k, n = 1800, 300
    rows = np.stack([flipped(1) for _ in range(k)])
    index = SimpleNamespace(entry_rows=np.zeros(k, np.int32), qualities=np.full(k, 100), frame_numbers=np.arange(k), hashes=rows,
                            timestamps_seconds=np.arange(k, dtype=np.float64) if timed else np.full(k, np.nan))  # fmt: skip
    frames = np.stack([flipped(MEDIAN_DISTANCE + 2) for _ in range(n)])
    fh = FrameHashes(np.arange(n), np.arange(n) * 0.2, np.full(n, 100), frames)
    assert not rows_in_order(index, 0, FileQuery((QueryVersion("frames", fh, dihedral_variants(frames)),), {}, n * 0.2), 50)


@pytest.mark.parametrize("bank", [0, 1], ids=["vpdq-1s", "pdq-per-image"])
def test_a_region_meeting_three_rows_is_decided_when_a_region_match_needs_three_frames(banks, every, bank):
    """The excerpt seen only in a placed box (a pane, an inset: the region version, one row per frame), the whole
    frames other video: decided through the region path, unless the region match needs more frames than rows met."""
    q = _query(every, 5.0, 2.2)
    fh = q.frames.hashes
    rng = np.random.default_rng(11)
    other = FrameHashes(fh.frame_numbers, fh.timestamps_seconds, fh.qualities, rng.integers(0, 256, (len(fh), 32), dtype=np.uint8))
    box = np.tile([0.25, 0.75, 0.25, 0.75], (len(fh), 1))

    def with_region(min_frames: int) -> FileQuery:
        return FileQuery((QueryVersion("frames", other, dihedral_variants(other.hashes)),
                          QueryVersion("region", fh, q.frames.variants, box=box, min_frames=min_frames)), {}, 40.0)  # fmt: skip

    m = _entry_match(banks[bank], with_region(3))
    assert m is not None and m.path == ("region",) and m.is_match and m.decided_by == "list-rows"
    four = _entry_match(banks[bank], with_region(4))
    assert four is not None and not four.is_match


def test_a_weak_hit_on_an_untimed_list_looks_at_every_frame_near_its_closest_frame(banks, every):
    """Two rows met (undecided): on the PDQ list (no times to place its other grabs by) the match names every frame within
    ``row_looks.DENSE_REACH_SECONDS`` of its closest query frame (the first on a row, 20.3 s) for the second pass; the
    1 s/hash list's match keeps the robust matcher's own looks (vscan.bank.row_looks)."""
    from vscan.bank.list_banks import dense_looks
    from vscan.bank.row_looks import DENSE_FPS, DENSE_REACH_SECONDS

    q = _query(every, 5.0, 1.4)
    two = _entry_match(banks[1], q)
    assert two is not None and not two.is_match
    looks = np.asarray(two.look_seconds)
    assert looks.size == 2 * DENSE_REACH_SECONDS * DENSE_FPS  # 20.3 itself is sampled already
    assert looks.min() == pytest.approx(20.3 - DENSE_REACH_SECONDS) and looks.max() == pytest.approx(20.3 + DENSE_REACH_SECONDS)
    assert np.median(np.diff(looks)) == pytest.approx(1 / DENSE_FPS, abs=1e-6) and np.diff(looks).max() < 2.01 / DENSE_FPS
    timed = _entry_match(banks[0], q)
    assert timed is not None and not timed.is_match and timed.look_seconds and dense_looks(banks[0], 0, q, 50, 31) == ()
    decided = _entry_match(banks[1], _query(every, 5.0, 2.2))
    assert decided.is_match and decided.look_seconds == ()


def test_a_short_file_decided_on_its_first_pass_against_a_sparse_list_names_every_frame_near_its_hit(banks, every):
    """A 4 s copy's first pass (frames at 0, 1 and 2 s: two on the 1 s/hash list's rows 5 and 6, one not) is decided by
    the short-file rule, on which a first pass does not stand (``first_pass_decides``). Against a sparse list the match
    also names every frame within ``DENSE_REACH_SECONDS`` of its closest frame, so adaptive sampling's second pass takes
    them (``LookWindows``) instead of a 1 fps window that re-judges the file on 4-6 frames, which lost sped-up and
    slowed-down copies. Against the every-frame list the same decision names none."""
    from vscan.bank.row_looks import DENSE_FPS, DENSE_REACH_SECONDS
    from vscan.decode import Adaptive
    from vscan.decode.sampling import LookWindows

    rng = np.random.default_rng(13)
    rows = every.hashes[[int(np.abs(every.timestamps_seconds - s).argmin()) for s in (5.0, 6.0)]].copy()
    for row in rows:
        bits = np.unpackbits(row)
        bits[rng.choice(256, 4, replace=False)] ^= 1
        row[:] = np.packbits(bits)
    hashes = np.concatenate([rows, rng.integers(0, 256, (1, 32), dtype=np.uint8)])
    fh = FrameHashes(np.arange(3), np.array([0.0, 1.0, 2.0]), np.full(3, 100), hashes)
    q = FileQuery((QueryVersion("frames", fh, dihedral_variants(hashes)),), {}, 4.0)
    m = _entry_match(banks[0], q)
    assert m is not None and m.is_match and m.decided_by == "short-file"
    looks = np.asarray(m.look_seconds)
    assert looks.size == DENSE_REACH_SECONDS * DENSE_FPS and looks.min() == pytest.approx(1 / DENSE_FPS)  # 0 itself is sampled
    assert looks.max() == pytest.approx(DENSE_REACH_SECONDS)
    second = Adaptive().refine([m], 4.0, sampled_seconds=[0.0, 1.0, 2.0])
    assert isinstance(second, LookWindows) and second.look_seconds == m.look_seconds
    every_frame = _entry_match(banks[2], q)
    assert every_frame is not None and every_frame.is_match and every_frame.look_seconds == ()
    # A first pass that stands (vPDQ's rule on three distinct frames, all on rows) is confirmed, not re-judged: no look.
    three = np.concatenate([rows, every.hashes[[int(np.abs(every.timestamps_seconds - 7.0).argmin())]]])
    fh3 = FrameHashes(np.arange(3), np.array([0.0, 1.0, 2.0]), np.full(3, 100), three)
    stands = _entry_match(banks[0], FileQuery((QueryVersion("frames", fh3, dihedral_variants(three)),), {}, 3.0))
    assert stands is not None and stands.is_match and stands.decided_by == "vpdq" and stands.look_seconds == ()


@pytest.mark.parametrize("bank", [0, 1], ids=["vpdq-1s", "pdq-per-image"])
def test_a_short_files_region_weak_hit_on_a_sparse_list_names_every_frame_near_it(banks, every, bank):
    """A 4 s re-framed copy whose first pass (5 frames at 0-4 s) met one row in its placed box (the region version: row 5
    with 4 bits flipped, at 1 s; its whole frames other video) is a weak hit. Against a sparse list it names every frame
    within ``DENSE_REACH_SECONDS`` of that frame inside the file, so the second pass meets the rows at their own frames
    (the list burst only where the first pass found something); the same hit in a 40 s file names none (a long file's
    1 fps second pass meets a row a second), and neither does a hit on the every-frame list."""
    from vscan.bank.row_looks import DENSE_FPS, DENSE_REACH_SECONDS

    rng = np.random.default_rng(17)
    n = 5
    times = np.arange(n, dtype=np.float64)
    other = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    region = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    bits = np.unpackbits(every.hashes[int(np.abs(every.timestamps_seconds - 5.0).argmin())])
    bits[rng.choice(256, 4, replace=False)] ^= 1
    region[1] = np.packbits(bits)
    fo = FrameHashes(np.arange(n), times, np.full(n, 100), other)
    fr = FrameHashes(np.arange(n), times, np.full(n, 100), region)
    box = np.tile([0.25, 0.75, 0.25, 0.75], (n, 1))

    def copy(duration: float) -> FileQuery:
        return FileQuery((QueryVersion("frames", fo, dihedral_variants(other)),
                          QueryVersion("region", fr, dihedral_variants(region), box=box, min_frames=3)), {}, duration)  # fmt: skip

    short = _entry_match(banks[bank], copy(4.0))
    assert short is not None and short.path == ("region",) and not short.is_match
    looks = np.asarray(short.look_seconds)
    assert looks.size > DENSE_FPS * 3  # every frame of 0-4 s but 1.0 itself (sampled already)
    assert looks.min() == pytest.approx(0.0) and looks.max() < 4.0 and np.abs(looks - 1.0).max() <= DENSE_REACH_SECONDS + 1e-6
    assert np.median(np.diff(looks)) == pytest.approx(1 / DENSE_FPS, abs=1e-6)
    long = _entry_match(banks[bank], copy(40.0))
    assert long is not None and not long.is_match and long.look_seconds == ()
    every_frame = _entry_match(banks[2], copy(4.0))
    assert every_frame is None or len(every_frame.look_seconds) < DENSE_FPS

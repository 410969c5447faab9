import math

import numpy as np
import pytest

from vscan.errors import ConfigError
from vscan.bank import Bank, BankWriter, build_bank
from vscan.hashing.vpdq import FrameHashes, read_vpdq
from vscan.bank.match import display_durations, match_digests, match_frames, unique_hashes

SAME_SCENE = ["chair-19-sd-bar", "chair-20-sd-bar", "chair-22-with-small-logo-bar", "chair-orig-22-sd-bar"]
DIFFERENT = ["doorknob-hd-no-bar", "pattern-hd-no-bar", "pattern-sd-grey-bar", "pattern-sd-with-small-logo-bar"]


def flip_bits(rng, h, n):
    bits = np.unpackbits(h)
    bits[rng.choice(256, n, replace=False)] ^= 1
    return np.packbits(bits)


def frames(hashes, qualities=None, fps=10.0):
    n = len(hashes)
    q = np.full(n, 100) if qualities is None else qualities
    return FrameHashes(np.arange(n), np.arange(n) / fps, q, np.asarray(hashes, np.uint8).reshape(n, 32))


def index_of(tmp_path, entries, name="b.db"):
    with BankWriter(tmp_path / name) as w:
        for entry_id, fh in entries.items():
            w.add_frame_hashes(entry_id, f"label-{entry_id}", "api", "video", fh)
    with Bank(tmp_path / name) as bank:
        return bank.load_index()


@pytest.fixture(scope="module")
def chair_index(tmp_path_factory, vpdq_dir):
    out = tmp_path_factory.mktemp("bank") / "chair.db"
    build_bank(out, [vpdq_dir / "chair-orig-22-sd-bar.txt"], label="chair")
    with Bank(out) as bank:
        return bank.load_index()


@pytest.mark.parametrize("method", ["brute", "blocking"])
@pytest.mark.parametrize("name", SAME_SCENE)
def test_real_same_scene_matches(chair_index, vpdq_dir, name, method):
    query = read_vpdq(vpdq_dir / f"{name}.txt")
    [m] = match_frames(query, chair_index, method=method)
    print(f"{name}: query {m.query_pct:.1f}% compared {m.compared_pct:.1f}% "
          f"matched {m.matched_seconds:.2f}s spans {m.query_span_seconds} {m.reference_span_seconds}")
    assert m.bank_entry_id == "chair-orig-22-sd-bar" and m.label == "chair"
    assert m.is_match and m.query_pct >= 90
    assert m.matched_seconds > 15
    assert m.query_span_seconds[0] == 0.0 and m.reference_span_seconds[1] == pytest.approx(22.4)


def test_real_identical_is_full_match(chair_index, vpdq_dir):
    [m] = match_frames(read_vpdq(vpdq_dir / "chair-orig-22-sd-bar.txt"), chair_index)
    assert (m.query_pct, m.compared_pct, m.distance_min) == (100.0, 100.0, 0)
    assert m.query_span_seconds == m.reference_span_seconds == (0.0, 22.4)


@pytest.mark.parametrize("name", DIFFERENT)
def test_real_different_videos_do_not_match(chair_index, vpdq_dir, name):
    matches = match_frames(read_vpdq(vpdq_dir / f"{name}.txt"), chair_index)
    print(name, [(m.query_pct, m.compared_pct) for m in matches])
    assert not any(m.is_match for m in matches)


def test_upstream_percentages_by_hand(chair_index, vpdq_dir):
    """Recompute vPDQ's query/compared % with the plain definition (sets, <= 31)."""
    q = read_vpdq(vpdq_dir / "chair-19-sd-bar.txt").filter_quality(50)
    b = read_vpdq(vpdq_dir / "chair-orig-22-sd-bar.txt").filter_quality(50)
    qu, bu = unique_hashes(q.hashes)[0], unique_hashes(b.hashes)[0]
    x = np.bitwise_count(qu[:, None, :] ^ bu[None, :, :]).sum(-1) <= 31
    [m] = match_frames(read_vpdq(vpdq_dir / "chair-19-sd-bar.txt"), chair_index)
    assert m.query_pct == pytest.approx(100 * x.any(1).mean())
    assert m.compared_pct == pytest.approx(100 * x.any(0).mean())


def test_semantics_dedupe_quality_spans(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (6, 32), dtype=np.uint8)
    far = rng.integers(0, 256, (4, 32), dtype=np.uint8)
    # reference: base[0..3] (base[0] three times), one low-quality copy of base[4]
    ref = frames([base[0], base[0], base[0], base[1], base[2], base[3], base[4]], np.array([100] * 6 + [10]))
    # query: near copies of base[0], base[1], then 2 far frames, then base[4] (only in a low-quality ref frame)
    qh = [flip_bits(rng, base[0], 20), flip_bits(rng, base[1], 31), far[0], far[1], base[4]]
    index = index_of(tmp_path, {"ref": ref, "other": frames(far[2:4])})
    [m] = match_frames(frames(qh), index)
    assert m.query_pct == pytest.approx(40.0)  # 2 of 5 unique query hashes
    assert m.compared_pct == pytest.approx(50.0)  # 2 of 4 unique good reference hashes
    assert m.distance_min == 20 and not m.is_match
    assert m.query_span_seconds == (0.0, 0.1)
    assert m.reference_span_seconds == (0.0, 0.3)
    assert m.matched_seconds == pytest.approx(0.2)
    # quality filter off: base[4] now matches exactly
    [m0] = match_frames(frames(qh), index, min_quality=0)
    assert m0.query_pct == pytest.approx(60.0) and m0.distance_min == 0
    # one bit further than the threshold: no match
    assert match_frames(frames([flip_bits(rng, base[1], 32)]), index) == []
    assert match_frames(frames(qh), index, distance_threshold=20)[0].query_pct == pytest.approx(20.0)
    assert match_frames(frames(qh), index, distance_threshold=19) == []


def test_compared_arm_and_min_query_pct(tmp_path):
    rng = np.random.default_rng(1)
    clip = rng.integers(0, 256, (3, 32), dtype=np.uint8)
    long_query = np.concatenate([clip, rng.integers(0, 256, (12, 32), dtype=np.uint8)])
    index = index_of(tmp_path, {"clip": frames(clip)})
    [m] = match_frames(frames(long_query), index)
    assert (m.query_pct, m.compared_pct, m.is_match) == (20.0, 100.0, True)
    [m] = match_frames(frames(long_query), index, match_compared_pct=math.inf)
    assert not m.is_match  # pytx's rule: query% only
    assert match_frames(frames(long_query), index, min_query_pct=50) == []


def test_nan_timestamps(tmp_path):
    rng = np.random.default_rng(2)
    h = rng.integers(0, 256, (2, 32), dtype=np.uint8)
    q = FrameHashes([0, 1], [np.nan, np.nan], [100, 100], h)
    [m] = match_frames(q, index_of(tmp_path, {"a": q}))
    assert m.query_pct == 100 and math.isnan(m.matched_seconds) and math.isnan(m.query_span_seconds[0])


def test_display_durations():
    np.testing.assert_allclose(display_durations(np.array([0.0, 1.0, 3.0])), [1.0, 2.0, 1.5])
    np.testing.assert_allclose(display_durations(np.array([2.0, 0.0])), [2.0, 2.0])
    assert display_durations(np.array([5.0])).tolist() == [0.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blocking_equals_brute_on_random_planted_bank(tmp_path, seed):
    rng = np.random.default_rng(seed)
    entries = {}
    for e in range(40):
        n = int(rng.integers(1, 60))
        entries[f"e{e:02d}"] = frames(rng.integers(0, 256, (n, 32), dtype=np.uint8), rng.integers(0, 101, n))
    pool = np.concatenate([fh.hashes for fh in entries.values()])
    planted = [flip_bits(rng, pool[i], int(rng.integers(0, 40))) for i in rng.choice(len(pool), 150)]
    query = frames(np.concatenate([planted, rng.integers(0, 256, (50, 32), dtype=np.uint8)]), rng.integers(30, 101, 200))
    index = index_of(tmp_path, entries)
    brute = match_frames(query, index, method="brute")
    blocked = match_frames(query, index, method="blocking")
    auto_small_threshold = match_frames(query, index, blocking_min_hashes=10)
    assert len(brute) > 5
    assert brute == blocked == auto_small_threshold


def test_bad_parameters(tmp_path, chair_index):
    q = frames(np.zeros((1, 32), np.uint8))
    with pytest.raises(ConfigError, match="method"):
        match_frames(q, chair_index, method="faiss")
    with pytest.raises(ConfigError, match="distance_threshold"):
        match_frames(q, chair_index, distance_threshold=-1)
    assert match_frames(FrameHashes.empty(), chair_index) == []


def test_match_digests(tmp_path):
    md5, sha256 = "0" * 32, "a" * 64
    with BankWriter(tmp_path / "d.db") as w:
        w.add_file_digest("m", "cat", "api", "md5", md5)
        w.add_file_digest("s", None, "api", "sha256", sha256)
    with Bank(tmp_path / "d.db") as bank:
        index = bank.load_index()
    hits = match_digests(sha256.upper(), md5, index)
    assert [(m.bank_entry_id, m.signal, m.label, m.is_match) for m in hits] == [
        ("s", "sha256", None, True),
        ("m", "md5", "cat", True),
    ]
    assert match_digests("b" * 64, None, index) == []


def test_unique_hashes_matches_numpy():
    rng = np.random.default_rng(3)
    h = rng.integers(0, 4, (500, 32), dtype=np.uint8)
    h[::7] = h[0]
    u, inv = unique_hashes(h)
    np.testing.assert_array_equal(u[inv], h)
    assert len(u) == len(np.unique(h, axis=0))

"""One matcher (vscan.bank.matcher.Matcher) over query versions as objects (vscan.bank.query), on the
real sample hashes of ../shared/data/vpdq: the same matches the matchers before it gave (their
figures below were taken from commit e0ef658's match_frames on the same inputs), the memory-mapped
bank narrowed inside ``match``, and the versions' rules."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.bank import Bank, build_bank
from vscan.bank.hash_input import dihedral_variants
from vscan.bank.matcher import Matcher
from vscan.bank.query import FileQuery, MatchSettings, QueryVersion
from vscan.hashing.vpdq import FrameHashes, read_vpdq

BANKED = ("chair-orig-22-sd-bar", "doorknob-hd-no-bar", "pattern-hd-no-bar")

#: (entry, query%, compared%, is_match, path, dihedral, decided_by, region box, query hashes matched, aligned frames, distance)
#: per scenario, from e0ef658 (vscan.bank.match.match_frames with the equivalent keywords).
BEFORE = {
    ("plain", "chair-19-sd-bar"): ("chair-orig-22-sd-bar", 100.0, 85.35, True, (), "original", None, None, 562, 0, 0),
    ("robust", "chair-19-sd-bar"): ("chair-orig-22-sd-bar", 100.0, 85.35, True, (), "original", "vpdq", None, 562, 564, 0),
    ("mirrored", "chair-19-sd-bar"): ("chair-orig-22-sd-bar", 100.0, 85.35, True, ("flip_h",), "flip_h", "vpdq", None, 562, 564, 0),
    ("overlay", "chair-19-sd-bar"): ("chair-orig-22-sd-bar", 100.0, 85.2, True, ("overlay-removed",), "original", "vpdq", None, 564, 564, 12),
    ("bordered", "chair-19-sd-bar"): ("chair-orig-22-sd-bar", 100.0, 85.2, True, ("letterbox-removed",), "original", "vpdq", None, 564, 564, 12),
    ("region", "chair-19-sd-bar"): ("chair-orig-22-sd-bar", 100.0, 85.2, True, ("region",), "original", "vpdq", (0.0, 0.5, 0.5, 1.0), 564, 564, 8),
    ("windows", "chair-19-sd-bar"): ("chair-orig-22-sd-bar", 33.33, 41.39, True, ("window",), "original", "alignment", (0.1, 0.9, 0.2, 0.8), 188, 188, 6),
    ("mirrored", "doorknob-hd-no-bar"): ("doorknob-hd-no-bar", 100.0, 100.0, True, ("flip_h",), "flip_h", "vpdq", None, 60, 60, 0),
    ("overlay", "doorknob-hd-no-bar"): ("doorknob-hd-no-bar", 100.0, 100.0, True, ("overlay-removed",), "original", "vpdq", None, 60, 60, 12),
    ("windows", "doorknob-hd-no-bar"): ("doorknob-hd-no-bar", 33.33, 38.33, True, ("window",), "original", "short-alignment", (0.1, 0.9, 0.2, 0.8), 20, 20, 6),
}  # fmt: skip


@pytest.fixture(scope="module")
def bank_path(tmp_path_factory, vpdq_dir):
    path = tmp_path_factory.mktemp("matcher") / "b.db"
    build_bank(path, [vpdq_dir / f"{n}.txt" for n in BANKED], label="x")
    return path


@pytest.fixture(scope="module")
def loaded(bank_path):
    with Bank(bank_path) as b:
        return b.load_index()


def _like(q: FrameHashes, hashes: np.ndarray) -> FrameHashes:
    return FrameHashes(q.frame_numbers, q.timestamps_seconds, q.qualities, np.ascontiguousarray(hashes))


def _flip(rng, hashes: np.ndarray, n: int) -> np.ndarray:
    out = hashes.copy()
    for i in range(len(out)):
        bits = np.unpackbits(out[i])
        bits[rng.choice(256, n, replace=False)] ^= 1
        out[i] = np.packbits(bits)
    return out


def _version(kind, fh, **kw) -> QueryVersion:
    return QueryVersion(kind, fh, dihedral_variants(fh.hashes), **kw)


def _query(scenario: str, q: FrameHashes) -> FileQuery:
    """The file query of one scenario (the same random draws as e0ef658's run: one generator per file, scenarios in this order)."""
    rng = np.random.default_rng(3)
    noisy, filled = _flip(rng, q.hashes, 36), _flip(rng, q.hashes, 12)  # 36 bits off as decoded, 12 once the overlay is filled
    k = np.arange(0, len(q), 3)
    wins = _flip(rng, q.hashes[k], 6)
    full = _flip(rng, q.hashes, 8)
    nq = _version("frames", _like(q, noisy))
    if scenario == "plain":
        return FileQuery.plain(q)
    if scenario == "robust":
        return FileQuery((_version("frames", q),))
    if scenario == "mirrored":
        return FileQuery((_version("frames", _like(q, dihedral_variants(q.hashes)[:, 4])),))
    if scenario == "overlay":
        return FileQuery((nq, _version("unoverlaid", _like(q, filled))))
    if scenario == "bordered":
        return FileQuery((nq, _version("unbordered", _like(q, filled), border_kind="letterbox")))
    if scenario == "windows":  # a still's windows: rows naming every third sample, one box each
        boxes = np.tile(np.array([[0.1, 0.9, 0.2, 0.8]]), (len(k), 1)) + np.arange(len(k))[:, None] * 1e-3
        region = FrameHashes(q.frame_numbers[k], q.timestamps_seconds[k], q.qualities[k], wins)
        return FileQuery((_version("region", region, box=boxes), nq))  # any order: versions are kept in VERSION_ORDER
    assert scenario == "region"
    return FileQuery((nq, _version("region", _like(q, full), box=np.tile(np.array([[0.0, 0.5, 0.5, 1.0]]), (len(q), 1)))))


def _key(m) -> tuple:
    return (m.bank_entry_id, round(m.query_pct, 2), round(m.compared_pct, 2), m.is_match, m.path, m.dihedral, m.decided_by,
            None if m.region is None else tuple(round(v, 4) for v in m.region), m.num_query_hashes_matched, m.aligned_frames, m.distance_min)  # fmt: skip


@pytest.mark.parametrize("scenario, name", sorted(BEFORE))
def test_every_path_gives_the_matches_it_gave_before(loaded, vpdq_dir, scenario, name):
    q = read_vpdq(vpdq_dir / f"{name}.txt")
    (match,) = Matcher(loaded).match(_query(scenario, q))
    assert _key(match) == BEFORE[scenario, name]


def test_digests_first_once_per_entry_then_frames(loaded, vpdq_dir, tmp_path):
    from vscan.bank import BankWriter

    q = read_vpdq(vpdq_dir / "pattern-sd-grey-bar.txt")
    assert Matcher(loaded).match(FileQuery.plain(q)) == []  # a different picture of the pattern (vPDQ's own verdict: no match)
    path = tmp_path / "d.db"
    with BankWriter(path) as w:  # the chair's frames, and a listed file's two digests, as a hash list gives them
        w.add_frame_hashes("chair-orig-22-sd-bar", "x", "api", "video", read_vpdq(vpdq_dir / "chair-orig-22-sd-bar.txt"))
        entry = w.add_file_digest("listed", "x", ("list.txt", "digest_list", "1"), "sha256", "ab" * 32)
        w.add_digest(entry, "md5", "cd" * 16)
    with Bank(path) as b:
        index = b.load_index()
    chair = read_vpdq(vpdq_dir / "chair-19-sd-bar.txt")
    found = Matcher(index).match(FileQuery.plain(chair, digests={"sha256": "AB" * 32, "md5": "cd" * 16}))
    assert [(m.bank_entry_id, m.signal) for m in found] == [("listed", "sha256"), ("chair-orig-22-sd-bar", "pdq")]  # one exact hit per entry
    assert Matcher(None).match(FileQuery.plain(chair)) == []  # no bank: nothing matches
    # Settings are the matcher's: a tighter radius finds fewer frames.
    (tight,) = Matcher(loaded, MatchSettings(distance_threshold=4)).match(FileQuery.plain(chair))
    assert tight.num_query_hashes_matched < found[1].num_query_hashes_matched


def test_a_memory_mapped_bank_is_narrowed_inside_match(bank_path, loaded, vpdq_dir, tmp_path):
    import shutil

    from vscan.bank.mapped import MappedBank, prepare
    from vscan.bank.updates import disable_entries

    path = tmp_path / "m.db"
    shutil.copyfile(bank_path, path)
    disable_entries(path, ["doorknob-hd-no-bar"], reason="test")
    prepare(path)
    mapped = Matcher(MappedBank.open(path))
    with Bank(path) as b:
        whole = Matcher(b.load_index())
    for name in ("chair-19-sd-bar", "doorknob-hd-no-bar", "pattern-sd-grey-bar"):
        q = read_vpdq(vpdq_dir / f"{name}.txt")
        for scenario in ("plain", "mirrored", "overlay", "windows"):
            query = _query(scenario, q)
            assert repr(mapped.match(query)) == repr(whole.match(query)), (name, scenario)
            skipped = ["doorknob-hd-no-bar"] if name == "doorknob-hd-no-bar" else []
            assert mapped.skipped_disabled(query) == whole.skipped_disabled(query) == skipped, (name, scenario)
    assert mapped.narrow_seconds > 0 and whole.narrow_seconds == 0
    assert mapped.for_file(query).index.num_entries < whole.index.num_entries  # only the candidates


def test_versions_are_checked_and_a_version_can_ask_for_frames(loaded, vpdq_dir):
    q = read_vpdq(vpdq_dir / "chair-19-sd-bar.txt")
    with pytest.raises(ValueError, match="unbordered rows must match"):
        FileQuery((_version("frames", q), _version("unbordered", FrameHashes(q.frame_numbers[:3], q.timestamps_seconds[:3], q.qualities[:3], q.hashes[:3]))))
    with pytest.raises(ValueError, match="region rows must name frames"):
        FileQuery((_version("frames", q), _version("region", FrameHashes(q.frame_numbers[:2] + 10**6, q.timestamps_seconds[:2], q.qualities[:2], q.hashes[:2]))))
    with pytest.raises(ValueError, match="needs its frames"):
        FileQuery((_version("unoverlaid", q),))
    # The off-centre window (vscan.runtime.offcentre): its own path name, and a match through it needs min_frames frames.
    base = _query("robust", _like(q, _flip(np.random.default_rng(1), q.hashes, 80)))  # as decoded: far from every row
    window = _version("region", _like(q, _flip(np.random.default_rng(2), q.hashes, 4)), box=np.zeros((len(q), 4)), name="off-centre")
    (m,) = Matcher(loaded).match(base.with_version(window))
    assert m.is_match and m.path == ("off-centre",) and m.num_query_hashes_matched > 100
    (m,) = Matcher(loaded).match(base.with_version(QueryVersion(**{**window.__dict__, "rows": None, "min_frames": 10_000})))
    assert not m.is_match and m.path == ("off-centre",)
    assert [v.kind for v in base.with_version(window).with_version(window).versions] == ["frames", "region"]


def test_lookup_robust_goes_through_the_matcher(bank_path, vpdq_dir, tmp_path):
    # `vscan bank lookup --robust` (vscan.bank.matcher.robust_lookup): on a bank of frames alone
    # (no extra rows) it finds exactly the rows the index's dihedral lookup finds, disabled entries left out.
    import shutil

    from vscan.bank.lookup import BankLookup
    from vscan.bank.matcher import robust_lookup
    from vscan.bank.updates import disable_entries

    path = tmp_path / "l.db"
    shutil.copyfile(bank_path, path)
    disable_entries(path, ["pattern-hd-no-bar"], reason="test")
    q = np.concatenate([read_vpdq(vpdq_dir / f"{n}.txt").hashes[::15] for n in ("chair-19-sd-bar", "pattern-hd-no-bar", "doorknob-hd-no-bar")])
    q[::2] = dihedral_variants(q[::2])[:, 4]  # every other one mirrored
    with BankLookup.open(path) as lookup:
        plain = lookup.lookup(q, 31, dihedral=True, lines=np.arange(len(q)) + 7)
    robust = robust_lookup(path, q, 31, lines=np.arange(len(q)) + 7)
    assert [(i["line"], i["hash"]) for i in robust] == [(i["line"], i["hash"]) for i in plain]
    assert [[{**h, "prep": "frame"} for h in i["matches"]] for i in plain] == [i["matches"] for i in robust]
    found = {h["entry"] for i in robust for h in i["matches"]}
    assert found == {"chair-orig-22-sd-bar", "doorknob-hd-no-bar"}  # the disabled pattern entry is not searched
    assert {h["variant"] for h in robust[0]["matches"]} == {"flip_h"}  # a mirrored hash: found as its mirror

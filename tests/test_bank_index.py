"""The bank's persisted index (vscan.bank.disk_index, vscan.bank.lookup) and
query-hash input (vscan.bank.hash_input), on real PDQ frame hashes of
generated clips expanded into clustered banks (vscan.bench.realistic_hashes):
exact against brute force at every radius, with and without numba, disabled
rows, the delta segment of appended rows, compaction, and the 8 dihedral
variants computed from a hash against those hashed from the edited frames.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from vscan.bank import build_bank, mih_kernel
from vscan.bank.append import append_to_bank
from vscan.bank.disk_index import SplitIndex
from vscan.bank.hash_input import dihedral_variants, read_query_hashes
from vscan.bank.index import brute_force_pairs, hamming_pairs
from vscan.bank.lookup import BankLookup, index_path
from vscan.bank.updates import disable_entries, enable_entries
from vscan.bench.realistic_hashes import expand_bank, make_queries, real_frame_hashes
from vscan.errors import BankError
from vscan.hashing.vpdq import hashes_to_hex


@pytest.fixture(scope="module")
def real():
    """(variants [C, F, 8, 32]) of 5 generated clips, 10 frames each."""
    variants, _ = real_frame_hashes(5, 10, seed0=100)
    return variants


@pytest.fixture(scope="module")
def bank_and_queries(real):
    bank = expand_bank(real[:4, :, 0], 30_000, run=(4, 12))
    queries = make_queries(bank, real[4, :, 0], 300)
    return bank, queries


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("radius", [0, 8, 16, 31, 32, 47, 63, 80])
def test_split_index_is_exact_at_every_radius(tmp_path, bank_and_queries, radius):
    bank, queries = bank_and_queries
    index = SplitIndex.build(bank, tmp_path / "x.vidx")
    got = index.search(queries, radius)
    want = brute_force_pairs(queries, bank, radius)
    assert _same(got, want)
    if radius == 31:
        assert want[0].size > 150  # the planted near copies are found (the test has neighbours to miss)


def test_numpy_fallback_and_disabled_rows_give_the_same_pairs(tmp_path, bank_and_queries, monkeypatch):
    bank, queries = bank_and_queries
    index = SplitIndex.build(bank, tmp_path / "x.vidx")
    disabled = np.zeros(len(bank), np.uint8)
    disabled[::3] = 1
    want = brute_force_pairs(queries, bank, 31)
    keep = disabled[want[1]] == 0
    assert _same(index.search(queries, 31, disabled=disabled), tuple(x[keep] for x in want))
    monkeypatch.setattr(mih_kernel, "AVAILABLE", False)
    fallback = SplitIndex.open(tmp_path / "x.vidx")
    assert _same(fallback.search(queries, 31), want)
    assert _same(fallback.search(queries, 31, disabled=disabled), tuple(x[keep] for x in want))


def test_index_is_memory_mapped_and_rebuilt_in_place(tmp_path, bank_and_queries):
    bank, queries = bank_and_queries
    SplitIndex.build(bank[:1000], tmp_path / "x.vidx")
    index = SplitIndex.build(bank, tmp_path / "x.vidx")  # replaces the smaller one
    reopened = SplitIndex.open(tmp_path / "x.vidx")
    assert len(index) == len(reopened) == len(bank)
    assert all(isinstance(a, np.memmap) for a in (reopened.hashes, reopened.ids, reopened.partner))
    assert sorted(p.name for p in (tmp_path).iterdir()) == ["x.vidx"]  # no temporary folder left
    copied = SplitIndex.open(tmp_path / "x.vidx", in_memory=True)
    assert not isinstance(copied.ids, np.memmap) and _same(copied.search(queries, 31), reopened.search(queries, 31))
    (tmp_path / "x.vidx" / "ids.npy").write_bytes(b"not an array")
    with pytest.raises(BankError):
        SplitIndex.open(tmp_path / "x.vidx")


def test_dihedral_variants_from_the_hash_alone(real):
    hashed = real.reshape(-1, 8, 32)  # the model's: each variant the hash of the turned / mirrored frame
    computed = dihedral_variants(hashed[:, 0])
    assert np.array_equal(computed[:, 0], hashed[:, 0]) and np.array_equal(computed[:, 6], hashed[:, 6])  # transpose: exact
    for k in (1, 2, 3, 4, 5, 7):  # the hash's own mirror: near the turned frame's hash, not it (PDQ's cells are not symmetric)
        d = hamming_pairs(computed[:, k], hashed[:, k])
        assert 0 < np.median(d) <= 40 and (d <= 48).all(), (k, d)  # measured: medians 6-30, at most 46
    other = hamming_pairs(computed[:, 1], hashed[:, 0])
    assert np.median(other) > 64  # a variant is not the hash itself


def test_query_hashes_from_pdq_vpdq_and_pytx_csv(real):
    hexes = hashes_to_hex(real[0, :3, 0])
    text = f"# comment\n{hexes[0]}\n\n0,100,{hexes[1]},0.000\npdq,{hexes[2]},label\nmd5,{'a' * 32},x\n{hexes[0]},87\n"
    q = read_query_hashes(io.StringIO(text))
    assert q.hex == [hexes[0], hexes[1], hexes[2], hexes[0]]
    assert q.lines.tolist() == [2, 4, 5, 7]
    assert np.array_equal(q.hashes[1], real[0, 1, 0])
    with pytest.raises(BankError, match=":2:"):
        read_query_hashes(io.StringIO(f"{hexes[0]}\nnot a hash\n"))


def _pdq_list(path, hashes):
    path.write_text("\n".join(hashes_to_hex(hashes)) + "\n")
    return path


def test_lookup_with_delta_disabled_entries_and_compaction(tmp_path, bank_and_queries):
    bank, queries = bank_and_queries
    lists = tmp_path / "lists"
    lists.mkdir()
    for i in range(3):
        _pdq_list(lists / f"pdq{i}.txt", bank[i * 5000 : (i + 1) * 5000])
    bank_path = tmp_path / "b.bank"
    build_bank(bank_path, [lists])

    def check(lookup, rows, off=()):
        got = lookup.lookup(queries, 31)
        q, b, d = brute_force_pairs(queries, rows, 31)
        want = [[] for _ in queries]
        for qi, bi, di in zip(q.tolist(), b.tolist(), d.tolist()):
            entry = f"pdq{bi // 5000}"
            if entry not in off:
                want[qi].append((di, entry, bi % 5000))
        assert [sorted((m["distance"], m["entry"], m["frame"]) for m in item["matches"]) for item in got] == [sorted(w) for w in want]
        assert [item["line"] for item in got] == list(range(1, len(queries) + 1))

    with BankLookup.open(bank_path) as lookup:
        assert lookup.describe()["indexed_rows"] == 15000 and lookup.delta_size == 0
        check(lookup, bank[:15000])
    built = (index_path(bank_path) / "ids.npy").stat().st_mtime_ns
    _pdq_list(tmp_path / "pdq3.txt", bank[15000:20000])
    assert append_to_bank(bank_path, [tmp_path / "pdq3.txt"])["added"] == 1
    disable_entries(bank_path, ["pdq1"], reason="test", who="tester")
    with BankLookup.open(bank_path) as lookup:
        assert lookup.delta_size == 5000 and lookup.disabled_entries == {"pdq1"}
        check(lookup, bank[:20000], off={"pdq1"})
    assert (index_path(bank_path) / "ids.npy").stat().st_mtime_ns == built  # nothing rebuilt
    enable_entries(bank_path, ["pdq1"])
    disable_entries(bank_path, ["pdq3"])  # a row of the delta
    with BankLookup.open(bank_path) as lookup:
        check(lookup, bank[:20000], off={"pdq3"})
    from vscan.bank.lookup import compact

    assert compact(bank_path)["indexed_rows"] == 20000
    with BankLookup.open(bank_path) as lookup:
        assert lookup.delta_size == 0
        check(lookup, bank[:20000], off={"pdq3"})
    build_bank(bank_path, [lists / "pdq0.txt"])  # a rewritten bank: the old index is stale, rebuilt on open
    with BankLookup.open(bank_path) as lookup:
        assert len(lookup.index) == 5000
        check(lookup, bank[:5000])


@pytest.mark.needs_cuda
def test_cuda_brute_force_lookup_equals_the_index(tmp_path, bank_and_queries):
    bank, queries = bank_and_queries
    _pdq_list(tmp_path / "pdq.txt", bank[:20000])
    build_bank(tmp_path / "g.bank", [tmp_path / "pdq.txt"])
    with BankLookup.open(tmp_path / "g.bank") as cpu, BankLookup.open(tmp_path / "g.bank", device="cuda") as gpu:
        for radius in (0, 31, 63, 90):
            assert _same(gpu.search(queries, radius), cpu.search(queries, radius))
        assert gpu.lookup(queries, 31, dihedral=True) == cpu.lookup(queries, 31, dihedral=True)

"""Exact Hamming radius search: numpy brute force and multi-index hashing
(vscan.bank.index, the CPU path, no torch) and torch's +-1 matmul
(vscan.kernels.hamming, the CUDA path) give the same pairs."""

import numpy as np
import pytest
import torch

from vscan.bank import index as np_index
from vscan.bank.index import MultiIndexHashing, brute_force_pairs, hamming_matrix_reference, hamming_pairs, resolve_device
from vscan.kernels.hamming import hamming_matrix, radius_search, search_pairs

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda)]


def random_with_planted(rng, nq, nb, max_flips=48):
    a = rng.integers(0, 256, (nq, 32), dtype=np.uint8)
    b = rng.integers(0, 256, (nb, 32), dtype=np.uint8)
    for i in range(nq):  # a near copy of every query at a random distance
        bits = np.unpackbits(a[i])
        flip = rng.choice(256, int(rng.integers(0, max_flips)), replace=False)
        bits[flip] ^= 1
        b[rng.integers(nb)] = np.packbits(bits)
    return a, b


def reference_pairs(a, b, radius):
    ref = hamming_matrix_reference(a, b)
    qq, bb = np.nonzero(ref <= radius)  # row-major: sorted by (q, b)
    return qq, bb, ref[qq, bb]


def assert_same_pairs(got, want):
    assert [x.dtype for x in got] == [np.dtype(np.int64), np.dtype(np.int64), np.dtype(np.int16)]
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("device", DEVICES)
def test_hamming_matrix_exact(device):
    rng = np.random.default_rng(1)
    a, b = random_with_planted(rng, 70, 130)
    b[0] = a[0]
    b[1] = ~a[1]
    ref = hamming_matrix_reference(a, b)
    fast = hamming_matrix(torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)).cpu().numpy()
    np.testing.assert_array_equal(fast, ref)
    assert fast.min() == 0 and fast.max() == 256


def test_hamming_pairs_exact():
    rng = np.random.default_rng(2)
    a, b = random_with_planted(rng, 40, 40)
    np.testing.assert_array_equal(hamming_pairs(a, b), np.diagonal(hamming_matrix_reference(a, b)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("radius", [0, 5, 31, 47])
def test_radius_search_chunked_equals_reference(device, radius):
    rng = np.random.default_rng(radius)
    a, b = random_with_planted(rng, 33, 301)
    q, bb, d = radius_search(torch.from_numpy(a).to(device), torch.from_numpy(b), radius, chunk=17, query_chunk=7)
    got = sorted(zip(q.cpu().tolist(), bb.cpu().tolist(), d.cpu().tolist()))
    assert got == list(zip(*(x.tolist() for x in reference_pairs(a, b, radius))))


@pytest.mark.parametrize("radius", [0, 5, 31, 47, 255, 256])
@pytest.mark.parametrize("tiles", [(4096, 32), (17, 7), (1, 1)])
def test_numpy_brute_force_equals_reference(radius, tiles):
    """Ragged tiles, distance 256 (all bits differ: more than uint8 holds) and radius 256 (every pair)."""
    rng = np.random.default_rng(radius + 7)
    a, b = random_with_planted(rng, 33, 301)
    b[5] = ~a[3]
    got = brute_force_pairs(a, b, radius, chunk=tiles[0], query_chunk=tiles[1])
    assert_same_pairs(got, reference_pairs(a, b, radius))
    if radius == 256:
        assert len(got[0]) == 33 * 301 and got[2].max() == 256


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("radius", [0, 1, 15, 16, 31, 32, 40])
def test_numpy_blocking_and_torch_brute_force_give_the_same_pairs(device, radius):
    """One data set, four searches: numpy brute force, multi-index hashing,
    torch's brute force (the CUDA path, here also on CPU) and the reference."""
    rng = np.random.default_rng(100 + radius)
    a, b = random_with_planted(rng, 120, 2000, max_flips=radius + 3)
    b = np.concatenate([b, b[:50]])  # duplicates in the bank
    torch_brute = search_pairs(a, b, radius, method="brute", device=device, chunk=333)
    numpy_brute = np_index.search_pairs(a, b, radius, method="brute", chunk=333)
    blocked = MultiIndexHashing(b).search(a, radius, query_chunk=31)
    want = reference_pairs(a, b, radius)
    for got in (torch_brute, numpy_brute, blocked):
        assert_same_pairs(got, want)
    assert len(want[0]) >= 1


def test_empty_inputs():
    z = np.zeros((0, 32), np.uint8)
    one = np.zeros((1, 32), np.uint8)
    for method in ("brute", "blocking"):
        for search in (search_pairs, np_index.search_pairs):
            assert len(search(z, one, 31, method=method)[0]) == 0
            assert len(search(one, z, 31, method=method)[0]) == 0
    assert len(brute_force_pairs(one, one, -1)[0]) == 0


def test_rejects_bad_shapes_and_methods():
    with pytest.raises(ValueError, match=r"\[N, 32\]"):
        hamming_matrix(torch.zeros((2, 31), dtype=torch.uint8), torch.zeros((2, 32), dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[N, 32\]"):
        brute_force_pairs(np.zeros((2, 31), np.uint8), np.zeros((2, 32), np.uint8), 3)
    with pytest.raises(ValueError, match="method"):
        np_index.search_pairs(np.zeros((1, 32), np.uint8), np.zeros((1, 32), np.uint8), 3, method="faiss")  # type: ignore[arg-type]


def test_resolve_device():
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:0") == "cuda"
    assert resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")


@pytest.mark.needs_cuda
def test_matcher_gives_the_same_matches_on_cuda_and_cpu(tmp_path):
    """match_frames end to end: torch's brute force on CUDA, numpy's on CPU."""
    from vscan.bank.match import match_frames
    from vscan.bank import Bank, BankWriter
    from vscan.hashing.vpdq import FrameHashes

    rng = np.random.default_rng(9)
    a, b = random_with_planted(rng, 200, 3000, max_flips=40)

    def fh(h):
        return FrameHashes(np.arange(len(h)), np.arange(len(h)) / 10.0, np.full(len(h), 100), h)

    with BankWriter(tmp_path / "b.db") as w:
        for e in range(30):
            w.add_frame_hashes(f"e{e}", f"label-{e}", "api", "video", fh(b[e * 100 : (e + 1) * 100]))
    with Bank(tmp_path / "b.db") as bank:
        index = bank.load_index()
    variants = np.repeat(a[:, None], 8, axis=1)
    for kwargs in ({}, {"variants": variants}):
        on_cpu = match_frames(fh(a), index, method="brute", device="cpu", **kwargs)
        assert len(on_cpu) > 5
        assert match_frames(fh(a), index, method="brute", device="cuda", **kwargs) == on_cpu

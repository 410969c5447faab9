import numpy as np
import pytest
import torch

from vscan.kernels.hamming import (
    MultiIndexHashing,
    hamming_matrix,
    hamming_matrix_reference,
    hamming_pairs,
    radius_search,
    search_pairs,
)

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
    ref = hamming_matrix_reference(a, b)
    q, bb, d = radius_search(torch.from_numpy(a).to(device), torch.from_numpy(b), radius, chunk=17, query_chunk=7)
    got = sorted(zip(q.cpu().tolist(), bb.cpu().tolist(), d.cpu().tolist()))
    qq, bbb = np.nonzero(ref <= radius)
    assert got == sorted(zip(qq.tolist(), bbb.tolist(), ref[qq, bbb].tolist()))


@pytest.mark.parametrize("radius", [0, 1, 15, 16, 31, 32, 40])
def test_blocking_equals_brute_force(radius):
    rng = np.random.default_rng(100 + radius)
    a, b = random_with_planted(rng, 120, 2000, max_flips=radius + 3)
    b = np.concatenate([b, b[:50]])  # duplicates in the bank
    index = MultiIndexHashing(b)
    brute = search_pairs(a, b, radius, method="brute", device="cpu", chunk=333)
    blocked = index.search(a, radius, query_chunk=31)
    for x, y in zip(brute, blocked):
        np.testing.assert_array_equal(x, y)
    assert len(brute[0]) >= 1


def test_empty_inputs():
    z = np.zeros((0, 32), np.uint8)
    one = np.zeros((1, 32), np.uint8)
    for method in ("brute", "blocking"):
        assert len(search_pairs(z, one, 31, method=method)[0]) == 0
        assert len(search_pairs(one, z, 31, method=method)[0]) == 0


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[N, 32\]"):
        hamming_matrix(torch.zeros((2, 31), dtype=torch.uint8), torch.zeros((2, 32), dtype=torch.uint8))

"""``vscan.frames.window_hash._pack`` (every window, box and turned-frame hash of the model's searches) packs bits in
PDQ's hex byte order as the permutation of ``vscan.hashing.pdq_ops.pack_permutation`` says (issue #30: it packs the
bytes in order and reverses them, not gathering every bit through the permutation)."""

import numpy as np

from vscan.frames.window_hash import _pack
from vscan.hashing.pdq_ops import pack_permutation


def _by_permutation(bits: np.ndarray) -> np.ndarray:
    perm, _ = pack_permutation()
    return np.packbits(bits[..., perm].reshape(*bits.shape[:-1], 32, 8), axis=-1, bitorder="little")[..., 0]


def test_pack_is_the_permutations_packing():
    rng = np.random.default_rng(7)
    for shape in [(256,), (3, 256), (4, 5, 256), (2, 3, 2, 256)]:
        bits = rng.random(shape) > 0.5
        got = _pack(bits)
        assert got.dtype == np.uint8 and got.shape == (*shape[:-1], 32) and got.flags.c_contiguous
        np.testing.assert_array_equal(got, _by_permutation(bits))
    one = np.zeros(256, bool)
    for b in (0, 7, 8, 100, 255):  # each bit lands in the byte and at the place the permutation gives it
        one[:] = False
        one[b] = True
        np.testing.assert_array_equal(_pack(one), _by_permutation(one))

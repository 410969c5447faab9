"""``vscan.bank.prepared.unique_hashes`` (every query and bank de-duplication of the matcher) gives the four 64-bit
words' lexsort order and inverse, whether rows repeat, share their first word, or both (issue #30: it sorts on the
first word alone where that decides the order)."""

import numpy as np

from vscan.bank.prepared import unique_hashes


def _reference(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lexsort over all four words (the order unique_hashes has always given)."""
    words = hashes.view(np.uint64)
    order = np.lexsort(words.T[::-1])
    s = words[order]
    new = np.ones(len(hashes), bool)
    new[1:] = (s[1:] != s[:-1]).any(axis=1)
    inverse = np.empty(len(hashes), np.int64)
    inverse[order] = np.cumsum(new) - 1
    return hashes[order[new]], inverse


def test_unique_hashes_keeps_the_lexsort_order():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    tied = base.copy()
    tied[1::2, :8] = tied[0::2, :8]  # pairs sharing their first word, differing after it
    cases = {
        "one": base[:1],
        "distinct": base,
        "repeats": np.concatenate([base, base[:150], base[:20]])[rng.permutation(470)],
        "first word ties": tied[rng.permutation(300)],
        "both": np.concatenate([tied, tied[:40], base[:10]])[rng.permutation(350)],
        "repeated ties only": np.concatenate([base[:5]] * 4),
        "low bits": np.eye(32, dtype=np.uint8)[rng.integers(0, 32, 64)],
    }
    for name, hashes in cases.items():
        hashes = np.ascontiguousarray(hashes)
        got, want = unique_hashes(hashes), _reference(hashes)
        np.testing.assert_array_equal(got[0], want[0], err_msg=name)
        np.testing.assert_array_equal(got[1], want[1], err_msg=name)
        np.testing.assert_array_equal(got[0][got[1]], hashes, err_msg=name)
    empty = unique_hashes(np.zeros((0, 32), np.uint8))
    assert empty[0].shape == (0, 32) and empty[1].shape == (0,)

"""A bank of rows sparse in time (``--rows sparse``: two a second on real footage) meets a copy's frames at the
rows' own times, some of them just past the 31-bit threshold: once a strict hit sets the alignment, a whole
frame within 40 bits of the row standing at its predicted time counts (``vscan.bank.aligned_frames``)."""

from __future__ import annotations

import numpy as np

from vscan.bank.hash_input import dihedral_variants
from vscan.bank.matcher import Matcher
from vscan.bank.query import FileQuery, QueryVersion
from vscan.bank.store import Bank
from vscan.bank.writer import BankWriter
from vscan.hashing.vpdq import FrameHashes


def _flip(h: np.ndarray, bits: int, rng) -> np.ndarray:
    b = np.unpackbits(h)
    b[rng.choice(256, bits, replace=False)] ^= 1
    return np.packbits(b)


def _index(path, rows: np.ndarray):
    with BankWriter(path) as writer:  # one row every 0.5 s, each standing for the half second up to the next
        n = len(rows)
        fh = FrameHashes(np.arange(n, dtype=np.int64) * 15, np.arange(n) * 0.5, np.full(n, 90, np.int32), rows)
        writer.add_frame_hashes("src", "reported", ("gen.txt", "vpdq_txt", "src"), "video", fh, n * 0.5)
    with Bank(path) as b:
        return b.load_index()


def _match(index, frames: np.ndarray):
    n = len(frames)
    fh = FrameHashes(np.arange(n, dtype=np.int64) * 30, np.arange(n) * 1.0, np.full(n, 90, np.int32), frames)
    return [m for m in Matcher(index).match(FileQuery((QueryVersion("frames", fh, dihedral_variants(frames)),), {}, n * 1.0))
            if m.bank_entry_id == "src"]  # fmt: skip


def test_frames_just_past_the_threshold_at_the_aligned_time_decide_and_elsewhere_do_not(tmp_path):
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 256, (20, 32), np.uint8)
    index = _index(tmp_path / "b.bank", rows)
    strict = [_flip(rows[0], 10, rng), _flip(rows[2], 10, rng)]  # frames at 0 s and 1 s: the alignment
    at_their_time = np.stack(strict + [_flip(rows[2 * k], 36, rng) for k in range(2, 10)])
    (m,) = _match(index, at_their_time)
    assert m.is_match and m.decided_by == "aligned-frames" and m.query_pct == 20.0
    too_far = np.stack(strict + [_flip(rows[2 * k], 48, rng) for k in range(2, 10)])
    (m,) = _match(index, too_far)
    assert not m.is_match and m.decided_by is None
    half_a_second_off = np.stack(strict + [_flip(rows[2 * k + 1], 36, rng) for k in range(2, 10)])  # rows 0.5 s from the frames' time
    (m,) = _match(index, half_a_second_off)
    assert not m.is_match

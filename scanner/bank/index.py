"""Exact radius search between 256-bit PDQ hashes, in numpy (no torch).

Two ways, same pairs:

- brute force (:func:`brute_force_pairs`): XOR the four 64-bit words of every
  (query, bank) pair in cache-sized tiles and popcount them
  (``np.bitwise_count``); single-threaded, a little faster than torch's
  two-thread +-1 matmul on CPU (2,000 x 50,000 at radius 31: 0.46-0.53 s vs
  0.55-0.62 s, same runs);
- multi-index hashing (:class:`MultiIndexHashing`) over 16 chunks of 16 bits:
  if d(a, b) <= r then, by pigeonhole, some chunk differs in at most r // 16
  bits, so probing every chunk value within r // 16 bits of the query's finds
  every true neighbour; candidates are then verified with an exact popcount.

On CUDA, ``vscan.kernels.hamming`` (torch) does the brute force; the matcher
(``vscan.bank.match``) picks it where ``resolve_device`` says "cuda".
Hashes are uint8 ``[N, 32]`` everywhere (see ``vscan.hashing.vpdq``).
"""

from __future__ import annotations

import functools
import itertools
from typing import Literal

import numpy as np

__all__ = [
    "hamming_pairs",
    "hamming_matrix_reference",
    "brute_force_pairs",
    "MultiIndexHashing",
    "search_pairs",
    "resolve_device",
]

_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def _check(name: str, hashes: np.ndarray) -> np.ndarray:
    hashes = np.ascontiguousarray(hashes, np.uint8)
    if hashes.ndim != 2 or hashes.shape[1] != 32:
        raise ValueError(f"{name} must be uint8 [N, 32], got {hashes.dtype} {tuple(hashes.shape)}")
    return hashes


def hamming_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise distances d(a[i], b[i]), int16 [N] (exact popcount on 64-bit words)."""
    wa = np.ascontiguousarray(a, np.uint8).view(np.uint64)
    wb = np.ascontiguousarray(b, np.uint8).view(np.uint64)
    return np.bitwise_count(wa ^ wb).sum(axis=1, dtype=np.int16)


def hamming_matrix_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Popcount-LUT reference, int16 [Q, B]; memory Q*B*32 bytes: for tests."""
    x = np.bitwise_xor(np.asarray(a, np.uint8)[:, None, :], np.asarray(b, np.uint8)[None, :, :])
    return _POPCOUNT8[x].sum(axis=-1, dtype=np.int16)


def _empty_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int16)


def brute_force_pairs(
    query: np.ndarray, bank: np.ndarray, radius: int, *, chunk: int = 4096, query_chunk: int = 32, bank_columns: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs with distance <= radius: (q_idx int64, b_idx int64, dist int16), sorted by (q, b).

    Tiles of ``query_chunk`` x ``chunk`` pairs (32 x 4,096 by default: the
    fastest of the tiles measured on 2,000 x 50,000); memory is a few buffers
    of one tile, whatever the sizes. ``bank_columns``: ``vscan.hashing.hamming_numba.columns(bank)``, where the
    caller keeps it (the compiled loop reads it).
    """
    query, bank = _check("query", query), _check("bank", bank)
    if chunk < 1 or query_chunk < 1:
        raise ValueError(f"Invalid chunk sizes ({chunk}, {query_chunk}). Supported values are >= 1")
    if radius < 0 or not len(query) or not len(bank):
        return _empty_pairs()
    from vscan.hashing import hamming_numba

    if hamming_numba.loaded() and len(query) * len(bank) >= hamming_numba.MIN_PAIRS:  # the same pairs, compiled (issue #30)
        return hamming_numba.pairs_within(query, bank, radius, bank_columns=bank_columns)
    qw = query.view(np.uint64)  # [Q, 4]
    bw = np.ascontiguousarray(bank.view(np.uint64).T)  # [4, B]: one word of every bank row is contiguous
    qc, bc = min(query_chunk, len(query)), min(chunk, len(bank))
    xor = np.empty((qc, bc), np.uint64)
    bits = np.empty((qc, bc), np.uint8)
    dist = np.empty((qc, bc), np.uint16)  # up to 256: too many for uint8
    out_q, out_b, out_d = [], [], []
    for b0 in range(0, len(bank), bc):
        words = bw[:, b0 : b0 + bc]
        nb = words.shape[1]
        for q0 in range(0, len(query), qc):
            qwords = qw[q0 : q0 + qc]
            nq = len(qwords)
            x, c, d = xor[:nq, :nb], bits[:nq, :nb], dist[:nq, :nb]
            for k in range(4):
                np.bitwise_xor(qwords[:, k : k + 1], words[k][None, :], out=x)
                np.bitwise_count(x, out=c)
                if k == 0:
                    np.copyto(d, c)
                else:
                    np.add(d, c, out=d)
            qq, bb = np.nonzero(d <= radius)
            if qq.size:
                out_q.append(qq + q0)
                out_b.append(bb + b0)
                out_d.append(d[qq, bb].astype(np.int16))
    if not out_q:
        return _empty_pairs()
    q, b, d = np.concatenate(out_q).astype(np.int64), np.concatenate(out_b).astype(np.int64), np.concatenate(out_d)
    order = np.lexsort((b, q))
    return q[order], b[order], d[order]


class MultiIndexHashing:
    """Exact radius search by multi-index hashing over 16 x 16-bit chunks (numpy, CPU).

    Built once per bank: per chunk position, a CSR table (65,536 buckets) of the
    bank rows holding each 16-bit value. A query probes, per chunk, every value
    within ``radius // 16`` bits (17 probes per chunk at radius 16..31), then
    verifies candidates exactly. Cost grows with the bucket sizes, so it wins
    while the bank is large and not dominated by a few repeated chunk values.
    """

    NUM_CHUNKS = 16

    def __init__(self, bank: np.ndarray):
        bank = _check("bank", bank)
        self.bank = bank
        chunks = bank.view(">u2").astype(np.int64)  # [N, 16], byte order only has to be consistent
        self._order = []
        self._offsets = []
        for c in range(self.NUM_CHUNKS):
            col = chunks[:, c]
            self._order.append(np.argsort(col, kind="stable").astype(np.int64))
            counts = np.bincount(col, minlength=1 << 16)
            offsets = np.zeros((1 << 16) + 1, np.int64)
            np.cumsum(counts, out=offsets[1:])
            self._offsets.append(offsets)

    def __len__(self) -> int:
        return int(self.bank.shape[0])

    @staticmethod
    def _probe_masks(bits: int) -> np.ndarray:
        masks = [0]
        for k in range(1, bits + 1):
            for combo in itertools.combinations(range(16), k):
                masks.append(sum(1 << i for i in combo))
        return np.asarray(masks, np.int64)

    def search(
        self, query: np.ndarray, radius: int, *, query_chunk: int = 256
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs with distance <= radius: (q_idx int64, b_idx int64, dist int16), sorted by (q, b)."""
        query = _check("query", query)
        if radius < 0:
            return _empty_pairs()
        masks = self._probe_masks(min(radius // self.NUM_CHUNKS, 16))
        q_chunks_all = query.view(">u2").astype(np.int64)
        n_bank = len(self)
        out = []
        for q0 in range(0, query.shape[0], query_chunk):
            q_chunks = q_chunks_all[q0 : q0 + query_chunk]
            hits = []
            for c in range(self.NUM_CHUNKS):
                probes = (q_chunks[:, c : c + 1] ^ masks[None, :]).ravel()  # [nq * P]
                starts = self._offsets[c][probes]
                lengths = self._offsets[c][probes + 1] - starts
                total = int(lengths.sum())
                if total == 0:
                    continue
                # Expand the CSR ranges without a Python loop, then verify exactly.
                owner = np.repeat(np.arange(probes.shape[0]), lengths)
                pos = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths) + starts[owner]
                cand_b = self._order[c][pos]
                cand_q = owner // masks.shape[0]
                d = hamming_pairs(query[q0 + cand_q], self.bank[cand_b])
                keep = d <= radius
                hits.append(cand_q[keep] * n_bank + cand_b[keep])
            if not hits:
                continue
            # A neighbour close on several chunks is found several times: de-duplicate the hits
            # (few) only. Sort-based on purpose: numpy's hash-based unique is slow on int64 here.
            key = np.sort(np.concatenate(hits))
            key = key[np.concatenate(([True], key[1:] != key[:-1]))] if key.size else key
            qq, bb = np.divmod(key, n_bank)
            out.append((qq + q0, bb, hamming_pairs(query[q0 + qq], self.bank[bb])))
        if not out:
            return _empty_pairs()
        return tuple(np.concatenate(parts) for parts in zip(*out))  # type: ignore[return-value]


def search_pairs(
    query: np.ndarray,
    bank: np.ndarray,
    radius: int,
    *,
    method: Literal["brute", "blocking"] = "brute",
    index: MultiIndexHashing | None = None,
    chunk: int = 4096,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy in, numpy out, pairs sorted by (q, b): the CPU entry point matchers use."""
    if method == "blocking":
        return (index or MultiIndexHashing(bank)).search(query, radius)
    if method != "brute":
        raise ValueError(f"Invalid method ({method!r}). Supported values are 'brute', 'blocking'")
    return brute_force_pairs(query, bank, radius, chunk=chunk)


@functools.lru_cache(maxsize=1)
def _torch_sees_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: str | None) -> Literal["cpu", "cuda"]:
    """Where the brute force runs: "cuda" (torch, ``vscan.kernels.hamming``)
    or "cpu" (numpy, here). None: CUDA when torch is installed and sees a GPU."""
    if device is None:
        return "cuda" if _torch_sees_cuda() else "cpu"
    kind = str(device).split(":")[0]
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"Invalid device ({device!r}). Supported values are 'cpu', 'cuda', None")
    return kind  # type: ignore[return-value]

"""Hamming distances between 256-bit PDQ hashes.

Fast path (torch, any device): map bits to +-1, then
``d(a, b) = (256 - <s(a), s(b)>) / 2``, one matmul per block. Every product is
+-1 and every partial sum an integer of magnitude <= 256, so float16 / bfloat16
(CUDA) and float32 (CPU) compute it exactly.

Blocking (numpy, exact): multi-index hashing over 16 chunks of 16 bits. If
d(a, b) <= r then, by pigeonhole, some chunk differs in at most r // 16 bits, so
probing every chunk value within r // 16 bits of the query's finds every true
neighbour; candidates are then verified with an exact popcount.

Hashes are uint8 ``[N, 32]`` everywhere (see ``vscan.hashing.vpdq``).
"""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np
import torch

__all__ = [
    "default_device",
    "unpack_signs",
    "hamming_matrix",
    "hamming_matrix_reference",
    "hamming_pairs",
    "radius_search",
    "MultiIndexHashing",
    "search_pairs",
]

_NUM_BITS = 256
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _check_hashes(name: str, t: torch.Tensor) -> None:
    if t.dtype != torch.uint8 or t.ndim != 2 or t.shape[1] != 32:
        raise ValueError(f"{name} must be uint8 [N, 32], got {t.dtype} {tuple(t.shape)}")


def _compute_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.float32


def unpack_signs(hashes: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """uint8 [N, 32] -> [N, 256] of +1 (bit 0) / -1 (bit 1). Bit order is irrelevant to distances."""
    _check_hashes("hashes", hashes)
    dtype = dtype or _compute_dtype(hashes.device)
    shifts = torch.arange(8, device=hashes.device, dtype=torch.uint8)
    bits = (hashes.unsqueeze(-1) >> shifts) & 1  # [N, 32, 8]
    return (1 - 2 * bits.reshape(hashes.shape[0], _NUM_BITS).to(dtype))


def _distances_from_signs(sa: torch.Tensor, sb: torch.Tensor) -> torch.Tensor:
    dot = sa @ sb.T
    return ((_NUM_BITS - dot.to(torch.int32)) // 2).to(torch.int16)


def hamming_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """All distances, int16 [Q, B]. Both on the same device."""
    _check_hashes("a", a)
    _check_hashes("b", b)
    return _distances_from_signs(unpack_signs(a), unpack_signs(b))


def hamming_matrix_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Popcount-LUT reference, int16 [Q, B]; memory Q*B*32 bytes: for tests."""
    x = np.bitwise_xor(np.asarray(a, np.uint8)[:, None, :], np.asarray(b, np.uint8)[None, :, :])
    return _POPCOUNT8[x].sum(axis=-1, dtype=np.int16)


def hamming_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise distances d(a[i], b[i]), int16 [N] (exact popcount on 64-bit words)."""
    wa = np.ascontiguousarray(a, np.uint8).view(np.uint64)
    wb = np.ascontiguousarray(b, np.uint8).view(np.uint64)
    return np.bitwise_count(wa ^ wb).sum(axis=1, dtype=np.int16)


def radius_search(
    query: torch.Tensor,
    bank: torch.Tensor,
    radius: int,
    *,
    chunk: int = 16384,
    query_chunk: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All pairs with distance <= radius: (q_idx int64, b_idx int64, dist int16), on query's device.

    Memory is bounded by ``query_chunk * chunk`` distances plus the +-1 expansion
    of one bank chunk (``chunk * 256`` values), whatever the bank size. Pairs are
    ordered by bank chunk, then query chunk, then row-major within a block.
    """
    _check_hashes("query", query)
    _check_hashes("bank", bank)
    if chunk < 1 or query_chunk < 1:
        raise ValueError(f"Invalid chunk sizes ({chunk}, {query_chunk}). Supported values are >= 1")
    device = query.device
    q_signs = [unpack_signs(query[i : i + query_chunk]) for i in range(0, query.shape[0], query_chunk)]
    out_q, out_b, out_d = [], [], []
    for b0 in range(0, bank.shape[0], chunk):
        b_signs = unpack_signs(bank[b0 : b0 + chunk].to(device))
        for qi, qs in enumerate(q_signs):
            # d <= r  <=>  <s(a), s(b)> >= 256 - 2r: threshold the dot products, convert only the hits.
            dot = qs @ b_signs.T
            qq, bb = torch.nonzero(dot >= _NUM_BITS - 2 * radius, as_tuple=True)
            if qq.numel():
                out_q.append(qq + qi * query_chunk)
                out_b.append(bb + b0)
                out_d.append(((_NUM_BITS - dot[qq, bb].to(torch.int32)) // 2).to(torch.int16))
    if not out_q:
        empty = torch.zeros(0, dtype=torch.int64, device=device)
        return empty, empty.clone(), torch.zeros(0, dtype=torch.int16, device=device)
    return torch.cat(out_q), torch.cat(out_b), torch.cat(out_d)


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
        bank = np.ascontiguousarray(bank, np.uint8)
        if bank.ndim != 2 or bank.shape[1] != 32:
            raise ValueError(f"bank must be uint8 [N, 32], got {bank.dtype} {tuple(bank.shape)}")
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
        query = np.ascontiguousarray(query, np.uint8)
        if query.ndim != 2 or query.shape[1] != 32:
            raise ValueError(f"query must be uint8 [N, 32], got {query.dtype} {tuple(query.shape)}")
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


def _empty_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int16)


def search_pairs(
    query: np.ndarray,
    bank: np.ndarray,
    radius: int,
    *,
    method: Literal["brute", "blocking"] = "brute",
    index: MultiIndexHashing | None = None,
    device: torch.device | str | None = None,
    chunk: int = 16384,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy in, numpy out, pairs sorted by (q, b); the one entry point matchers use."""
    if method == "blocking":
        return (index or MultiIndexHashing(bank)).search(query, radius)
    if method != "brute":
        raise ValueError(f"Invalid method ({method!r}). Supported values are 'brute', 'blocking'")
    device = torch.device(device) if device is not None else default_device()
    q, b, d = radius_search(
        torch.from_numpy(np.ascontiguousarray(query, np.uint8)).to(device),
        torch.from_numpy(np.ascontiguousarray(bank, np.uint8)),
        radius,
        chunk=chunk,
    )
    q, b, d = q.cpu().numpy(), b.cpu().numpy(), d.cpu().numpy()
    order = np.lexsort((b, q))
    return q[order], b[order], d[order]

"""Hamming distances between 256-bit PDQ hashes on torch: the CUDA brute force.

Map bits to +-1, then ``d(a, b) = (256 - <s(a), s(b)>) / 2``, one matmul per
block. Every product is +-1 and every partial sum an integer of magnitude
<= 256, so float16 / bfloat16 (CUDA) and float32 (CPU) compute it exactly.

The CPU path needs none of this: ``vscan.bank.index`` has the numpy brute
force and multi-index hashing (re-exported here), with the same pairs.

Hashes are uint8 ``[N, 32]`` everywhere (see ``vscan.hashing.vpdq``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from vscan.bank.index import MultiIndexHashing, hamming_matrix_reference, hamming_pairs

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
    """numpy in, numpy out, pairs sorted by (q, b); brute force on torch (``device``)."""
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

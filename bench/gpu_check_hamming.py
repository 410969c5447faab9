"""bench/gpu_check.py's hamming part: exact radius search on the device
(vscan.kernels.hamming.radius_search) at bank sizes of millions of rows, its
pairs and lookups/s against the CPU index (SplitIndex) in the same run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .gpu_check_measure import Recorder, SkipPart, _memory, _rate, _reset_memory
from .gpu_check_plan import Plan


def _bank_and_queries(rows: int, queries: int, seed: int):
    """Random bank rows; half the queries are bank rows with 0..40 bits
    flipped (neighbours within 31 and just beyond), half random."""
    import numpy as np

    rng = np.random.default_rng(seed)
    bank = rng.integers(0, 256, (rows, 32), dtype=np.uint8)
    q = rng.integers(0, 256, (queries, 32), dtype=np.uint8)
    near = np.arange(0, queries, 2)
    q[near] = bank[rng.integers(0, rows, len(near))]
    bits = np.unpackbits(q[near], axis=1)
    for i, k in enumerate(rng.integers(0, 41, len(near))):
        bits[i, rng.choice(256, k, replace=False)] ^= 1
    q[near] = np.packbits(bits, axis=1)
    return bank, q


#: Query hashes of one file's search: an adaptive first pass of 8 frames, 8 dihedral variants each
#: (vscan matches file by file, so this is the batch a search sees).
FILE_QUERIES = 64


def part_hamming(plan: Plan, rec: Recorder, deadline: float, work: Path) -> None:
    import torch

    from vscan.kernels.hamming import radius_search

    dev = plan.device
    if dev == "cuda" and not torch.cuda.is_available():
        raise SkipPart("torch sees no CUDA device")
    out = {}
    for k, rows in enumerate(plan.hamming_rows):
        if time.monotonic() > deadline - 5:
            out[str(rows)] = {"status": "skipped", "reason": "out of time share"}
            rec["rows"] = out
            continue
        bank, queries = _bank_and_queries(rows, plan.hamming_queries, seed=29 + k)
        _reset_memory(dev)
        bank_t = torch.from_numpy(bank).to(dev)
        q_t = torch.from_numpy(queries).to(dev)
        row: dict[str, Any] = {"status": "ok", "queries": len(queries), "radius": plan.radius, "by_chunk": {}}
        chunks = (16384, 262144) if dev == "cuda" else (16384,)
        pairs = None
        for chunk in chunks:  # the default chunk, and a larger one on the device
            def call() -> int:
                nonlocal pairs
                pairs = radius_search(q_t, bank_t, plan.radius, chunk=chunk)
                return len(queries)

            r = _rate(call, 2, deadline - 5, dev)
            row["by_chunk"][str(chunk)] = {"lookups_per_second": r["items_per_second"], "seconds": r["seconds"], "calls": r["calls"]}
        row["lookups_per_second"] = max(v["lookups_per_second"] for v in row["by_chunk"].values())
        best = int(max(row["by_chunk"], key=lambda c: row["by_chunk"][c]["lookups_per_second"]))
        one_file = q_t[:FILE_QUERIES]

        def file_call() -> int:
            radius_search(one_file, bank_t, plan.radius, chunk=best)
            return len(one_file)

        r = _rate(file_call, 3, deadline - 5, dev)
        row["per_file"] = {"queries": len(one_file), "chunk": best, "lookups_per_second": r["items_per_second"]}
        row["pairs_found"] = int(len(pairs[0]))
        row["memory"] = _memory(dev)
        rec["rows"] = {**out, str(rows): row}
        row["exact"] = _exact_against_cpu(bank, queries, pairs, plan.exact_sample, plan.radius)
        row["device_over_cpu_index"] = row["lookups_per_second"] / row["exact"]["cpu_index_lookups_per_second"]
        out[str(rows)] = row
        rec["rows"] = out
        del bank_t, q_t


def _exact_against_cpu(bank, queries, pairs, sample: int, radius: int) -> dict[str, Any]:
    """The device's pairs (``pairs``, of all ``queries``) against the CPU
    index's (vscan.bank.disk_index, what a scan searches a bank of over 50,000
    hashes with), and the index's own lookups/s on the same queries, after
    ``sample`` queries warmed it (numba compiles, or loads its cache)."""
    import numpy as np

    from vscan.bank.disk_index import SplitIndex

    t0 = time.perf_counter()
    index = SplitIndex.from_hashes(bank)
    build = time.perf_counter() - t0
    index.search(queries[:sample], radius)
    t0 = time.perf_counter()
    cq, cb, cd = index.search(queries, radius)
    cpu_seconds = time.perf_counter() - t0
    q, b, d = (t.cpu().numpy() for t in pairs)
    order = np.lexsort((b, q))
    q, b, d = q[order], b[order], d[order]
    same = bool(np.array_equal(q, cq) and np.array_equal(b, cb) and np.array_equal(d.astype(np.int16), cd))
    return {"queries": len(queries), "pairs_device": int(len(q)), "pairs_cpu_index": int(len(cq)), "equal": same,
            "cpu_index_build_seconds": build, "cpu_index_lookups_per_second": len(queries) / cpu_seconds}  # fmt: skip

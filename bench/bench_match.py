"""Radius search throughput: brute force (torch +-1 matmul) vs multi-index hashing.

Random banks of 10k / 100k / 1M hashes, 1000 queries of which half are planted
near copies (distance 0..31) of bank hashes. Correctness first: both methods
must return identical pairs before anything is timed. Reports the median and
spread of ``--repeats`` runs, in queries per second.

    python -m vscan.bench.bench_match [--sizes 10000 100000 1000000] [--queries 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from vscan.kernels.hamming import MultiIndexHashing, default_device, search_pairs


def make_data(rng, bank_size, num_queries):
    bank = rng.integers(0, 256, (bank_size, 32), dtype=np.uint8)
    query = rng.integers(0, 256, (num_queries, 32), dtype=np.uint8)
    for i in range(num_queries // 2):
        bits = np.unpackbits(bank[rng.integers(bank_size)])
        bits[rng.choice(256, int(rng.integers(0, 32)), replace=False)] ^= 1
        query[i] = np.packbits(bits)
    return bank, query


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--radius", type=int, default=31)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    device = default_device()
    print(f"device={device} torch_threads={torch.get_num_threads()} queries={args.queries} radius={args.radius}")
    header = f"{'bank':>9} | {'brute q/s':>18} | {'blocking q/s':>18} | {'build s':>7} | {'speedup':>7} | pairs"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for size in args.sizes:
        bank, query = make_data(rng, size, args.queries)
        t0 = time.perf_counter()
        index = MultiIndexHashing(bank)
        build_s = time.perf_counter() - t0
        brute, bt = timed(lambda: search_pairs(query, bank, args.radius, method="brute", device=device), args.repeats)
        blocked, mt = timed(lambda: index.search(query, args.radius), args.repeats)
        for x, y in zip(brute, blocked):
            if not np.array_equal(x, y):
                raise SystemExit(f"MISMATCH at bank size {size}: blocking differs from brute force")
        qps = lambda ts: f"{args.queries / statistics.median(ts):9.0f} ±{(max(ts) - min(ts)) / statistics.median(ts) * 50:4.1f}%"
        print(
            f"{size:>9} | {qps(bt):>18} | {qps(mt):>18} | {build_s:7.2f} | "
            f"{statistics.median(bt) / statistics.median(mt):6.1f}x | {len(brute[0])}"
        )


if __name__ == "__main__":
    main()

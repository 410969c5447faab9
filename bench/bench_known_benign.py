"""Known-benign list lookups at scale: load time, memory and lookups/s.

    python -m vscan.bench.bench_known_benign [--digests 20000000 --kind sha256 --queries 100000]

Writes a plain list of random digests (``--digests``, one kind), loads it
with vscan.inputs.known_benign, and looks up ``--queries`` digests, half of
them listed, one at a time (as a decode worker does per file) and in one
batch. Random digests are the realistic case here: cryptographic digests of
distinct files are uniformly spread.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from vscan.inputs.known_benign import load_list

_SIZES = {"md5": 16, "sha1": 20, "sha256": 32}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digests", type=int, default=20_000_000)
    parser.add_argument("--kind", choices=sorted(_SIZES), default="sha256")
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    size = _SIZES[args.kind]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "list.txt"
        t0 = time.perf_counter()
        with open(path, "w") as fh:
            for start in range(0, args.digests, 1 << 20):
                block = rng.integers(0, 256, (min(1 << 20, args.digests - start), size), dtype=np.uint8)
                fh.write("\n".join(bytes(row).hex() for row in block) + "\n")
        written = time.perf_counter() - t0
        listed = [line.strip() for _, line in zip(range(args.queries // 2), open(path))]
        t0 = time.perf_counter()
        digests = load_list(path)
        load = time.perf_counter() - t0
        file_mib = os.path.getsize(path) / (1 << 20)
    absent = [os.urandom(size).hex() for _ in range(args.queries - len(listed))]
    queries = listed + absent
    t0 = time.perf_counter()
    hits = sum(digests.lookup(**{args.kind: q}) is not None for q in queries)
    single = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch_hits = int(digests.contains(args.kind, queries).sum())
    batch = time.perf_counter() - t0
    assert hits == batch_hits == len(listed), (hits, batch_hits, len(listed))
    result = {
        "digests": args.digests,
        "kind": args.kind,
        "list_file_mib": round(file_mib, 1),
        "write_s": round(written, 1),
        "load_s": round(load, 1),
        "memory_mib": round(digests.digests[args.kind].nbytes / (1 << 20), 1),
        "lookups_per_s_one_at_a_time": round(len(queries) / single),
        "lookups_per_s_batched": round(len(queries) / batch),
        "queries": len(queries),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

"""Hash-bank search at platform scale: every method on the same realistic hashes.

Banks of 1M / 10M / 30M PDQ hashes expanded from real frame hashes of
generated videos (``vscan.bench.realistic_hashes``: runs of near-duplicate
frames, clustered buckets); 1,000 queries, half near copies of bank rows.
Each method runs in its own process (so resident memory is its own):

- ``split``: ``vscan.bank.disk_index.SplitIndex`` (built, saved, then opened
  memory-mapped in a fresh process), numba kernel;
- ``split_mem``: the same files opened with ``in_memory=True`` (copied onto huge pages);
- ``faiss_multihash``: FAISS ``IndexBinaryMultiHash(256, 16, 16)``, nflip =
  r // 16 (pytx's configuration), exact;
- ``faiss_hash``: FAISS ``IndexBinaryHash(256, 16)``, nflip = 2 (not exact: recall shown);
- ``faiss_flat``: FAISS ``IndexBinaryFlat`` range search (exhaustive, the exactness reference);
- ``numpy_mih``: ``vscan.bank.index.MultiIndexHashing`` (the previous index);
- ``numpy_flat``: ``brute_force_pairs``, one query frame's 8 dihedral hashes at once.

Columns: build s, open s (a fresh process opening what was built), RSS MB
after the lookups, single-hash lookups/s at radius 31, 8-dihedral query
frames/s, CPU microseconds per lookup over all threads (the machine's load
inflates it least; 2e6 / it is what two idle cores would do) (split: after one cold pass over the queries, whose rate is
printed below the table), and exactness: pairs missed / extra against ``faiss_flat`` on the
sampled queries (checked against numpy brute force on a subsample).

    python -m vscan.bench.bench_match [--sizes 1000000 10000000 30000000] [--methods ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ("split", "split_mem", "faiss_multihash", "faiss_hash", "faiss_flat", "numpy_mih", "numpy_flat")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _pairs_set(q, b):
    return set(zip(np.asarray(q).tolist(), np.asarray(b).tolist()))


def _faiss_pairs(index, queries, radius):
    lims, _, labels = index.range_search(queries, radius + 1)  # FAISS: distance < radius
    q = np.repeat(np.arange(len(queries)), np.diff(lims.astype(np.int64)))
    return q, labels


def run_method(method: str, work: Path, radius: int, budget_s: float) -> dict:
    """One method in this process: build, open, lookups, memory, pairs."""
    queries = np.load(work / "queries.npy")
    frames = np.load(work / "frames.npy")  # [F, 8, 32] query frames, all dihedral variants
    out: dict = {"method": method}
    if method.startswith("split"):
        from vscan.bank.disk_index import SplitIndex
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    if method.startswith("split"):
        idx_dir = work / "split.vidx"
        if not idx_dir.exists():
            bank = np.load(work / "bank.npy", mmap_mode="r")
            SplitIndex.build(bank, idx_dir)
            out["build_s"] = time.perf_counter() - t0
            return out
        index = SplitIndex.open(idx_dir, in_memory=method == "split_mem")
        out["open_s"] = time.perf_counter() - t0
        t = time.perf_counter()
        index.search(queries, radius)  # first pass: numba's cached code loads, mapped pages fault in
        out["cold_lookups_per_s"] = len(queries) / (time.perf_counter() - t)
        search = lambda qs: index.search(qs, radius)[:2]  # noqa: E731
    elif method.startswith("faiss"):
        import faiss

        bank = np.load(work / "bank.npy")
        if method == "faiss_multihash":
            index = faiss.IndexBinaryMultiHash(256, 16, 16)
            index.nflip = radius // 16
        elif method == "faiss_hash":
            index = faiss.IndexBinaryHash(256, 16)
            index.nflip = 2
        else:
            index = faiss.IndexBinaryFlat(256)
        index.add(bank)
        del bank
        out["build_s"] = time.perf_counter() - t0
        search = lambda qs: _faiss_pairs(index, qs, radius)  # noqa: E731
    elif method == "numpy_mih":
        from vscan.bank.index import MultiIndexHashing

        bank = np.load(work / "bank.npy")
        index = MultiIndexHashing(bank)
        out["build_s"] = time.perf_counter() - t0
        search = lambda qs: index.search(qs, radius)[:2]  # noqa: E731
    elif method == "numpy_flat":
        from vscan.bank.index import brute_force_pairs

        bank = np.load(work / "bank.npy")
        out["build_s"] = time.perf_counter() - t0
        search = lambda qs: brute_force_pairs(qs, bank, radius)[:2]  # noqa: E731
    else:
        raise SystemExit(f"unknown method {method}")
    # Single hashes (in batches of 100): as many as fit the time budget (slow methods see a prefix).
    n, elapsed, cpu, pairs = 100, 0.0, 0.0, []  # batches of 100 hashes, as a lookup API call would send
    done = 0
    while done < len(queries) and elapsed < budget_s:
        batch = queries[done : done + n]
        t, c = time.perf_counter(), time.process_time()
        q, b = search(batch)
        elapsed += time.perf_counter() - t
        cpu += time.process_time() - c
        pairs.append((np.asarray(q) + done, np.asarray(b)))
        done += len(batch)
    out["queries_done"] = done
    out["lookups_per_s"] = done / elapsed
    out["cpu_us"] = cpu / done * 1e6  # CPU time per lookup, all threads: what a busy machine inflates least
    np.save(work / f"pairs_{method}.npy", np.stack([np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])]))
    # Query frames: the 8 dihedral hashes of each frame in one call.
    t, f_done = time.perf_counter(), 0
    while f_done < len(frames) and time.perf_counter() - t < budget_s / 2:
        search(frames[f_done : f_done + 25].reshape(-1, 32))
        f_done += len(frames[f_done : f_done + 25])
    out["frames_per_s"] = f_done / (time.perf_counter() - t)
    out["rss_mb"] = _rss_mb()
    out["rss_growth_mb"] = out["rss_mb"] - rss0
    return out


def _child(method: str, work: Path, radius: int, budget_s: float) -> dict:
    cmd = [sys.executable, "-m", "vscan.bench.bench_match", "--child", method, "--work", str(work),
           "--radius", str(radius), "--budget", str(budget_s)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        return {"method": method, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def prepare(work: Path, size: int, num_queries: int, seeds_cache: str | None) -> None:
    from vscan.bench.realistic_hashes import expand_bank, make_queries, real_frame_hashes

    variants, _ = real_frame_hashes(60, 48, cache=seeds_cache)
    seen, unseen = variants[:50], variants[50:]
    bank = expand_bank(seen[:, :, 0], size)
    np.save(work / "bank.npy", bank)
    np.save(work / "queries.npy", make_queries(bank, unseen[:, :, 0].reshape(-1, 32), num_queries))
    from vscan.bank.hash_input import dihedral_variants

    rng = np.random.default_rng(3)
    # Query frames, all 8 dihedral hashes each: 100 frames of clips the bank never saw (hashed
    # from the rotated/mirrored frames), 100 near copies of bank rows (variants from the hash).
    unseen_frames = unseen.reshape(-1, 8, 32)[rng.integers(0, unseen.shape[0] * unseen.shape[1], 100)]
    near = make_queries(bank, unseen[:, :, 0].reshape(-1, 32), 200, seed=4)
    near = near[np.isin(near.view("V32").ravel(), unseen[:, :, 0].reshape(-1, 32).view("V32").ravel(), invert=True)][:100]
    np.save(work / "frames.npy", np.concatenate([unseen_frames, dihedral_variants(near)]))


def exactness(work: Path, methods: list[str]) -> dict[str, str]:
    """Missed / extra pairs of each method vs faiss_flat, over the queries both ran."""
    ref_path = work / "pairs_faiss_flat.npy"
    if not ref_path.exists():
        return {}
    ref = np.load(ref_path)
    verdict = {}
    for m in methods:
        p = work / f"pairs_{m}.npy"
        if not p.exists():
            continue
        got = np.load(p)
        common = min(int(ref[0].max(initial=-1)), int(got[0].max(initial=-1))) + 1
        r, g = _pairs_set(*ref[:, ref[0] < common]), _pairs_set(*got[:, got[0] < common])
        verdict[m] = f"{len(r - g)} missed / {len(g - r)} extra of {len(r)} (on {common} queries)"
    return verdict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--radius", type=int, default=31)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of lookups per method and size")
    parser.add_argument("--seeds-cache", default=os.path.join(tempfile.gettempdir(), "vscan_bench_seeds_60x48.npz"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_method(args.child, Path(args.work), args.radius, args.budget)))
        return
    print(f"radius={args.radius} queries={args.queries} cpus={os.cpu_count()}")
    header = f"{'bank':>10} {'method':>16} {'build s':>8} {'open s':>7} {'RSS MB':>8} {'lookups/s':>10} {'CPU us':>7} {'frames/s':>9}  exactness vs faiss_flat"
    print(header)
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench_match_") as tmp:
            work = Path(tmp)
            prepare(work, size, args.queries, args.seeds_cache)
            rows = []
            for method in ["faiss_flat"] + [m for m in args.methods if m != "faiss_flat"]:
                budget = args.budget * 6 if method == "faiss_flat" else args.budget  # the reference: all queries
                row = _child(method, work, args.radius, budget)
                if method == "split" and "error" not in row:
                    row = {**_child(method, work, args.radius, args.budget), "build_s": row.get("build_s")}
                rows.append(row)
            verdict = exactness(work, args.methods)
            for r in rows:
                if "error" in r:
                    print(f"{size:>10} {r['method']:>16}  failed: {r['error']}")
                    continue
                g = lambda k, fmt: format(r[k], fmt) if r.get(k) is not None else "-"  # noqa: E731
                print(f"{size:>10} {r['method']:>16} {g('build_s', '8.2f')} {g('open_s', '7.3f')} {g('rss_mb', '8.0f')} "
                      f"{g('lookups_per_s', '10.0f')} {g('cpu_us', '7.0f')} {g('frames_per_s', '9.1f')}  {verdict.get(r['method'], '')}", flush=True)  # fmt: skip
                if r.get("cold_lookups_per_s"):
                    print(f"{'':>10} {'':>16} first pass in a fresh process (pages faulting in): {r['cold_lookups_per_s']:.0f} lookups/s")


if __name__ == "__main__":
    main()

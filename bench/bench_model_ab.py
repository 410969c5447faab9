"""The model stage's CPU a file, this code against another checkout, in one process, file by file (issue #30).

    python -m vscan.bench.bench_model_ab --baseline-worktree DIR [--rounds 6] [--files unrelated|all] [--first-only]
                                         [--kept-hashes] [--quick] [--payloads FILE] [--json out.json]

Whole scans of two versions timed one after the other moved by 10-25% with
their order on this 2-core machine (bench_archive --baseline-first), more
than most changes to the model side are worth. Here both versions run in one
process on the same payloads: the archive's files (vscan.bench.archive_corpus)
decoded as a scan decodes them (adaptive sampling, the confirmation decoded
ahead; a second pass decoded where the first asks for one), each handed to
this code's ``ModelWorker`` and to the other checkout's (imported as
``vscan_base``: a copy of its package with its imports renamed), file by file,
the order swapped every file and every round, one BLAS/numba thread. Reported:
model CPU a file (the per-file medians over rounds, summed), the ratio, the
per-round ratios, and whether every file's model results (matches, the second
pass asked for, the confirmation, qualities, frames sampled) are the same.

``--files unrelated``: the files in no bank (every search runs: a sweep's
cost); ``--first-only``: first passes alone (a sweep file's 2 frames).
Each file's runs start without the bank's per-hash candidates kept from its
earlier rounds (``MappedBank.candidates``): with them (``--kept-hashes``, the
only way before stop 44) every search lookup of an unmatched file hit them from
the second round, ~20 ms a file a scan pays that the bench did not time.
Payloads are decoded once and kept (``--payloads``, default beside the corpus).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import pickle
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["renamed_package", "decoded_payloads", "alternate", "main"]

BASE = "vscan_base"


def renamed_package(worktree: Path, into: Path) -> Path:
    """``worktree``'s vscan package (as bench_archive.package_checkout builds it) copied to ``into``/vscan_base with
    every ``vscan.`` import renamed, so that it imports beside this code; returns the folder for sys.path."""
    from vscan.bench.bench_archive import package_checkout

    pkg = package_checkout(worktree, into / "pkg") / "vscan"
    stamp = (into / "pkg" / "vscan.stamp").read_text()
    out = into / "renamed"
    if (out / f"{BASE}.stamp").exists() and (out / f"{BASE}.stamp").read_text() == stamp:
        return out
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(pkg, out / BASE, symlinks=True)
    for path in (out / BASE).rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"\bvscan\.", f"{BASE}.", text)
        text = re.sub(r"^(\s*)import vscan$", rf"\1import {BASE} as vscan", text, flags=re.M)
        path.write_text(text.replace("from vscan import", f"from {BASE} import"))
    (out / f"{BASE}.stamp").write_text(stamp)
    return out


class _Renamed(pickle.Unpickler):
    """Payloads pickled by this code, read as the other package's classes."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "vscan" or module.startswith("vscan."):
            module = BASE + module[len("vscan") :]
        return super().find_class(module, name)


def _config(pkg: str) -> Any:
    cfg, dec = importlib.import_module(f"{pkg}.config"), importlib.import_module(f"{pkg}.decode")
    return cfg.ScanConfig(sampling=cfg.Sampling(policy=dec.Adaptive(confirm_ahead=True)), runtime=cfg.Runtime(device="cpu"))


def _worker(pkg: str, bank: Path) -> Any:
    return importlib.import_module(f"{pkg}.runtime.model_actor").ModelWorker(_config(pkg), bank, threads=1)


def decoded_payloads(files: list[Path], bank: Path) -> list[tuple]:
    """(path, sha256, md5, first pass, second pass or None) per file, decoded as a scan of this code decodes them."""
    from dataclasses import replace

    from vscan.runtime.decode_task import decode_for_scan

    config, worker, out = _config("vscan"), _worker("vscan", bank), []
    for k, path in enumerate(files):
        summary, first = decode_for_scan(str(path), config)
        if first is None:
            continue
        refine = worker.run([(k, summary["sha256"], summary["md5"], 1)], first)[0].refine
        second = None
        if refine is not None:
            second = decode_for_scan(str(path), replace(config, sampling=replace(config.sampling, policy=refine)))[1]
        out.append((str(path), summary["sha256"], summary["md5"], first, second))
    return out


def _described(result: Any) -> Any:
    return json.loads(json.dumps({"matches": [dataclasses.asdict(m) for m in result.matches or []], "refine": str(result.refine),
                                  "confirmed": result.confirmed, "frames_sampled": result.frames_sampled,
                                  "qualities": None if result.qualities is None else np.asarray(result.qualities).tolist()}, default=str))  # fmt: skip


#: Each file's runs start with no query hash's candidates kept from earlier runs (``--kept-hashes``: kept).
FRESH = {"hashes": True}


def _one(worker: Any, k: int, item: tuple) -> tuple[float, list]:
    _, sha, md5, first, second = item
    if FRESH["hashes"]:
        # The bench runs each file many times: a memory-mapped bank's per-hash candidates (MappedBank.candidates) and
        # whole search lookups kept from a file's last round hit every search hash this round, which a scan, seeing
        # each file once, never has.
        for kept in ("_kept_candidates", "_kept_lookups"):
            getattr(worker.index, kept, {}).clear()
    t0 = time.process_time()
    results = [worker.run([(k, sha, md5, 1)], first)[0]]
    if second is not None:
        results.append(worker.run([(k, sha, md5, 2)], first, second)[0])
    return time.process_time() - t0, results


def alternate(items: list[tuple], base_items: list[tuple], bank: Path, rounds: int) -> dict:
    """Both versions over the same payloads, file by file, order swapped each file and round: CPU-seconds [rounds, files]."""
    workers = {"vscan": _worker("vscan", bank), BASE: _worker(BASE, bank)}
    payloads = {"vscan": items, BASE: base_items}
    described = {}
    for pkg, worker in workers.items():  # the warm-up, whose results are compared
        described[pkg] = [[_described(r) for r in _one(worker, k, it)[1]] for k, it in enumerate(payloads[pkg])]
    differ = [Path(items[k][0]).name for k in range(len(items)) if described["vscan"][k] != described[BASE][k]]
    cpu = {pkg: np.zeros((rounds, len(items))) for pkg in workers}
    for r in range(rounds):
        for k in range(len(items)):
            for pkg in (("vscan", BASE) if (r + k) % 2 == 0 else (BASE, "vscan")):
                cpu[pkg][r, k] = _one(workers[pkg], k, payloads[pkg][k])[0]
    n = max(len(items), 1)
    new, old = (1000 * np.median(cpu[p], axis=0).sum() / n for p in ("vscan", BASE))
    per_round = (cpu["vscan"].sum(axis=1) / cpu[BASE].sum(axis=1)).round(3).tolist()
    return {"files": len(items), "ms_per_file": {"this": new, "baseline": old}, "ratio": new / old, "per_round_ratio": per_round,
            "results_differ": differ, "load_average": os.getloadavg()}  # fmt: skip


def _files(args: argparse.Namespace) -> tuple[list[Path], Path, Path]:
    from vscan.bench.archive_corpus import default_root, make_archive
    from vscan.bench.pipeline_runs import make_bank

    shape = (2, 2, 1, 8.0) if args.quick else (6, 15, 10, 16.0)
    real = not args.quick
    root = default_root(*shape, (640, 360), real).resolve()
    archive = make_archive(root / "archive", *shape, (640, 360), real=real)
    bank = root / "bank.db"
    if not bank.exists():
        make_bank(bank, archive.sources, "cpu")
    files = archive.files if args.files == "all" else [p for p in archive.files if not archive.source_of.get(p.name)]
    return files, bank, root


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m vscan.bench.bench_model_ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--baseline-worktree", type=Path, required=True, help="the other checkout (git worktree add DIR <commit>)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--files", choices=["unrelated", "all"], default="unrelated")
    parser.add_argument("--first-only", action="store_true", help="first passes alone (a sweep file's frames)")
    parser.add_argument("--quick", action="store_true", help="the quick archive (2 clips, 2 copies each, 1 unrelated)")
    parser.add_argument("--payloads", type=Path, default=None, help="the decoded payloads' pickle (made where missing)")
    parser.add_argument("--kept-hashes", action="store_true",
                        help="keep the query hashes' bank candidates from a file's earlier rounds (before stop 44 the only "
                             "way: every search hash of an unmatched file then hit them from its second round, which a "
                             "scan, seeing each file once, never has; by default each file's runs start without them, "
                             "its first and second pass still sharing them)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    FRESH["hashes"] = not args.kept_hashes
    one = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
    if any(os.environ.get(name) != "1" for name in one):  # BLAS and numba size their pools at import: run again with one thread
        env = {**os.environ, **dict.fromkeys(one, "1")}
        os.execve(sys.executable, [sys.executable, "-m", "vscan.bench.bench_model_ab", *(sys.argv[1:] if argv is None else argv)], env)
    files, bank, root = _files(args)
    sys.path.insert(0, str(renamed_package(args.baseline_worktree.resolve(), root / "model-ab")))
    cache = args.payloads or root / f"model-ab-{args.files}.pkl"
    if not cache.exists():
        with open(cache, "wb") as f:
            pickle.dump(decoded_payloads(files, bank), f, protocol=5)
    with open(cache, "rb") as f:
        items = pickle.load(f)
    with open(cache, "rb") as f:
        base_items = _Renamed(f).load()
    if args.first_only:
        items, base_items = [(*it[:4], None) for it in items], [(*it[:4], None) for it in base_items]
    out = alternate(items, base_items, bank, args.rounds)
    ms = out["ms_per_file"]
    print(f"model CPU a file, {out['files']} files ({args.files}{', first passes' if args.first_only else ''}), {args.rounds} rounds, "
          f"one thread: this code {ms['this']:.2f} ms, {args.baseline_worktree} {ms['baseline']:.2f} ms, ratio {out['ratio']:.3f} "
          f"(per round {out['per_round_ratio']}){'; hashes kept between rounds' if args.kept_hashes else ''}; results differ: {len(out['results_differ'])} {out['results_differ'][:5]}; "
          f"load {out['load_average'][0]:.1f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()

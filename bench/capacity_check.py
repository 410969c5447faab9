"""The capacity check (``vscan bench --capacity``): the capacity model
(vscan.bench.capacity) against real Ray clusters on loopback.

Each round starts a private cluster (vscan.bench.loopback: token auth, its
own temp dir, every process stopped by id afterwards) with one raylet of
``--num-cpus 1`` and scans the sweep corpus (adaptive sampling, nothing in
the bank) through it; then a second raylet joins and the same corpus is
scanned on both; then ``--tiny-files`` 1-frame 64x48 clips go through the
two raylets, where decoding is cheap and the driver + sink (JSONL, fsync,
group commit) carry most of the per-record cost. Rounds alternate 1 and 2
raylets, so noise from other work on the machine falls on both.

Reported per round: each run's per-stage rates; the 2-raylet throughput
predicted from the 1-raylet rates (and the 1-raylet one from the 2-raylet
rates) against the measured steady state; the records/s of the tiny-file
run (first to last record: they were all decoded while the model actor
warmed up, so that is the drain through model calls, driver and sink) and
the driver + sink ceiling. The raylets of a loopback cluster share
this machine's cores, which the prediction's shared-cores bound includes.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from vscan.bench import synth
from vscan.bench.capacity import StageRates, format_prediction, format_rates, predict, window_rate
from vscan.bench.loopback import LoopbackCluster
from vscan.bench.pipeline_runs import make_bank, make_corpus, run_scan
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import Adaptive

__all__ = ["main", "make_tiny_files"]

#: Cluster shapes printed from the measured rates (nodes, CPUs per node, GPUs per node).
SHAPES = [(1, 1, 0), (2, 1, 0), (1, 2, 0), (4, 16, 0), (10, 32, 0), (10, 32, 8)]


def make_tiny_files(root: Path, n: int) -> list[Path]:
    """``n`` copies of one 1-frame 64x48 H.264 clip (decoding is nearly free)."""
    template = synth.make_clip(root / "tiny-1frame.mp4", seed=11, seconds=0.04, fps=25, size=(64, 48), scenes=1)
    out = []
    for i in range(n):
        path = root / "tiny" / f"t{i:05d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            shutil.copyfile(template, path)
        out.append(path)
    return out


def _scan(name: str, inputs: list[Path], bank: Path, config: ScanConfig, root: Path, address: str) -> dict:
    import ray

    try:
        row = run_scan(name.replace(" ", "_"), inputs, bank, config, root, address)
    finally:
        ray.shutdown()  # a joined cluster stays connected after the scan
    row["name"] = name
    return row


def _measured(row: dict) -> float:
    """Video-s/s over the last half of the records (vscan.bench.capacity.window_rate)."""
    rate = window_rate(row["record_stamps"])
    return rate * row["video_seconds"] / row["files"] if rate else row["video_seconds_per_second"]


def _round(k: int, corpus: list[Path], tiny: list[Path], bank: Path, config: ScanConfig, root: Path, token: str) -> dict:
    t0 = time.perf_counter()
    with LoopbackCluster(nodes=1, cpus_per_node=1, token=token) as cluster:
        print(f"round {k}: 1 raylet up after {time.perf_counter() - t0:.0f} s", flush=True)
        one = _scan(f"round {k} 1 raylet", corpus, bank, config, root, cluster.address)
        cluster.add_node()
        cluster.wait_nodes(2)
        two = _scan(f"round {k} 2 raylets", corpus, bank, config, root, cluster.address)
        small = _scan(f"round {k} tiny files 2 raylets", tiny, bank, config, root, cluster.address)
    cores = os.cpu_count() or 1
    device = config.runtime.device
    r1, r2 = StageRates(**one["rates"]), StageRates(**two["rates"])
    return {
        "one": one, "two": two, "tiny": small,
        "predicted_two_from_one": predict(r1, 2, 1, physical_cores=cores, device=device).as_dict(),
        "predicted_one_from_two": predict(r2, 1, 1, physical_cores=cores, device=device).as_dict(),
        "predicted_one_from_one": predict(r1, 1, 1, physical_cores=cores, device=device).as_dict(),
    }  # fmt: skip


def _print_round(k: int, r: dict) -> None:
    for key in ("one", "two", "tiny"):
        row = r[key]
        print(f"  {row['name']}: {row['files']} files, {row['video_seconds_per_second']:,.0f} video-s/s end to end, "
              f"last half {_measured(row):,.0f} video-s/s, {window_rate(row['record_stamps']) or 0:,.1f} files/s; "
              f"decode slots busy {row['pipeline']['decode_all_slots_busy_fraction']:.0%}, "
              f"model busy {row['pipeline'].get('model_busy_fraction', 0):.0%}, CPU {row['cpu_utilisation']:.0%}")  # fmt: skip
        print(format_rates(row["name"], StageRates(**row["rates"])))
    for label, pred, row in (("2 raylets predicted from 1", r["predicted_two_from_one"], r["two"]),
                             ("1 raylet predicted from 2", r["predicted_one_from_two"], r["one"]),
                             ("1 raylet from its own rates", r["predicted_one_from_one"], r["one"])):  # fmt: skip
        print(f"  round {k}, {label}: {pred['video_seconds_per_second']:,.0f} video-s/s ({pred['bound']}-bound), "
              f"measured {_measured(row):,.0f} (measured/predicted {_measured(row) / pred['video_seconds_per_second']:.2f})")
    tiny = StageRates(**r["tiny"]["rates"])
    driver = r["tiny"]["pipeline"]
    # Tiny files come out in bursts (all decoded while the model actor warms up): first to last record.
    print(f"  round {k}, driver + sink on {r['tiny']['files']} tiny files: {r['tiny']['steady_files_per_second'] or 0:,.0f} "
          f"records/s measured (first to last record), ceiling {tiny.driver_records_per_second:,.0f} records/s of driver-thread CPU + sink "
          f"(sink alone {tiny.sink_records_per_second:,.0f} records/s, {driver['decode_tasks']} decode tasks, "
          f"{driver['model_calls']} model calls)")  # fmt: skip


def main(args: argparse.Namespace) -> None:
    """Run the check with bench_pipeline's parsed options (``--capacity``)."""
    w, h = (int(v) for v in args.size.split("x"))
    token = secrets.token_hex(16)  # one for every cluster: Ray reads it once per process
    os.environ.pop("RAY_ADDRESS", None)
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0")
    config = ScanConfig(sampling=Sampling(policy=Adaptive()), runtime=Runtime(device=args.device))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir or tmp)
        root.mkdir(parents=True, exist_ok=True)
        sources, corpus = make_corpus(root / "corpus", args.clips, args.seconds, (w, h), sweep=True)
        corpus = [root / "corpus" / f"copy{k}" / p.name if k else p for k in range(args.repeat) for p in corpus]
        for path in corpus:
            if not path.exists():
                path.parent.mkdir(exist_ok=True)
                shutil.copyfile(path.parent.parent / path.name, path)
        tiny = make_tiny_files(root, args.tiny_files)
        bank = make_bank(root / "bank.db", sources, args.device)
        print(f"sweep corpus: {len(corpus)} files x {args.seconds:g} s at {args.size}; {len(tiny)} tiny files; "
              f"{args.rounds} rounds of 1 then 2 raylets (--num-cpus 1 each) on {os.cpu_count()} cores", flush=True)  # fmt: skip
        rounds = []
        for k in range(1, args.rounds + 1):
            rounds.append(_round(k, corpus, tiny, bank, config, root, token))
            _print_round(k, rounds[-1])
    print("\npredicted from the last round's 2-raylet rates (cores not shared between nodes):")
    rates = StageRates(**rounds[-1]["two"]["rates"])
    for shape in SHAPES:
        print(format_prediction(predict(rates, *shape, device=args.device)))
    print("  (GPU actors: the model stage needs a rate measured on a GPU, '?' above; CPU actors scale by their threads)")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rounds": rounds}, indent=1, default=str))

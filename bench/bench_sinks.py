"""Sink throughput, records/s: one commit per record (``write``) against group
commit (``write_many``), per sink kind, in the same run.

    python -m vscan.bench.bench_sinks [--records 2000 --group 32 --postgres postgresql://... --json out.json]

Both ways give the same guarantee: when the call returns, its records are
durable (fsync'ed file, committed transaction). The scan driver commits the
records that finished together as one group. Records are realistic result
records (about 700 bytes of JSON). PostgreSQL runs only with ``--postgres``
(a database the benchmark may create tables in).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from vscan.output.sinks import open_sink


def _record(i: int) -> dict:
    return {
        "schema_version": 1, "path": f"/evidence/case-{i // 100:04d}/upload-{i:07d}.mp4", "sha256": f"{i:064x}",
        "md5": f"{i:032x}", "size_bytes": 1_000_000 + i, "status": "ok", "error": None,
        "media": {"kind": "video", "decoder": "pyav", "codec": "h264", "width": 640, "height": 360, "fps": 25.0},
        "duration_seconds": 61.5, "frames_decoded": 70, "frames_sampled": 62, "sampling": "Adaptive(keyframes)",
        "risk": 0.0, "reasons": [], "matches": [], "timings": {"decode": 0.25, "hash": 0.01},
        "versions": {"bank_sha256": "b" * 64, "model_sha256": "m" * 64, "config_sha256": "c" * 64},
    }  # fmt: skip


def _rate(target: str, records: list[dict], group: int) -> float:
    with open_sink(target) as sink:
        t0 = time.perf_counter()
        if group <= 1:
            for record in records:
                sink.write(record)
        else:
            for start in range(0, len(records), group):
                sink.write_many(records[start : start + group])
        elapsed = time.perf_counter() - t0
    return len(records) / elapsed


def run(n: int, group: int, postgres: str | None) -> dict[str, dict[str, float]]:
    records = [_record(i) for i in range(n)]
    results = {}
    with tempfile.TemporaryDirectory(prefix="vscan-bench-sinks-") as tmp:
        targets = {kind: str(Path(tmp) / f"{kind}-{{}}.{kind}") for kind in ("jsonl", "parquet", "sqlite")}
        if postgres:
            targets["postgres"] = postgres
        for kind, pattern in targets.items():
            one = _rate(pattern.format("one"), records, 1)
            grouped = _rate(pattern.format("group"), records, group)
            results[kind] = {"per_record": round(one, 1), "group_commit": round(grouped, 1), "ratio": round(grouped / one, 2)}
            print(f"{kind:9s} one commit per record {one:10.1f} rec/s   groups of {group}: {grouped:10.1f} rec/s"
                  f"   x{grouped / one:.2f}")  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m vscan.bench.bench_sinks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=2000, help="records per sink and way (default 2000)")
    ap.add_argument("--group", type=int, default=32, help="records per group commit (default 32)")
    ap.add_argument("--postgres", help="a PostgreSQL DSN to include (tables vscan_records/vscan_runs are written)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    results = run(args.records, args.group, args.postgres)
    if args.json:
        Path(args.json).write_text(json.dumps({"records": args.records, "group": args.group, "sinks": results}, indent=1))


if __name__ == "__main__":
    main()

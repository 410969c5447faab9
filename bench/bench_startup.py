"""Start-up cost of `vscan scan`, before/after in the same run.

Measures, each as a fresh `vscan scan` process (as a user runs it):

- first record: one short clip, a new output: seconds from the command's
  start until its record is in the output file, and until the command ends;
- no-op resume: the same command again (every input recorded), and a
  ``--state`` run to a new output (every input unchanged), each with the
  pre-flight (vscan.runtime.preflight: no Ray, no model stage) and without
  it (patched out: what every earlier version did).

    python -m vscan.bench.bench_startup [--repeat 3] [--seconds 5]

Prints a JSON line per measurement and the medians with their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: `vscan scan` with the pre-flight check patched out (always "something to scan").
_WITHOUT_PREFLIGHT = (
    "import sys, vscan.runtime.driver as d; d.records_without_ray = lambda *a, **k: None; "
    "from vscan.cli.main import main; sys.argv = ['vscan', *sys.argv[1:]]; main()"
)


def _scan(args: list[str], *, cwd: Path, out: Path, patched: bool = False) -> dict[str, float]:
    """Run one scan; the seconds until ``out`` holds a record, and until the process ends."""
    before = out.stat().st_size if out.exists() else 0
    cmd = [sys.executable, "-c", _WITHOUT_PREFLIGHT, *args] if patched else [sys.executable, "-m", "vscan.cli", *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = None
    while proc.poll() is None:
        if first is None and out.exists() and out.stat().st_size > before:
            first = time.perf_counter() - t0
        time.sleep(0.02)
    total = time.perf_counter() - t0
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"scan failed: {stderr[-2000:]}")
    return {"first_record_s": first if first is not None else float("nan"), "total_s": total}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m vscan.bench.bench_startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the one clip")
    opts = parser.parse_args()

    from vscan.bench import synth

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synth.make_clip(root / "in" / "clip.mp4", seed=7, seconds=opts.seconds, size=(320, 240))
        synth.make_clip(root / "ref" / "known.mp4", seed=8, seconds=opts.seconds, size=(320, 240))
        build = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "build", "b.bank", "ref", "--device", "cpu"],
                               cwd=root, capture_output=True, text=True)  # fmt: skip
        if build.returncode != 0:
            raise SystemExit(build.stderr)
        rows: dict[str, list[float]] = {k: [] for k in ("first_record", "first_total", "noop_before", "noop_after",
                                                         "state_before", "state_after")}  # fmt: skip
        for i in range(opts.repeat):
            out = root / f"r{i}.jsonl"
            args = ["scan", "in", "--bank", "b.bank", "--out", out.name, "--device", "cpu", "-q", "--state", f"s{i}.sqlite"]
            fresh = _scan(args, cwd=root, out=out)
            rows["first_record"].append(fresh["first_record_s"])
            rows["first_total"].append(fresh["total_s"])
            # Alternate the order so that neither variant always runs on a warmer cache.
            order = [("before", True), ("after", False)]
            for when, patched in order if i % 2 == 0 else order[::-1]:
                # The same command again: every input recorded.
                rows[f"noop_{when}"].append(_scan(args, cwd=root, out=out, patched=patched)["total_s"])
                # A new output with the same --state: every input unchanged.
                fresh_out = root / f"state-{when}-{i}.jsonl"
                state_args = [*args[:5], fresh_out.name, *args[6:]]
                rows[f"state_{when}"].append(_scan(state_args, cwd=root, out=fresh_out, patched=patched)["total_s"])
            print(json.dumps({"round": i, **{k: round(v[-1], 3) for k, v in rows.items()}}), flush=True)
        med = {k: statistics.median(v) for k, v in rows.items()}
        print(json.dumps({
            "median_first_record_s": round(med["first_record"], 3),
            "median_first_scan_total_s": round(med["first_total"], 3),
            "median_noop_resume_without_preflight_s": round(med["noop_before"], 3),
            "median_noop_resume_with_preflight_s": round(med["noop_after"], 3),
            "noop_resume_ratio_after_over_before": round(med["noop_after"] / med["noop_before"], 3),
            "median_state_unchanged_without_preflight_s": round(med["state_before"], 3),
            "median_state_unchanged_with_preflight_s": round(med["state_after"], 3),
            "state_unchanged_ratio_after_over_before": round(med["state_after"] / med["state_before"], 3),
            "load_average_1min": round(os.getloadavg()[0], 2),
        }))


if __name__ == "__main__":
    main()

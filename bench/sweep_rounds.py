"""The sweep figure as a steady measurement (issue #30): ``bench_pipeline --sweep --sweep-rounds N``.

One sweep scan's "after the first record" rate rests on ~0.15 s of records
(12 files), so one run's ratio to vPDQ moved by 10% between two runs of the
same code. Here each round scans the same corpus (use ``--repeat`` for a
longer one) with the reference vPDQ at 1 s/hash, with this checkout, and with
``--baseline-worktree`` another checkout, each vscan scan in a fresh
subprocess (its own imports; with ``--ray-address local`` its own local Ray,
started before the scan's clock, as a long-lived service has it; with
``--no-ray-too`` also the scan without Ray, ``vscan.runtime.embedded``),
each run first warmed by an untimed scan of 2 files by the same code (its
kernels compiled and cached, its modules' bytecode written). The
order of the runs alternates between rounds, so load that drifts weighs on
both versions alike. Reported per run: the median over rounds of the ratio to
that round's vPDQ, whole run and after the first record, with the spread.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["sweep_rounds", "print_rounds"]

#: This checkout's bench modules a baseline checkout runs the measurement with (its scan is its own code).
_BENCH_FILES = ("sweep_rounds.py", "pipeline_runs.py", "capacity.py")


def _scan_in_subprocess(code: Path | None, name: str, corpus: list[Path], bank: Path, out_dir: Path, device: str, ray: bool) -> dict:
    """One vscan scan of ``corpus`` in a fresh interpreter: this checkout (``code`` None) or the packaged one at ``code``."""
    spec = out_dir / f"{name}-spec.json"
    spec.write_text(json.dumps({"name": name, "files": [str(f) for f in corpus], "bank": str(bank), "out_dir": str(out_dir),
                                "device": device, "ray": ray}))  # fmt: skip
    from vscan.bench.bench_archive import as_installed

    env = as_installed(dict(os.environ), out_dir, code)  # its modules' bytecode cached by the warm-up, as installed
    subprocess.run([sys.executable, "-m", "vscan.bench.sweep_rounds", str(spec)], env=env, check=True, cwd=str(out_dir))
    return json.loads((out_dir / f"{name}-row.json").read_text())


def _scan_here(spec_path: Path) -> None:
    """The subprocess: one scan as ``vscan scan`` runs it (its default adaptive sampling), its row written beside the spec."""
    import vscan
    from vscan.bench.pipeline_runs import run_scan
    from vscan.config import Runtime, ScanConfig

    spec = json.loads(spec_path.read_text())
    ray_seconds = None
    if spec["ray"]:
        from vscan.runtime.ray_start import start_ray

        t0 = time.perf_counter()
        start_ray(None)  # the scan finds Ray running and leaves it so (a long-lived service's Ray)
        ray_seconds = time.perf_counter() - t0
    out_dir = Path(spec["out_dir"])
    row = run_scan(spec["name"], [Path(f) for f in spec["files"]], Path(spec["bank"]), ScanConfig(runtime=Runtime(device=spec["device"])), out_dir)
    keep = ("files", "matched", "wall_seconds", "video_seconds", "first_record_seconds", "steady_video_seconds_per_second", "frames_decoded",
            "tree_cpu_seconds", "pipeline")  # fmt: skip
    out = {k: row.get(k) for k in keep} | {"ray_start_seconds": ray_seconds, "code": str(Path(vscan.__file__).parent), "embedded": bool((row.get("pipeline") or {}).get("embedded"))}
    (out_dir / f"{spec['name']}-row.json").write_text(json.dumps(out, default=str))
    if spec["ray"]:
        import ray

        ray.shutdown()


def sweep_rounds(corpus: list[Path], bank: Path, out_dir: Path, *, rounds: int, device: str, ray: bool, no_ray_too: bool,
                 baseline: Path | None, vpdq_run) -> dict:  # fmt: skip
    """``rounds`` rounds over ``corpus``: vPDQ (``vpdq_run(corpus)``: its row, or None), then each vscan run, the
    order reversed every other round. Returns {"rounds": [{run name: row}], "summary": {run name: medians}}."""
    from vscan.bench.bench_archive import package_checkout

    here = Path(__file__).parent
    base_pkg = None
    if baseline is not None:
        base_pkg = package_checkout(baseline, out_dir / "sweep-baseline-pkg", bench_files=tuple(here / f for f in _BENCH_FILES))
    modes = ([True] if ray else []) + ([False] if no_ray_too or not ray else [])
    runs = [(f"{who} {'Ray' if r else 'no Ray'}", code, r) for r in modes for who, code in (("main", None), ("baseline", base_pkg)) if who == "main" or code]
    _warm(runs, corpus, bank, out_dir, device)
    out: list[dict] = []
    for k in range(rounds):
        row: dict = {"vpdq": vpdq_run(corpus)}
        for name, code, with_ray in runs if k % 2 == 0 else list(reversed(runs)):
            row[name] = _scan_in_subprocess(code, f"sweep{k}-{name.replace(' ', '_')}", corpus, bank, out_dir, device, with_ray)
        out.append(row)
        print(f"round {k + 1}/{rounds}: " + ", ".join(f"{n} {_ratios(row, n)}" for n, *_ in runs), flush=True)
    return {"rounds": out, "summary": {name: _summary(out, name) for name, *_ in runs}}


def _warm(runs: list[tuple], corpus: list[Path], bank: Path, out_dir: Path, device: str, *, files: int = 2) -> None:
    """Each run once over ``files`` files first, untimed, as bench_archive does: a freshly packaged baseline compiled its
    numba kernels (and wrote its modules' bytecode) inside its first timed round, and this checkout's were already
    cached, so round 1 measured the baseline's compilation too."""
    for name, code, with_ray in runs:
        _scan_in_subprocess(code, f"sweep-warm-{name.replace(' ', '_')}", corpus[:files], bank, out_dir, device, with_ray)


def _ratios(row: dict, name: str) -> str:
    v, r = row.get("vpdq"), row[name]
    if not v:
        return f"{r['wall_seconds']:.1f} s"
    whole = r["video_seconds"] / r["wall_seconds"] / v["video_seconds_per_second"]
    steady = (r["steady_video_seconds_per_second"] or 0) / v["video_seconds_per_second"]
    return f"{whole:.1f}x / {steady:.1f}x"


def _summary(rounds: list[dict], name: str) -> dict:
    """Medians over rounds (and min, max) of the ratios to the same round's vPDQ, wall, first record and CPU."""
    rows = [(r[name], r.get("vpdq")) for r in rounds]
    out: dict = {}
    series = {"wall_seconds": [r["wall_seconds"] for r, _ in rows], "first_record_seconds": [r["first_record_seconds"] for r, _ in rows],
              "tree_cpu_seconds": [r["tree_cpu_seconds"] for r, _ in rows]}  # fmt: skip
    if all(v for _, v in rows):
        series["whole_vs_vpdq"] = [r["video_seconds"] / r["wall_seconds"] / v["video_seconds_per_second"] for r, v in rows]
        series["steady_vs_vpdq"] = [(r["steady_video_seconds_per_second"] or 0) / v["video_seconds_per_second"] for r, v in rows]
    for key, values in series.items():
        values = [float(x) for x in values if x is not None]
        if values:
            out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    out["embedded"] = rows[0][0]["embedded"]
    return out


def print_rounds(result: dict) -> None:
    s = result["summary"]
    n = len(result["rounds"])
    print(f"\nsweep over {n} rounds (median [min-max]; ratios to the same round's vPDQ at 1 s/hash):")
    print(f"{'run':<18} {'whole run':>18} {'after 1st record':>18} {'wall s':>16} {'1st record s':>16} {'CPU s':>8}")

    def cell(d: dict | None, fmt: str) -> str:
        return f"{d['median']:{fmt}} [{d['min']:{fmt}}-{d['max']:{fmt}}]" if d else "-"

    for name, d in s.items():
        print(f"{name:<18} {cell(d.get('whole_vs_vpdq'), '.1f'):>18} {cell(d.get('steady_vs_vpdq'), '.1f'):>18} "
              f"{cell(d.get('wall_seconds'), '.1f'):>16} {cell(d.get('first_record_seconds'), '.2f'):>16} "
              f"{d['tree_cpu_seconds']['median'] if 'tree_cpu_seconds' in d else 0:>8.1f}")  # fmt: skip


if __name__ == "__main__":
    _scan_here(Path(sys.argv[1]))

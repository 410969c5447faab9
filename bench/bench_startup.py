"""Start-up cost of `vscan scan`, before/after in the same run.

Measures, each as a fresh `vscan scan` process (as a user runs it), on one
short clip against a one-clip bank:

- first record: a new output: seconds from the command's start until its
  record is in the output file, and until the command ends;
- no-op resume: the same command again (every input recorded);
- ``--state`` unchanged: a new output with the same ``--state`` (every
  input unchanged).

With ``--baseline-worktree DIR`` (e.g. ``git worktree add /tmp/old e0ef658``)
the same three are measured with that checkout's code (run from a copy of
its package on PYTHONPATH, with a bank built by its own code), alternating
with this code round by round, so both see the same machine load. Given
more than once, every checkout is measured in the same rounds (named by
their folder), each with its own ratios.

``--cpu`` also measures, each round, the CPU seconds the scan's whole
process tree (driver, Ray's daemons and agents, workers, model actor) has
used by its first record: what start-up costs, whatever the machine's load.

``--embedded-sweep 1,2,4,8`` measures instead whole scans of that many
short clips with this code, without Ray and on Ray (``runtime.embedded_max_files``).

``--breakdown`` also runs one scan of this code in a process that stamps
where start-up goes (vscan.runtime.ray_start's phases): imports, the
pre-flight, ray.init, bank and model pool, the model actor's start, the
first record, the end of the scan (Ray's shutdown included) and of the process.

    python -m vscan.bench.bench_startup [--repeat 3] [--seconds 5] [--baseline-worktree DIR ...] [--worktree DIR] [--breakdown] [--cpu]
    python -m vscan.bench.bench_startup --embedded-sweep 1,2,4,8 [--repeat 3]

Prints a JSON line per round and the medians with their ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_KINDS = ("first_record", "first_total", "noop", "state")

#: One scan of this code with the start-up phases stamped (vscan.runtime.ray_start.phase_times).
_BREAKDOWN = """
import time, json, sys
t0 = time.perf_counter()
import vscan
from vscan.config import Runtime, ScanConfig
from vscan.runtime import ray_start
t_imported = time.perf_counter()
run = vscan.scan_iter(["in"], bank="b.bank", out=sys.argv[1], config=ScanConfig(runtime=Runtime(device="cpu")))
first = None
for record in run:
    first = first or time.perf_counter()
t_end = time.perf_counter()
stamps = {"imports": t_imported, **ray_start.phase_times(), "first record": first, "scan returned": t_end}
print(json.dumps({k: round(v - t0, 3) for k, v in stamps.items() if v is not None}))
"""


#: One scan; at its first record, the CPU seconds every process of the scan's tree (the driver,
#: Ray's daemons and agents, the workers, the model actor) has used so far, by kind: start-up's
#: cost in CPU, which on a loaded machine is what its wall time follows.
_CPU_TREE = """
import os, sys, time, json
from pathlib import Path
c0 = time.process_time()
import vscan
from vscan.config import Runtime, ScanConfig
HZ = os.sysconf("SC_CLK_TCK")
KINDS = ("gcs_server", "raylet", "dashboard/agent.py", "runtime_env/agent", "DashboardAgent", "RuntimeEnvAgent",
         "log_monitor", "autoscaler", "dashboard/dashboard.py", "_ModelActor", "ray::")
def tree():
    children = {}
    for e in filter(str.isdigit, os.listdir("/proc")):
        try:
            children.setdefault(int(Path(f"/proc/{e}/stat").read_text().rsplit(")", 1)[1].split()[1]), []).append(int(e))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [os.getpid()]
    while todo:
        for c in children.get(todo.pop(), []):
            todo.append(c)
            out.append(c)
    return out
def cpu_by_kind():
    rows = {"driver": time.process_time() - c0}
    for pid in tree():
        try:
            st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\\0", b" ").decode(errors="replace")
        except OSError:
            continue
        kind = next((k for k in KINDS if k in cmd), "other")
        rows[kind] = rows.get(kind, 0.0) + (int(st[11]) + int(st[12])) / HZ
    return rows
rows = None
for record in vscan.scan_iter(["in"], bank="b.bank", out=sys.argv[1], config=ScanConfig(runtime=Runtime(device="cpu"))):
    rows = rows or cpu_by_kind()
print(json.dumps({k: round(v, 3) for k, v in rows.items()}))
"""


def _scan(args: list[str], *, cwd: Path, out: Path, env: dict[str, str]) -> dict[str, float]:
    """Run one `vscan scan`; the seconds until ``out`` holds a new record, and until the process ends."""
    before = out.stat().st_size if out.exists() else 0
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "vscan.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    first = None
    while proc.poll() is None:
        if first is None and out.exists() and out.stat().st_size > before:
            first = time.perf_counter() - t0
        time.sleep(0.01)
    total = time.perf_counter() - t0
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"scan failed: {stderr[-2000:]}")
    return {"first_record_s": first if first is not None else float("nan"), "total_s": total}


class Variant:
    """One code base: its environment (PYTHONPATH), its folder with the clip and its own bank."""

    def __init__(self, name: str, root: Path, env: dict[str, str]) -> None:
        self.name, self.root, self.env = name, root, env
        self.rows: dict[str, list[float]] = {k: [] for k in _KINDS}
        self.cpu_kinds: list[dict[str, float]] = []

    def prepare(self, clip: Path, ref: Path) -> None:
        (self.root / "in").mkdir(parents=True)
        (self.root / "ref").mkdir()
        shutil.copy(clip, self.root / "in" / clip.name)
        shutil.copy(ref, self.root / "ref" / ref.name)
        build = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "build", "b.bank", "ref", "--device", "cpu"],
                               cwd=self.root, env=self.env, capture_output=True, text=True)  # fmt: skip
        if build.returncode != 0:
            raise SystemExit(build.stderr)
        # One untimed scan: numba's cache and the OS's page cache warm for both variants alike.
        self.round("warm", record=False)

    def round(self, tag: str, *, record: bool = True) -> None:
        out = self.root / f"r-{tag}.jsonl"
        args = ["scan", "in", "--bank", "b.bank", "--out", out.name, "--device", "cpu", "-q", "--state", f"s-{tag}.sqlite"]
        fresh = _scan(args, cwd=self.root, out=out, env=self.env)
        noop = _scan(args, cwd=self.root, out=out, env=self.env)  # every input recorded
        state_out = self.root / f"state-{tag}.jsonl"  # a new output, the same --state: every input unchanged
        state = _scan([*args[:5], state_out.name, *args[6:]], cwd=self.root, out=state_out, env=self.env)
        if record:
            for kind, value in zip(_KINDS, (fresh["first_record_s"], fresh["total_s"], noop["total_s"], state["total_s"])):
                self.rows[kind].append(value)

    def cpu_at_first_record(self, tag: str) -> None:
        """CPU seconds of the scan's process tree at its first record (``_CPU_TREE``), total and by kind."""
        out = self.root / f"cpu-{tag}.jsonl"
        run = subprocess.run([sys.executable, "-c", _CPU_TREE, out.name], cwd=self.root, env=self.env, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(run.stderr[-2000:])
        kinds = json.loads(run.stdout.strip().splitlines()[-1])
        self.rows.setdefault("cpu_to_first_record", []).append(sum(kinds.values()))
        self.cpu_kinds.append(kinds)

    def medians(self) -> dict[str, float]:
        return {k: statistics.median(v) for k, v in self.rows.items() if v}


def breakdown(variant: Variant) -> dict[str, float]:
    """Where one fresh scan's start-up goes (this code only: the phases are new)."""
    out = variant.root / "breakdown.jsonl"
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", _BREAKDOWN, out.name], cwd=variant.root, env=variant.env, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(run.stderr[-2000:])
    stamps = json.loads(run.stdout.strip().splitlines()[-1])
    stamps["process ended"] = round(time.perf_counter() - t0, 3)
    return stamps


def embedded_sweep(root: Path, counts: list[int], repeat: int, seconds: float, env: dict[str, str]) -> dict:
    """Whole `vscan scan` of N short clips (each count in ``counts``), without Ray
    (``runtime.embedded_max_files`` N) and on Ray (0), alternating, medians:
    where the embedded path stops paying (``embedded_max_files``'s default)."""
    from vscan.bench import synth

    configs = {"embedded": "[runtime]\nembedded_max_files = 1000\n", "ray": "[runtime]\nembedded_max_files = 0\n"}
    for name, text in configs.items():
        (root / f"{name}.toml").write_text(text)
    rows: dict[str, dict[str, list[float]]] = {}
    for n in counts:
        folder = root / f"sweep-{n}"
        for i in range(n):
            synth.make_clip(folder / f"c{i}.mp4", seed=100 + i, seconds=seconds, size=(320, 240))
        for r in range(repeat):
            for name in configs if r % 2 == 0 else list(configs)[::-1]:
                out = root / f"sweep-{n}-{name}-{r}.jsonl"
                args = ["scan", folder.name, "--bank", "b.bank", "--out", out.name, "--device", "cpu", "-q", "--config", f"{name}.toml"]
                rows.setdefault(str(n), {}).setdefault(name, []).append(_scan(args, cwd=root, out=out, env=env)["total_s"])
        print(json.dumps({"files": n, **{k: [round(x, 2) for x in v] for k, v in rows[str(n)].items()},
                          "load_average_1min": round(os.getloadavg()[0], 2)}), flush=True)  # fmt: skip
    return {n: {k: round(statistics.median(v), 3) for k, v in by.items()} for n, by in rows.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m vscan.bench.bench_startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the one clip")
    parser.add_argument("--baseline-worktree", type=Path, action="append", default=[],
                        help="also measure this checkout's code, same run (may be given more than once)")
    parser.add_argument("--worktree", type=Path, default=None, help="measure this checkout's code as 'after' (default: the installed vscan)")
    parser.add_argument("--breakdown", action="store_true", help="also stamp where one scan's start-up goes")
    parser.add_argument("--embedded-sweep", default=None, metavar="N,N,...",
                        help="only: whole scans of N clips without Ray and on Ray, this code (runtime.embedded_max_files' default)")
    parser.add_argument("--cpu", action="store_true",
                        help="also, each round: CPU seconds of the scan's whole process tree at its first record (load-independent)")
    opts = parser.parse_args(argv)

    from vscan.bench import synth
    from vscan.bench.bench_archive import package_checkout

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clip = synth.make_clip(root / "clip.mp4", seed=7, seconds=opts.seconds, size=(320, 240))
        ref = synth.make_clip(root / "known.mp4", seed=8, seconds=opts.seconds, size=(320, 240))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        after_env = {**env, "PYTHONPATH": str(package_checkout(opts.worktree.resolve(), root / "after-pkg"))} if opts.worktree else env
        if opts.embedded_sweep:
            sweep = Variant("after", root / "after", after_env)
            sweep.prepare(clip, ref)
            counts = [int(n) for n in opts.embedded_sweep.split(",")]
            result = {"whole_scan_seconds_median": embedded_sweep(sweep.root, counts, opts.repeat, opts.seconds, after_env),
                      "load_average": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
            print(json.dumps(result, indent=1))
            return result
        variants = [Variant("after", root / "after", after_env)]
        for n, tree in enumerate(opts.baseline_worktree):
            name = "before" if len(opts.baseline_worktree) == 1 else f"before:{tree.name}"
            pkg = package_checkout(tree.resolve(), root / f"baseline-pkg-{n}")
            variants.append(Variant(name, root / f"before-{n}", {**env, "PYTHONPATH": str(pkg)}))
        for v in variants:
            v.prepare(clip, ref)
        for i in range(opts.repeat):
            # Rotate the order so that no variant always runs first in a round.
            for v in variants[i % len(variants):] + variants[: i % len(variants)]:
                v.round(str(i))
                if opts.cpu:
                    v.cpu_at_first_record(str(i))
            print(json.dumps({"round": i, **{v.name: {k: round(r[-1], 3) for k, r in v.rows.items()} for v in variants},
                              "load_average_1min": round(os.getloadavg()[0], 2)}), flush=True)  # fmt: skip
        result: dict = {"medians": {v.name: {k: round(x, 3) for k, x in v.medians().items()} for v in variants}}
        after = variants[0].medians()
        for v in variants[1:]:
            before = v.medians()
            key = "ratio_after_over_before" + ("" if v.name == "before" else v.name[len("before"):])
            result[key] = {k: round(after[k] / before[k], 3) for k in after if k in before}
        if opts.cpu:
            result["cpu_seconds_by_process_kind_median"] = {
                v.name: {k: round(statistics.median(c.get(k, 0.0) for c in v.cpu_kinds), 3) for k in sorted({k for c in v.cpu_kinds for k in c})}
                for v in variants}  # fmt: skip
        if opts.breakdown:
            result["breakdown_seconds_from_start"] = breakdown(variants[0])
        result["load_average"] = {"before_run": [round(x, 2) for x in load_before], "after_run": [round(x, 2) for x in os.getloadavg()]}
        print(json.dumps(result, indent=1))
        return result


if __name__ == "__main__":
    main()

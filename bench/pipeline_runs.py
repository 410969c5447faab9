"""What the pipeline benchmarks share: process-tree sampling (peak RSS, CPU
and GPU utilisation), the generated corpus and bank, and one measured scan
through the real Ray pipeline with its per-stage rates (vscan.bench.capacity).
Used by vscan.bench.bench_pipeline and vscan.bench.capacity_check.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import threading
import time
from pathlib import Path

from vscan.bench import synth
from vscan.bench.capacity import stage_rates
from vscan.bank.store import build_bank
from vscan.decode import EveryFrame
from vscan.config import ScanConfig
from vscan.runtime.driver import run_scan as scan_files
from vscan.output.sinks import JsonlSink

__all__ = ["Sampler", "tree_cpu_ticks", "tree_rss_bytes", "make_corpus", "make_small_files", "make_bank", "run_scan"]


# -- process-tree sampling (no psutil dependency) ------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree_rss_bytes(root: int) -> int:
    kids, todo, total = _children(), [root], 0
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total


def tree_cpu_ticks(root: int) -> dict[int, int]:
    """utime + stime (clock ticks) of every process in ``root``'s tree, by pid."""
    kids, todo, out = _children(), [root], {}
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            out[pid] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return out


def _cpu_times() -> tuple[float, float]:
    with open("/proc/stat") as fh:
        values = [float(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class GpuSampler:
    """GPU utilisation and memory from ``nvidia-smi -lms`` (None without one)."""

    def __init__(self, period_ms: int = 250) -> None:
        self.samples: list[tuple[float, float]] = []  # (utilisation %, memory MiB)
        try:
            self._proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", f"-lms={period_ms}"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )  # fmt: skip
        except OSError:
            self._proc = None
            return
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                util, mem = (float(v) for v in line.split(",")[:2])
            except ValueError:
                continue
            self.samples.append((util, mem))

    def stop(self) -> dict | None:
        if self._proc is None:
            return None
        self._proc.terminate()
        self._proc.wait()
        if not self.samples:
            return None
        util = [u for u, _ in self.samples]
        return {"mean_utilisation": sum(util) / len(util), "max_utilisation": max(util),
                "peak_memory_mib": max(m for _, m in self.samples), "samples": len(util)}  # fmt: skip


class Sampler:
    """Peak RSS of this process tree, machine CPU utilisation and (where there
    is one) GPU utilisation over a run."""

    def __init__(self, period: float = 0.25) -> None:
        self.period, self.peak_rss, self._stop = period, 0, threading.Event()
        self._ticks: dict[int, int] = {}  # the most CPU ticks seen of each process of the tree

    def __enter__(self) -> "Sampler":
        self._cpu0 = _cpu_times()
        self._ticks0 = tree_cpu_ticks(os.getpid())
        self._gpu = GpuSampler(int(self.period * 1000))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.peak_rss = max(self.peak_rss, tree_rss_bytes(os.getpid()))
            self._ticks.update(tree_cpu_ticks(os.getpid()))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.gpu = self._gpu.stop()
        busy1, total1 = _cpu_times()
        busy = busy1 - self._cpu0[0]
        self.cpu_utilisation = busy / max(total1 - self._cpu0[1], 1e-9)
        self._ticks.update(tree_cpu_ticks(os.getpid()))
        # CPU-seconds of this process tree (driver, Ray, workers, actors) whatever else loads the machine;
        # a process that ended loses its last sampling period (0.25 s).
        ticks = sum(t - self._ticks0.get(pid, 0) for pid, t in self._ticks.items())
        self.tree_cpu_seconds = ticks / os.sysconf("SC_CLK_TCK")


# -- corpus ----------------------------------------------------------------------


def make_corpus(root: Path, clips: int, seconds: float, size: tuple[int, int], *, sweep: bool = False) -> tuple[list[Path], list[Path]]:
    """(banked sources, corpus). A quarter of the clips are banked and re-uploaded;
    ``sweep``: none of the corpus is known (the bank holds two other clips),
    as in a nightly sweep where almost nothing matches."""
    if sweep:
        corpus = make_corpus(root, clips, seconds, size)[1][:clips]
        sources = []
        for i in range(2):
            path = root / f"banked-elsewhere-{i}.mp4"
            sources.append(path if path.exists() else synth.make_clip(path, seed=900 + i, seconds=seconds, size=size, scenes=3, gop=250))
        return sources, [p for p in corpus if p.name.startswith("clip-")]
    sources, corpus = [], []
    for i in range(clips):
        path = root / f"clip-{i:03d}.mp4"
        if not path.exists():  # --workdir keeps a corpus between runs
            synth.make_clip(path, seed=100 + i, seconds=seconds, size=size, scenes=3, gop=250)
        corpus.append(path)
        if i % 4 == 0:
            sources.append(path)
    for i, src in enumerate(sources):  # re-uploads of the banked sources
        path = root / f"reupload-{i:03d}.mp4"
        corpus.append(path if path.exists() else synth.edit_clip(src, path, "reencode", crf=34))
    return sources, corpus


def make_small_files(root: Path, n: int) -> list[Path]:
    template = synth.make_clip(root / "tiny-template.mp4", seed=7, seconds=1, size=(96, 64), scenes=1)
    data = template.read_bytes()
    out = []
    for i in range(n):
        path = root / "small" / f"tiny-{i:05d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(path)
    return out


def make_bank(path: Path, sources: list[Path], device: str) -> Path:
    """A bank of ``sources``, hashed at every frame with every extra row (as ``vscan bank build``)."""
    from vscan.bank.hashers import media_hasher

    path.unlink(missing_ok=True)
    build_bank(path, sources, hash_media=media_hasher(EveryFrame(), device))  # rows and entry geometry, as the command hashes them
    return path


# -- runs --------------------------------------------------------------------------


def run_scan(name: str, inputs: list[Path], bank: Path | None, config: ScanConfig, out_dir: Path, ray_address: str | None = None) -> dict:
    out = out_dir / f"{name}.jsonl"
    out.unlink(missing_ok=True)
    stamps: list[float] = []
    driver_cpu: list[float] = []  # the driver thread's CPU time at each record (on_record runs in that thread)
    t0 = time.perf_counter()

    def on_record(_record: dict) -> None:
        stamps.append(time.perf_counter() - t0)
        driver_cpu.append(time.thread_time())

    own0 = resource.getrusage(resource.RUSAGE_SELF)
    with Sampler() as sampler, JsonlSink(out, fsync=True) as sink:
        summary = scan_files(inputs, sink=sink, bank_path=bank, config=config, ray_address=ray_address, on_record=on_record)
    own1 = resource.getrusage(resource.RUSAGE_SELF)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    actors = json.loads(Path(f"{out}.manifest.json").read_text())["runs"][-1]["cluster"]["model_actors"]
    rates = stage_rates(records, summary.pipeline, driver_cpu_seconds=driver_cpu[-1] - driver_cpu[0] if driver_cpu else 0.0,
                        driver_records=len(stamps) - 1,
                        model_threads=round(sum(a["threads"] for a in actors) / len(actors)))  # fmt: skip
    stages: dict[str, float] = {}
    for r in records:
        for stage, seconds in r["timings"].items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    frames_sampled = sum(r["frames_sampled"] for r in records)
    frames_decoded = sum(r["frames_decoded"] for r in records)
    video_seconds = sum(r["duration_seconds"] or 0 for r in records)
    return {
        "name": name,
        "files": summary.files,
        "errors": summary.errors,
        "matched": summary.matched,
        "wall_seconds": summary.wall_seconds,
        "video_seconds": video_seconds,
        "video_seconds_per_second": video_seconds / summary.wall_seconds,
        # Start-up (Ray, workers, model actor) is paid once per run; the rate
        # after the first record is what a long sweep sees.
        "first_record_seconds": stamps[0] if stamps else None,
        "steady_video_seconds_per_second": video_seconds * (len(stamps) - 1) / len(stamps) / max(stamps[-1] - stamps[0], 1e-9)
        if len(stamps) > 1 else None,
        "files_per_second": summary.files / summary.wall_seconds,
        "record_stamps": [round(t, 4) for t in stamps],  # seconds from the start at each record
        "steady_files_per_second": (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9) if len(stamps) > 1 else None,
        "frames_decoded": frames_decoded,
        "frames_sampled": frames_sampled,
        "stage_seconds": stages,
        # Stage rates are per worker (stage time summed over files), not wall.
        "stage_frames_per_second": {s: (frames_decoded if s == "decode" else frames_sampled) / t for s, t in stages.items() if t > 0 and s != "digest"},
        "cpu_utilisation": sampler.cpu_utilisation,
        "tree_cpu_seconds": sampler.tree_cpu_seconds,
        # the scanning process's own CPU (driver, sink; an embedded scan's model thread too), not its children's
        "process_cpu_seconds": own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime,
        "gpu": sampler.gpu,
        "peak_rss_mib": sampler.peak_rss / 2**20,
        # Queue depths and stage utilisation (vscan.runtime.driver._QueueStats).
        "pipeline": summary.pipeline,
        # Per-stage rates (vscan.bench.capacity): what the capacity model predicts from.
        "rates": rates.as_dict(),
        "matched_files": sorted(Path(r["path"]).name for r in records if any(m.get("is_match") for m in r["matches"])),
    }

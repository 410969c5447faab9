"""A scan against a big bank: the memory-mapped index (vscan.bank.mapped) vs the bank loaded into memory.

Banks of 1M / 10M frame rows (``--sizes``), written once under ``--workdir``
(default /tmp/vscan-bench-scan-bank) and reused: realistic PDQ hashes
(``vscan.bench.realistic_hashes``: runs of near-duplicate frames of real
frame hashes of generated videos), 32 rows an entry, plus the frame and
extra rows of a few generated clips (``vscan.bench.synth``), hashed as
``vscan bank build`` does. The scan: those clips re-encoded and mirrored,
and unrelated clips, robust matching, CPU.

Each scan runs in its own process (``run_scan``; Ray started, and its
worker processes up, before the clock starts), in both modes in the same run: ``memory``
(``runtime.bank_in_memory``: the driver loads the bank and ships it through
Ray's object store; each actor prepares its matchers over it, the way
scans worked before) and ``mapped`` (the default: the driver builds
``BANK.vidx`` once, ``mapped (built)``, and later scans reuse it, ``mapped``).
Columns: driver peak RSS MB (its VmHWM), the model actor's peak RSS and
peak private (anonymous) memory MB, seconds from the scan's start to its
first record, seconds to the end; the records of both modes are compared.

    python -m vscan.bench.bench_scan_bank [--sizes 1000000 10000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROWS_PER_ENTRY = 32


def _status(pid: int | str) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon"):
                    out[key] = int(value.split()[0]) // 1024
    except OSError:
        pass
    return out


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("PPid:"))
    except (OSError, StopIteration):
        return 0


def _actors() -> list[int]:
    """This process's model actors (Ray's workers descend from the Ray it started; other scans on the machine don't)."""
    me, pids = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if b"_ModelActor" not in f.read():
                        continue
            except OSError:
                continue
            pid = int(entry)
            while pid > 1 and pid != me:
                pid = _parent(pid)
            if pid == me:
                pids.append(int(entry))
    return pids


def _clips(work: Path) -> tuple[Path, Path]:
    """The bank's clips (three generated videos) and the scan's (their edits and two unrelated)."""
    from vscan.bench import synth
    from vscan.bench.edits import edit_clip

    src, scan = work / "bank_clips", work / "scan_clips"
    if not (scan / "done").is_file():
        for k in range(3):
            clip = synth.make_clip(src / f"known{k}.mp4", seed=100 + k, seconds=6, size=(160, 120))
            edit_clip(clip, scan / f"known{k}_reencoded.mp4", "reencode")
            edit_clip(clip, scan / f"known{k}_mirrored.mp4", "hflip")
        for k in range(2):
            synth.make_clip(scan / f"other{k}.mp4", seed=900 + k, seconds=6, size=(160, 120))
        (scan / "done").write_text("")
    return src, scan


def make_bank(path: Path, size: int, work: Path) -> Path:
    """The bank of ``size`` realistic rows plus the clips' entries (reused when there)."""
    if path.is_file():
        return path
    from vscan.bank.schema import FORMAT_VERSION, SCHEMA
    from vscan.bank.store import Bank
    from vscan.bench.realistic_hashes import expand_bank, real_frame_hashes

    src, _ = _clips(work)
    clips_bank = work / "clips.bank"
    if not clips_bank.is_file():
        Bank.build(clips_bank, [src], device="cpu", label="known")
    variants, _ = real_frame_hashes(cache=work / "real_hashes.npz")
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    conn.executescript(SCHEMA)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute(f"ATTACH DATABASE '{clips_bank}' AS clips")
    for table in ("entries", "frame_hashes", "extra_hashes", "file_digests"):
        conn.execute(f"INSERT INTO {table} SELECT * FROM clips.{table}")
    conn.commit()
    conn.execute("DETACH DATABASE clips")
    step = 1 << 20
    for start in range(0, size, step):
        n = min(step, size - start)
        hashes = expand_bank(variants[:, :, 0], n, seed=start + 1)
        first = start // ROWS_PER_ENTRY
        last = (start + n - 1) // ROWS_PER_ENTRY
        conn.executemany("INSERT INTO entries VALUES (?, 'list', 'gen', 'pdq_list', NULL, 'video', ?, ?)",
                         ((f"gen:{e:08d}", ROWS_PER_ENTRY / 12.0, ROWS_PER_ENTRY) for e in range(first, last + 1)))  # fmt: skip
        rows = ((f"gen:{(start + i) // ROWS_PER_ENTRY:08d}", (start + i) % ROWS_PER_ENTRY, ((start + i) % ROWS_PER_ENTRY) / 12.0,
                 90, hashes[i].tobytes()) for i in range(n))  # fmt: skip
        conn.executemany("INSERT OR IGNORE INTO frame_hashes VALUES (?, ?, ?, ?, ?)", rows)
        conn.commit()
    meta = {"format_version": str(FORMAT_VERSION), "created_by": "vscan.bench.bench_scan_bank", "hash_algorithm": "pdq",
            "skipped_inputs": "[]", "content_digest": f"bench-{size}"}  # fmt: skip
    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(meta.items()))
    conn.commit()
    conn.close()
    os.replace(tmp, path)
    return path


def _one(bank: str, clips: str, mode: str, out: str) -> None:
    """One scan in this process (the child's side)."""
    from vscan.config import Runtime, ScanConfig
    from vscan.output.sinks import JsonlSink
    from vscan.runtime.driver import run_scan
    from vscan.runtime.ray_start import start_ray

    start_ray(None)
    import ray

    warm = ray.remote(num_cpus=1)(lambda: os.getpid())  # Ray's worker processes up before the clock starts
    ray.get([warm.remote() for _ in range(4)])
    time.sleep(2.0)
    peak = {"actor_rss": 0, "actor_anon": 0}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for pid in _actors():
                s = _status(pid)
                peak["actor_rss"] = max(peak["actor_rss"], s.get("VmHWM", 0))
                peak["actor_anon"] = max(peak["actor_anon"], s.get("RssAnon", 0))
            time.sleep(0.1)

    threading.Thread(target=watch, daemon=True).start()
    config = ScanConfig(runtime=Runtime(device="cpu", bank_in_memory=mode == "memory"))
    before = _status("self")
    first: list[float] = []
    t0 = time.perf_counter()
    with JsonlSink(out) as sink:
        run_scan([clips], sink=sink, bank_path=bank, config=config, on_record=lambda r: first.append(time.perf_counter() - t0))
    total = time.perf_counter() - t0
    done.set()
    time.sleep(0.2)
    print(json.dumps({"driver_peak_mb": _status("self")["VmHWM"], "driver_before_mb": before["VmRSS"], **peak,
                      "first_record_s": first[0] if first else None, "total_s": total}))  # fmt: skip


def _comparable(path: Path) -> dict:
    from vscan.output.read import read_records

    drop = {"timings", "ran_on", "scanned_at", "run_id", "elapsed_seconds", "wall_seconds"}
    return {Path(r["path"]).name: {k: v for k, v in r.items() if k not in drop} for r in read_records(path)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", default="/tmp/vscan-bench-scan-bank")
    parser.add_argument("--one", nargs=4, metavar=("BANK", "CLIPS", "MODE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        return _one(*args.one)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    _, clips = _clips(work)
    print(f"{'rows':>10} {'mode':<15} {'driver MB':>9} {'actor MB':>9} {'actor anon':>10} {'first s':>8} {'total s':>8}")
    for size in args.sizes:
        t = time.perf_counter()
        bank = work / f"bank{size}.bank"
        fresh = not bank.is_file()
        make_bank(bank, size, work)
        if fresh:
            print(f"# bank of {size} rows written in {time.perf_counter() - t:.0f} s")
        vidx = Path(f"{bank}.vidx")
        if vidx.exists():  # the first mapped scan builds it, as a first scan of a new bank would
            import shutil

            shutil.rmtree(vidx)
        rows = {}
        for mode in ("memory", "mapped (built)", "mapped"):
            out = work / f"out{size}-{mode.split()[0]}{'-built' if 'built' in mode else ''}.jsonl"
            out.unlink(missing_ok=True)
            run = subprocess.run([sys.executable, "-m", "vscan.bench.bench_scan_bank", "--one", str(bank), str(clips), mode.split()[0], str(out)],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            r = json.loads(run.stdout.strip().splitlines()[-1])
            rows[mode] = r
            print(f"{size:>10} {mode:<15} {r['driver_peak_mb']:>9} {r['actor_rss']:>9} {r['actor_anon']:>10} "
                  f"{r['first_record_s']:>8.1f} {r['total_s']:>8.1f}", flush=True)  # fmt: skip
        same = _comparable(work / f"out{size}-memory.jsonl") == _comparable(work / f"out{size}-mapped.jsonl")
        m, o = rows["mapped"], rows["memory"]
        print(f"# {size}: records equal: {same}; mapped/memory: driver peak {m['driver_peak_mb'] / o['driver_peak_mb']:.2f}x, "
              f"actor private {m['actor_anon'] / max(o['actor_anon'], 1):.2f}x, first record {m['first_record_s'] / o['first_record_s']:.2f}x, "
              f"total {m['total_s'] / o['total_s']:.2f}x", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

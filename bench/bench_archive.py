"""An archive, not a sweep: mostly known copies, against the reference vPDQ in the same run.

    python -m vscan.bench.bench_archive [--quick] [--sources 6 --copies 15 --unrelated 10 --seconds 16 --size 640x360]
                                        [--baseline-worktree DIR] [--workdir DIR] [--json out.json]
    vscan bench --archive [the same options]

Corpus (vscan.bench.archive_corpus; generated, nothing downloaded; cached
under ~/.cache/vscan/bench-archive, so a rerun costs nothing): by default
the size of the archive issue #30 was measured on: 8 banked clips (6
generated, vscan.bench.synth; 2 real sample videos of ../shared/data/vpdq
when present) with 15 copies each transcoded by the ffmpeg command line into
H.264, HEVC, VP9 and AV1 at GOP lengths 25 to 300 (re-encodes, smaller
sizes, brightness, colour, mirrors, trims, another frame rate), the real
samples' own edits, and 12 files in no bank: 137 files, about 2,100
video-seconds. ``--quick``: 2 clips, 2 copies each, 1 unrelated (tests). The
bank holds the sources hashed at every frame with every extra row (as
``vscan bank build``).

Runs, in one process run, on the same files: the reference vPDQ (PyPI
``vpdq``) at 1 s/hash on every core (its features also give its recall:
query% >= 80 against the right source, distance < 31, quality >= 50, as
vscan.bench.bench_robustness does), then ``vscan scan``'s pipeline
(adaptive sampling, robust matching; the embedded path or Ray, as a scan
chooses), and with ``--baseline-worktree`` the same scan by another
checkout of vscan (e.g. ``git worktree add /tmp/old 30d35e0``), for a
before/after in the same run. Each vscan run is a fresh process after a
warm-up scan of 2 files by the same code (compiled kernels and bytecode cached, as installed: ``as_installed``),
so both versions pay the same imports and neither pays compilation. Reported: wall time and the ratio to vPDQ
(video-seconds per second) over the whole run and after start-up (the
first record), the process tree's CPU-seconds, recall and false positives
of each; where the time goes (start-up, decode slot-seconds, model busy
seconds, decode tasks and model calls per file); frames decoded per
video-second and stage-milliseconds per file, per codec (the records'
``timings``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from vscan.bench.archive_corpus import VARIANTS, Variant, default_root, make_archive

__all__ = ["VARIANTS", "Variant", "make_archive", "run_vscan", "run_vpdq", "summarise", "main"]


# -- the reference ------------------------------------------------------------------


def _vpdq_features(vpdq, path: Path) -> np.ndarray:
    try:
        feats = vpdq.computeHash(input_video_filename=str(path), seconds_per_hash=1, thread_count=1)
    except Exception:  # noqa: BLE001 - a file the reference cannot read is not recalled
        feats = []
    good = {f.hex for f in feats if f.quality >= 50}
    return np.array([np.frombuffer(bytes.fromhex(h), np.uint8) for h in sorted(good)], np.uint8).reshape(-1, 32)


def _query_pct(q: np.ndarray, r: np.ndarray) -> float:
    if not len(q) or not len(r):
        return 0.0
    d = np.unpackbits(q[:, None, :] ^ r[None, :, :], axis=-1).sum(-1)
    return 100.0 * float((d < 31).any(1).mean())


def run_vpdq(files: list[Path], sources: list[Path], source_of: dict[str, str | None], threads: int) -> dict | None:
    """The reference vPDQ at 1 s/hash over ``files`` on ``threads`` threads (timed), and its recall."""
    try:
        import vpdq
    except ImportError:
        return None
    from vscan.bench.pipeline_runs import Sampler

    t0 = time.perf_counter()
    with Sampler() as sampler, ThreadPoolExecutor(max_workers=threads) as pool:
        features = list(pool.map(lambda p: _vpdq_features(vpdq, p), files))
    wall = time.perf_counter() - t0
    refs = {s.stem: _vpdq_features(vpdq, s) for s in sources}  # the bank side: not timed, as a bank is built once
    matched = {}
    for path, q in zip(files, features):
        src = source_of[path.name]
        matched[path.name] = (_query_pct(q, refs[src]) >= 80) if src else any(_query_pct(q, r) >= 80 for r in refs.values())
    return {"name": "vpdq 1 s/hash", "wall_seconds": wall, "cpu_utilisation": sampler.cpu_utilisation, "tree_cpu_seconds": sampler.tree_cpu_seconds, "matched": matched,
            "frames_sampled": int(sum(len(f) for f in features))}  # fmt: skip


# -- vscan ----------------------------------------------------------------------------


def run_vscan(name: str, files: list[Path], bank: Path, out_dir: Path, device: str, confirm_frames: str = "default", confirm_ahead: str = "auto",
              local_model: bool = False) -> dict:  # fmt: skip
    """``vscan scan``'s pipeline (its defaults: adaptive sampling, robust matching) over ``files``; its records kept.
    ``confirm_frames``: "default", or Adaptive(confirm_frames=N) ("none": dense windows where the first pass decides);
    ``confirm_ahead``: "auto", or Adaptive(confirm_ahead=True/False) ("always"/"never");
    ``local_model``: runtime.local_model_at_start on (the model in this process until Ray's actor answers)."""
    from vscan.bench.pipeline_runs import run_scan
    from vscan.config import Runtime, Sampling, ScanConfig

    runtime = Runtime(device=device, local_model_at_start=True) if local_model else Runtime(device=device)
    config = ScanConfig(runtime=runtime)
    if confirm_frames != "default" or confirm_ahead != "auto":
        from vscan.decode import Adaptive

        frames = {} if confirm_frames == "default" else {"confirm_frames": None if confirm_frames == "none" else int(confirm_frames)}
        ahead = {} if confirm_ahead == "auto" else {"confirm_ahead": confirm_ahead == "always"}
        config = ScanConfig(sampling=Sampling(policy=Adaptive(**frames, **ahead)), runtime=runtime)
    row = run_scan(name, files, bank, config, out_dir)
    records = [json.loads(line) for line in (out_dir / f"{name}.jsonl").read_text().splitlines()]
    row["records"] = [{k: r.get(k) for k in ("path", "status", "duration_seconds", "frames_decoded", "frames_sampled", "timings", "sampling")}
                      | {"codec": (r.get("media") or {}).get("codec"), "matched": any(m.get("is_match") for m in r.get("matches") or []),
                         "second_pass": (r.get("second_pass") or {}).get("sampling")} for r in records]  # fmt: skip
    return row


def _tree_stamp(worktree: Path, bench_files: tuple[Path, ...]) -> str:
    """Which code a package holds: every source file's path, size and mtime."""
    parts = []
    for sub in ("scanner", "kernels", "bench"):
        for f in sorted((worktree / sub).rglob("*.py")):
            st = f.stat()
            parts.append(f"{f.relative_to(worktree)}:{st.st_size}:{st.st_mtime_ns}")
    parts += [f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in bench_files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def package_checkout(worktree: Path, into: Path, *, bench_files: tuple[Path, ...] = ()) -> Path:
    """An importable ``vscan`` package built from another checkout (its
    scanner/, kernels/, bench/ and models/ as the package maps them), for
    PYTHONPATH; ``bench_files`` (this checkout's bench modules) are added to
    its bench/, so the other code runs the same measurement. A package of the
    same code already at ``into`` is kept, with the kernels numba compiled and
    cached beside it: copied afresh, the other code paid that compilation in
    every timed run (~2.5 s of start-up) and this checkout's in-tree code did not."""
    pkg, stamp_file = into / "vscan", into / "vscan.stamp"
    stamp = _tree_stamp(worktree, bench_files)
    if pkg.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return into
    if pkg.exists():
        shutil.rmtree(pkg)
    shutil.copytree(worktree / "scanner", pkg)
    for sub in ("kernels", "bench"):
        shutil.copytree(worktree / sub, pkg / sub)
    (pkg / "models").symlink_to((worktree / "models").resolve())
    for f in bench_files:
        shutil.copyfile(f, pkg / "bench" / f.name)
    stamp_file.write_text(stamp)
    return into


def as_installed(env: dict[str, str], out_dir: Path) -> dict[str, str]:
    """``env`` for a timed vscan process, as an installed vscan runs: its modules' bytecode cached (by the warm-up scan)
    under ``out_dir``/pycache. With PYTHONDONTWRITEBYTECODE set (a shared checkout), each process compiled vscan from
    source every run, which pip's bytecode never does: ~0.15 CPU-s in the scanning process, ~0.045 in each decode one."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(out_dir / "pycache")
    return env


def run_subprocess(name: str, files: list[Path], bank: Path, out_dir: Path, device: str, *, pythonpath: Path | None = None,
                   warm_files: int = 2, **options: Any) -> dict:  # fmt: skip
    """The scan in a fresh process (its own imports and Ray), after a warm-up scan of ``warm_files``
    files by the same code (numba's kernel caches written, files in the page cache), so that
    each version and variant is timed the same way: a fresh process, warm caches. ``options``: ``run_vscan``'s."""
    env = as_installed(dict(os.environ), out_dir)
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{os.environ.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    runs = ([(f"{name}-warm", files[:warm_files])] if warm_files else []) + [(name, files)]
    for run_name, run_files in runs:
        spec = out_dir / f"{run_name}-spec.json"
        spec.write_text(json.dumps({"name": run_name, "files": [str(f) for f in run_files], "bank": str(bank), "out_dir": str(out_dir), "device": device,
                                    "options": options}))  # fmt: skip
        subprocess.run([sys.executable, "-m", "vscan.bench.bench_archive", "--scan-only", str(spec)], env=env, check=True, cwd=str(out_dir))
    return json.loads((out_dir / f"{name}-row.json").read_text())


def run_baseline(worktree: Path, files: list[Path], bank: Path, out_dir: Path, device: str) -> dict:
    """The same scan by the code of ``worktree``, in a subprocess (its own Ray), timed as this code's is."""
    here = Path(__file__).parent  # this checkout's measurement (the bench, its corpus and its sampler) runs the other code
    path = package_checkout(worktree, out_dir / "baseline-pkg", bench_files=tuple(here / f for f in ("bench_archive.py", "archive_corpus.py", "pipeline_runs.py")))
    return run_subprocess("baseline", files, bank, out_dir, device, pythonpath=path)


def _scan_only(spec_path: Path) -> None:
    import vscan

    spec = json.loads(spec_path.read_text())
    out_dir, name = Path(spec["out_dir"]), spec.get("name", "baseline")
    row = run_vscan(name, [Path(f) for f in spec["files"]], Path(spec["bank"]), out_dir, spec["device"], **spec.get("options", {}))
    row["code"] = str(Path(vscan.__file__).parent)
    (out_dir / f"{name}-row.json").write_text(json.dumps(row, default=str))


# -- report ---------------------------------------------------------------------------


def summarise(row: dict, source_of: dict[str, str | None]) -> dict:
    """Recall, false positives, and per codec: frames decoded per video-second and stage-seconds per file."""
    recs = row["records"]
    known = [r for r in recs if source_of.get(Path(r["path"]).name)]
    others = [r for r in recs if not source_of.get(Path(r["path"]).name)]
    per_codec: dict[str, dict] = {}
    for r in recs:
        c = per_codec.setdefault(r["codec"] or "?", {"files": 0, "video_seconds": 0.0, "frames_decoded": 0, "frames_sampled": 0, "stages": {}})
        c["files"] += 1
        c["video_seconds"] += r["duration_seconds"] or 0.0
        c["frames_decoded"] += r["frames_decoded"] or 0
        c["frames_sampled"] += r["frames_sampled"] or 0
        for stage, seconds in (r["timings"] or {}).items():
            c["stages"][stage] = c["stages"].get(stage, 0.0) + seconds
    for c in per_codec.values():
        c["frames_decoded_per_video_second"] = c["frames_decoded"] / max(c["video_seconds"], 1e-9)
        c["stage_seconds_per_file"] = {s: t / c["files"] for s, t in c["stages"].items()}
    passes: dict[str, int] = {}
    for r in recs:
        kind = (r["second_pass"] or "none").split("(")[0]
        passes[kind] = passes.get(kind, 0) + 1
    return {
        "recall": sum(r["matched"] for r in known) / max(len(known), 1),
        "false_positives": sum(r["matched"] for r in others),
        "per_codec": per_codec,
        "unmatched": _unmatched(recs),
        "second_passes": passes,
    }


#: The searches a file that matched nothing goes through (vscan.runtime.file_match), and what they hash and match inside.
_SEARCHES = ("match", "match_narrow", "match_centre_crops", "match_rotation", "match_regions", "match_offcentre", "regions")


def _unmatched(recs: list[dict]) -> dict:
    """Files that matched nothing (each went through every search): how many, and ms per file of the match and each search
    (issue #30: ~25 ms of CPU a file; the records' timings are wall time in the model's slot)."""
    rows = [r for r in recs if not r["matched"] and r["status"] == "ok"]
    return {"files": len(rows), "ms_per_file": {k: 1000 * sum((r["timings"] or {}).get(k, 0.0) for r in rows) / max(len(rows), 1)
                                                for k in _SEARCHES}}  # fmt: skip


def _ratio(rate: float | None, base: float | None) -> str:
    return f"{rate / base:.1f}x" if base and rate else "-"


def _print(rows: list[dict], reference: dict | None, video_seconds: float, files: int) -> None:
    base = video_seconds / reference["wall_seconds"] if reference else None
    print(f"\n{'run':<16} {'files':>5} {'video s':>8} {'wall s':>7} {'video-s/s':>9} {'vs vPDQ':>7} {'steady':>7} {'CPU s':>6} {'recall':>6} {'FP':>3} {'decoded':>8} {'sampled':>7}")
    if reference:
        print(f"{reference['name']:<16} {files:>5} {video_seconds:>8.0f} {reference['wall_seconds']:>7.1f} {base:>9.1f} {'1.0x':>7} {'':>7} "
              f"{reference['tree_cpu_seconds']:>6.1f} {reference['recall']:>6.2f} {reference['false_positives']:>3} {'all':>8} {reference['frames_sampled']:>7}")  # fmt: skip
    for r in rows:
        s = r["summary"]
        print(f"{r['name']:<16} {r['files']:>5} {r['video_seconds']:>8.0f} {r['wall_seconds']:>7.1f} {r['video_seconds_per_second']:>9.1f} "
              f"{_ratio(r['video_seconds_per_second'], base):>7} {_ratio(r.get('steady_video_seconds_per_second'), base):>7} "
              f"{r.get('tree_cpu_seconds', float('nan')):>6.1f} {s['recall']:>6.2f} {s['false_positives']:>3} {r['frames_decoded']:>8} {r['frames_sampled']:>7}")  # fmt: skip
    for r in rows:
        _print_profile(r)


def _print_profile(r: dict) -> None:
    """Where the run's seconds went: start-up, decode slots, the model, per file and per codec."""
    p, files = r.get("pipeline") or {}, max(r["files"], 1)
    first = r["first_record_seconds"] or 0.0
    print(f"\n{r['name']}: start-up (Ray, model actor; to the first record) {first:.1f} s, then {r['wall_seconds'] - first:.1f} s for the rest; "
          f"CPU {r.get('tree_cpu_seconds', float('nan')):.1f} s (process tree)")  # fmt: skip
    if p.get("embedded"):
        print(f"  run without Ray (vscan.runtime.embedded: runtime.embedded_max_files); model: {p.get('calls', 0)} calls, busy {p.get('busy_seconds', 0):.1f} s")
        _print_cpu(r)
    elif p:
        print(f"  decode: {p.get('decode_tasks', 0)} tasks ({p.get('decode_tasks', 0) / files:.2f} per file), {p.get('decode_slot_seconds', 0):.1f} slot-s "
              f"({p.get('decode_steady_slot_seconds', 0):.1f} after the first file); model: {p.get('model_calls', 0)} calls "
              f"({p.get('mean_files_per_call', 0):.1f} files, {p.get('mean_frames_per_call', 0):.0f} frames each), busy {p.get('model_busy_seconds', 0):.1f} s")  # fmt: skip
        if "first_passes" in p:
            print(f"  first passes: {p['first_passes']}, decided {p['first_passes_decided']}; confirmations decoded ahead "
                  f"{p['confirmations_decoded_ahead']}, matched in the first call {p['confirmations_matched_ahead']}")  # fmt: skip
    print(f"  second passes: {r['summary']['second_passes']}")
    for codec, c in sorted(r["summary"]["per_codec"].items()):
        stages = ", ".join(f"{k} {v * 1000:.0f}" for k, v in sorted(c["stage_seconds_per_file"].items()) if v >= 0.0005)
        print(f"  {codec:<8} {c['files']:>3} files: {c['frames_decoded_per_video_second']:6.2f} frames decoded / video-s, "
              f"{c['frames_sampled'] / c['files']:.1f} sampled / file; ms per file: {stages}")  # fmt: skip
    u = r["summary"].get("unmatched")
    if u and u["files"]:
        print(f"  matched nothing {u['files']:>3} files: ms per file: " + ", ".join(f"{k} {v:.1f}" for k, v in u["ms_per_file"].items()))


def cpu_account(r: dict) -> dict[str, float] | None:
    """An embedded run's CPU-seconds by where they went (issue #30): the decode processes, the model thread's build and
    calls, the rest of the scanning process (its driver loop: unpickling decoded files, records, the sink), and what
    the tree's sampled total holds beyond those (processes it lost between samples: 0.25 s each at most)."""
    p, own = r.get("pipeline") or {}, r.get("process_cpu_seconds")
    decode, build, calls = (p.get(k) for k in ("decode_processes_cpu_seconds", "model_build_cpu_seconds", "model_calls_cpu_seconds"))
    if None in (own, decode, build, calls):
        return None
    return {"decode_processes": decode, "model_build": build, "model_calls": calls, "driver": own - build - calls,
            "tree": r.get("tree_cpu_seconds", float("nan"))}  # fmt: skip


def _print_cpu(r: dict) -> None:
    a = cpu_account(r)
    if a is not None:
        print(f"  CPU s: decode processes {a['decode_processes']:.2f} ({(r.get('pipeline') or {}).get('decode_processes')} of them), "
              f"model build {a['model_build']:.2f}, model calls {a['model_calls']:.2f}, driver (loop, unpickling, records) "
              f"{a['driver']:.2f}; process tree {a['tree']:.2f}")  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vscan bench --archive", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", action="store_true", help=argparse.SUPPRESS)  # how `vscan bench --archive` arrives here
    parser.add_argument("--quick", action="store_true", help="a small archive (2 clips, 2 copies each, 1 unrelated, 8 s, no real media)")
    parser.add_argument("--sources", type=int, default=None, help="generated banked clips (default 6)")
    parser.add_argument("--copies", type=int, default=None, help="known copies of each banked clip (codecs and GOPs cycle; default 15)")
    parser.add_argument("--unrelated", type=int, default=None, help="generated clips in no bank (default 10)")
    parser.add_argument("--seconds", type=float, default=None, help="length of the generated clips (default 16)")
    parser.add_argument("--no-real", action="store_true", help="leave out the real sample videos of ../shared/data/vpdq")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--baseline-worktree", type=Path, default=None,
                        help="also scan with the vscan code of this checkout (e.g. git worktree add DIR 30d35e0), same run")
    parser.add_argument("--confirm-frames", nargs="*", default=[], metavar="N",
                        help="also scan with adaptive sampling's confirm_frames=N (none: dense windows where the first pass decides)")
    parser.add_argument("--confirm-ahead", nargs="*", default=[], choices=["always", "never"],
                        help="also scan with the confirmation always / never decoded ahead (default: while most first passes decide)")
    parser.add_argument("--local-model", action="store_true",
                        help="also scan with runtime.local_model_at_start on (the model in this process until Ray's actor answers)")
    parser.add_argument("--no-vpdq", action="store_true", help="skip the reference vPDQ")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the corpus, bank and records here (default: a cache directory)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--scan-only", type=Path, default=None, help=argparse.SUPPRESS)  # the baseline's subprocess
    return parser


def _corpus_args(args: argparse.Namespace) -> None:
    """Fill the corpus's defaults: the issue's archive size, or --quick's."""
    quick = {"sources": 2, "copies": 2, "unrelated": 1, "seconds": 8.0}
    full = {"sources": 6, "copies": 15, "unrelated": 10, "seconds": 16.0}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.real = not (args.quick or args.no_real)


def main(argv: list[str] | None = None) -> dict | None:
    args = _parser().parse_args(argv)
    if args.scan_only:
        return _scan_only(args.scan_only)
    _corpus_args(args)
    w, h = (int(v) for v in args.size.split("x"))
    root = (args.workdir or default_root(args.sources, args.copies, args.unrelated, args.seconds, (w, h), args.real)).resolve()
    t0 = time.perf_counter()
    archive = make_archive(root / "archive", args.sources, args.copies, args.unrelated, args.seconds, (w, h), real=args.real)
    files, source_of = archive.files, archive.source_of
    print(f"archive: {len(archive.known)} known copies of {len(archive.sources)} banked clips ({len({k['variant'] for k in archive.known})} kinds) "
          f"+ {len(archive.unrelated)} unrelated, under {root} ({time.perf_counter() - t0:.0f} s to generate or find)")  # fmt: skip
    from vscan.bench.pipeline_runs import make_bank
    from vscan.decode import PyAVDecoder

    bank = root / "bank.db"
    if not bank.exists():
        make_bank(bank, archive.sources, args.device)
    video_seconds = sum(PyAVDecoder().probe(p).duration_seconds for p in files)
    reference = None if args.no_vpdq else run_vpdq(files, archive.sources, source_of, threads=os.cpu_count() or 1)
    if reference:
        known_names = [k["path"].name for k in archive.known]
        reference["recall"] = sum(reference["matched"][n] for n in known_names) / max(len(known_names), 1)
        reference["false_positives"] = sum(reference["matched"][p.name] for p in archive.unrelated)
    rows = [run_subprocess("vscan", files, bank, root, args.device)]  # a fresh process after a warm-up, as the baseline
    variants = ([(f"vscan confirm {n}", {"confirm_frames": n}) for n in args.confirm_frames] + [(f"vscan ahead {when}", {"confirm_ahead": when})
                for when in args.confirm_ahead] + ([("vscan local model", {"local_model": True})] if args.local_model else []))  # fmt: skip
    for shown, options in variants:  # each timed as the main run is: a fresh process after its warm-up
        rows.append(run_subprocess(shown.replace(" ", "_"), files, bank, root, args.device, **options))
        rows[-1]["name"] = shown
    if args.baseline_worktree:
        rows.append(run_baseline(args.baseline_worktree.resolve(), files, bank, root, args.device))
        rows[-1]["name"] = "vscan baseline"
    for r in rows:
        r["summary"] = summarise(r, source_of)
    _print(rows, reference, video_seconds, len(files))
    if reference is None and not args.no_vpdq:
        print("(reference vPDQ not installed: pip install vpdq==0.2.5 after apt-get install cmake pkg-config libav*-dev)")
    result = {"meta": {"args": {k: str(v) for k, v in vars(args).items()}, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
                       "load_average": os.getloadavg()},
              "video_seconds": video_seconds, "files": len(files), "reference": reference, "runs": rows}  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()

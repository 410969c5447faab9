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
``timings``). And ``vscan scan`` itself, the command a user types (``run_command``): timed from its interpreter's
start to its exit (imports, the scan, the end), its default sampling (not ``--fixed-ahead``), once for this code and
once for the baseline: the ratio a user sees, which the in-process figures above leave ~0.4 s out of.
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
from vscan.bench.archive_report import summarise

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
    row["records"] = record_rows(records)
    return row


def record_rows(records: list[dict]) -> list[dict]:
    """What the report reads of each record (``archive_report.summarise``): its path, status, frames, timings and
    sampling, codec, whether it matched, and its second pass."""
    return [{k: r.get(k) for k in ("path", "status", "duration_seconds", "frames_decoded", "frames_sampled", "timings", "sampling")}
            | {"codec": (r.get("media") or {}).get("codec"), "matched": any(m.get("is_match") for m in r.get("matches") or []),
               "second_pass": (r.get("second_pass") or {}).get("sampling")} for r in records]  # fmt: skip


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
    # Not the checkout's own __pycache__: numba's caches there may come from the same code imported under another name
    # (a renamed copy, a file loaded by path), whose index the copy's stamps still match: the package's first model
    # build then raised "No module named '<dynamic>'" (a stale cache of mih_numba's kernel).
    fresh = shutil.ignore_patterns("__pycache__")
    shutil.copytree(worktree / "scanner", pkg, ignore=fresh)
    for sub in ("kernels", "bench"):
        shutil.copytree(worktree / sub, pkg / sub, ignore=fresh)
    (pkg / "models").symlink_to((worktree / "models").resolve())
    for f in bench_files:
        shutil.copyfile(f, pkg / "bench" / f.name)
    stamp_file.write_text(stamp)
    return into


def as_installed(env: dict[str, str], out_dir: Path, pythonpath: Path | None = None) -> dict[str, str]:
    """``env`` for a timed vscan process, as an installed vscan runs: its modules' bytecode cached (by the warm-up scan)
    under ``out_dir``/pycache. With PYTHONDONTWRITEBYTECODE set (a shared checkout), each process compiled vscan from
    source every run, which pip's bytecode never does: ~0.15 CPU-s in the scanning process, ~0.045 in each decode one.
    ``pythonpath``: another checkout's package, first on PYTHONPATH (the baseline)."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(out_dir / "pycache")
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    return env


def run_subprocess(name: str, files: list[Path], bank: Path, out_dir: Path, device: str, *, pythonpath: Path | None = None,
                   warm_files: int = 2, **options: Any) -> dict:  # fmt: skip
    """The scan in a fresh process (its own imports and Ray), after a warm-up scan of ``warm_files``
    files by the same code (numba's kernel caches written, files in the page cache), so that
    each version and variant is timed the same way: a fresh process, warm caches. ``options``: ``run_vscan``'s."""
    env = as_installed(dict(os.environ), out_dir, pythonpath)
    runs = ([(f"{name}-warm", files[:warm_files])] if warm_files else []) + [(name, files)]
    for run_name, run_files in runs:
        spec = out_dir / f"{run_name}-spec.json"
        spec.write_text(json.dumps({"name": run_name, "files": [str(f) for f in run_files], "bank": str(bank), "out_dir": str(out_dir), "device": device,
                                    "options": options}))  # fmt: skip
        subprocess.run([sys.executable, "-m", "vscan.bench.bench_archive", "--scan-only", str(spec)], env=env, check=True, cwd=str(out_dir))
    return json.loads((out_dir / f"{name}-row.json").read_text())


def run_command(name: str, files: list[Path], bank: Path, out_dir: Path, device: str, *, pythonpath: Path | None = None) -> dict:
    """``vscan scan FILES --bank BANK`` as a user runs it, in a fresh interpreter (after the warm-up scans of
    ``run_subprocess``: kernels compiled, bytecode cached, files in the page cache): wall seconds from its start to its
    exit, CPU-seconds of it and every process under it (``RUSAGE_CHILDREN``: the decode processes forked by the first
    are reaped by it, so counted), its records read back. ``pythonpath``: another checkout's package (the baseline)."""
    import resource

    env = as_installed(dict(os.environ), out_dir, pythonpath)
    out = out_dir / f"{name}.jsonl"
    for stale in (out, Path(f"{out}.manifest.json"), Path(f"{out}.lock")):
        stale.unlink(missing_ok=True)  # a fresh scan, not a resume
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vscan.cli", "scan", *map(str, files), "--bank", str(bank), "-o", str(out), "--device", device],
                   env=env, check=True, cwd=str(out_dir), stdout=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    video_seconds = sum(r.get("duration_seconds") or 0.0 for r in records)
    return {"name": name, "command": True, "files": len(records), "wall_seconds": wall, "video_seconds": video_seconds,
            "video_seconds_per_second": video_seconds / wall, "first_record_seconds": None, "steady_video_seconds_per_second": None,
            "tree_cpu_seconds": cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime,
            "frames_decoded": sum(r.get("frames_decoded") or 0 for r in records), "frames_sampled": sum(r.get("frames_sampled") or 0 for r in records),
            "records": record_rows(records)}  # fmt: skip


def run_baseline(worktree: Path, files: list[Path], bank: Path, out_dir: Path, device: str, **options: Any) -> dict:
    """The same scan by the code of ``worktree``, in a subprocess (its own Ray), timed as this code's is
    (``options``: ``run_vscan``'s, as the run it is compared with was given them: ``--fixed-ahead``)."""
    return run_subprocess("baseline", files, bank, out_dir, device, pythonpath=baseline_package(worktree, out_dir), **options)


def baseline_package(worktree: Path, out_dir: Path) -> Path:
    """``worktree``'s code packaged for PYTHONPATH, with this checkout's measurement (the bench, its corpus and its sampler)."""
    here = Path(__file__).parent
    return package_checkout(worktree, out_dir / "baseline-pkg", bench_files=tuple(here / f for f in ("bench_archive.py", "archive_report.py", "archive_corpus.py", "pipeline_runs.py")))


def fixed_options(fixed_ahead: str | None) -> dict[str, str]:
    """``run_vscan``'s options for the main run and the baseline alike under ``--fixed-ahead``: the confirmation
    always (or never) decoded ahead, in both. By default the scan decodes it ahead once most first passes came back
    decided (vscan.runtime.confirm_ahead.AheadSwitch), which turns on after a number of files that depends on how
    fast the model answered: the frames two runs of the same code decode differed by ~230 on this archive (files that
    decide nothing take the cut frames in their first pass before the switch, in a second pass after it). With the
    switch fixed, every file is sampled the same way in every run, so the frames decoded and the time they took
    compare between the two versions (issue #30)."""
    return {} if fixed_ahead is None else {"confirm_ahead": fixed_ahead}


def _scan_only(spec_path: Path) -> None:
    import vscan

    spec = json.loads(spec_path.read_text())
    out_dir, name = Path(spec["out_dir"]), spec.get("name", "baseline")
    row = run_vscan(name, [Path(f) for f in spec["files"]], Path(spec["bank"]), out_dir, spec["device"], **spec.get("options", {}))
    row["code"] = str(Path(vscan.__file__).parent)
    (out_dir / f"{name}-row.json").write_text(json.dumps(row, default=str))


# -- report: vscan.bench.archive_report (summarise, print_rows) -------------------------


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
    parser.add_argument("--fixed-ahead", default=None, choices=["always", "never"],
                        help="the main run and the baseline both with the confirmation always / never decoded ahead: the same "
                             "frames sampled every run, for a readable before/after (default: as the scan's switch decides)")
    parser.add_argument("--local-model", action="store_true",
                        help="also scan with runtime.local_model_at_start on (the model in this process until Ray's actor answers)")
    parser.add_argument("--no-vpdq", action="store_true", help="skip the reference vPDQ")
    parser.add_argument("--no-command", action="store_true",
                        help="skip timing `vscan scan` itself (the command from its interpreter's start to its exit, default sampling)")
    parser.add_argument("--baseline-first", action="store_true",
                        help="time the baseline before this code (the first position ran 10-25%% faster here: read both orders)")
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


def scan_runs(args: argparse.Namespace, files: list[Path], bank: Path, root: Path, fixed: dict[str, str]) -> list[dict]:
    """The timed vscan runs, each a fresh process after its warm-up: this code's (then ``--confirm-frames``,
    ``--confirm-ahead``, ``--local-model`` variants), then the baseline's; with ``--baseline-first`` the baseline
    is timed first. Rows in that first order either way. On this 2-core machine the same code timed twice in one run
    (a package copy of da04d89 against --baseline-worktree da04d89) was 10-25% faster in the first position (4.0x vs 3.5x,
    3.4x vs 2.7x; start-up 1.0 vs 1.7 s): a before/after is read from both orders (issue #30)."""
    variants = ([(f"vscan confirm {n}", {"confirm_frames": n}) for n in args.confirm_frames] + [(f"vscan ahead {when}", {"confirm_ahead": when})
                for when in args.confirm_ahead] + ([("vscan local model", {"local_model": True})] if args.local_model else []))  # fmt: skip

    def baseline() -> dict:
        row = run_baseline(args.baseline_worktree.resolve(), files, bank, root, args.device, **fixed)
        row["name"] = "vscan baseline"
        return row

    first = baseline() if args.baseline_worktree and args.baseline_first else None
    rows = [run_subprocess("vscan", files, bank, root, args.device, **fixed)]  # a fresh process after a warm-up, as the baseline
    for shown, options in variants:  # each timed as the main run is: a fresh process after its warm-up
        rows.append(run_subprocess(shown.replace(" ", "_"), files, bank, root, args.device, **options))
        rows[-1]["name"] = shown
    if args.baseline_worktree:
        rows.append(first if first is not None else baseline())
    if not args.no_command:  # the command a user types, start to exit: this code's, then the baseline's (warm from its runs above)
        rows.append(run_command("vscan command", files, bank, root, args.device))
        if args.baseline_worktree:
            rows.append(run_command("baseline command", files, bank, root, args.device, pythonpath=baseline_package(args.baseline_worktree.resolve(), root)))
    return rows


def main(argv: list[str] | None = None) -> dict | None:
    from vscan.bench.archive_report import print_rows

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
    fixed = fixed_options(args.fixed_ahead)  # the main run and the baseline alike
    rows = scan_runs(args, files, bank, root, fixed)
    for r in rows:
        r["summary"] = summarise(r, source_of)
    if args.baseline_first and args.baseline_worktree:
        print("\n(--baseline-first: the baseline was timed before this code's runs)")
    if fixed:
        how = "decode every confirmation ahead" if args.fixed_ahead == "always" else "never decode a confirmation ahead"
        print(f"\n(--fixed-ahead {args.fixed_ahead}: the main run and the baseline {how}, not as the switch decides)")
    print_rows(rows, reference, video_seconds, len(files))
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

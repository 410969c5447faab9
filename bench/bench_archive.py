"""An archive, not a sweep: mostly known copies, against the reference vPDQ in the same run.

    python -m vscan.bench.bench_archive [--sources 6 --seconds 16 --size 640x360 --unrelated 4]
                                        [--baseline-worktree DIR] [--workdir DIR] [--json out.json]
    vscan bench --archive [the same options]

Corpus (generated, nothing downloaded): ``--sources`` banked clips
(vscan.bench.synth, H.264, GOP 250), and copies of each transcoded by the
ffmpeg command line into several codecs and GOP lengths (``VARIANTS``:
H.264, HEVC, VP9, AV1 where the local encoders allow; re-encodes, smaller
sizes, a brightness change, a mirror), plus ``--unrelated`` clips that are
in no bank. The bank holds the sources hashed at every frame with every
extra row (as ``vscan bank build``).

Runs, in one process run, on the same files: the reference vPDQ (PyPI
``vpdq``) at 1 s/hash on every core (its features also give its recall:
query% >= 80 against the right source, distance < 31, quality >= 50, as
vscan.bench.bench_robustness does), then ``vscan scan``'s pipeline
(adaptive sampling, robust matching) through the real Ray pipeline, and
with ``--baseline-worktree`` the same scan by another checkout of vscan
(e.g. ``git worktree add /tmp/old 30d35e0``) in a subprocess, for a
before/after in the same run. Reported: wall time and the ratio to vPDQ
(video-seconds per second), recall and false positives of each, frames
decoded per video-second per codec, and stage-seconds per file per codec
(the records' ``timings``: where each second goes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["VARIANTS", "Variant", "make_archive", "run_vscan", "run_vpdq", "summarise", "main"]


@dataclass(frozen=True)
class Variant:
    """One way a known clip reaches the archive: an ffmpeg transcode."""

    name: str
    encoder: str  # the ffmpeg encoder it needs
    args: tuple[str, ...]
    suffix: str


_X264 = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
#: Copies made of every banked source (cycled when --copies is smaller).
VARIANTS = (
    Variant("h264-gop250", "libx264", (*_X264, "-crf", "30", "-g", "250", "-bf", "2"), ".mp4"),
    Variant("hevc-gop100", "libx265", ("-c:v", "libx265", "-preset", "ultrafast", "-crf", "30", "-g", "100", "-x265-params", "log-level=error"), ".mkv"),
    Variant("vp9-gop128", "libvpx-vp9", ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", "40", "-g", "128"), ".webm"),
    Variant("av1-gop100", "libsvtav1", ("-c:v", "libsvtav1", "-preset", "12", "-crf", "40", "-g", "100"), ".mp4"),
    Variant("h264-gop50-480p", "libx264", (*_X264, "-vf", "scale=480:-2", "-crf", "28", "-g", "50"), ".mp4"),
    Variant("vp9-gop50-bright", "libvpx-vp9", ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-vf", "eq=brightness=0.08",
                                                 "-b:v", "0", "-crf", "38", "-g", "50"), ".webm"),  # fmt: skip
    Variant("hevc-gop250-360p", "libx265", ("-c:v", "libx265", "-preset", "ultrafast", "-vf", "scale=-2:270", "-crf", "28", "-g", "250",
                                            "-x265-params", "log-level=error"), ".mp4"),  # fmt: skip
    Variant("h264-gop100-mirror", "libx264", (*_X264, "-vf", "hflip", "-crf", "28", "-g", "100"), ".mp4"),
)


def _encoders() -> set[str]:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=True).stdout
    return {line.split()[1] for line in out.splitlines() if len(line.split()) > 1 and line.startswith(" V")}


def _transcode(src: Path, out: Path, variant: Variant) -> Path:
    if not out.exists():
        tmp = out.with_name(f".{out.name}")
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-an", *variant.args, str(tmp)],
                       check=True, capture_output=True, timeout=600)  # fmt: skip
        tmp.rename(out)
    return out


def make_archive(root: Path, sources: int, copies: int, unrelated: int, seconds: float, size: tuple[int, int]) -> tuple[list[Path], list[dict], list[Path]]:
    """(banked sources, copies as {path, source, variant}, unrelated clips), generated under ``root`` (kept between runs)."""
    from vscan.bench import synth

    root.mkdir(parents=True, exist_ok=True)
    have = _encoders()
    variants = [v for v in VARIANTS if v.encoder in have]
    banked, known, others = [], [], []
    for i in range(sources):
        path = root / f"source-{i:02d}.mp4"
        banked.append(path if path.exists() else synth.make_clip(path, seed=300 + i, seconds=seconds, size=size, scenes=3, gop=250))
    jobs = []
    for i, src in enumerate(banked):
        for k in range(copies):
            v = variants[(i + k) % len(variants)]
            jobs.append((src, root / f"copy-{i:02d}-{v.name}{v.suffix}", v))
    with ThreadPoolExecutor(max_workers=2) as pool:
        for (src, out, v), path in zip(jobs, pool.map(lambda j: _transcode(*j), jobs)):
            known.append({"path": path, "source": src.stem, "variant": v.name})
    for i in range(unrelated):
        path = root / f"unrelated-{i:02d}.mp4"
        others.append(path if path.exists() else synth.make_clip(path, seed=700 + i, seconds=seconds, size=size, scenes=3, gop=250))
    return banked, known, others


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
    return {"name": "vpdq 1 s/hash", "wall_seconds": wall, "cpu_utilisation": sampler.cpu_utilisation, "matched": matched,
            "frames_sampled": int(sum(len(f) for f in features))}  # fmt: skip


# -- vscan ----------------------------------------------------------------------------


def run_vscan(name: str, files: list[Path], bank: Path, out_dir: Path, device: str, confirm_frames: str = "default") -> dict:
    """``vscan scan``'s pipeline (its defaults: adaptive sampling, robust matching) over ``files``; its records kept.
    ``confirm_frames``: "default", or Adaptive(confirm_frames=N) ("none": dense windows where the first pass decides)."""
    from vscan.bench.pipeline_runs import run_scan
    from vscan.config import Runtime, Sampling, ScanConfig

    config = ScanConfig(runtime=Runtime(device=device))
    if confirm_frames != "default":
        from vscan.decode import Adaptive

        config = ScanConfig(sampling=Sampling(policy=Adaptive(confirm_frames=None if confirm_frames == "none" else int(confirm_frames))),
                            runtime=Runtime(device=device))  # fmt: skip
    row = run_scan(name, files, bank, config, out_dir)
    records = [json.loads(line) for line in (out_dir / f"{name}.jsonl").read_text().splitlines()]
    row["records"] = [{k: r.get(k) for k in ("path", "status", "duration_seconds", "frames_decoded", "frames_sampled", "timings", "sampling")}
                      | {"codec": (r.get("media") or {}).get("codec"), "matched": any(m.get("is_match") for m in r.get("matches") or []),
                         "second_pass": (r.get("second_pass") or {}).get("sampling")} for r in records]  # fmt: skip
    return row


def package_checkout(worktree: Path, into: Path, *, bench_files: tuple[Path, ...] = ()) -> Path:
    """An importable ``vscan`` package built from another checkout (its
    scanner/, kernels/, bench/ and models/ as the package maps them), for
    PYTHONPATH; ``bench_files`` (this checkout's bench modules) are added to
    its bench/, so the other code runs the same measurement."""
    pkg = into / "vscan"
    if pkg.exists():
        shutil.rmtree(pkg)
    shutil.copytree(worktree / "scanner", pkg)
    for sub in ("kernels", "bench"):
        shutil.copytree(worktree / sub, pkg / sub)
    (pkg / "models").symlink_to((worktree / "models").resolve())
    for f in bench_files:
        shutil.copyfile(f, pkg / "bench" / f.name)
    return into


def run_baseline(worktree: Path, files: list[Path], bank: Path, out_dir: Path, device: str) -> dict:
    """The same scan by the code of ``worktree``, in a subprocess (its own Ray)."""
    path = package_checkout(worktree, out_dir / "baseline-pkg", bench_files=(Path(__file__),))
    spec = out_dir / "baseline-spec.json"
    spec.write_text(json.dumps({"files": [str(f) for f in files], "bank": str(bank), "out_dir": str(out_dir), "device": device}))
    env = {**os.environ, "PYTHONPATH": f"{path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}".rstrip(os.pathsep)}
    subprocess.run([sys.executable, "-m", "vscan.bench.bench_archive", "--scan-only", str(spec)], env=env, check=True, cwd=str(out_dir))
    return json.loads((out_dir / "baseline-row.json").read_text())


def _scan_only(spec_path: Path) -> None:
    import vscan

    spec = json.loads(spec_path.read_text())
    out_dir = Path(spec["out_dir"])
    row = run_vscan("baseline", [Path(f) for f in spec["files"]], Path(spec["bank"]), out_dir, spec["device"])
    row["code"] = str(Path(vscan.__file__).parent)
    (out_dir / "baseline-row.json").write_text(json.dumps(row, default=str))


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
        "second_passes": passes,
    }


def _print(rows: list[dict], reference: dict | None, video_seconds: float, files: int) -> None:
    base = video_seconds / reference["wall_seconds"] if reference else None
    print(f"\n{'run':<16} {'files':>5} {'video s':>8} {'wall s':>7} {'video-s/s':>9} {'vs vPDQ':>7} {'steady':>7} {'recall':>6} {'FP':>3} {'decoded':>8} {'sampled':>7} {'CPU':>5}")
    if reference:
        print(f"{reference['name']:<16} {files:>5} {video_seconds:>8.0f} {reference['wall_seconds']:>7.1f} {base:>9.1f} {'1.0x':>7} {'':>7} "
              f"{reference['recall']:>6.2f} {reference['false_positives']:>3} {'all':>8} {reference['frames_sampled']:>7} {reference['cpu_utilisation']:>5.0%}")  # fmt: skip
    for r in rows:
        rate = r["video_seconds_per_second"]
        steady = r.get("steady_video_seconds_per_second")
        ratio = f"{rate / base:.1f}x" if base else "-"
        sratio = f"{steady / base:.1f}x" if base and steady else "-"
        s = r["summary"]
        print(f"{r['name']:<16} {r['files']:>5} {r['video_seconds']:>8.0f} {r['wall_seconds']:>7.1f} {rate:>9.1f} {ratio:>7} {sratio:>7} "
              f"{s['recall']:>6.2f} {s['false_positives']:>3} {r['frames_decoded']:>8} {r['frames_sampled']:>7} {r['cpu_utilisation']:>5.0%}")  # fmt: skip
    for r in rows:
        print(f"\n{r['name']}: first record after {r['first_record_seconds']:.1f} s (Ray and model start-up); second passes: {r['summary']['second_passes']}")
        for codec, c in sorted(r["summary"]["per_codec"].items()):
            stages = ", ".join(f"{k} {v * 1000:.0f}" for k, v in sorted(c["stage_seconds_per_file"].items()))
            print(f"  {codec:<6} {c['files']:>3} files: {c['frames_decoded_per_video_second']:6.2f} frames decoded / video-s, "
                  f"{c['frames_sampled'] / c['files']:.1f} sampled / file; ms per file: {stages}")  # fmt: skip


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(prog="vscan bench --archive", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", action="store_true", help=argparse.SUPPRESS)  # how `vscan bench --archive` arrives here
    parser.add_argument("--sources", type=int, default=6, help="banked clips")
    parser.add_argument("--copies", type=int, default=4, help="known copies of each banked clip (codecs and GOPs cycle)")
    parser.add_argument("--unrelated", type=int, default=4, help="clips in no bank")
    parser.add_argument("--seconds", type=float, default=16.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--baseline-worktree", type=Path, default=None,
                        help="also scan with the vscan code of this checkout (e.g. git worktree add DIR 30d35e0), same run")
    parser.add_argument("--confirm-frames", nargs="*", default=[], metavar="N",
                        help="also scan with adaptive sampling's confirm_frames=N (none: dense windows where the first pass decides)")
    parser.add_argument("--no-vpdq", action="store_true", help="skip the reference vPDQ")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the corpus and bank here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--scan-only", type=Path, default=None, help=argparse.SUPPRESS)  # the baseline's subprocess
    args = parser.parse_args(argv)
    if args.scan_only:
        return _scan_only(args.scan_only)
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.workdir or Path(tmp)).resolve()
        t0 = time.perf_counter()
        sources, known, others = make_archive(root / "archive", args.sources, args.copies, args.unrelated, args.seconds, (w, h))
        files = [k["path"] for k in known] + others
        source_of = {k["path"].name: k["source"] for k in known} | {p.name: None for p in others}
        print(f"archive: {len(known)} known copies of {len(sources)} banked clips ({', '.join(sorted({k['variant'] for k in known}))}) "
              f"+ {len(others)} unrelated, {time.perf_counter() - t0:.0f} s to generate")  # fmt: skip
        from vscan.bench.pipeline_runs import make_bank
        from vscan.decode import PyAVDecoder

        bank = root / "bank.db"
        if not bank.exists():
            make_bank(bank, sources, args.device)
        video_seconds = sum(PyAVDecoder().probe(p).duration_seconds for p in files)
        reference = None if args.no_vpdq else run_vpdq(files, sources, source_of, threads=os.cpu_count() or 1)
        if reference:
            known_names = [k["path"].name for k in known]
            reference["recall"] = sum(reference["matched"][n] for n in known_names) / max(len(known_names), 1)
            reference["false_positives"] = sum(reference["matched"][p.name] for p in others)
        rows = [run_vscan("vscan", files, bank, root, args.device)]
        for n in args.confirm_frames:
            rows.append(run_vscan(f"vscan_confirm_{n}", files, bank, root, args.device, n))
            rows[-1]["name"] = f"vscan confirm {n}"
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

"""Decode-side cost per file: the scan's decode task, per codec, against another checkout in the same run.

    python -m vscan.bench.bench_decode_files [--dir DIR] [--baseline-worktree DIR] [--rounds 3] [--json out.json]

Each file of ``--dir`` (default: the archive of ``vscan bench --archive``,
generated there first; the real sample videos of ../shared/data/vpdq are
added when present) goes through ``vscan.runtime.decode_task.decode_for_scan``
as a scan's decode process runs it -- digests, first pass, region probe,
borders, overlays, the confirmation decoded ahead (``confirm_ahead=True``, as
the scan does once most first passes decide) -- in a subprocess per code and
round, the rounds alternating between the two checkouts (``--baseline-worktree``,
e.g. ``git worktree add /tmp/old 2584661``) so that machine load falls on both; each
with one OpenMP/OpenBLAS thread, as a scan's decode processes run.
Reported per codec: CPU milliseconds per file (the decode process's, all
threads; the median over rounds of each file), wall milliseconds, frames
decoded per video-second; and whether both checkouts gave every file the same
frames, to the byte (the payload's every frame set, the confirmation's too):
the same pixels are the same hashes, so a bank built by either meets a scan by
the other at distance 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "measure_files", "codec_of"]

_MEDIA = (".mp4", ".mkv", ".webm", ".mov", ".avi")


def codec_of(path: Path) -> str:
    """The archive's codec tag in a copy's name (``-h264-``...), else 'real' or 'source'."""
    m = re.search(r"-(h264|hevc|vp9|av1)-", path.name)
    return m.group(1) if m else ("real" if "vpdq" in str(path) else "source")


def _digest(payload) -> str:
    """SHA-256 over every frame set of a DecodedFile (and its confirmation's)."""
    h = hashlib.sha256()
    for f in (payload, getattr(payload, "ahead", None)):
        if f is None:
            continue
        for key, value in sorted(f.to_dict().items()):
            h.update(key.encode())
            h.update(np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
    return h.hexdigest()


def measure_files(files: list[str]) -> list[dict]:
    """Each file through decode_for_scan in this process: CPU and wall seconds, frames decoded, the frames' digest."""
    from vscan.config import Sampling, ScanConfig
    from vscan.decode.adaptive import Adaptive
    from vscan.runtime.decode_task import decode_for_scan

    config = ScanConfig(sampling=Sampling(policy=Adaptive(confirm_ahead=True)))
    decode_for_scan(files[0], config)  # imports and first-use set-up are not a file's cost
    rows = []
    for path in files:
        c0, t0 = time.process_time(), time.perf_counter()
        summary, payload = decode_for_scan(path, config)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        ahead = summary.get("ahead")
        decoded = int(summary.get("frames_decoded") or 0) + int(getattr(ahead, "frames_decoded", 0) or 0)
        rows.append({"path": path, "cpu": cpu, "wall": wall, "frames_decoded": decoded, "error": summary.get("error"),
                     "duration": float(summary.get("duration_seconds") or 0.0), "digest": None if payload is None else _digest(payload)})  # fmt: skip
    return rows


def _run(code: Path | None, files: list[str], workdir: Path) -> list[dict]:
    """measure_files in a subprocess running ``code`` (a package dir for PYTHONPATH; None: this checkout)."""
    spec, out = workdir / "files.json", workdir / f"rows-{time.monotonic_ns()}.json"
    spec.write_text(json.dumps(files))
    from vscan.runtime.embedded_procs import _ONE_THREAD

    env = {**os.environ, **_ONE_THREAD}  # native pools as a scan's decode process has them (OpenBLAS's threads spin)
    if code is not None:
        env["PYTHONPATH"] = f"{code}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    here = Path(__file__).resolve()
    subprocess.run([sys.executable, str(here), "--worker", str(spec), str(out)], env=env, check=True, cwd=str(workdir))
    return json.loads(out.read_text())


def _files(directory: Path | None) -> list[str]:
    """``directory``'s media files; by default the archive bench's (made there first) and the real sample videos."""
    if directory is not None:
        return sorted(str(p) for p in directory.iterdir() if p.suffix in _MEDIA)
    from vscan.bench.archive_corpus import default_root, make_archive, real_media_dir

    real = real_media_dir()
    root = default_root(6, 15, 10, 16.0, (640, 360), real is not None)
    archive = make_archive(root / "archive", 6, 15, 10, 16.0, (640, 360), real=real is not None)
    files = sorted(str(p) for p in (root / "archive").iterdir() if p.suffix in _MEDIA)
    return files + sorted({str(p) for p in archive.files if real is not None and p.parent == real})


def _table(runs: dict[str, list[list[dict]]]) -> dict:
    """Per code and codec: CPU and wall ms per file (median over rounds of each file), frames decoded per video-second."""
    out: dict = {}
    for name, rounds in runs.items():
        per_file = [{"path": r["path"], "cpu": float(np.median([x[i]["cpu"] for x in rounds])), "wall": float(np.median([x[i]["wall"] for x in rounds])),
                     "frames_decoded": r["frames_decoded"], "duration": r["duration"]} for i, r in enumerate(rounds[0])]  # fmt: skip
        by: dict[str, list[dict]] = {}
        for r in per_file:
            by.setdefault(codec_of(Path(r["path"])), []).append(r)
        by["all"] = per_file
        out[name] = {codec: {"files": len(rs), "cpu_ms": 1000 * float(np.mean([r["cpu"] for r in rs])), "wall_ms": 1000 * float(np.mean([r["wall"] for r in rs])),
                             "frames_per_video_second": sum(r["frames_decoded"] for r in rs) / max(sum(r["duration"] for r in rs), 1e-9)}
                     for codec, rs in by.items()}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="media files to decode (default: the archive bench's)")
    parser.add_argument("--baseline-worktree", type=Path, default=None, help="another checkout of vscan, run in the same rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.worker[1].write_text(json.dumps(measure_files(json.loads(args.worker[0].read_text()))))
        return None
    files = _files(args.dir)
    runs: dict[str, list[list[dict]]] = {"this": []}
    with tempfile.TemporaryDirectory(prefix="vscan-bench-decode-") as tmp:
        base = None
        if args.baseline_worktree is not None:
            from vscan.bench.bench_archive import package_checkout

            base, runs["baseline"] = package_checkout(args.baseline_worktree.resolve(), Path(tmp) / "baseline-pkg"), []
        load = [os.getloadavg()[0]]
        for _ in range(args.rounds):
            for name, code in (("baseline", base), ("this", None)) if base is not None else (("this", None),):
                runs[name].append(_run(code, files, Path(tmp)))
                load.append(os.getloadavg()[0])
    table = _table(runs)
    same = None
    if "baseline" in runs:
        a, b = runs["this"][0], runs["baseline"][0]
        same = [x["path"] for x, y in zip(a, b) if x["digest"] != y["digest"] or x["error"] != y["error"]]
    print(f"{len(files)} files, {args.rounds} rounds, load average {min(load):.1f}-{max(load):.1f}")
    for codec in table["this"]:
        cells = "  ".join(f"{name}: cpu {t[codec]['cpu_ms']:6.1f} ms, wall {t[codec]['wall_ms']:6.1f} ms, {t[codec]['frames_per_video_second']:.2f} frames/video-s"
                          for name, t in table.items())  # fmt: skip
        ratio = f"  cpu ratio {table['baseline'][codec]['cpu_ms'] / table['this'][codec]['cpu_ms']:.2f}x" if "baseline" in table else ""
        print(f"{codec:7s} ({table['this'][codec]['files']:3d})  {cells}{ratio}")
    if same is not None:
        print("same frames, byte for byte, in both checkouts:", "all files" if not same else f"NO: {len(same)} differ: {same[:5]}")
    result = {"files": len(files), "rounds": args.rounds, "load_average": load, "table": table, "differing_files": same}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

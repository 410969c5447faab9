"""Rematch vs re-scan: the same archive against a changed bank, same run.

A generated archive (re-encoded copies of reported clips and unrelated
clips) is scanned once against the old bank with ``--hash-store``; then the
bank changes (a newly reported clip), and the archive is checked against the
new bank twice: ``vscan rematch STORE`` (no decoding) and ``vscan scan``
again (decode + hash + match). Both through the CLI, on one local Ray started
by this script (so neither pays Ray's start), wall time of each command.
Also: the store's size on disk per frame, and whether the verdicts agree.

    python -m vscan.bench.bench_rematch [--clips 24] [--seconds 20] [--fps 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VSCAN = [sys.executable, "-m", "vscan.cli"]


def _bank(path: Path, sources: list[Path]) -> Path:
    from vscan.bank.store import build_bank
    from vscan.decode import EveryFrame
    from vscan.hashing.media import hash_media
    from vscan.hashing.pdq import PDQHasher

    hasher = PDQHasher(device="cpu")

    def hash_file(p):
        result = hash_media(p, EveryFrame(), hasher=hasher, max_side=512)
        return result.frames, result.metadata.duration_seconds

    build_bank(path, sources, hash_media=hash_file)
    return path


def _timed(args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    run = subprocess.run([*VSCAN, *args], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"vscan {' '.join(args[:1])} failed: {run.stderr[-2000:]}")
    return time.perf_counter() - t0, run.stdout


def _verdicts(path: Path) -> dict[str, tuple]:
    out = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        out[Path(r["path"]).name] = (r["risk"], sorted(m["bank_entry_id"] for m in r["matches"] if m["is_match"]))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=24, help="archive clips (a third are copies of reported clips)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fps", type=float, default=1.0, help="sampling rate of the scans (0: adaptive, the default policy)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import ray

    from vscan.bench import synth

    work = Path(tempfile.mkdtemp(prefix="bench-rematch-"))
    reported, inbox = work / "reported", work / "inbox"
    n_reported = max(2, args.clips // 3)
    for i in range(n_reported):
        synth.make_clip(reported / f"r{i}.mp4", seed=100 + i, seconds=args.seconds, size=(320, 240))
        synth.make_clip(inbox / f"copy-{i}.mp4", seed=100 + i, seconds=args.seconds, size=(320, 240), crf=34)
    for i in range(args.clips - n_reported):
        synth.make_clip(inbox / f"other-{i}.mp4", seed=500 + i, seconds=args.seconds, size=(320, 240))
    old = _bank(work / "old.bank", sorted(reported.glob("*.mp4"))[: n_reported // 2])
    new = _bank(work / "new.bank", sorted(reported.glob("*.mp4")))

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    address = ray.get_runtime_context().gcs_address
    sampling = ["--fps", f"{args.fps:g}"] if args.fps > 0 else []
    common = ["--device", "cpu", "-q", "--ray-address", address, *sampling]
    store = work / "store"
    first_s, _ = _timed(["scan", str(inbox), "--bank", str(old), "--out", str(work / "first.jsonl"), "--hash-store", str(store), *common])
    rescan_s, _ = _timed(["scan", str(inbox), "--bank", str(new), "--out", str(work / "rescan.jsonl"), *common])
    rematch_s, stdout = _timed(["rematch", str(store), "--bank", str(new), "--out", str(work / "rematch.jsonl"),
                                "--rescan-list", str(work / "rescan-list.jsonl")])  # fmt: skip
    ray.shutdown()

    summary = json.loads(stdout)
    a, b = _verdicts(work / "rescan.jsonl"), _verdicts(work / "rematch.jsonl")
    agree = sum(a[k] == b[k] for k in b)
    frames = sum(1 for _ in store.rglob("frames/**/*.parquet"))
    store_bytes = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    result = {
        "files": len(a), "video_seconds": len(a) * args.seconds, "sampling": sampling or "adaptive",
        "first_scan_with_store_s": round(first_s, 2), "rescan_s": round(rescan_s, 2), "rematch_s": round(rematch_s, 2),
        "rematch_inner_s": summary["wall_seconds"], "rescan_over_rematch": round(rescan_s / rematch_s, 2),
        "rematched_files": summary["files"], "listed_for_rescan": summary["rescan"], "verdicts_agree": f"{agree}/{len(b)}",
        "frames_stored": summary["frames_matched"], "store_bytes": store_bytes, "store_parts": frames,
        "store_bytes_per_frame": round(store_bytes / max(summary["frames_matched"], 1), 1),
    }  # fmt: skip
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

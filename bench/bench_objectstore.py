"""Object-store scan vs local disk: the same files, the same run.

Generated clips are written to a local folder and uploaded to an S3-API
server on loopback (moto's server mode, started here); ``vscan scan`` runs
over the folder and over ``s3://bench/inbox`` with the same options on one
Ray started by this script (its workers inherit ``AWS_ENDPOINT_URL``).
Reports wall time, files/s and video-seconds/s of each, their ratio, and
bytes read from the store against the objects' sizes (whole objects are
read today: the ratio shows what range reads would have to save).

    python -m vscan.bench.bench_objectstore [--clips 24] [--seconds 20] [--fps 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VSCAN = [sys.executable, "-m", "vscan.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scan(target: str, bank: Path, out: Path, common: list[str]) -> float:
    t0 = time.perf_counter()
    run = subprocess.run([*VSCAN, "scan", target, "--bank", str(bank), "--out", str(out), *common], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"vscan scan {target} failed: {run.stderr[-2000:]}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fps", type=float, default=0.0, help="0: adaptive sampling (the default)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import boto3
    import ray
    from moto.server import ThreadedMotoServer

    from vscan.bank.store import build_bank
    from vscan.bench import synth
    from vscan.decode import EveryFrame
    from vscan.hashing.media import hash_media
    from vscan.hashing.pdq import PDQHasher

    work = Path(tempfile.mkdtemp(prefix="bench-objectstore-"))
    inbox, reported = work / "inbox", work / "reported"
    for i in range(args.clips):
        synth.make_clip(inbox / f"clip-{i:03d}.mp4", seed=700 + i, seconds=args.seconds, size=(320, 240))
    synth.make_clip(reported / "r.mp4", seed=700, seconds=args.seconds, size=(320, 240))
    hasher = PDQHasher(device="cpu")

    def hash_file(p):
        result = hash_media(p, EveryFrame(), hasher=hasher, max_side=512)
        return result.frames, result.metadata.duration_seconds

    bank = work / "reported.bank"
    build_bank(bank, [reported], hash_media=hash_file)

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})  # fmt: skip
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bench")
    for p in sorted(inbox.glob("*.mp4")):
        s3.upload_file(str(p), "bench", f"inbox/{p.name}")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)  # workers inherit the endpoint
    common = ["--device", "cpu", "-q", "--ray-address", ray.get_runtime_context().gcs_address]
    common += ["--fps", f"{args.fps:g}"] if args.fps > 0 else []
    local_s = _scan(str(inbox), bank, work / "local.jsonl", common)
    object_s = _scan("s3://bench/inbox", bank, work / "s3.jsonl", common)
    ray.shutdown()
    server.stop()

    records = [json.loads(line) for line in (work / "s3.jsonl").read_text().splitlines()]
    local = {Path(r["path"]).name: r["risk"] for r in map(json.loads, (work / "local.jsonl").read_text().splitlines())}
    read = sum(r["object"]["bytes_read"] for r in records if r.get("object"))
    size = sum(r["object"]["size_bytes"] for r in records if r.get("object"))
    video = sum(r.get("duration_seconds") or 0.0 for r in records)
    result = {
        "files": len(records), "video_seconds": round(video, 1), "sampling": f"fps {args.fps:g}" if args.fps > 0 else "adaptive",
        "local_s": round(local_s, 2), "s3_s": round(object_s, 2), "s3_over_local_time": round(object_s / local_s, 3),
        "local_video_s_per_s": round(video / local_s, 1), "s3_video_s_per_s": round(video / object_s, 1),
        "bytes_read": read, "object_bytes": size, "bytes_read_over_size": round(read / size, 3) if size else None,
        "same_risks": sum(local.get(r["path"].rsplit("/", 1)[1]) == r["risk"] for r in records),
        "loadavg": os.getloadavg(),
    }  # fmt: skip
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""Object-store scans vs local disk: the same files, the same run.

Generated clips (``--clips`` x ``--seconds``, ``--size``, a keyframe every
``--gop`` frames) and the real sample videos of ../shared/data/vpdq (when
present) are written to a local folder and uploaded to an S3-API server
(moto's server mode) and a Google Cloud Storage emulator
(gcp-storage-emulator), both on loopback and started here. ``vscan scan``
then runs, in turn, over the folder, ``s3://`` and ``gs://`` (decoded by
range reads: vscan.inputs.ranged) and ``s3://`` again with
``VSCAN_OBJECT_READS=whole`` (fetched whole, with digests), each scan
starting its own Ray, with the same options. Reports each scan's wall time,
its ratio to the local scan, the bytes read from the store against the
objects' sizes (all passes of a file together), and whether the risks
equal the local scan's.

    nice -n 10 python -m vscan.bench.bench_objectstore [--clips 8] [--seconds 20] [--fps 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VSCAN = [sys.executable, "-m", "vscan.cli"]
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vpdq"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scan(target: str, bank: Path, out: Path, common: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    run = subprocess.run([*VSCAN, "scan", target, "--bank", str(bank), "--out", str(out), *common], capture_output=True, text=True,
                         env={**os.environ, **env})  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"vscan scan {target} failed: {run.stderr[-2000:]}")
    return time.perf_counter() - t0


def _media(work: Path, args) -> tuple[Path, Path]:
    from vscan.bank.store import build_bank
    from vscan.bench import synth
    from vscan.decode import EveryFrame
    from vscan.hashing.media import hash_media
    from vscan.hashing.pdq import PDQHasher

    inbox, reported = work / "inbox", work / "reported"
    width, height = (int(v) for v in args.size.split("x"))
    for i in range(args.clips):
        synth.make_clip(inbox / f"clip-{i:03d}.mp4", seed=700 + i, seconds=args.seconds, size=(width, height), gop=args.gop,
                        bitrate=args.bitrate)  # fmt: skip
    for sample in sorted(SAMPLES.glob("*.mp4")) if SAMPLES.is_dir() else ():
        shutil.copyfile(sample, inbox / f"sample-{sample.name}")
    synth.make_clip(reported / "r.mp4", seed=700, seconds=args.seconds, size=(width, height), gop=args.gop, bitrate=args.bitrate)
    hasher = PDQHasher(device="cpu")

    def hash_file(p):
        result = hash_media(p, EveryFrame(), hasher=hasher, max_side=512)
        return result.frames, result.metadata.duration_seconds

    bank = work / "reported.bank"
    build_bank(bank, [reported], hash_media=hash_file)
    return inbox, bank


def _stores(inbox: Path) -> tuple[dict[str, str], list]:
    """S3 (moto) and GCS (gcp-storage-emulator) on loopback holding ``inbox``: (their environment, what to stop)."""
    import boto3
    from gcp_storage_emulator.server import create_server
    from moto.server import ThreadedMotoServer

    s3_port, gcs_port = _free_port(), _free_port()
    s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    s3_server.start()
    gcs_server = create_server("127.0.0.1", gcs_port, in_memory=True, default_bucket="bench")
    gcs_server.start()
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}", "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{gcs_port}"}  # fmt: skip
    os.environ.update(env)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bench")
    from google.cloud import storage

    bucket = storage.Client().bucket("bench")
    for p in sorted(inbox.glob("*.mp4")):
        s3.upload_file(str(p), "bench", f"inbox/{p.name}")
        bucket.blob(f"inbox/{p.name}").upload_from_filename(str(p))
    return env, [s3_server, gcs_server]


def _summary(name: str, seconds: float, out: Path, local: dict[str, dict], local_s: float) -> dict:
    records = [json.loads(line) for line in out.read_text().splitlines()]
    objects = [r["object"] for r in records if r.get("object")]
    read, size = sum(o["bytes_read"] for o in objects), sum(o["size_bytes"] for o in objects)
    video = sum(r.get("duration_seconds") or 0.0 for r in records)
    samples = {Path(r["path"]).name: round(r["object"]["bytes_read"] / r["object"]["size_bytes"], 3)
               for r in records if r.get("object") and Path(r["path"]).name.startswith("sample-")}  # fmt: skip
    return {"scan": name, "files": len(records), "wall_s": round(seconds, 2), "over_local_time": round(seconds / local_s, 3),
            "video_s_per_s": round(video / seconds, 2), "bytes_read": read, "object_bytes": size,
            "bytes_read_over_size": round(read / size, 3) if size else None, "reads": sorted({o.get("read", "?") for o in objects}),
            "same_risks": sum(local.get(Path(r["path"]).name, {}).get("risk") == r["risk"] for r in records),
            "samples_bytes_read_over_size": samples}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--gop", type=int, default=50)
    ap.add_argument("--bitrate", type=int, default=1_500_000)
    ap.add_argument("--fps", type=float, default=0.0, help="0: adaptive sampling (the default)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-objectstore-"))
    inbox, bank = _media(work, args)
    env, servers = _stores(inbox)
    common = ["--device", "cpu", "-q"] + (["--fps", f"{args.fps:g}"] if args.fps > 0 else [])
    load = [os.getloadavg()]
    try:
        local_s = _scan(str(inbox), bank, work / "local.jsonl", common, env)
        runs = [("s3 ranges", "s3://bench/inbox", {}), ("gs ranges", "gs://bench/inbox", {}),
                ("s3 whole", "s3://bench/inbox", {"VSCAN_OBJECT_READS": "whole"})]  # fmt: skip
        timed = []
        for i, (name, target, extra) in enumerate(runs):
            timed.append((name, _scan(target, bank, work / f"run-{i}.jsonl", common, {**env, **extra}), work / f"run-{i}.jsonl"))
            load.append(os.getloadavg())
    finally:
        servers[0].stop()
        servers[1].stop()
    local = {Path(r["path"]).name: r for r in map(json.loads, (work / "local.jsonl").read_text().splitlines())}
    video = sum(r.get("duration_seconds") or 0.0 for r in local.values())
    result = {
        "files": len(local), "video_seconds": round(video, 1), "sampling": f"fps {args.fps:g}" if args.fps > 0 else "adaptive",
        "local_wall_s": round(local_s, 2), "local_video_s_per_s": round(video / local_s, 2),
        "scans": [_summary(name, seconds, out, local, local_s) for name, seconds, out in timed],
        "loadavg_1m": [round(x[0], 1) for x in load], "cpus": os.cpu_count(),
    }  # fmt: skip
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Scan speed from a disk image vs the same files on disk, in one run.

    python -m vscan.bench.bench_disk_images [--clips 24 --seconds 6 --size 640x360 --bitrate 4000000 --runs 2 --json out.json]

Generated clips are written to a folder and, with Debian's tools
(vscan.bench.disk_images), into an NTFS partition of an MBR disk, kept both
as a raw ``.dd`` and as a compressed ``.E01``. Each source is scanned
``--runs`` times in turn (one Ray for all), and every scan must give the
same digests for the same files. Also timed: reading the files alone
(no decoding), from the folder and through the image readers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from vscan.bench import disk_images as di
from vscan.bench.synth import make_clip


def _read_all(paths: list[str], limits) -> int:
    from vscan.inputs.archives import handles, open_member

    total = 0
    for path in paths:
        if handles(path):
            with open_member(path, limits) as fd_path:
                total += Path(fd_path).stat().st_size
        else:
            total += len(Path(path).read_bytes())
    return total


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--bitrate", type=int, default=4_000_000, help="bits/s: sizes like camera clips, not synth's few KB")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if missing := di.missing_tools():
        raise SystemExit(f"Debian tools missing: {', '.join(missing)}")

    import ray

    from vscan.config import Runtime, Sampling, ScanConfig
    from vscan.decode import FixedRate
    from vscan.inputs.archives import ArchiveLimits
    from vscan.inputs.discover import discover
    from vscan.output.sinks import JsonlSink
    from vscan.runtime.driver import run_scan

    width, height = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "files"
        clips = [make_clip(folder / f"clip{i:03d}.mp4", seed=i, seconds=args.seconds, size=(width, height), bitrate=args.bitrate) for i in range(args.clips)]
        media_bytes = sum(c.stat().st_size for c in clips)
        ntfs = di.ntfs_volume(root / "ntfs.part", {c.name: c for c in clips}, mib=media_bytes * 3 // 2 // (1 << 20) + 8)
        raw = di.mbr_disk(root / "disk.dd", [ntfs], ["7"])
        e01 = di.to_e01(raw, root / "disk")
        sources = {"folder": folder, "raw .dd": raw, "E01": e01}

        limits = ArchiveLimits()
        reads = {}
        for name, source in sources.items():
            paths = list(discover([source]))
            t0 = time.perf_counter()
            assert _read_all(paths, limits) == media_bytes, name
            reads[name] = media_bytes / (1 << 20) / (time.perf_counter() - t0)

        config = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu"))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        walls: dict[str, list[float]] = {name: [] for name in sources}
        digests: dict[str, set] = {}
        try:
            for run in range(args.runs):
                for name, source in sources.items():
                    out = root / f"r{run}-{name.replace(' ', '_')}.jsonl"
                    with JsonlSink(out) as sink:
                        summary = run_scan([source], sink=sink, config=config)
                    records = [json.loads(line) for line in out.read_text().splitlines()]
                    assert len(records) == args.clips and all(r["status"] == "ok" for r in records), name
                    digests.setdefault(name, {r["sha256"] for r in records})
                    assert {r["sha256"] for r in records} == digests["folder"], f"{name}: digests differ"
                    walls[name].append(summary.wall_seconds)
        finally:
            ray.shutdown()
        result = {
            "clips": args.clips,
            "clip": f"{args.seconds:g} s {args.size} H.264 at {args.bitrate / 1e6:g} Mb/s",
            "media_mib": round(media_bytes / (1 << 20), 2),
            "e01_mib": round(sum(p.stat().st_size for p in root.glob("disk.E*")) / (1 << 20), 2),
            "read_only_mib_s": {k: round(v, 1) for k, v in reads.items()},
            "scan": {
                name: {
                    "wall_s_median": round(statistics.median(w), 2),
                    "wall_s": [round(x, 2) for x in w],
                    "files_per_s": round(args.clips / statistics.median(w), 1),
                }
                for name, w in walls.items()
            },
        }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

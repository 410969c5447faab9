"""Decode throughput per backend and sampling policy, on a generated clip.

    python -m vscan.bench.bench_decode [--seconds 20 --size 1280x720 --runs 3 --json out.json]

Correctness first (both backends must choose the same frame indices and
near-identical pixels), then frames/s and realtime factor: median of --runs
runs, with min..max spread.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from vscan.decode import DecordDecoder, EveryFrame, FixedRate, Keyframes, PyAVDecoder
from vscan.bench.synth import make_clip

CASES = (
    ("every frame", EveryFrame(), None),
    ("fixed 1 fps", FixedRate(1.0), None),
    ("keyframes", Keyframes(), None),
    ("every frame, max_side=512", EveryFrame(), 512),
)


def _run(decoder, path, policy, max_side):
    idx, rgb = [], []
    for batch in decoder.iter_frames(path, policy, max_side=max_side):
        idx.append(batch.frame_indices)
        rgb.append(batch.rgb[::8])  # a subsample for the pixel check, bounded memory
    return np.concatenate(idx), np.concatenate(rgb)


def check(path: Path, decoders) -> None:
    for label, policy, max_side in CASES:
        (ia, ra), (ib, rb) = (_run(d, path, policy, max_side) for d in decoders)
        if not np.array_equal(ia, ib):
            raise SystemExit(f"MISMATCH {label}: {decoders[0].name} {ia[:10]} vs {decoders[1].name} {ib[:10]}")
        diff = np.abs(ra.astype(np.int16) - rb.astype(np.int16)).mean()
        limit = 6.0 if max_side else 2.0
        if diff > limit:
            raise SystemExit(f"MISMATCH {label}: mean abs pixel diff {diff:.2f} > {limit}")


def measure(decoder, path, policy, max_side, runs):
    times, frames = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        frames = sum(len(b) for b in decoder.iter_frames(path, policy, max_side=max_side))
        times.append(time.perf_counter() - t0)
    return frames, times


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--gop", type=int, default=250)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    decoders = (DecordDecoder(), PyAVDecoder())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        t0 = time.perf_counter()
        make_clip(path, seed=7, seconds=args.seconds, fps=args.fps, size=(width, height), scenes=4, gop=args.gop)
        print(f"clip: {args.seconds:g} s {width}x{height} @ {args.fps:g} fps, H.264 GOP {args.gop}, "
              f"made in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        check(path, decoders)
        print("correctness: both backends chose the same frames, pixels agree")
        duration = decoders[1].probe(path).duration_seconds
        for label, policy, max_side in CASES:
            for decoder in decoders:
                frames, times = measure(decoder, path, policy, max_side, args.runs)
                med = statistics.median(times)
                rows.append({
                    "case": label, "backend": decoder.name, "frames": frames,
                    "median_s": med, "min_s": min(times), "max_s": max(times),
                    "fps": frames / med, "realtime_x": duration / med,
                })  # fmt: skip

    header = f"{'case':<27} {'backend':<7} {'frames':>6} {'median s':>9} {'spread s':>13} {'frames/s':>9} {'x realtime':>10}"
    print(header)
    print("-" * len(header))
    for r in rows:
        spread = f"{r['min_s']:.2f}..{r['max_s']:.2f}"
        print(f"{r['case']:<27} {r['backend']:<7} {r['frames']:>6} {r['median_s']:>9.3f} {spread:>13} "
              f"{r['fps']:>9.1f} {r['realtime_x']:>10.1f}")  # fmt: skip
    if args.json:
        report = {"args": {k: str(v) for k, v in vars(args).items()},
                  "machine": platform.platform(), "rows": rows}  # fmt: skip
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""PDQ throughput: torch vs ONNX (CPU; CUDA when present), frames/s.

    python -m vscan.bench.bench_hash [--sizes 256x256,720x480,1280x720] [--batch 64] [--json out.json]

Checks first that every backend gives the same bits on the same frames,
then times each (median of --repeats, with min-max spread).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from vscan.hashing.pdq import PDQHasher
from vscan.bench.synth import render_frame


def frames_of(size: tuple[int, int], n: int) -> np.ndarray:
    w, h = size
    return np.stack([render_frame(seed=7, t=i / 25.0, seconds=n / 25.0, size=(w, h)) for i in range(n)])


def backends() -> list[tuple[str, str]]:
    out = [("torch", "cpu"), ("onnx", "cpu")]
    try:
        import torch

        if torch.cuda.is_available():
            out += [("torch", "cuda")]
    except ImportError:
        pass
    try:
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            out += [("onnx", "cuda")]
    except ImportError:
        pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256x256,720x480,1280x720")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for spec in args.sizes.split(","):
        w, h = (int(v) for v in spec.split("x"))
        frames = frames_of((w, h), args.batch)
        hashers = {f"{b}:{d}": PDQHasher(backend=b, device=d) for b, d in backends()}
        reference = None
        for name, hasher in hashers.items():  # correctness before timing
            result = hasher.hash_frames(frames)
            if reference is None:
                reference = result
            elif not (np.array_equal(result.hashes, reference.hashes) and np.array_equal(result.quality, reference.quality)):
                diff = np.unpackbits(result.hashes ^ reference.hashes, axis=-1).sum(-1).max()
                print(f"warning: {name} differs from {next(iter(hashers))} by up to {diff} bits at {spec}")
        for name, hasher in hashers.items():
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                hasher.hash_frames(frames)
                times.append(time.perf_counter() - t0)
            fps = [args.batch / t for t in times]
            rows.append({"size": spec, "backend": name, "provider": hasher.provider, "frames_per_second": statistics.median(fps),
                         "min": min(fps), "max": max(fps)})
    base = {r["size"]: r["frames_per_second"] for r in rows if r["backend"] == "torch:cpu"}
    print(f"{'size':>10} {'backend':>12} {'frames/s':>10} {'spread':>17} {'vs torch:cpu':>12}")
    for r in rows:
        print(f"{r['size']:>10} {r['backend']:>12} {r['frames_per_second']:>10.0f} {r['min']:>8.0f}-{r['max']:<8.0f} "
              f"{r['frames_per_second'] / base[r['size']]:>11.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()

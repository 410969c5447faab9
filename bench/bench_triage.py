"""Triage cost: detector frames/s batched across files vs per file, and a
``--triage`` scan against a hash-only scan of the same corpus in the same run.

    python -m vscan.bench.bench_triage [--files 24 --frames 8 --clips 8 --seconds 20 --rounds 2] [--json out.json]

1. Model stage alone (vscan.detect.triage.Triage, in this process): ``files``
   files of ``frames`` frames each (benign scikit-image pictures at their
   own sizes, and generated frames), once in one call (batches that mix
   files, as the model actor runs them) and once file by file; frames/s of
   each shipped model and of both together, best of ``rounds``.
2. Whole scans through Ray (vscan.bench.pipeline_runs.run_scan): the same
   generated clips (vscan.bench.synth), a hash-only scan (bank of a quarter of
   them) and a ``--triage`` scan with the same bank, alternating for
   ``rounds``; wall time, video-seconds/s and frames sampled of each, and the
   ratio triage / hash-only.
Also: the NSFW classifier's false-positive count on the benign media used
(frames with nsfw >= the manifest's threshold).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from vscan.config import Models, Runtime, ScanConfig
from vscan.detect.registry import triage_manifests
from vscan.detect.triage import Triage


def benign_frames(n_files: int, frames: int) -> list[tuple[np.ndarray, np.ndarray, tuple[int, int]]]:
    """Benign files: scikit-image's public-domain pictures (when installed) and generated frames."""
    pictures = []
    try:
        import skimage.data as data

        for name in ("astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry"):
            a = getattr(data, name)()
            pictures.append(np.repeat(a[..., None], 3, 2) if a.ndim == 2 else np.ascontiguousarray(a[..., :3]))
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    pictures += [rng.integers(0, 256, (360, 640, 3), dtype=np.uint8), np.full((288, 512, 3), (224, 172, 140), np.uint8)]
    out = []
    for i in range(n_files):
        pic = pictures[i % len(pictures)]
        scale = 512 / max(pic.shape[:2])  # as the decode stage keeps them: longest side 512 at most
        if scale < 1:
            from PIL import Image

            pic = np.asarray(Image.fromarray(pic).resize((round(pic.shape[1] * scale), round(pic.shape[0] * scale)), Image.Resampling.BILINEAR))
        stack = np.stack([np.roll(pic, 7 * k, axis=1) for k in range(frames)])
        out.append((stack, np.arange(frames, dtype=np.float64) * 3.0, (pic.shape[1], pic.shape[0])))
    return out


def model_stage(files, rounds: int, batch_frames: int) -> dict:
    manifests = triage_manifests(Models())
    out: dict = {"files": len(files), "frames": sum(len(f[0]) for f in files)}
    for label, chosen in (("open_nsfw", manifests[:1]), ("blazeface", manifests[1:]), ("both", manifests)):
        triage = Triage(chosen, device="cpu", batch_frames=batch_frames)
        triage.run(files[:1])  # warm-up
        batched, per_file = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            triage.run(files)
            batched.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for f in files:
                triage.run([f])
            per_file.append(time.perf_counter() - t0)
        out[label] = {"batched_frames_per_second": out["frames"] / min(batched), "per_file_frames_per_second": out["frames"] / min(per_file),
                      "batched_over_per_file": min(per_file) / min(batched)}  # fmt: skip
    triage = Triage(manifests, device="cpu", batch_frames=batch_frames)
    results = triage.run(files)
    nsfw = np.concatenate([r.series["open_nsfw/nsfw"] for r in results])
    threshold = manifests[0].risk.threshold
    out["nsfw_false_positive_frames"] = int((nsfw >= threshold).sum())
    out["nsfw_max_on_benign"] = float(nsfw.max())
    out["nsfw_threshold"] = threshold
    out["frames_with_a_face"] = int(sum(r.faces for r in results))
    return out


def scans(clips: int, seconds: float, rounds: int, work: Path) -> dict:
    from vscan.bench.pipeline_runs import make_bank, make_corpus, run_scan

    sources, corpus = make_corpus(work / "corpus", clips, seconds, (640, 360))
    bank = make_bank(work / "bank.db", sources, "cpu")
    configs = {"hash-only": ScanConfig(runtime=Runtime(device="cpu")),
               "triage": ScanConfig(models=Models(triage=True), runtime=Runtime(device="cpu"))}  # fmt: skip
    runs: dict[str, list[dict]] = {k: [] for k in configs}
    for _ in range(rounds):
        for name, config in configs.items():
            runs[name].append(run_scan(name, corpus, bank, config, work))
    best = {k: min(v, key=lambda r: r["wall_seconds"]) for k, v in runs.items()}
    keep = ("files", "errors", "matched", "wall_seconds", "video_seconds_per_second", "steady_video_seconds_per_second",
            "frames_sampled", "frames_decoded", "peak_rss_mib")  # fmt: skip
    out = {k: {f: r[f] for f in keep} | {"stage_seconds": r["stage_seconds"]} for k, r in best.items()}
    out["triage_over_hash_only_wall"] = best["triage"]["wall_seconds"] / best["hash-only"]["wall_seconds"]
    out["same_matches"] = best["triage"]["matched_files"] == best["hash-only"]["matched_files"]
    out["matched_files"] = best["triage"]["matched_files"]
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--batch-frames", type=int, default=64)
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--skip-scans", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    result = {"model_stage": model_stage(benign_frames(args.files, args.frames), args.rounds, args.batch_frames)}
    print(json.dumps(result, indent=1), flush=True)
    if not args.skip_scans:
        with tempfile.TemporaryDirectory(prefix="bench-triage-") as tmp:
            result["scans"] = scans(args.clips, args.seconds, args.rounds, Path(tmp))
        print(json.dumps(result["scans"], indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

"""Robustness benchmark: recall per transform and false positives, vscan vs vPDQ.

    python -m vscan.bench.bench_robustness            # default run (~45 min on 2 busy cores, most of it generating media)
    python -m vscan.bench.bench_robustness --quick    # CI-sized smoke test
    python -m vscan.bench.bench_robustness --no-vpdq  # without the reference anchor
    python -m vscan.bench.bench_robustness --workdir W --reframe-sources 8  # keep (and reuse) media and banks
    python -m vscan.bench.bench_robustness --workdir W --rows sparse  # the bank built with another row plan (--rows)

Issue #16's re-framed kinds (``vscan.bench.reframe``: vertical blur-fill
re-posts, 9:16 crops, picture-in-picture, split screens, captions with a
mirror, letterbox and logo, translucent boxes, 70% off-centre crops, 4 degree
rotations, stretches, GIFs, hi-res re-encodes, 3 s excerpts in 30 s, JPEG
frame grabs, mirrored and cropped PNG screenshots) are made from 16:9 sources
of their own (``--reframe-sources``, 12 s each) and scored in the same table.

Everything is generated here (``vscan.bench.synth``: abstract textured clips that
pan and zoom, several scenes each), seeded, so runs repeat. Per source clip
it writes edited copies (the re-uploader's edits below) and adds unrelated
distractor clips; it then runs the shipped defaults: ``vscan bank build``'s
hashing (every frame, borders, centre crops; ``vscan.bank.hashers.BANK_CROPS``) and
``vscan.runtime.driver.scan`` with ``ScanConfig(sampling=Sampling(policy=FixedRate(1.0)))`` (1 fps, robust matching) on a
local Ray. A copy is recalled when its record holds a perceptual ``is_match``
with its source; a distractor with any match is a false positive.

Anchor: the reference vPDQ (PyPI ``vpdq==0.2.5``, optional) at 1 s/hash on
both sides, with pytx's rule (query% >= 80; quality >= 50; distance < 31).

Cost: decode + hash + match per video-second, in-process and sequential on
the same files, robust defaults vs plain PDQ (``match_mode="vpdq"``, a bank
without extra rows): the ratio is reported.

Results: a table on stdout and JSON (``--out``, default
``bench-robustness.json`` in the work directory).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from vscan.bench import synth

# name -> (synth transform, params, codec)
TRANSFORMS: dict[str, tuple[str, dict, str]] = {
    "reencode_lq": ("reencode", {"quality_crf": 40}, "libx264"),
    "downscale_240p": ("downscale", {"height": 240}, "libx264"),
    "crop_5": ("crop", {"fraction": 0.05}, "libx264"),
    "crop_10": ("crop", {"fraction": 0.1}, "libx264"),
    "crop_15": ("crop", {"fraction": 0.15}, "libx264"),
    "crop_20": ("crop", {"fraction": 0.2}, "libx264"),
    "letterbox": ("pad", {"mode": "letterbox", "fraction": 0.125}, "libx264"),
    "pillarbox": ("pad", {"mode": "pillarbox", "fraction": 0.125}, "libx264"),
    "hflip": ("hflip", {}, "libx264"),
    "rot90": ("rot90", {"k": 1}, "libx264"),
    "brightness": ("brightness", {"delta": 40}, "libx264"),
    "grayscale": ("grayscale", {}, "libx264"),
    "watermark": ("watermark", {"fraction": 0.1}, "libx264"),
    "text": ("text", {"label": "REUPLOAD 2024"}, "libx264"),
    "noise": ("noise", {"sigma": 10}, "libx264"),
    "blur": ("blur", {"radius": 2}, "libx264"),
    "fps_15": ("fps", {"fps": 15}, "libx264"),
    "speed_1.25": ("speed", {"factor": 1.25}, "libx264"),
    "trim_middle": ("trim", {}, "libx264"),  # middle 40%, set per source
    "vp9_webm": ("reencode", {"quality_crf": 36}, "libvpx-vp9"),
    "hevc_mkv": ("reencode", {"quality_crf": 32}, "libx265"),
    "compile_8s_in_30s": ("compile", {}, "libx264"),  # set per source
}

SIZE = (480, 360)


def _plan(quick: bool, offset: int = 0) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(seed, seconds) of sources and of distractors; ``offset`` added to every seed (``--seed-offset``: a held-out set)."""
    if quick:
        sources, distractors = [(101, 10.0)], [(901, 12.0), (902, 10.0)]
    else:
        sources, distractors = [(101, 16.0), (102, 24.0)], [(901, 20.0), (902, 30.0), (903, 15.0), (904, 16.0)]
    return [(s + offset, t) for s, t in sources], [(s + offset, t) for s, t in distractors]


#: Issue #16's re-framed kinds (vscan.bench.reframe) on 16:9 sources of their own: seeds, seconds, size.
REFRAME_SIZE = (640, 360)


def _reframe_one(args: tuple) -> list[dict]:
    from vscan.bench.reframe import KINDS, extension, reframe_clip

    src_dir, archive, seed, seconds = args
    src = src_dir / f"wide{seed}.mp4"
    if not src.exists():  # a kept --workdir is reused
        synth.make_clip(src, seed=seed, seconds=seconds, size=REFRAME_SIZE, scenes=2, crf=20)
    out = []
    for kind in KINDS:
        dst = archive / f"wide{seed}__{kind}{extension(kind)}"
        if not dst.exists():
            reframe_clip(src, dst, kind, seed=seed)
        out.append({"path": dst, "source": src.stem, "transform": kind, "family": "reframe"})
    return out


def generate_reframed(work: Path, count: int, seconds: float = 12.0, workers: int = 2, offset: int = 0) -> tuple[list[Path], list[dict]]:
    """``count`` 16:9 sources and every re-framed kind of each (in ``workers`` processes); seeds from 301 + ``offset``."""
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(work / "reported", work / "archive", 301 + offset + i, seconds) for i in range(count)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        copies = [c for part in pool.map(_reframe_one, jobs) for c in part]
    return [work / "reported" / f"wide{j[2]}.mp4" for j in jobs], copies


def generate(work: Path, quick: bool, offset: int = 0) -> tuple[list[Path], list[dict], list[Path]]:
    sources_plan, distractor_plan = _plan(quick, offset)
    src_dir, archive = work / "reported", work / "archive"
    sources, copies, distractors = [], [], []
    codecs = set(synth.available_codecs())
    for seed, seconds in sources_plan:
        src = src_dir / f"src{seed}.mp4"
        if not src.exists():  # a kept --workdir is reused
            synth.make_clip(src, seed=seed, seconds=seconds, size=SIZE, scenes=max(2, int(seconds // 8)), crf=20)
        sources.append(src)
        for name, (transform, params, codec) in TRANSFORMS.items():
            if codec not in codecs:
                continue
            params = dict(params)
            if transform == "trim":
                params.update(start=round(0.3 * seconds, 2), end=round(0.7 * seconds, 2))
            if transform == "compile":
                mid = seconds / 2
                params.update(other_seed=seed + 5000, start=mid - 4, end=mid + 4, at=11.0, seconds=22.0)
            ext = synth.CODEC_CONTAINERS[codec]
            dst = archive / f"src{seed}__{name}{ext}"
            if not dst.exists():
                synth.edit_clip(src, dst, transform, codec=codec, seed=seed, **params)
            copies.append({"path": dst, "source": src.stem, "transform": name})
    for seed, seconds in distractor_plan:
        d = archive / f"distractor{seed}.mp4"
        distractors.append(d if d.exists() else synth.make_clip(d, seed=seed, seconds=seconds, size=SIZE, scenes=3, crf=23))
    # Edited distractors too: a flipped, letterboxed and cropped unrelated clip must not match either.
    d0 = distractors[0]
    # Hard distractors: edited like the copies, and one watermarked (the filled
    # overlay version is matched at a looser distance, so it needs a check too).
    for name, (transform, params) in {"hflip": ("hflip", {}), "letterbox": ("pad", {"mode": "letterbox"}), "crop_20": ("crop", {"fraction": 0.2}), "watermark": ("watermark", {"fraction": 0.1})}.items():
        d = archive / f"{d0.stem}__{name}.mp4"
        distractors.append(d if d.exists() else synth.edit_clip(d0, d, transform, **params))
    return sources, copies, distractors


def build_banks(work: Path, sources: list[Path], rows: str = "full") -> tuple[Path, Path, float]:
    """The shipped bank (cli defaults; ``rows``: the row plan, ``vscan bank build --rows``) and a plain one (frames
    only) for the cost baseline. A plan other than full is kept as ``reported-<plan>.bank``, beside full's."""
    from vscan.bank.store import build_bank
    from vscan.bank.hashers import BANK_MAX_SIDE, ROW_PLANS, media_hasher
    from vscan.decode import EveryFrame
    from vscan.hashing.pdq import PDQHasher
    from vscan.hashing.media import hash_media

    hasher = PDQHasher(device="cpu")

    shipped = media_hasher(EveryFrame(), "cpu", ROW_PLANS[rows])  # rows and entry geometry, as vscan bank build keeps them

    def plain(path):
        r = hash_media(path, EveryFrame(), hasher=hasher, max_side=BANK_MAX_SIDE)
        return r.frames, r.metadata.duration_seconds

    t0 = time.perf_counter()
    bank = work / ("reported.bank" if rows == "full" else f"reported-{rows}.bank")
    plain_bank = work / "reported-plain.bank"
    if bank.exists() and plain_bank.exists():  # a kept --workdir: banks reused
        return bank, plain_bank, 0.0
    build_bank(bank, sources, label="reported", hash_media=shipped, row_plan=rows)
    seconds = time.perf_counter() - t0
    if not plain_bank.exists():
        build_bank(plain_bank, sources, label="reported", hash_media=plain)
    return bank, plain_bank, seconds


def run_scan(work: Path, bank: Path, archive: Path, policy=None, name: str = "results") -> tuple[dict[str, dict], float]:
    from vscan.config import Runtime, Sampling, ScanConfig
    from vscan.decode import FixedRate
    from vscan.runtime.driver import run_scan as scan_files
    from vscan.output.sinks import JsonlSink

    out = work / f"{name}.jsonl"
    out.unlink(missing_ok=True)
    config = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu")) if policy is None else ScanConfig(sampling=Sampling(policy=policy), runtime=Runtime(device="cpu"))
    t0 = time.perf_counter()
    with JsonlSink(out) as sink:
        scan_files([archive], sink=sink, bank_path=bank, config=config)
    wall = time.perf_counter() - t0
    records = {}
    for line in out.read_text().splitlines():
        r = json.loads(line)
        if "path" in r and "status" in r:
            records[Path(r["path"]).name] = r
    return records, wall


def measure_cost(files: list[Path], bank: Path, plain_bank: Path, repeats: int = 2) -> dict:
    """Seconds of decode + hash + match per video-second, robust vs plain, same files, in-process."""
    from vscan.runtime.model_actor import ModelWorker
    from vscan.config import Matching, Runtime, Sampling, ScanConfig
    from vscan.decode import FixedRate
    from vscan.runtime.decode_task import decode_for_scan

    out = {}
    for mode, bank_path in (("vpdq", plain_bank), ("robust", bank)):
        config = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), matching=Matching(mode=mode), runtime=Runtime(device="cpu"))
        worker = ModelWorker(config, str(bank_path))
        runs = []
        for _ in range(repeats):
            total, video_seconds = 0.0, 0.0
            for f in files:
                t0 = time.perf_counter()
                summary, payload = decode_for_scan(str(f), config)
                worker.run([(0, None, None, 1)], payload)
                total += time.perf_counter() - t0
                video_seconds += summary["duration_seconds"]
            runs.append(total / video_seconds)
        out[mode] = {"seconds_per_video_second_median": statistics.median(runs), "runs": runs}
    out["ratio_robust_over_plain"] = out["robust"]["seconds_per_video_second_median"] / out["vpdq"]["seconds_per_video_second_median"]
    return out


def vpdq_anchor(sources: list[Path], copies: list[dict], distractors: list[Path]) -> dict | None:
    try:
        import vpdq
    except ImportError as exc:
        return {"error": f"vpdq not importable: {exc}"}

    def features(path):
        try:
            feats = vpdq.computeHash(input_video_filename=str(path), seconds_per_hash=1)
        except Exception:  # noqa: BLE001 - a file the reference cannot read is not recalled
            feats = []
        good = {f.hex for f in feats if f.quality >= 50}
        return np.array([np.frombuffer(bytes.fromhex(h), np.uint8) for h in sorted(good)]).reshape(-1, 32)

    def query_pct(q, r):
        if not len(q) or not len(r):
            return 0.0
        d = np.bitwise_count(q[:, None, :] ^ r[None, :, :]).sum(-1)
        return 100.0 * float((d < 31).any(1).mean())

    refs = {s.stem: features(s) for s in sources}
    per_copy = {}
    for c in copies:
        q = features(c["path"])
        per_copy[c["path"].name] = query_pct(q, refs[c["source"]]) >= 80
    fps = 0
    for d in distractors:
        q = features(d)
        fps += any(query_pct(q, r) >= 80 for r in refs.values())
    return {"recalled": per_copy, "false_positives": fps}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one short source, two distractors (CI smoke test)")
    ap.add_argument("--no-vpdq", action="store_true", help="skip the reference vPDQ anchor")
    ap.add_argument("--reframe-sources", type=int, default=8, help="16:9 sources for the re-framed kinds (0: none)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep generated media here (default: a temp dir, removed)")
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default: <workdir>/bench-robustness.json)")
    ap.add_argument("--seed-offset", type=int, default=0, help="added to every seed: a held-out set of sources, copies and distractors")
    ap.add_argument("--rows", default="full", help="the bank's row plan (vscan bank build --rows: full, sparse, ...)")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vscan-robust-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        sources, copies, distractors = generate(work, args.quick, args.seed_offset)
        if args.reframe_sources:
            wide, reframed = generate_reframed(work, 1 if args.quick else args.reframe_sources, offset=args.seed_offset)
            sources, copies = sources + wide, copies + reframed
        t_gen = time.perf_counter() - t0
        bank, plain_bank, t_bank = build_banks(work, sources, args.rows)
        records, t_scan = run_scan(work, bank, work / "archive")
        from vscan.decode import Adaptive

        # The CLI's default sampling: keyframes first, 1 fps only around matches.
        adaptive, t_adaptive = run_scan(work, bank, work / "archive", Adaptive(), "results-adaptive")
        cost_files = [c["path"] for c in copies if c["transform"] in ("reencode_lq", "letterbox", "hflip", "compile_8s_in_30s")]
        cost = measure_cost(cost_files + distractors[:1], bank, plain_bank, repeats=1 if args.quick else 2)
        anchor = None if args.no_vpdq else vpdq_anchor(sources, copies, distractors)

        per_transform: dict[str, dict] = {}
        details = []
        for c in copies:
            r = records[c["path"].name]
            hit = [m for m in r["matches"] if m["kind"] == "perceptual" and m["is_match"] and m["bank_entry_id"] == c["source"]]
            row = per_transform.setdefault(c["transform"], {"n": 0, "vscan": 0, "adaptive": 0, "vpdq": 0, "paths": set(), "decided_by": set()})
            row["n"] += 1
            row["vscan"] += bool(hit)
            row["adaptive"] += any(m["kind"] == "perceptual" and m["is_match"] and m["bank_entry_id"] == c["source"]
                                   for m in adaptive[c["path"].name]["matches"])  # fmt: skip
            if anchor and "recalled" in anchor:
                row["vpdq"] += anchor["recalled"][c["path"].name]
            if hit:
                row["paths"].add("+".join(hit[0].get("path", ["?"])))
                row["decided_by"].add(str(hit[0].get("decided_by")))
            details.append({"file": c["path"].name, "transform": c["transform"], "matched": bool(hit), "match": hit[0] if hit else None,
                            "best": r["matches"][0] if r["matches"] else None})  # fmt: skip
        fp_files = [d.name for d in distractors if any(m["is_match"] for m in records[d.name]["matches"])]
        fp_adaptive = [d.name for d in distractors if any(m["is_match"] for m in adaptive[d.name]["matches"])]
        n = len(copies)
        result = {
            "quick": args.quick,
            "seed_offset": args.seed_offset,
            "rows": args.rows,
            "bank_rows": _bank_rows(bank),
            "sources": len(sources),
            "copies": n,
            "distractors": len(distractors),
            "recall_overall": sum(r["vscan"] for r in per_transform.values()) / n,
            "false_positives": len(fp_files),
            "false_positive_files": fp_files,
            "adaptive": {
                "recall_overall": sum(r["adaptive"] for r in per_transform.values()) / n,
                "false_positives": len(fp_adaptive),
                "false_positive_files": fp_adaptive,
                "frames_decoded": sum(r["frames_decoded"] for r in adaptive.values()),
                "frames_decoded_1fps": sum(r["frames_decoded"] for r in records.values()),
                "video_seconds": sum(r["duration_seconds"] or 0 for r in adaptive.values()),
            },
            "per_transform": {k: {**v, "recall": v["vscan"] / v["n"], "recall_adaptive": v["adaptive"] / v["n"], "vpdq_recall": v["vpdq"] / v["n"] if anchor and "recalled" in anchor else None,
                                  "paths": sorted(v["paths"]), "decided_by": sorted(v["decided_by"])}
                              for k, v in per_transform.items()},  # fmt: skip
            "vpdq": None if anchor is None else {
                "error": anchor.get("error"),
                "recall_overall": sum(anchor["recalled"].values()) / n if "recalled" in anchor else None,
                "false_positives": anchor.get("false_positives"),
            },
            "cost": cost,
            "seconds": {"generate": t_gen, "bank_build": t_bank, "scan_wall": t_scan, "scan_wall_adaptive": t_adaptive},
            "details": details,
        }
        out = args.out or work / "bench-robustness.json"
        out.write_text(json.dumps(result, indent=1, default=str))
        _print(result, out)
        return result
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def _bank_rows(bank: Path) -> dict:
    """The bank's rows in total, per kind and per video-second (``vscan bank info``)."""
    from vscan.bank.store import Bank

    with Bank(bank) as b:
        info = b.info()
    return {"rows_total": info.rows_total, "rows_per_video_second": info.rows_per_video_second,
            "rows_per_video_second_by_kind": info.rows_per_video_second_by_kind}  # fmt: skip


def _print(result: dict, out: Path) -> None:
    print(f"{'transform':<20} {'n':>3} {'1 fps':>6} {'adapt':>6} {'vPDQ':>6}  path / decided by (1 fps)")
    for name, row in result["per_transform"].items():
        vp = "-" if row["vpdq_recall"] is None else f"{row['vpdq_recall']:.2f}"
        print(f"{name:<20} {row['n']:>3} {row['recall']:>6.2f} {row['recall_adaptive']:>6.2f} {vp:>6}  "
              f"{','.join(row['paths'])} / {','.join(row['decided_by'])}")  # fmt: skip
    vp, ad = result["vpdq"] or {}, result["adaptive"]
    print(f"{'overall':<20} {result['copies']:>3} {result['recall_overall']:>6.2f} {ad['recall_overall']:>6.2f} "
          f"{(vp.get('recall_overall') or float('nan')):>6.2f}")  # fmt: skip
    print(f"false positives: vscan 1 fps {result['false_positives']}, adaptive {ad['false_positives']} / {result['distractors']} "
          f"distractors; vPDQ {vp.get('false_positives')}")
    print(f"frames decoded: 1 fps {ad['frames_decoded_1fps']}, adaptive {ad['frames_decoded']} for {ad['video_seconds']:.0f} video-seconds")
    if vp.get("error"):
        print(f"vPDQ anchor: {vp['error']}")
    c = result["cost"]
    print(f"cost per video-second (decode+hash+match, in-process): plain PDQ {c['vpdq']['seconds_per_video_second_median']:.4f} s, "
          f"robust {c['robust']['seconds_per_video_second_median']:.4f} s, ratio {c['ratio_robust_over_plain']:.2f}x")  # fmt: skip
    r = result["bank_rows"]
    print(f"bank (--rows {result['rows']}): {r['rows_per_video_second']:.2f} rows per video-second ("
          + ", ".join(f"{k} {v:.2f}" for k, v in r["rows_per_video_second_by_kind"].items()) + ")")
    print(f"seconds: {json.dumps({k: round(v, 1) for k, v in result['seconds'].items()})}; JSON: {out}")


if __name__ == "__main__":
    main()

"""False positives at scale (issue #16): unrelated clips and stills against a large bank.

    python -m vscan.bench.bench_distractors                  # 2,000 bank entries, ~300 query files
    python -m vscan.bench.bench_distractors --quick          # small smoke run

The bank holds a few encoded 16:9 sources hashed as ``vscan bank build`` does
(every frame, borders, centre crops, re-post windows) and ``--bank-entries``
entries rendered in memory from every generator of ``vscan.bench.distractors``
(fractal zooms, cellular automata, plasma, gradients, textured pans; 6 frames
each, with the same extra rows). Queries are other seeds of the same
generators, encoded as clips; stills (JPEG frame grabs, mirrored and cropped
PNGs); and re-framed copies of unrelated clips (``vscan.bench.reframe``: blur
fill, picture-in-picture, split screen, captions, 3 s excerpts, GIFs), so the
region search and the short-run rule run on unrelated content too; and short
clips (3-5 s, ``--short-clips``), which the short-file rule
(``vscan.bank.short.is_short_file``) decides as a whole. All are scanned
with the shipped defaults on a local Ray.

Reported: files with any perceptual match (false positives) per 1,000 files,
per path (the match's ``path`` + ``decided_by``), and the closest non-match
distance per path (the margin). JSON goes to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from vscan.bench.distractors import GENERATORS, renderer

REFRAMED = ("blurfill_vertical", "pip", "splitscreen", "captions_mirror_letterbox_logo", "excerpt_3s_in_30s", "gif", "crop_916", "rotate4",
            "crop70_offcentre")


def _clip(args: tuple) -> list[Path]:
    from vscan.bench.encoding import _encode
    from vscan.bench.reframe import extension, reframe_clip

    archive, kind, seed, reframe, seconds = (*args, 8.0) if len(args) == 4 else args
    size = (320, 180) if seed % 3 else (256, 192)
    fps = 10.0
    path = archive / f"{kind}{seed}.mp4"
    if not path.exists():  # a kept --workdir is reused
        render = renderer(kind, seed, size, seconds)
        frames = (render(i / fps) for i in range(int(seconds * fps)))
        if seconds < 8.0 and seed % 4 == 0:  # short clips: some mirrored, as copies are
            frames = (np.ascontiguousarray(f[:, ::-1]) for f in frames)
        _encode(path, frames, fps=fps, codec="libx264", gop=None, crf=26, bitrate=None)
    out = [path]
    if reframe:
        dst = archive / f"{kind}{seed}__{reframe}{extension(reframe)}"
        out.append(dst if dst.exists() else reframe_clip(path, dst, reframe, seed=seed))
    return out


def _still(args: tuple) -> Path:
    from PIL import Image

    archive, kind, seed = args
    for suffix in (".jpg", ".png"):
        if (archive / f"{kind}{seed}{suffix}").exists():
            return archive / f"{kind}{seed}{suffix}"
    rng = np.random.default_rng(seed)
    f = renderer(kind, seed, (640, 360), 8.0)(float(rng.uniform(0, 8)))
    if seed % 2:
        Image.fromarray(f).save(archive / f"{kind}{seed}.jpg", quality=85)
        return archive / f"{kind}{seed}.jpg"
    f = np.ascontiguousarray(f[:, ::-1][10:330, 20:600])
    Image.fromarray(f).save(archive / f"{kind}{seed}.png")
    return archive / f"{kind}{seed}.png"


def _synthetic_entries(writer, count: int, seed0: int = 10_000) -> int:
    """``count`` in-memory bank entries (6 frames each at 1 fps, extra rows as banks have)."""
    from vscan.bank.hashers import BANK_CROPS, BANK_GRID_WINDOWS, BANK_WINDOWS
    from vscan.frames.windows import window
    from vscan.hashing.pdq import PDQHasher
    from vscan.hashing.vpdq import ExtraHashes, FrameHashes

    hasher = PDQHasher(device="cpu")
    rows = 0
    for i in range(count):
        kind, seed = GENERATORS[i % len(GENERATORS)], seed0 + i
        size = (192, 108) if i % 2 else (160, 120)
        render = renderer(kind, seed, size, 6.0)
        frames = np.stack([render(float(t)) for t in range(6)])
        hashed = hasher.hash_frames(frames)
        numbers, times = np.arange(6, dtype=np.int64), np.arange(6, dtype=np.float64)
        fh = FrameHashes(numbers, times, hashed.quality.astype(np.int32), np.ascontiguousarray(hashed.hashes[:, 0]))
        entry = writer.add_frame_hashes(f"{kind}{seed}", "synthetic", (f"synthetic/{kind}{seed}", "media", None), "video", fh, 6.0)
        h, w = frames.shape[1:3]
        parts = []
        for scale in BANK_CROPS:
            dy, dx = int(round(h * (1 - scale) / 2)), int(round(w * (1 - scale) / 2))
            parts.append((f"crop{scale:.3f}", np.ascontiguousarray(frames[:, dy : h - dy, dx : w - dx])))
        parts += [(f"window:{name}", window(frames, name)) for name in BANK_WINDOWS + BANK_GRID_WINDOWS]  # grid: 1 fps <= GRID_FPS
        preps, hashes, quals, nums = [], [], [], []
        for name, rgb in parts:
            if rgb is None:
                continue
            r = hasher.hash_frames(rgb)
            preps += [name] * len(rgb)
            hashes.append(r.hashes[:, 0])
            quals.append(r.quality)
            nums.append(numbers)
        writer.add_extra_hashes(entry, ExtraHashes(np.concatenate(nums), tuple(preps), np.concatenate(quals).astype(np.int32), np.concatenate(hashes)))
        rows += 6 * (1 + len(preps) // 6)
    return rows


def build_bank(work: Path, count: int, known: list[Path]) -> tuple[Path, dict]:
    from vscan.bank.hashers import media_hasher
    from vscan.bank.importers import import_media
    from vscan.bank.writer import BankWriter
    from vscan.decode import EveryFrame

    path = work / "big.bank"
    if path.exists():  # a kept --workdir: the bank is reused
        from vscan.bank.store import Bank

        with Bank(path) as bank:
            return path, {"entries": bank.info().num_entries, "synthetic_rows": None, "seconds": 0.0, "reused": True}
    t0 = time.perf_counter()
    hash_file = media_hasher(EveryFrame(), device="cpu")
    with BankWriter(path) as writer:
        for src in known:
            import_media(writer, src, src.name, "reported", hash_file)
        rows = _synthetic_entries(writer, count)
    return path, {"entries": count + len(known), "synthetic_rows": rows, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bank-entries", type=int, default=2000)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--short-clips", type=int, default=60, help="unrelated clips of 3-5 s (the short-file rule's ground)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.bank_entries, args.clips, args.images, args.short_clips = 50, 10, 6, 4
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vscan-distract-"))
    archive = work / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    try:
        from vscan.bench import synth
        from vscan.bench.bench_robustness import REFRAME_SIZE, run_scan

        t0 = time.perf_counter()
        known = [work / "reported" / f"wide{s}.mp4" for s in (301, 302)]
        for s, path in zip((301, 302), known):
            if not path.exists():
                synth.make_clip(path, seed=s, seconds=12.0, size=REFRAME_SIZE, scenes=2, crf=20)
        jobs = [(archive, GENERATORS[j % len(GENERATORS)], 50_000 + j, REFRAMED[j % len(REFRAMED)] if j % 3 == 0 else None)
                for j in range(args.clips)]  # fmt: skip
        short = [(archive, GENERATORS[j % len(GENERATORS)], 60_000 + j, None, 3.0 + (j % 5) * 0.5) for j in range(args.short_clips)]
        jobs += short
        stills = [(archive, GENERATORS[j % len(GENERATORS)], 90_000 + j) for j in range(args.images)]
        with ProcessPoolExecutor(max_workers=2) as pool:
            files = [p for part in pool.map(_clip, jobs) for p in part] + list(pool.map(_still, stills))
        t_gen = time.perf_counter() - t0
        bank, bank_info = build_bank(work, args.bank_entries, known)
        records, t_scan = run_scan(work, bank, archive)
        by_path: dict[str, dict] = {}
        fp_files, errors = [], []
        for name, r in records.items():
            if r.get("error"):
                errors.append(name)
            for m in r.get("matches", []):
                if m.get("kind") != "perceptual":
                    continue
                key = "+".join(m.get("path") or ["original"]) + " / " + str(m.get("decided_by"))
                row = by_path.setdefault(key, {"false_positive_files": 0, "closest_nonmatch": None})
                if m["is_match"]:
                    row["false_positive_files"] += 1
                elif m.get("distance_min") is not None:
                    d = m["distance_min"]
                    row["closest_nonmatch"] = d if row["closest_nonmatch"] is None else min(row["closest_nonmatch"], d)
            if any(m["is_match"] and m.get("kind") == "perceptual" for m in r.get("matches", [])):
                fp_files.append(name)
        n = len(records)
        for row in by_path.values():
            row["per_1000_files"] = 1000.0 * row["false_positive_files"] / max(n, 1)
        regions = sum(1 for r in records.values() for m in r.get("matches", []) if "region" in (m.get("path") or []))
        result = {
            "files": n, "clips": sum(1 for f in files if f.suffix in (".mp4", ".gif")), "stills": args.images, "short_clips": args.short_clips,
            "short_clip_false_positives": sorted({f"{k}{seed}.mp4" for _, k, seed, _, _ in short} & set(fp_files)),
            "bank": bank_info, "false_positive_files": fp_files, "false_positives_per_1000": 1000.0 * len(fp_files) / max(n, 1),
            "by_path": by_path, "region_path_candidates": regions, "errors": errors,
            "seconds": {"generate": t_gen, "bank": bank_info["seconds"], "scan": t_scan},
        }  # fmt: skip
        out = args.out or work / "bench-distractors.json"
        out.write_text(json.dumps(result, indent=1, default=str))
        print(f"{n} unrelated files ({result['clips']} clips, {args.images} stills) against {bank_info['entries']} bank entries: "
              f"{len(fp_files)} false positives ({result['false_positives_per_1000']:.1f} per 1,000 files)")  # fmt: skip
        for key, row in sorted(by_path.items()):
            print(f"  {key:<45} FP {row['false_positive_files']:>3} ({row['per_1000_files']:.1f}/1000)  closest non-match {row['closest_nonmatch']}")
        print(f"short clips (3-5 s): {args.short_clips}, false positives among them: {len(result['short_clip_false_positives'])}")
        print(f"errors: {len(errors)}; seconds: {json.dumps({k: round(v, 1) for k, v in result['seconds'].items()})}; JSON: {out}")
        return result
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

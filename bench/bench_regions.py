"""Cost of region search (issue #16): decode + region search + hash + match per file, on vs off.

    python -m vscan.bench.bench_regions --files DIR [--bank BANK] [--repeats 3]

In-process and sequential, the same files in the same run, alternating: this
tree as shipped, and this tree with ``vscan.runtime.decode_task.add_region``
replaced by a no-op (no region search, no region frames to hash). Files are
split into re-framed (a ``__`` kind of ``vscan.bench.reframe`` in the name)
stills (which get 74 windows each, hashed where they are cut:
``vscan.frames.regions.still_window_hashes``, timed on its own too) and the
rest; the ratio that must stay <= 1.3 is the rest's (and the stills' is reported beside it). Also reported:
the region search's own time per file and the share of files given a region.
``--files`` defaults to a fresh set of generated clips (``vscan.bench.synth``
edits and ``vscan.bench.reframe`` kinds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from vscan.bench.reframe import KINDS


def _files(work: Path) -> list[Path]:
    from vscan.bench import synth
    from vscan.bench.reframe import extension, reframe_clip

    out = []
    for seed in (401, 402, 403):
        src = synth.make_clip(work / f"plain{seed}.mp4", seed=seed, seconds=12.0, size=(640, 360), scenes=2, crf=23)
        out.append(src)
        out.append(synth.edit_clip(src, work / f"plain{seed}_crop.mp4", "crop", fraction=0.1))
        out.append(synth.edit_clip(src, work / f"plain{seed}_box.mp4", "pad", mode="letterbox"))
        for kind in ("blurfill_vertical", "pip", "splitscreen"):
            out.append(reframe_clip(src, work / f"plain{seed}__{kind}{extension(kind)}", kind, seed=seed))
        for k in range(4):  # unrelated stills: they get windows (vscan.frames.regions.still_windows)
            out.append(synth.write_image(work / f"still{seed}_{k}.{'jpg' if k % 2 else 'png'}", seed * 10 + k, size=(640, 360)))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=Path, default=None)
    ap.add_argument("--bank", type=Path, default=None, help="a bank to match against (default: one built from the first file)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import vscan.runtime.decode_task as decode_task
    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import build_bank
    from vscan.config import Runtime, Sampling, ScanConfig
    from vscan.decode import EveryFrame, FixedRate
    from vscan.frames.regions import detect_region, still_window_hashes
    from vscan.runtime.model_actor import ModelWorker

    work = Path(tempfile.mkdtemp(prefix="vscan-regions-"))
    files = sorted(p for p in args.files.rglob("*") if p.is_file()) if args.files else _files(work)
    files = [f for f in files if f.suffix.lower() in (".mp4", ".mkv", ".webm", ".gif", ".jpg", ".png")]
    bank = args.bank
    if bank is None:
        bank = work / "one.bank"
        build_bank(bank, [files[0]], label="x", hash_media=media_hasher(EveryFrame(), device="cpu"))
    config = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu"))
    worker = ModelWorker(config, str(bank))
    shipped = decode_task.add_region
    reframed = {f for f in files if any(f"__{k}" in f.name for k in KINDS)}
    times: dict[str, dict[str, list[float]]] = {"on": {}, "off": {}}
    found, search, windows = {}, [], []
    for _ in range(args.repeats):
        for mode in ("off", "on"):
            decode_task.add_region = shipped if mode == "on" else (lambda payload, **_: payload)
            for f in files:
                t0 = time.perf_counter()
                _, payload = decode_task.decode_for_scan(str(f), config)
                worker.run([(0, None, None, 1)], payload)
                times[mode].setdefault(f.name, []).append(time.perf_counter() - t0)
                if mode == "on" and len(payload["frames"]) > 1:
                    found[f.name] = "region_frames" in payload
                    t1 = time.perf_counter()
                    detect_region(payload["frames"])
                    search.append(time.perf_counter() - t1)
                elif mode == "on":
                    t1 = time.perf_counter()
                    still_window_hashes(payload["frames"])
                    windows.append(time.perf_counter() - t1)
    decode_task.add_region = shipped

    def total(mode: str, group: set[str]) -> float:
        return sum(statistics.median(v) for k, v in times[mode].items() if k in group)

    stills = {f.name for f in files if f.suffix.lower() in (".jpg", ".png")}
    plain = {f.name for f in files if f not in reframed} - stills
    refr = {f.name for f in reframed} - stills  # a frame grab of a known video is a still
    result = {
        "files": len(files), "reframed_files": len(refr), "repeats": args.repeats,
        "plain_seconds": {"off": total("off", plain), "on": total("on", plain)},
        "reframed_seconds": {"off": total("off", refr), "on": total("on", refr)},
        "region_search_ms_per_file_median": 1000 * statistics.median(search),
        "stills_seconds": {"off": total("off", stills), "on": total("on", stills)},
        "still_windows_ms_per_still_median": 1000 * statistics.median(windows) if windows else None,
        "regions_found": {"plain": sum(found[k] for k in plain), "reframed": sum(found[k] for k in refr)},
    }  # fmt: skip
    result["ratio_plain"] = result["plain_seconds"]["on"] / result["plain_seconds"]["off"]
    result["ratio_stills"] = (result["stills_seconds"]["on"] / result["stills_seconds"]["off"]) if stills else None
    result["ratio_reframed"] = (result["reframed_seconds"]["on"] / result["reframed_seconds"]["off"]) if refr else None
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

"""Adaptive sampling's region probe (issue #16): recall and cost, on vs off.

    python -m vscan.bench.bench_region_probe --archive DIR --bank BANK [--repeats 2]
    python -m vscan.bench.bench_region_probe            # a small generated set (~3 min)
    python -m vscan.bench.bench_region_probe --seeds 301-324 --kinds pip,splitscreen --others 0 --repeats 1

Under the CLI's default adaptive sampling, a short clip's first pass is its
keyframes (2-3 frames), too few for region search. ``vscan.runtime.region_probe``
decodes again, with ``ESCALATED_FRAMES`` frames, only the files whose first
pass shows straight edges that stay put (``vscan.frames.straight_edges``).
This bench scans the same files in the same run, alternating, with the probe
on (as shipped) and off (``sampling.region_probe = false``): in-process and
sequential, both adaptive passes as the pipeline runs them (decode, hash and
match the first pass; decode, merge and match the second where the first
asks for one).

Reported per re-framed kind (a ``__kind`` of ``vscan.bench.reframe`` in the
file name, matched to the bank entry named by the part before ``__``) the
recall on and off; for the other files (not re-framed: plain clips and the
ordinary edits of ``bench_robustness``, unrelated distractors) the frames
decoded and the seconds on vs off (the ratio that must stay <= 1.3), the
share of files escalated, and files with a match to a bank entry they are
not a copy of (false positives). ``--archive`` may be ``bench_robustness``'s
kept ``--workdir``/archive with its ``reported.bank``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from vscan.bench.reframe import KINDS, STILL_KINDS

_VIDEO = (".mp4", ".mkv", ".webm", ".gif")


def _files(work: Path, seeds: list[int], kinds: set[str] | None, others: int) -> tuple[list[Path], Path]:
    from vscan.bank.store import build_bank
    from vscan.bank.hashers import media_hasher
    from vscan.bench import synth
    from vscan.bench.reframe import reframe_clip
    from vscan.decode import EveryFrame

    out, sources = [], []
    for seed in seeds:
        src = synth.make_clip(work / "src" / f"wide{seed}.mp4", seed=seed, seconds=12.0, size=(640, 360), scenes=2, crf=20)
        sources.append(src)
        for kind in ("blurfill_vertical", "pip", "splitscreen", "captions_mirror_letterbox_logo", "translucent_box"):
            if kinds is None or kind in kinds:
                out.append(reframe_clip(src, work / "in" / f"wide{seed}__{kind}.mp4", kind, seed=seed))
        out.append(synth.edit_clip(src, work / "in" / f"wide{seed}__reencode.mp4", "reencode", quality_crf=32))  # not re-framed: a copy all the same
    for seed in range(601, 601 + others):
        out.append(synth.make_clip(work / "in" / f"other{seed}.mp4", seed=seed, seconds=12.0, size=(640, 360), scenes=2, crf=23))
    bank = work / "reported.bank"
    build_bank(bank, sources, label="reported", hash_media=media_hasher(EveryFrame(), device="cpu"))
    return out, bank


def _scan(path: Path, config, worker, decode_for_scan) -> tuple[dict, list[dict], float]:
    """Both adaptive passes of one file, as the pipeline runs them: (summary, matches, seconds)."""
    t0 = time.perf_counter()
    summary, payload = decode_for_scan(str(path), config)
    if payload is None:
        return summary, [], time.perf_counter() - t0
    (result,) = worker.run([(0, None, None, 1)], payload)
    refine = result.refine
    if refine is not None:
        cfg = replace(config, sampling=replace(config.sampling, policy=refine))
        second, payload2 = decode_for_scan(str(path), cfg)
        if payload2 is not None:
            (result,) = worker.run([(0, None, None, 2)], payload, payload2)
            summary = {**summary, "frames_decoded": summary["frames_decoded"] + second["frames_decoded"]}
    return summary, result.matches, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archive", type=Path, default=None, help="files to scan (default: a small generated set)")
    ap.add_argument("--bank", type=Path, default=None, help="the bank of their sources (needed with --archive)")
    ap.add_argument("--kinds", default=None, help="comma-separated re-framed kinds to keep (default: all)")
    ap.add_argument("--seeds", default="501,502", help="generated set: source seeds, comma-separated or a range A-B "
                    "(bench_robustness's are 301-308; issue #16's adaptive check used 301-324 with --kinds pip,splitscreen)")
    ap.add_argument("--others", type=int, default=8, help="generated set: unrelated plain clips")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    work = None
    if args.archive is None:
        work = Path(tempfile.mkdtemp(prefix="vscan-probe-"))
        a, _, b = args.seeds.partition("-")
        seeds = list(range(int(a), int(b) + 1)) if b else [int(x) for x in args.seeds.split(",")]
        files, bank = _files(work, seeds, set(args.kinds.split(",")) if args.kinds else None, args.others)
    else:
        if args.bank is None:
            ap.error("--archive needs --bank")
        files, bank = sorted(p for p in args.archive.iterdir() if p.suffix.lower() in _VIDEO), args.bank
    keep = set(args.kinds.split(",")) if args.kinds else None
    try:
        return _run(files, bank, keep, args)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def _run(files: list[Path], bank: Path, keep: set[str] | None, args) -> dict:
    from vscan.config import Runtime, ScanConfig
    from vscan.runtime.decode_task import decode_for_scan
    from vscan.runtime.model_actor import ModelWorker

    def kind_of(p: Path) -> str | None:
        m = re.search(r"__(\w+?)\.", p.name)
        return m.group(1) if m and m.group(1) in KINDS else None

    files = [f for f in files if kind_of(f) not in STILL_KINDS and (keep is None or kind_of(f) is None or kind_of(f) in keep)]
    config = ScanConfig(runtime=Runtime(device="cpu"))  # the CLI's defaults: adaptive sampling, robust matching
    worker = ModelWorker(config, str(bank))
    configs = {"on": config, "off": replace(config, sampling=replace(config.sampling, region_probe=False))}
    rows: dict[str, dict] = {f.name: {"kind": kind_of(f), "source": f.name.split("__")[0], "seconds": {"on": [], "off": []}} for f in files}
    for _ in range(args.repeats):
        for mode in ("off", "on"):
            for f in files:
                summary, matches, seconds = _scan(f, configs[mode], worker, decode_for_scan)
                row = rows[f.name]
                row["seconds"][mode].append(seconds)
                row[mode] = {"frames_decoded": summary.get("frames_decoded", 0), "escalated": "looks re-framed" in str(summary.get("sampling")),
                             "matched": sorted({m.bank_entry_id for m in matches if m.signal == "pdq" and m.is_match})}  # fmt: skip

    per_kind: dict[str, dict] = {}
    for row in rows.values():
        if row["kind"] is None:
            continue
        k = per_kind.setdefault(row["kind"], {"n": 0, "on": 0, "off": 0})
        k["n"] += 1
        for mode in ("on", "off"):
            k[mode] += row["source"] in row[mode]["matched"]
    plain = [r for r in rows.values() if r["kind"] is None]
    reframed = [r for r in rows.values() if r["kind"] is not None]

    def total(group, mode, key):
        return sum(statistics.median(r["seconds"][mode]) if key == "seconds" else r[mode][key] for r in group)

    def unexpected(r, mode):  # a match to an entry the file is not a copy of
        return [e for e in r[mode]["matched"] if e != r["source"]]

    result = {
        "files": len(rows), "plain_files": len(plain), "reframed_files": len(reframed), "repeats": args.repeats,
        "recall": {k: {"n": v["n"], "off": v["off"] / v["n"], "on": v["on"] / v["n"]} for k, v in sorted(per_kind.items())},
        "recall_overall": {m: sum(v[m] for v in per_kind.values()) / max(1, len(reframed)) for m in ("off", "on")},
        "plain": {m: {"seconds": total(plain, m, "seconds"), "frames_decoded": total(plain, m, "frames_decoded"),
                      "escalated": sum(r[m]["escalated"] for r in plain), "false_positives": sum(bool(unexpected(r, m)) for r in plain)}
                  for m in ("off", "on")},
        "reframed": {m: {"seconds": total(reframed, m, "seconds"), "frames_decoded": total(reframed, m, "frames_decoded"),
                         "escalated": sum(r[m]["escalated"] for r in reframed)} for m in ("off", "on")},
        "plain_escalated_files": sorted(n for n, r in rows.items() if r["kind"] is None and r["on"]["escalated"]),
        "unexpected_matches": {n: unexpected(r, "on") for n, r in rows.items() if unexpected(r, "on")},
    }  # fmt: skip
    p = result["plain"]
    result["plain_ratio_seconds"] = p["on"]["seconds"] / max(p["off"]["seconds"], 1e-9)
    result["plain_ratio_frames_decoded"] = p["on"]["frames_decoded"] / max(p["off"]["frames_decoded"], 1)
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

"""Bank build benchmark: ``vscan bank build`` against the reference vPDQ hashing every
frame on all threads (same files, same run), peak memory, and the bank's rows per
reported video-second per kind; with ``--compact``, the row-collapse experiment
(``vscan.bank.compact_rows``) scored on ``bench_robustness``'s copies, full bank vs
compacted banks in the same run.

    python -m vscan.bench.bench_bank_build --workdir W                # real sample videos (../shared) + 1 synthetic clip
    python -m vscan.bench.bench_bank_build --workdir W --samples 0 --synthetic 2
    python -m vscan.bench.bench_bank_build --workdir W --plans compact --baseline /tmp/base-pkg   # and an older vscan, same run
    python -m vscan.bench.bench_bank_build --workdir W --compact --skip-build   # recall: full vs compacted (bench_robustness --quick media)
    python -m vscan.bench.bench_bank_build --workdir W --skip-build --heldout --baseline /tmp/base-pkg   # held-out recall, old and new
    python -m vscan.bench.bench_bank_build --workdir W --skip-build --heldout --plans full,lean,cover   # held-out recall of --rows cover too
    python -m vscan.bench.bench_bank_build --workdir W --skip-build --cluster 4 --plans compact   # --ray-address: 1 vs 2 raylets

Build: ``vscan bank build BANK FILES --device cpu --replace`` as a subprocess (its
own process tree's peak RSS is sampled), then ``vpdq.computeHash(seconds_per_hash=0)``
(every frame) on all cores (one file per thread, as bench_pipeline runs the
reference). Both timed as wall seconds on the same files, one after the other.

Compact: the media of ``bench_robustness --quick`` (one 10 s source and its 22
edited copies, one 16:9 source and its re-framed kinds, distractors) in
``W/robust``; the shipped bank built once, compacted banks derived from its rows
(``CompactRule``), each scanned with bench_robustness's 1 fps robust scan; recall
per kind and false positives per bank, rows per video-second per kind per bank.

Results: tables on stdout and JSON (``--out``, default ``W/bench-bank-build.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: ../shared/data/vpdq beside the project (as the tests find it).
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vpdq"
#: Real sample videos used by default (the smaller ones: a loaded 2-core machine), by name.
DEFAULT_SAMPLES = ("doorknob-hd-no-bar.mp4", "pattern-sd-grey-bar.mp4", "chair-19-sd-bar.mp4")


def _samples(count: int) -> list[Path]:
    if not SAMPLES.is_dir() or count <= 0:
        return []
    named = [SAMPLES / n for n in DEFAULT_SAMPLES if (SAMPLES / n).is_file()]
    rest = sorted(p for p in SAMPLES.glob("*.mp4") if p not in named)
    return (named + rest)[:count]


def _synthetic(work: Path, count: int) -> list[Path]:
    from vscan.bench import synth

    out = []
    for i in range(count):
        path = work / "synthetic" / f"reported{i}.mp4"
        out.append(path if path.exists() else synth.make_clip(path, seed=700 + i, seconds=12.0, size=(640, 360), scenes=3, crf=20))
    return out


def _video_seconds(files: list[Path]) -> float:
    from vscan.decode import PyAVDecoder

    return float(sum(PyAVDecoder().probe(p).duration_seconds or 0.0 for p in files))


def cluster_part(work: Path, synthetic: int, rows: str) -> dict:
    """``vscan bank build --ray-address`` on vscan.bench.loopback's cluster of 1 and of 2 raylets
    (one CPU each), same files, same run: wall seconds and the 2-raylet speed-up."""
    from vscan.bench.loopback import LoopbackCluster

    files = _synthetic(work, synthetic)
    out: dict = {"files": len(files), "video_seconds": _video_seconds(files), "rows": rows, "load_average": os.getloadavg()}
    for nodes in (1, 2):
        with LoopbackCluster(nodes=nodes, cpus_per_node=1) as cluster:
            out[f"raylets_{nodes}"] = run_build(work / "cluster" / f"r{nodes}.bank", files, rows, env=cluster.env, ray_address=cluster.address)
    out["speedup_2_over_1"] = out["raylets_1"]["wall_seconds"] / out["raylets_2"]["wall_seconds"]
    out["load_average_after"] = os.getloadavg()
    print(f"--ray-address build, {len(files)} files ({out['video_seconds']:.0f} video-s), --rows {rows}: 1 raylet "
          f"{out['raylets_1']['wall_seconds']:.1f} s, 2 raylets {out['raylets_2']['wall_seconds']:.1f} s, speed-up {out['speedup_2_over_1']:.2f}x; "
          f"load {out['load_average'][0]:.1f} -> {out['load_average_after'][0]:.1f}", flush=True)
    return out


def run_build(bank: Path, files: list[Path], rows: str = "full", baseline: Path | None = None, *, env: dict | None = None,
              ray_address: str | None = None) -> dict:  # fmt: skip
    """``vscan bank build`` as a subprocess: wall, CPU and the process tree's peak RSS; ``baseline``: a
    checkout's package folder (an older vscan, e.g. ``git worktree add``) put first on PYTHONPATH."""
    from vscan.bench.pipeline_runs import Sampler

    corpus = bank.parent / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for f in files:  # one folder of links: the CLI's own walk, as a user runs it
        link = corpus / f.name
        if not link.exists():
            link.symlink_to(f.resolve())
    cmd = [sys.executable, "-m", "vscan.cli", "bank", "build", str(bank), str(corpus), "--device", "cpu", "--replace", "--rows", rows]
    cmd += ["--ray-address", ray_address] if ray_address else []
    t0, cpu0 = time.perf_counter(), _cpu_seconds(resource.RUSAGE_CHILDREN)
    if baseline:
        env = {**(env or os.environ), "PYTHONPATH": f"{baseline}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with Sampler() as sampler:
        run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if run.returncode != 0:
        raise RuntimeError(f"vscan bank build failed: {run.stderr[-2000:]}")
    return {"wall_seconds": wall, "cpu_seconds": _cpu_seconds(resource.RUSAGE_CHILDREN) - cpu0, "peak_rss_mib": sampler.peak_rss / 2**20,
            "machine_cpu_utilisation": sampler.cpu_utilisation}  # fmt: skip


def _cpu_seconds(who: int) -> float:
    """User + system CPU seconds of this process (RUSAGE_SELF) or of its waited-for children: the work
    itself, whatever else loads the machine."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_vpdq(files: list[Path]) -> dict | None:
    try:
        import vpdq
    except ImportError:
        return None
    from vscan.bench.pipeline_runs import Sampler

    threads = os.cpu_count() or 1
    t0, cpu0 = time.perf_counter(), _cpu_seconds(resource.RUSAGE_SELF)
    with Sampler() as sampler:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            feats = list(pool.map(lambda p: vpdq.computeHash(str(p), seconds_per_hash=0, thread_count=1), files))
    return {"wall_seconds": time.perf_counter() - t0, "cpu_seconds": _cpu_seconds(resource.RUSAGE_SELF) - cpu0,
            "frames": sum(len(f) for f in feats), "threads": threads, "peak_rss_mib": sampler.peak_rss / 2**20,
            "machine_cpu_utilisation": sampler.cpu_utilisation}  # fmt: skip


def bank_rows(bank: Path) -> dict:
    from vscan.bank.store import Bank

    with Bank(bank) as b:
        info = b.info()
    index_bytes = sum(f.stat().st_size for f in Path(f"{bank}.vidx").rglob("*") if f.is_file()) if Path(f"{bank}.vidx").is_dir() else 0
    return {"rows_total": info.rows_total, "rows_by_kind": info.rows_by_kind, "video_seconds": info.video_seconds,
            "rows_per_video_second": info.rows_per_video_second, "rows_per_video_second_by_kind": info.rows_per_video_second_by_kind,
            "bank_bytes": bank.stat().st_size, "index_bytes": index_bytes}  # fmt: skip


#: Index bytes a row (the split index, vscan.bank.disk_index) and the scan arrays' bytes a frame row /
#: an extra row (docs/banks.md, "Capacity").
INDEX_BYTES_PER_ROW, SCAN_BYTES_PER_FRAME_ROW, SCAN_BYTES_PER_EXTRA_ROW = 128, 37, 11


def capacity(rows: dict, cpu_seconds_per_video_second: float, hours: tuple[int, ...] = (1_000, 10_000, 100_000)) -> list[dict]:
    """Rows, index and bank-file size and build CPU-hours for ``hours`` of reported video, from one
    build's measured rates (rows per video-second by kind, bank bytes a row, CPU-s per video-second)."""
    per_second = rows["rows_per_video_second"]
    frame_share = rows["rows_per_video_second_by_kind"].get("frame", 0.0) / per_second if per_second else 0.0
    index_per_row = INDEX_BYTES_PER_ROW + frame_share * SCAN_BYTES_PER_FRAME_ROW + (1 - frame_share) * SCAN_BYTES_PER_EXTRA_ROW
    bank_per_row = rows["bank_bytes"] / max(rows["rows_total"], 1)
    out = []
    for h in hours:
        n = per_second * 3600 * h
        out.append({"reported_hours": h, "rows": n, "index_bytes": n * index_per_row, "bank_bytes": n * bank_per_row,
                    "build_cpu_hours": cpu_seconds_per_video_second * h})  # fmt: skip
    return out


def build_part(work: Path, samples: int, synthetic: int, no_vpdq: bool, plans: tuple[str, ...] = ("full", "compact"),
               baseline: Path | None = None) -> dict:
    files = _samples(samples) + _synthetic(work, synthetic)
    if not files:
        raise SystemExit("no input files: give --samples (needs ../shared/data/vpdq) or --synthetic")
    video_seconds = _video_seconds(files)
    bank = work / "build" / "reported.bank"
    bank.parent.mkdir(parents=True, exist_ok=True)
    reference = None if no_vpdq else run_vpdq(files)
    out = {"files": [f.name for f in files], "video_seconds": video_seconds, "vpdq_every_frame": reference, "load_average": os.getloadavg()}
    if reference:
        out["vpdq_cpu_seconds_per_video_second"] = reference["cpu_seconds"] / video_seconds
    runs = [(rows, rows, None) for rows in plans] + [(f"baseline-{rows}", rows, baseline) for rows in plans if baseline]
    for name, rows, checkout in runs:
        build = run_build(bank.with_name(f"reported-{name}.bank"), files, rows, checkout)
        b = out[name] = {"vscan_build": build, "rows": bank_rows(bank.with_name(f"reported-{name}.bank")),
                         "vscan_cpu_seconds_per_video_second": build["cpu_seconds"] / video_seconds}  # fmt: skip
        b["capacity"] = capacity(b["rows"], b["vscan_cpu_seconds_per_video_second"])
        if reference:
            b["build_over_vpdq_wall"] = build["wall_seconds"] / reference["wall_seconds"]
            b["build_over_vpdq_cpu"] = build["cpu_seconds"] / reference["cpu_seconds"]
    out["load_average_after"] = os.getloadavg()
    return out


def query_side_cost(records: dict[str, dict]) -> dict:
    """The scan's centre-crop search per file (``timings.match_centre_crops``, vscan.bank.query_side):
    files it ran on (nothing matched plainly) and mean milliseconds over those and over every file."""
    times = [float((r.get("timings") or {}).get("match_centre_crops", 0.0)) for r in records.values()]
    ran = [t for t in times if t > 0.0005]
    return {"files": len(times), "files_searched": len(ran), "ms_per_searched_file": 1000 * sum(ran) / max(len(ran), 1),
            "ms_per_file": 1000 * sum(ran) / max(len(times), 1)}  # fmt: skip


def compact_part(work: Path, rules: list, plans: tuple[str, ...] = ("compact",)) -> dict:
    from vscan.bank.compact_rows import compact_bank_rows
    from vscan.bench import bench_robustness as br
    from vscan.bench.plan_banks import plan_bank

    robust = work / "robust"
    robust.mkdir(parents=True, exist_ok=True)
    sources, copies, distractors = br.generate(robust, True)
    wide, reframed = br.generate_reframed(robust, 1, workers=1)
    sources, copies = sources + wide, copies + reframed
    full = robust / "reported.bank"
    if not full.exists():
        br.build_banks(robust, sources)
    banks = {"full": full}
    for plan in [p for p in plans if p != "full"]:
        banks[f"built-{plan}"] = plan_bank(robust / f"built-{plan}.bank", sources, plan)  # the build path itself: vscan bank build --rows PLAN
    for rule in rules:
        path = robust / f"{rule.name}.bank"
        if not path.exists():
            compact_bank_rows(full, path, rule)
        banks[rule.name] = path
    result = {"copies": len(copies), "distractors": len(distractors), "banks": {}}
    for name, path in banks.items():
        records, wall = br.run_scan(robust, path, robust / "archive", name=f"results-{name}")
        per_kind: dict[str, list[int]] = {}
        for c in copies:
            r = records[c["path"].name]
            hit = any(m["kind"] == "perceptual" and m["is_match"] and m["bank_entry_id"] == c["source"] for m in r["matches"])
            row = per_kind.setdefault(c["transform"], [0, 0])
            row[0] += hit
            row[1] += 1
        fps = [d.name for d in distractors if any(m["is_match"] for m in records[d.name]["matches"])]
        result["banks"][name] = {"rows": bank_rows(path), "recall_by_kind": {k: v[0] / v[1] for k, v in per_kind.items()},
                                 "recall_overall": sum(v[0] for v in per_kind.values()) / len(copies),
                                 "false_positives": fps, "scan_wall_seconds": wall, "query_side": query_side_cost(records)}  # fmt: skip
    return result


#: Held-out recall (sources and a seed the compact rule was not tuned on): real sample videos, a synthetic
#: clip of seed 102, and these edits of bench_robustness (its distractors beside them).
HELDOUT_SOURCES = ("doorknob-hd-no-bar", "pattern-sd-grey-bar", "chair-19-sd-bar")
HELDOUT_EDITS = ("reencode_lq", "crop_10", "crop_15", "hflip", "brightness", "text", "trim_middle", "letterbox")
#: Stills of each held-out source (``vscan.bench.reframe``: a frame grab, a mirrored 90% off-centre screenshot), these seeds
#: each: a still shows one frame, so a bank finds it only through rows near that frame (stop 41: full 10/24, sparse 5/24).
HELDOUT_STILLS = ("framegrab_jpg", "screenshot_png")
HELDOUT_STILL_SEEDS = (41001, 41002, 41003)


def heldout_part(work: Path, plans: tuple[str, ...], baseline: Path | None, adaptive: bool = False) -> dict:
    """Recall per edit of banks built with each plan (and the baseline's), one scan each (at 1 fps; ``adaptive``:
    a default adaptive scan too, whose second pass looks again at a sparse bank's weak hits), same run."""
    from vscan.bench import bench_robustness as br, synth
    from vscan.decode import PyAVDecoder

    root = work / "heldout"
    (root / "reported").mkdir(parents=True, exist_ok=True)
    (root / "archive").mkdir(parents=True, exist_ok=True)
    sources = [SAMPLES / f"{n}.mp4" for n in HELDOUT_SOURCES if (SAMPLES / f"{n}.mp4").is_file()]
    other = root / "reported" / "src102.mp4"
    sources.append(other if other.exists() else synth.make_clip(other, seed=102, seconds=16.0, size=br.SIZE, scenes=2, crf=20))
    copies = []
    for src in sources:
        seconds = PyAVDecoder().probe(src).duration_seconds or 0.0
        for edit in HELDOUT_EDITS:
            transform, params, codec = br.TRANSFORMS[edit]
            params = dict(params, **({"start": round(0.3 * seconds, 2), "end": round(0.7 * seconds, 2)} if transform == "trim" else {}))
            dst = root / "archive" / f"{src.stem}__{edit}.mp4"
            if not dst.exists():
                synth.edit_clip(src, dst, transform, codec=codec, seed=7, **params)
            copies.append((dst.name, src.stem, edit))
        for kind in HELDOUT_STILLS:
            from vscan.bench.reframe import extension, reframe_clip

            for seed in HELDOUT_STILL_SEEDS:
                dst = root / "archive" / f"{src.stem}__{kind}{seed}{extension(kind)}"
                if not dst.exists():
                    reframe_clip(src, dst, kind, seed=seed)
                copies.append((dst.name, src.stem, kind))
    _, _, distractors = br.generate(work / "robust", True)
    for d in distractors:
        link = root / "archive" / d.name
        if not link.exists():
            link.symlink_to(d.resolve())
    out: dict = {"copies": len(copies), "banks": {}}
    from vscan.decode import Adaptive

    built = [(p, p, None) for p in plans] + [(f"baseline-{p}", p, baseline) for p in plans if baseline]
    for name, rows, checkout, policy in [(*b, None) for b in built] + ([(f"{b[0]}-adaptive", *b[1:], Adaptive()) for b in built] if adaptive else []):
        bank = root / "banks" / f"{name.removesuffix('-adaptive')}.bank"
        if policy is None:  # built once, scanned at 1 fps, then adaptively (below)
            run_build(bank, sources, rows, checkout)
        records, _ = br.run_scan(root, bank, root / "archive", policy=policy, name=f"results-{name}")
        per: dict[str, list[int]] = {}
        for file, source, edit in copies:
            hit = any(m["kind"] == "perceptual" and m["is_match"] and m["bank_entry_id"] == source for m in records[file]["matches"])
            per.setdefault(edit, [0, 0])
            per[edit][0] += hit
            per[edit][1] += 1
        fps = [d.name for d in distractors if any(m["is_match"] for m in records[d.name]["matches"])]
        out["banks"][name] = {"rows": bank_rows(bank), "recall_by_kind": per, "found": sum(v[0] for v in per.values()), "false_positives": fps,
                              "query_side": query_side_cost(records), **{k: sum(r.get(k) or 0 for r in records.values()) for k in ("frames_sampled", "frames_decoded")}}  # fmt: skip
        b = out["banks"][name]
        print(f"held-out {name}: {b['found']}/{len(copies)}, false positives {len(fps)}, {b['rows']['rows_per_video_second']:.2f} rows per video-second ("
              + ", ".join(f"{k} {v:.2f}" for k, v in b["rows"]["rows_per_video_second_by_kind"].items()) + "); "
              + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in per.items())
              + f"; frames sampled {b['frames_sampled']}, decoded {b['frames_decoded']}"
              + f"; centre crops searched on {b['query_side']['files_searched']}/{b['query_side']['files']} files, "
              f"{b['query_side']['ms_per_searched_file']:.0f} ms each", flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True, help="media, banks and results are kept here (reused by later runs)")
    ap.add_argument("--samples", type=int, default=3, help="real sample videos of ../shared/data/vpdq to build from (0: none)")
    ap.add_argument("--synthetic", type=int, default=1, help="synthetic 12 s 640x360 reported clips to build from")
    ap.add_argument("--no-vpdq", action="store_true", help="skip the reference vPDQ")
    ap.add_argument("--skip-build", action="store_true", help="skip the build comparison")
    ap.add_argument("--compact", action="store_true", help="score compacted banks against the full bank (bench_robustness --quick media)")
    ap.add_argument("--rules", default="",
                    help="compaction rules tried with --compact: frame_bits:extra_per_second:grid_per_second,... (none: every run)")
    ap.add_argument("--plans", default="full,compact", help="row plans built (vscan bank build --rows), comma-separated")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="also build with the vscan package at this folder (a folder named vscan's parent, e.g. a worktree of an older commit), same run")
    ap.add_argument("--heldout", action="store_true",
                    help="recall per edit of the --plans banks (and --baseline's) on sources the compact rule was not tuned on")
    ap.add_argument("--adaptive", action="store_true", help="with --heldout: each bank scanned adaptively (the default scan) too")
    ap.add_argument("--cluster", type=int, default=0, metavar="N",
                    help="also build N synthetic clips with --ray-address on a loopback cluster of 1, then 2 raylets (one CPU each)")
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default: <workdir>/bench-bank-build.json)")
    args = ap.parse_args(argv)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    if not args.skip_build:
        result["build"] = build_part(work, args.samples, args.synthetic, args.no_vpdq, tuple(args.plans.split(",")), args.baseline)
        _print_build(result["build"])
    if args.cluster:
        result["cluster"] = cluster_part(work, args.cluster, args.plans.split(",")[-1])
    if args.heldout:
        result["heldout"] = heldout_part(work, tuple(args.plans.split(",")), args.baseline, args.adaptive)
    if args.compact:
        from vscan.bank.compact_rows import CompactRule

        rate = lambda v: None if v in ("", "none") else float(v)  # noqa: E731
        rules = [CompactRule(int(b), rate(x), rate(g)) for b, x, g in (r.split(":") for r in args.rules.split(",") if r)]
        result["compact"] = compact_part(work, rules, tuple(args.plans.split(",")))
        _print_compact(result["compact"])
    out = args.out or work / "bench-bank-build.json"
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"JSON: {out}")
    return result


def _print_build(b: dict) -> None:
    r = b["vpdq_every_frame"]
    print(f"files: {len(b['files'])}, {b['video_seconds']:.1f} video-seconds; load average {b['load_average'][0]:.1f} -> {b['load_average_after'][0]:.1f}")
    if r:
        print(f"vPDQ every frame, {r['threads']} threads: {r['wall_seconds']:.1f} s wall, {r['cpu_seconds']:.1f} CPU-s "
              f"({b['vpdq_cpu_seconds_per_video_second']:.2f} per video-second), peak RSS {r['peak_rss_mib']:.0f} MiB")
    for name in [k for k in b if isinstance(b[k], dict) and "vscan_build" in b[k]]:
        x = b[name]
        v, rows = x["vscan_build"], x["rows"]
        print(f"vscan bank build ({name}): {v['wall_seconds']:.1f} s wall, {v['cpu_seconds']:.1f} CPU-s "
              f"({x['vscan_cpu_seconds_per_video_second']:.2f} per video-second), peak RSS {v['peak_rss_mib']:.0f} MiB (process tree)"
              + (f"; / vPDQ: wall {x['build_over_vpdq_wall']:.2f}x, CPU {x['build_over_vpdq_cpu']:.2f}x" if r else ""))
        for c in x["capacity"]:
            print(f"  {c['reported_hours']:>7,} reported hours: {c['rows'] / 1e6:,.0f}M rows, index {c['index_bytes'] / 1e9:,.0f} GB, "
                  f"bank {c['bank_bytes'] / 1e9:,.0f} GB, build {c['build_cpu_hours']:,.0f} CPU-hours")
        print(f"  rows: {rows['rows_total']} ({rows['rows_per_video_second']:.1f} per video-second): "
              + ", ".join(f"{k} {v:.1f}" for k, v in rows["rows_per_video_second_by_kind"].items()))


def _print_compact(c: dict) -> None:
    names = list(c["banks"])
    kinds = list(next(iter(c["banks"].values()))["recall_by_kind"])
    print(f"{'kind':<22}" + "".join(f"{n:>24}" for n in names))
    for k in kinds:
        print(f"{k:<22}" + "".join(f"{c['banks'][n]['recall_by_kind'][k]:>24.2f}" for n in names))
    print(f"{'overall':<22}" + "".join(f"{c['banks'][n]['recall_overall']:>24.3f}" for n in names))
    print(f"{'false positives':<22}" + "".join(f"{len(c['banks'][n]['false_positives']):>24}" for n in names))
    print(f"{'rows / video-second':<22}" + "".join(f"{c['banks'][n]['rows']['rows_per_video_second']:>24.1f}" for n in names))
    for n in names:
        q = c["banks"][n]["query_side"]
        print(f"  {n}: " + ", ".join(f"{k} {v:.2f}" for k, v in c["banks"][n]["rows"]["rows_per_video_second_by_kind"].items())
              + f"; centre crops searched on {q['files_searched']}/{q['files']} files, {q['ms_per_searched_file']:.0f} ms each")


if __name__ == "__main__":
    main()

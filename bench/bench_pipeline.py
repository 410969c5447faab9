"""End-to-end scan throughput, per-stage rates, CPU use and peak memory,
against the reference vPDQ (PyPI ``vpdq``) at 1 s/hash in the same run.

    python -m vscan.bench.bench_pipeline [--clips 12 --seconds 20 --size 640x360]
                                   [--small-files 0] [--json out.json]

Corpus: generated clips (vscan.bench.synth; GOP 250 like common uploads), a
quarter of them re-encodes of banked sources so matching work is real.
Each configuration scans the same corpus through the real Ray pipeline;
per-stage seconds come from the records' ``timings``. ``--small-files N``
adds a second run over N tiny files to show memory stays bounded
(backpressure): peak RSS of the whole process tree is sampled throughout.
Every run prints its per-stage rates (vscan.bench.capacity); ``--capacity``
runs the capacity check on real loopback Ray clusters instead
(vscan.bench.capacity_check).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vscan.bench.capacity import StageRates, format_rates
from vscan.bench.pipeline_runs import Sampler, make_bank, make_corpus, make_small_files, run_scan
from vscan.decode import Adaptive, FixedRate
from vscan.config import Matching, Runtime, Sampling, ScanConfig


def run_vpdq(inputs: list[Path], threads: int) -> dict | None:
    try:
        import vpdq
    except ImportError:
        return None
    t0 = time.perf_counter()
    with Sampler() as sampler:
        # The reference hashes one file per call; run files in parallel on all cores.
        with ThreadPoolExecutor(max_workers=threads) as pool:
            features = list(pool.map(lambda p: vpdq.computeHash(str(p), seconds_per_hash=1, thread_count=1), inputs))
    wall = time.perf_counter() - t0
    from vscan.decode import PyAVDecoder

    video_seconds = sum(PyAVDecoder().probe(p).duration_seconds for p in inputs)
    return {
        "name": "vpdq 1 s/hash",
        "files": len(inputs),
        "wall_seconds": wall,
        "video_seconds": video_seconds,
        "video_seconds_per_second": video_seconds / wall,
        "files_per_second": len(inputs) / wall,
        "frames_sampled": sum(len(f) for f in features),
        "cpu_utilisation": sampler.cpu_utilisation,
        "peak_rss_mib": sampler.peak_rss / 2**20,
    }


def _sweep_rounds(args: argparse.Namespace, corpus: list[Path], bank: Path, root: Path) -> None:
    from vscan.bench.sweep_rounds import print_rounds, sweep_rounds

    threads = os.cpu_count() or 1
    result = sweep_rounds(corpus, bank, root, rounds=args.sweep_rounds, device=args.device, ray=args.ray_address == "local",
                          no_ray_too=args.no_ray_too, baseline=args.baseline_worktree.resolve() if args.baseline_worktree else None,
                          vpdq_run=lambda files: run_vpdq(files, threads))  # fmt: skip
    print_rounds(result)
    if args.json:
        meta = {"args": {k: str(v) for k, v in vars(args).items()}, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
                "load_average": os.getloadavg()}  # fmt: skip
        Path(args.json).write_text(json.dumps({"meta": meta, **result}, indent=2, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--small-files", type=int, default=0, help="also scan N tiny files (memory stays bounded)")
    parser.add_argument("--sweep", action="store_true", help="nothing in the corpus is in the bank (a nightly sweep)")
    parser.add_argument("--repeat", type=int, default=1, help="scan K copies of the corpus (a longer steady state)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--ray-address", default=None,
                        help="scan on this running Ray cluster ('auto' after 'ray start --head'), or 'local': start one "
                             "local Ray here that every run shares, as a long-lived service would (no Ray start-up per run)")
    parser.add_argument("--one-file-per-task", action="store_true",
                        help="also run adaptive with small-file grouping off (small_file_group=1), to measure what it saves")
    parser.add_argument("--capacity", action="store_true",
                        help="the capacity check instead: per-stage rates on a real 1-raylet and 2-raylet loopback Ray "
                             "cluster (twice, alternating), the 2-node prediction from the 1-node rates against the "
                             "measured run, and the driver + sink records/s ceiling on --tiny-files N tiny files "
                             "(vscan.bench.capacity_check; --clips/--seconds/--size/--repeat set the sweep corpus)")
    parser.add_argument("--tiny-files", type=int, default=500, help="with --capacity: 1-frame 64x48 clips for the driver + sink ceiling")
    parser.add_argument("--rounds", type=int, default=2, help="with --capacity: 1-node/2-node rounds (alternating)")
    parser.add_argument("--no-region-probe-too", action="store_true",
                        help="also run adaptive sampling with sampling.region_probe off (the probe's cost, same run)")
    parser.add_argument("--no-offcentre-too", action="store_true",
                        help="also run both samplings with matching.offcentre off (the off-centre search's cost, same run)")
    parser.add_argument("--sweep-rounds", type=int, default=0,
                        help="the sweep figure as a steady measurement: N rounds of vPDQ and vscan scans (each in a fresh "
                             "subprocess, the order alternating), medians of the ratios (vscan.bench.sweep_rounds)")
    parser.add_argument("--baseline-worktree", type=Path, default=None,
                        help="with --sweep-rounds: also scan with the vscan code of this checkout in each round (git worktree add DIR REV)")
    parser.add_argument("--no-ray-too", action="store_true", help="with --sweep-rounds and --ray-address local: also scan without Ray")
    parser.add_argument("--bank", type=Path, default=None,
                        help="scan against this bank, not one of the corpus's banked clips: a platform's hash list of millions "
                             "(vscan.bench.bench_scan_bank writes 1M- and 10M-row ones), where every search of a file that "
                             "matches nothing looks at every row")
    parser.add_argument("--json", default=None)
    parser.add_argument("--workdir", default=None, help="keep the corpus here (default: a temp dir)")
    args = parser.parse_args()
    if args.capacity:
        from vscan.bench import capacity_check

        return capacity_check.main(args)
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir or tmp)
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        sources, corpus = make_corpus(root / "corpus", args.clips, args.seconds, (w, h), sweep=args.sweep)
        for k in range(1, args.repeat):
            copies = root / "corpus" / f"copy{k}"
            copies.mkdir(exist_ok=True)
            for p in [q for q in corpus if q.parent == root / "corpus"]:
                target = copies / p.name
                if not target.exists():
                    shutil.copyfile(p, target)
                corpus.append(target)
        print(f"corpus: {len(corpus)} files ({len(sources)} banked sources), {time.perf_counter() - t0:.0f} s to generate")
        bank = args.bank.resolve() if args.bank else make_bank(root / "bank.db", sources, args.device)
        if args.sweep_rounds:
            return _sweep_rounds(args, corpus, bank, root)
        rows = []
        ray_address = args.ray_address
        if ray_address == "local":
            from vscan.runtime.ray_start import start_ray

            t_ray = time.perf_counter()
            start_ray(None)  # scans find Ray initialised and leave it running
            ray_address = None
            print(f"local Ray started once for all runs: {time.perf_counter() - t_ray:.1f} s")
        runs = [("vscan fixed 1 fps", FixedRate(1.0), {}), ("vscan adaptive", Adaptive(), {})]
        if args.one_file_per_task:
            runs.append(("vscan adaptive 1/task", Adaptive(), {"small_file_group": 1}))
        if args.no_region_probe_too:
            runs.append(("vscan adaptive no probe", Adaptive(), {"region_probe": False}))
        if args.no_offcentre_too:
            runs += [("vscan 1 fps no offc", FixedRate(1.0), {"offcentre": False}), ("vscan adaptive no offc", Adaptive(), {"offcentre": False})]
        for name, policy, extra in runs:
            sampling = Sampling(policy=policy, **{k: extra.pop(k) for k in ("region_probe",) if k in extra})
            matching = Matching(offcentre=extra.pop("offcentre", True))
            config = ScanConfig(sampling=sampling, matching=matching, runtime=Runtime(device=args.device, **extra))
            rows.append(run_scan(name.replace(" ", "_").replace("/", "_"), corpus, bank, config, root, ray_address))
            rows[-1]["name"] = name
        reference = run_vpdq(corpus, threads=os.cpu_count() or 1)
        if reference:
            rows.append(reference)
        small = None
        if args.small_files:
            tiny = make_small_files(root, args.small_files)
            half = run_scan("small_half", tiny[: len(tiny) // 2], bank, ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device=args.device)), root, ray_address)
            full = run_scan("small_full", tiny, bank, ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device=args.device)), root, ray_address)
            # The same files one per decode task: what small-file grouping saves.
            alone = run_scan("small_alone", tiny, bank, ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device=args.device, small_file_group=1)), root, ray_address)
            small = {"half": half, "full": full, "one_per_task": alone}
        if args.ray_address == "local":
            import ray

            ray.shutdown()

    base = reference["video_seconds_per_second"] if reference else None
    print(f"\n{'run':<20} {'files':>5} {'video s':>8} {'wall s':>7} {'video-s/s':>9} {'files/s':>7} {'vs vPDQ':>7} {'decoded':>8} {'sampled':>7} {'CPU':>5} {'peak MiB':>8}")
    for r in rows:
        ratio = f"{r['video_seconds_per_second'] / base:.1f}x" if base else "-"
        print(f"{r['name']:<20} {r['files']:>5} {r['video_seconds']:>8.0f} {r['wall_seconds']:>7.1f} {r['video_seconds_per_second']:>9.1f} "
              f"{r['files_per_second']:>7.2f} {ratio:>7} {r.get('frames_decoded', '-'):>8} {r['frames_sampled']:>7} "
              f"{r['cpu_utilisation']:>5.0%} {r['peak_rss_mib']:>8.0f}")
    for r in rows:
        if r.get("steady_video_seconds_per_second"):
            ratio = f" ({r['steady_video_seconds_per_second'] / base:.1f}x vPDQ)" if base else ""
            print(f"  {r['name']}: first record after {r['first_record_seconds']:.1f} s (start-up); "
                  f"steady state {r['steady_video_seconds_per_second']:.1f} video-s/s{ratio}")
    for r in rows:
        q = r.get("pipeline")
        if q and "decode_slots" in q:  # (a scan run without Ray, vscan.runtime.embedded, has no queues)
            print(f"  {r['name']}: queues: all {q['decode_slots']} decode slots busy {q['decode_all_slots_busy_fraction']:.0%} "
                  f"of the time (mean {q['mean_decode_running']:.2f} running); model stage busy {q.get('model_busy_fraction', 0):.0%}, "
                  f"no model call in flight {q['model_no_call_fraction']:.0%}, at its in-flight limit {q['model_calls_at_limit_fraction']:.0%}; "
                  f"files waiting for it: mean {q['mean_ready_files']:.2f} ({q['mean_ready_frames']:.0f} frames), max {q['max_ready_frames']} frames; "
                  f"{q['model_calls']} model calls, {q['mean_files_per_call']:.1f} files / {q['mean_frames_per_call']:.0f} frames each; "
                  f"{q['decode_tasks']} decode tasks for {q['decode_files']} files; "
                  f"sink {r['files'] / max(q['sink_seconds'], 1e-9):.0f} records/s ({q['sink_seconds']:.2f} s in writes)")
        if r.get("gpu"):
            g = r["gpu"]
            print(f"  {r['name']}: GPU utilisation mean {g['mean_utilisation']:.0f}%, max {g['max_utilisation']:.0f}%, peak memory {g['peak_memory_mib']:.0f} MiB")
    for r in rows:
        if "stage_seconds" in r:
            stages = ", ".join(f"{s} {t:.1f} s ({r['stage_frames_per_second'].get(s, 0):.0f} fr/s)" for s, t in r["stage_seconds"].items())
            print(f"  {r['name']}: per-worker stage time: {stages}; matched {len(r['matched_files'])} files")
    for r in rows:  # issue #30: the per-file work around the hash model, each in proportion
        st, n = r.get("stage_seconds") or {}, max(r.get("files", 0), 1)
        if "match" in st:
            print(f"  {r['name']}: per file: borders/overlays/region search {st.get('regions', 0) / n * 1000:.1f} ms (decode side), "
                  f"hash {st.get('hash', 0) / n * 1000:.1f} ms, match {st['match'] / n * 1000:.1f} ms, of it bank narrowing "
                  f"{st.get('match_narrow', 0) / n * 1000:.1f} ms and off-centre search {st.get('match_offcentre', 0) / n * 1000:.1f} ms "
                  f"(run only where the plain match decided nothing)")  # fmt: skip
    for r in rows:
        if "rates" in r:
            print(format_rates(r["name"], StageRates(**r["rates"])))
    if reference is None:
        print("(reference vPDQ not installed: pip install vpdq==0.2.5 after apt-get install cmake pkg-config libav*-dev)")
    if small:
        print(f"\nsmall files: {small['half']['files']} files peak {small['half']['peak_rss_mib']:.0f} MiB, "
              f"{small['full']['files']} files peak {small['full']['peak_rss_mib']:.0f} MiB "
              f"({small['full']['files_per_second']:.1f} files/s)")
        g, a = small["full"]["steady_files_per_second"], small["one_per_task"]["steady_files_per_second"]
        if g and a:
            print(f"small files, steady state: {g:.1f} files/s in groups of {Runtime().small_file_group} per decode task, "
                  f"{a:.1f} files/s one per task ({g / a:.2f}x)")
    if args.json:
        import platform

        meta = {"args": vars(args), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(),
                "cpus": os.cpu_count(), "platform": platform.platform()}  # fmt: skip
        Path(args.json).write_text(json.dumps({"meta": meta, "runs": rows, "small_files": small}, indent=2, default=str))


if __name__ == "__main__":
    main()

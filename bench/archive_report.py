"""The report of ``vscan bench --archive`` (vscan.bench.bench_archive): the runs against the reference vPDQ, and
where each run's seconds went (start-up, decode, the model; per file and per codec; the CPU by process)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["print_rows", "cpu_account", "summarise"]


def _ratio(rate: float | None, base: float | None) -> str:
    return f"{rate / base:.1f}x" if base and rate else "-"


def print_rows(rows: list[dict], reference: dict | None, video_seconds: float, files: int) -> None:
    base = video_seconds / reference["wall_seconds"] if reference else None
    print(f"\n{'run':<16} {'files':>5} {'video s':>8} {'wall s':>7} {'video-s/s':>9} {'vs vPDQ':>7} {'steady':>7} {'CPU s':>6} {'recall':>6} {'FP':>3} {'decoded':>8} {'sampled':>7}")
    if reference:
        print(f"{reference['name']:<16} {files:>5} {video_seconds:>8.0f} {reference['wall_seconds']:>7.1f} {base:>9.1f} {'1.0x':>7} {'':>7} "
              f"{reference['tree_cpu_seconds']:>6.1f} {reference['recall']:>6.2f} {reference['false_positives']:>3} {'all':>8} {reference['frames_sampled']:>7}")  # fmt: skip
    for r in rows:
        s = r["summary"]
        print(f"{r['name']:<16} {r['files']:>5} {r['video_seconds']:>8.0f} {r['wall_seconds']:>7.1f} {r['video_seconds_per_second']:>9.1f} "
              f"{_ratio(r['video_seconds_per_second'], base):>7} {_ratio(r.get('steady_video_seconds_per_second'), base):>7} "
              f"{r.get('tree_cpu_seconds', float('nan')):>6.1f} {s['recall']:>6.2f} {s['false_positives']:>3} {r['frames_decoded']:>8} {r['frames_sampled']:>7}")  # fmt: skip
    if any(r.get("command") for r in rows):
        print("(command: `vscan scan FILES --bank BANK` from its interpreter's start to its exit, its default sampling; "
              "CPU s of it and every process under it)")
    for r in rows:
        if not r.get("command"):
            _print_profile(r)


def _print_profile(r: dict) -> None:
    """Where the run's seconds went: start-up, decode slots, the model, per file and per codec."""
    p, files = r.get("pipeline") or {}, max(r["files"], 1)
    first = r["first_record_seconds"] or 0.0
    print(f"\n{r['name']}: start-up (Ray, model actor; to the first record) {first:.1f} s, then {r['wall_seconds'] - first:.1f} s for the rest; "
          f"CPU {r.get('tree_cpu_seconds', float('nan')):.1f} s (process tree)")  # fmt: skip
    if p.get("embedded"):
        print(f"  run without Ray (vscan.runtime.embedded: runtime.embedded_max_files); model: {p.get('calls', 0)} calls, busy {p.get('busy_seconds', 0):.1f} s")
        _print_cpu(r)
    elif p:
        print(f"  decode: {p.get('decode_tasks', 0)} tasks ({p.get('decode_tasks', 0) / files:.2f} per file), {p.get('decode_slot_seconds', 0):.1f} slot-s "
              f"({p.get('decode_steady_slot_seconds', 0):.1f} after the first file); model: {p.get('model_calls', 0)} calls "
              f"({p.get('mean_files_per_call', 0):.1f} files, {p.get('mean_frames_per_call', 0):.0f} frames each), busy {p.get('model_busy_seconds', 0):.1f} s")  # fmt: skip
        if "first_passes" in p:
            print(f"  first passes: {p['first_passes']}, decided {p['first_passes_decided']}; confirmations decoded ahead "
                  f"{p['confirmations_decoded_ahead']}, matched in the first call {p['confirmations_matched_ahead']}")  # fmt: skip
    print(f"  second passes: {r['summary']['second_passes']}")
    for codec, c in sorted(r["summary"]["per_codec"].items()):
        stages = ", ".join(f"{k} {v * 1000:.0f}" for k, v in sorted(c["stage_seconds_per_file"].items()) if v >= 0.0005)
        print(f"  {codec:<8} {c['files']:>3} files: {c['frames_decoded_per_video_second']:6.2f} frames decoded / video-s, "
              f"{c['frames_sampled'] / c['files']:.1f} sampled / file; ms per file: {stages}")  # fmt: skip
    u = r["summary"].get("unmatched")
    if u and u["files"]:
        print(f"  matched nothing {u['files']:>3} files: ms per file: " + ", ".join(f"{k} {v:.1f}" for k, v in u["ms_per_file"].items()))


def cpu_account(r: dict) -> dict[str, float] | None:
    """An embedded run's CPU-seconds by where they went (issue #30): the decode processes, the model thread's build and
    calls, the rest of the scanning process (its driver loop: unpickling decoded files, records, the sink), and what
    the tree's sampled total holds beyond those (processes it lost between samples: 0.25 s each at most)."""
    p, own = r.get("pipeline") or {}, r.get("process_cpu_seconds")
    decode, build, calls = (p.get(k) for k in ("decode_processes_cpu_seconds", "model_build_cpu_seconds", "model_calls_cpu_seconds"))
    if None in (own, decode, build, calls):
        return None
    return {"decode_processes": decode, "model_build": build, "model_calls": calls, "driver": own - build - calls,
            "tree": r.get("tree_cpu_seconds", float("nan"))}  # fmt: skip


def _print_cpu(r: dict) -> None:
    a = cpu_account(r)
    if a is not None:
        print(f"  CPU s: decode processes {a['decode_processes']:.2f} ({(r.get('pipeline') or {}).get('decode_processes')} of them), "
              f"model build {a['model_build']:.2f}, model calls {a['model_calls']:.2f}, driver (loop, unpickling, records) "
              f"{a['driver']:.2f}; process tree {a['tree']:.2f}")  # fmt: skip


def summarise(row: dict, source_of: dict[str, str | None]) -> dict:
    """Recall, false positives, and per codec: frames decoded per video-second and stage-seconds per file."""
    recs = row["records"]
    known = [r for r in recs if source_of.get(Path(r["path"]).name)]
    others = [r for r in recs if not source_of.get(Path(r["path"]).name)]
    per_codec: dict[str, dict] = {}
    for r in recs:
        c = per_codec.setdefault(r["codec"] or "?", {"files": 0, "video_seconds": 0.0, "frames_decoded": 0, "frames_sampled": 0, "stages": {}})
        c["files"] += 1
        c["video_seconds"] += r["duration_seconds"] or 0.0
        c["frames_decoded"] += r["frames_decoded"] or 0
        c["frames_sampled"] += r["frames_sampled"] or 0
        for stage, seconds in (r["timings"] or {}).items():
            c["stages"][stage] = c["stages"].get(stage, 0.0) + seconds
    for c in per_codec.values():
        c["frames_decoded_per_video_second"] = c["frames_decoded"] / max(c["video_seconds"], 1e-9)
        c["stage_seconds_per_file"] = {s: t / c["files"] for s, t in c["stages"].items()}
    passes: dict[str, int] = {}
    for r in recs:
        kind = (r["second_pass"] or "none").split("(")[0]
        passes[kind] = passes.get(kind, 0) + 1
    return {
        "recall": sum(r["matched"] for r in known) / max(len(known), 1),
        "false_positives": sum(r["matched"] for r in others),
        "per_codec": per_codec,
        "unmatched": _unmatched(recs),
        "second_passes": passes,
    }


#: The searches a file that matched nothing goes through (vscan.runtime.file_match), and what they hash and match inside.
_SEARCHES = ("match", "match_narrow", "match_centre_crops", "match_rotation", "match_regions", "match_offcentre", "regions")


def _unmatched(recs: list[dict]) -> dict:
    """Files that matched nothing (each went through every search): how many, and ms per file of the match and each search
    (issue #30: ~25 ms of CPU a file; the records' timings are wall time in the model's slot)."""
    rows = [r for r in recs if not r["matched"] and r["status"] == "ok"]
    return {"files": len(rows), "ms_per_file": {k: 1000 * sum((r["timings"] or {}).get(k, 0.0) for r in rows) / max(len(rows), 1)
                                                for k in _SEARCHES}}  # fmt: skip

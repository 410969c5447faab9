"""Still copies (mirrored, zoomed PNG screenshots; JPEG frame grabs) and unrelated stills, this code against another's.

    python -m vscan.bench.bench_quality_stills --workdir W --seed-offsets 3000,6000 --extra-shots 4 --unrelated 1000 \
        --baseline-worktree /tmp/base-b0c82dd

The stills ``bench_robustness`` makes of its re-framed sources (``wide{301 + offset + i}``, 12 s, 640x360:
``vscan.bench.reframe``'s ``screenshot_png``, a mirrored 90% crop 0-10% off centre, and ``framegrab_jpg``),
the same files for the same ``--seed-offsets``, plus ``--extra-shots`` more screenshots of each source drawn
with other seeds (the bench's one a source is too few to tell two still-window plans apart). False
positives: ``--unrelated`` stills of every ``vscan.bench.distractors`` generator (``bench_distractors``'
stills: half JPEG as is, half PNG mirrored and cropped) against the same bank plus ``--bank-entries``
synthetic entries (``bench_distractors``' in-memory entries). One bank, built once; this code and the
baseline (a package copy of ``--baseline-worktree``, ``bench_archive.package_checkout``) each scan every
file in a fresh process (the shipped defaults: a still is one frame, matched through its windows).
A copy is recalled when its record holds a perceptual ``is_match`` with its source; an unrelated still
with any perceptual match is a false positive. Table on stdout, JSON in the work directory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

__all__ = ["main"]

_SOURCES = 8


def _copies(job: tuple) -> list[dict]:
    from vscan.bench import synth
    from vscan.bench.bench_robustness import REFRAME_SIZE
    from vscan.bench.reframe import STILL_KINDS, extension, reframe_clip

    src_dir, out, seed, extra = job
    src = src_dir / f"wide{seed}.mp4"
    if not src.exists():
        synth.make_clip(src, seed=seed, seconds=12.0, size=REFRAME_SIZE, scenes=2, crf=20)
    plan = [(kind, seed, f"wide{seed}__{kind}") for kind in STILL_KINDS]  # bench_robustness's own files
    plan += [("screenshot_png", seed + 100_000 * k, f"wide{seed}__screenshot_png-x{k}") for k in range(1, extra + 1)]
    rows = []
    for kind, copy_seed, stem in plan:
        dst = out / f"{stem}{extension(kind)}"
        if not dst.exists():
            reframe_clip(src, dst, kind, seed=copy_seed)
        rows.append({"file": dst.name, "source": src.stem, "kind": kind if "-x" not in stem else f"{kind} (extra)"})
    return rows


def generate(work: Path, offsets: list[int], extra: int, unrelated: int) -> tuple[list[Path], list[dict], list[str]]:
    from vscan.bench.bench_distractors import _still
    from vscan.bench.distractors import GENERATORS

    src_dir, copies_dir, other = work / "reported", work / "stills", work / "unrelated"
    for d in (src_dir, copies_dir, other):
        d.mkdir(parents=True, exist_ok=True)
    jobs = [(src_dir, copies_dir, 301 + off + i, extra) for off in offsets for i in range(_SOURCES)]
    stills = [(other, GENERATORS[j % len(GENERATORS)], 90_000 + j) for j in range(unrelated)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        copies = [r for part in pool.map(_copies, jobs) for r in part]
        others = [p.name for p in pool.map(_still, stills, chunksize=16)]
    return [src_dir / f"wide{j[2]}.mp4" for j in jobs], copies, others


def build_bank(work: Path, sources: list[Path], entries: int) -> Path:
    from vscan.bench.bench_distractors import _synthetic_entries
    from vscan.bank.hashers import media_hasher
    from vscan.bank.importers import import_media
    from vscan.bank.writer import BankWriter
    from vscan.decode import EveryFrame

    path = work / f"stills-{len(sources)}-{entries}.bank"
    if not path.exists():
        hash_file = media_hasher(EveryFrame(), device="cpu")
        with BankWriter(path) as writer:
            for src in sources:
                import_media(writer, src, src.stem, "reported", hash_file)
            _synthetic_entries(writer, entries)
    return path


def scan_only(spec_path: Path) -> None:
    """One scan of the spec's folders by whatever ``vscan`` this process imports; records to ``<out>``."""
    from vscan.bench.bench_robustness import run_scan

    spec = json.loads(spec_path.read_text())
    records = {}
    for folder in spec["folders"]:
        got, _ = run_scan(Path(spec["out_dir"]), Path(spec["bank"]), Path(folder), name=f"{spec['name']}-{Path(folder).name}")
        records.update(got)
    Path(spec["out"]).write_text(json.dumps(records))


def _scan(name: str, work: Path, bank: Path, folders: list[Path], pythonpath: Path | None) -> dict[str, dict]:
    spec, out = work / f"{name}-spec.json", work / f"{name}-records.json"
    spec.write_text(json.dumps({"name": name, "out_dir": str(work), "bank": str(bank), "folders": [str(f) for f in folders], "out": str(out)}))
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    subprocess.run([sys.executable, "-m", "vscan.bench.bench_quality_stills", "--scan-only", str(spec)], env=env, check=True, cwd=str(work))
    return json.loads(out.read_text())


def _hit(record: dict, source: str) -> dict | None:
    hits = [m for m in record.get("matches", []) if m["kind"] == "perceptual" and m["is_match"] and m["bank_entry_id"] == source]
    return hits[0] if hits else None


def _distance(m: dict | None) -> int | None:
    return None if m is None else m.get("distance_min")


def score(copies: list[dict], others: list[str], records: dict[str, dict]) -> dict:
    per_kind: dict[str, dict] = {}
    details = {}
    for c in copies:
        hit = _hit(records[c["file"]], c["source"])
        row = per_kind.setdefault(c["kind"], {"n": 0, "found": 0})
        row["n"] += 1
        row["found"] += hit is not None
        details[c["file"]] = _distance(hit)
    fps = sorted(f for f in others if any(m["kind"] == "perceptual" and m["is_match"] for m in records[f].get("matches", [])))
    near = sorted(d for f in others for m in records[f].get("matches", []) if m["kind"] == "perceptual" and not m["is_match"]
                  and (d := m.get("distance_min")) is not None)  # fmt: skip
    return {"per_kind": per_kind, "distances": details, "false_positives": fps, "unrelated": len(others), "closest_nonmatches": near[:5]}


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=False, default=Path("vscan-quality-stills"))
    ap.add_argument("--seed-offsets", default="3000,6000", help="bench_robustness --seed-offset values, comma separated")
    ap.add_argument("--extra-shots", type=int, default=4, help="more screenshots of each source, other seeds")
    ap.add_argument("--unrelated", type=int, default=1000, help="unrelated stills (false positives)")
    ap.add_argument("--bank-entries", type=int, default=500, help="synthetic bank entries beside the sources")
    ap.add_argument("--baseline-worktree", type=Path, default=None, help="another checkout to scan the same files with")
    ap.add_argument("--prepare-only", action="store_true", help="make the media and the bank, scan nothing")
    ap.add_argument("--scan-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.scan_only:
        scan_only(args.scan_only)
        return None
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    offsets = [int(x) for x in args.seed_offsets.split(",") if x.strip()]
    sources, copies, others = generate(work, offsets, args.extra_shots, args.unrelated)
    bank = build_bank(work, sources, args.bank_entries)
    if args.prepare_only:
        return None
    folders = [work / "stills", work / "unrelated"]
    runs = {}
    if args.baseline_worktree is not None:
        from vscan.bench.bench_archive import package_checkout

        here = Path(__file__).parent
        pkg = package_checkout(args.baseline_worktree.resolve(), work / "baseline-pkg",
                               bench_files=(here / "bench_quality_stills.py", here / "bench_distractors.py"))  # fmt: skip
        runs["baseline"] = score(copies, others, _scan("baseline", work, bank, folders, pkg))
    runs["this"] = score(copies, others, _scan("this", work, bank, folders, None))
    result = {"seed_offsets": offsets, "extra_shots": args.extra_shots, "bank": bank.name, "runs": runs}
    out = work / f"bench-quality-stills-{'-'.join(map(str, offsets))}.json"
    out.write_text(json.dumps(result, indent=1))
    names = list(runs)
    print(f"{'kind':<28} {'n':>4} " + " ".join(f"{n:>9}" for n in names))
    for kind in runs["this"]["per_kind"]:
        print(f"{kind:<28} {runs['this']['per_kind'][kind]['n']:>4} " + " ".join(f"{runs[n]['per_kind'][kind]['found']:>9}" for n in names))
    print("false positives: " + ", ".join(f"{n} {len(runs[n]['false_positives'])} / {runs[n]['unrelated']} {runs[n]['false_positives'][:5]}"
                                          f" (closest non-matches {runs[n]['closest_nonmatches']})" for n in names))  # fmt: skip
    if len(names) == 2:
        a, b = (runs[n]["distances"] for n in names)
        changed = {f: (a[f], b[f]) for f in a if a[f] != b[f]}
        print(f"distance changed ({names[0]} -> {names[1]}): {json.dumps(changed)}")
    print(f"JSON: {out}")
    return result


if __name__ == "__main__":
    main()

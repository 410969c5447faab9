"""Short files (issue #27): the split the short-file rule (``vscan.bank.short.is_short_file``) was tuned on.

    python -m vscan.bench.bench_short --workdir W        # ~230 files; with W kept, reruns scan only

``vscan.bench.bench_generalise``'s copies (every AugLy family, a chain of
three, the randomised re-framing kinds) of short sources: synthetic clips of
3, 4, 4.5 and 5.5 s (seeds 6100-6103, other than the held-out split's
5100-5103 and the tune split's 4100-4103) and the real samples
``chair-orig-22-sd-bar`` and ``pattern-hd-no-bar`` cut to 4 s (the held-out
split's real sources are ``doorknob`` and ``pattern-sd``). Distractors: 4 s
synthetic clips, the other real samples and AugLy edits of distractors.
Scored as ``bench_generalise`` scores (default adaptive sampling, a media bank
and a reference-vPDQ list bank); results in ``W/bench-short.json``. Report on
``bench_generalise``'s held-out split, not on this one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from vscan.bench import bench_generalise as bg
from vscan.bench import synth

SPLIT = "tune-short"
PLAN = {"synth_seed": 6100, "copy_seed": 61_000, "real": ("chair-orig-22-sd-bar", "pattern-hd-no-bar")}
SYNTH_SECONDS = (3.0, 4.0, 4.5, 5.5)
REAL_SECONDS = DISTRACTOR_SECONDS = 4.0


def _sources(work: Path, distractors: int) -> None:
    """Short sources and distractors made before ``bench_generalise.generate``, which keeps files that exist."""
    (work / "reported").mkdir(parents=True, exist_ok=True)
    (work / "archive").mkdir(parents=True, exist_ok=True)
    for i, seconds in enumerate(SYNTH_SECONDS):
        p = work / "reported" / f"syn{PLAN['synth_seed'] + i}.mp4"
        if not p.exists():
            synth.make_clip(p, seed=PLAN["synth_seed"] + i, seconds=seconds, size=bg.SYNTH_SIZE, scenes=2, crf=20)
    for name in PLAN["real"]:  # as bench_generalise.make_real, cut to REAL_SECONDS
        dst = work / "reported" / f"{name}.mp4"
        if not dst.exists():
            src, vf = bg._shared_vpdq() / f"{name}.mp4", f"scale='min({bg.REAL_MAX_WIDTH},iw)':-2"
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-t", str(REAL_SECONDS), "-vf", vf, "-an", "-c:v", "libx264",
                            "-crf", "18", "-pix_fmt", "yuv420p", str(dst)], check=True)  # fmt: skip
    other = work / "other.mp4"  # the second video of blends and stacks: 2 s longer than the distractors
    if not other.exists():
        synth.make_clip(other, seed=77_000 + PLAN["synth_seed"], seconds=DISTRACTOR_SECONDS + 2, size=bg.SYNTH_SIZE, scenes=2, crf=20)
    for i in range(distractors):
        seed = 90_000 + PLAN["synth_seed"] + i
        p = work / "archive" / f"syn{seed}.mp4"
        if not p.exists():
            synth.make_clip(p, seed=seed, seconds=DISTRACTOR_SECONDS, size=bg.SYNTH_SIZE, scenes=2, crf=23)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--distractors", type=int, default=8, help="unrelated 4 s synthetic clips (plus real samples of other origins)")
    ap.add_argument("--workers", type=int, default=2, help="processes generating copies")
    ap.add_argument("--workdir", type=Path, default=None, help="keep media and results here (default: a temp dir, removed)")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vscan-short-"))
    bg.SPLITS.setdefault(SPLIT, PLAN)  # generate() looks its split up there
    try:
        _sources(work, args.distractors)
        n_real = len(PLAN["real"])
        sources, copies, distractors = bg.generate(work, SPLIT, len(SYNTH_SECONDS), n_real, 1, args.distractors, True, args.workers)
        from vscan.decode import Adaptive
        from vscan.frames.prepare import SCAN_FRAME_SIDE_PX

        media, listed = bg.build_banks(work, sources, SCAN_FRAME_SIDE_PX)
        runs = {name: bg.run_scan(work, bank, Adaptive(), f"short-{name}", SCAN_FRAME_SIDE_PX) for name, bank in (("media", media), ("list", listed))}
        result = {"split": SPLIT, "frame_size": SCAN_FRAME_SIDE_PX, "sources": [s.name for s in sources], "copies": len(copies),
                  "distractors": len(distractors), **bg.score(copies, distractors, runs, None), "left_out": {}, "seconds": {}}  # fmt: skip
        out = work / "bench-short.json"
        out.write_text(json.dumps(result, indent=1, default=str))
        bg._print(result, list(runs), out)
        return result
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""What the no-hang guard and the decoder fallbacks (issue #13) cost on normal
files: the decode stage (``decode_for_scan``) of generated H.264 clips,
same run, alternating.

    python -m vscan.bench.bench_fallbacks [--pre /tmp/pre13] [--rounds 5] [--json out.json]

Modes, each in its own Python process per round (timed inside, imports
excluded), in a rotated order every round:

- ``guarded``: this tree as it ships (a guard thread watches each decode;
  fallbacks only after a failure, so none runs here);
- ``unguarded``: this tree with ``run_guarded`` replaced by a direct call
  (no thread, no stall watch);
- ``pre``: the tree at ``--pre`` (e.g. ``git worktree add /tmp/pre13
  c610fea``, before #13's edit lists, orientation, guard and fallbacks),
  imported in place of this one.

Reports the median seconds per mode and the ratios to ``guarded``, per
sampling policy; every mode must sample the same number of frames.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
#: Package -> folder inside a tree (as pyproject maps them).
PACKAGES = {"vscan": "scanner", "vscan.bench": "bench", "vscan.kernels": "kernels", "vscan.models": "models"}
POLICIES = ("adaptive", "every-frame", "fps")


class _TreeFinder(importlib.abc.MetaPathFinder):
    """Imports vscan from another checkout, ahead of the installed one."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, name, path, target=None):
        if name in PACKAGES:
            folder = self.root / PACKAGES[name]
            return importlib.util.spec_from_file_location(name, folder / "__init__.py", submodule_search_locations=[str(folder)])
        parent = name.rpartition(".")[0]
        if parent in PACKAGES:
            return importlib.machinery.PathFinder.find_spec(name, [str(self.root / PACKAGES[parent])])
        return None


def _worker(root: Path, mode: str, policy: str, files: list[str]) -> dict:
    """Decode every file once in this process; seconds and frames sampled."""
    sys.meta_path.insert(0, _TreeFinder(root))
    from vscan.config import Sampling, ScanConfig
    from vscan.runtime import decode_task

    if not decode_task.__file__.startswith(str(root)):
        raise SystemExit(f"imported {decode_task.__file__}, not from {root}")
    if mode == "unguarded":
        from vscan.decode.guard import Watch

        decode_task.run_guarded = lambda work, stall, what="": work(Watch())
    config = ScanConfig(sampling=Sampling(policy=policy))
    decode_task.decode_for_scan(files[0], config)  # warm: codecs loaded, caches filled
    t0 = time.perf_counter()
    frames = 0
    for path in files:
        summary, _ = decode_task.decode_for_scan(path, config)
        if summary["error"]:
            raise SystemExit(f"{mode}: {path}: {summary['error']}")
        frames += summary["frames_sampled"]
    return {"seconds": time.perf_counter() - t0, "frames": frames}


def _run(root: Path, mode: str, policy: str, files: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", str(root), mode, policy, *files],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return json.loads(out.splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pre", type=Path, help="another checkout to compare (the tree before the change)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from vscan.bench.synth import make_clip

    modes = {"guarded": HERE, "unguarded": HERE, **({"pre": args.pre.resolve()} if args.pre else {})}
    with tempfile.TemporaryDirectory() as tmp:
        files = [str(make_clip(Path(tmp) / f"clip{i}.mp4", seed=i, seconds=args.seconds, size=(640, 360), gop=50))
                 for i in range(args.files)]  # fmt: skip
        results: dict = {}
        for policy in POLICIES:
            times: dict[str, list[float]] = {m: [] for m in modes}
            frames: dict[str, int] = {}
            names = list(modes)
            for r in range(args.rounds):
                for mode in names[r % len(names):] + names[: r % len(names)]:
                    res = _run(modes[mode], mode, policy, files)
                    times[mode].append(res["seconds"])
                    frames[mode] = res["frames"]
            if len(set(frames.values())) != 1:
                print(f"NOTE {policy}: frames sampled differ between modes: {frames}")
            med = {m: statistics.median(t) for m, t in times.items()}
            results[policy] = {"median_seconds": med, "runs": times, "frames": frames,
                               "ratio_to_guarded": {m: med[m] / med["guarded"] for m in med}}  # fmt: skip
            spread = "  ".join(f"{m} {med[m]:.3f}s ({min(t):.3f}..{max(t):.3f}, {frames[m] / med[m]:.0f} frames/s)"
                               for m, t in times.items())  # fmt: skip
            ratios = "  ".join(f"{m}/guarded {v:.3f}" for m, v in results[policy]["ratio_to_guarded"].items() if m != "guarded")
            print(f"{policy:12s} {spread}\n{'':12s} {ratios}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(_worker(Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:])))
    else:
        main()

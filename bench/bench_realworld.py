"""The kinds x paths matrix of issue #13: outcome and time of every decoder
path on every real-world kind of vscan.bench.realworld.

    python -m vscan.bench.bench_realworld [--runs 3] [--json out.json]

Paths are those tests/test_realworld_media.py checks against ffprobe (decord
dense, PyAV dense / 1 fps / keyframes, PyAV's plain forward decode at 1 fps),
stills through the image decoder, and ``scan``: the guarded decode stage of a
scan with the default settings (``decode_for_scan``; a fallback that ran is
named). Each cell: frames returned, or the typed error, and the best of
``--runs`` wall times in milliseconds. Correctness is the test's job; this
reports what each costs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from vscan.bench import realworld
from vscan.config import ScanConfig
from vscan.decode import EveryFrame, ImageDecoder
from vscan.errors import VscanError
from vscan.runtime.decode_task import decode_for_scan

PATHS = realworld.DECODER_PATHS


def _cell(kind: str, path: Path, name: str) -> str:
    if name == "scan":
        summary, _ = decode_for_scan(str(path), ScanConfig())
        if summary["error"]:
            return summary["error"]["type"]
        fallback = summary["media"]["fallback"]
        return f"{summary['frames_sampled']}" + (f" via {fallback['to']}" if fallback else "")
    decoder, policy = (ImageDecoder(), EveryFrame()) if kind in realworld.STILLS else PATHS[name]()
    try:
        return str(sum(len(b) for b in decoder.iter_frames(path, policy)))
    except VscanError as exc:
        return type(exc).__name__


def matrix(folder: Path, runs: int) -> dict[str, dict[str, tuple[str, float]]]:
    """{kind: {path: (outcome, best milliseconds)}}."""
    files = realworld.make_corpus(folder)
    out: dict[str, dict[str, tuple[str, float]]] = {}
    for kind, path in files.items():
        names = ["image", "scan"] if kind in realworld.STILLS else [*PATHS, "scan"]
        out[kind] = {}
        for name in names:
            best, outcome = float("inf"), ""
            for _ in range(runs):
                t0 = time.perf_counter()
                outcome = _cell(kind, path, name)
                best = min(best, (time.perf_counter() - t0) * 1000)
            out[kind][name] = (outcome, best)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if realworld.missing_tools():
        raise SystemExit(f"needs {realworld.missing_tools()} on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        table = matrix(Path(tmp), args.runs)
    columns = [*PATHS, "image", "scan"]
    print("| kind | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for kind, cells in table.items():
        row = [f"{cells[c][0]} ({cells[c][1]:.0f} ms)" if c in cells else "" for c in columns]
        print(f"| {kind} | " + " | ".join(row) + " |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()

"""How far a window's PDQ hash moves when the window is misplaced (issue #16: crops keeping 70% of each side).

    python -m vscan.bench.bench_window_shift                 # 8 sources, 12 s each
    python -m vscan.bench.bench_window_shift --sources 2 --out shift.json

A crop keeping 70% of each side at an arbitrary position cannot be undone on
the query side (the rest of the picture is gone), so it could only match a
bank row of the same window: banks would store 70% windows on a grid of
positions. How fine a grid? For each 16:9 source (``vscan.bench.synth``) this
writes its ``crop70_offcentre`` copy (``vscan.bench.reframe``: re-encoded,
position drawn from the seed), hashes the copy at 1 fps as a scan does, and
compares it with the source frame's PDQ of the same 70% window moved by a
share of the frame's side (up, down, left, right), and with the whole frame.
Reported: median and max over copies of each copy's median distance (bits),
and the rows per bank frame a grid of positions over the crop's range
(0-30% of each side) would need to keep every copy within the match radius
(31 bits), as (0.3 / (2 * largest shift within it) + 1) ** 2.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["main"]

SHIFTS = (0.0, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.05)


def _bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.unpackbits(a ^ b, axis=-1).sum(-1)


def main(argv: list[str] | None = None) -> dict:
    from vscan.bench import synth
    from vscan.bench.edits import _read_clip
    from vscan.bench.reframe import crop70_offset, reframe_clip
    from vscan.frames.resize import to_square
    from vscan.hashing.pdq import PDQHasher

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--radius", type=int, default=31, help="the match radius the grid must keep copies within")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    hasher = PDQHasher(device="cpu")
    per_shift: dict[float, list[float]] = {s: [] for s in SHIFTS}
    whole = []
    with tempfile.TemporaryDirectory(prefix="vscan-shift-") as tmp:
        for seed in range(301, 301 + args.sources):
            src = synth.make_clip(Path(tmp) / f"wide{seed}.mp4", seed=seed, seconds=args.seconds, size=(640, 360), scenes=2, crf=20)
            copy = reframe_clip(src, Path(tmp) / f"wide{seed}__crop70.mp4", "crop70_offcentre", seed=seed)
            frames, pts, _ = _read_clip(src)
            cframes, cpts, _ = _read_clip(copy)
            times = np.arange(0.0, float(cpts[-1]) + 1e-6, 1.0)  # 1 fps, as the scan samples
            q = np.stack([cframes[int(np.argmin(np.abs(cpts - t)))] for t in times])
            s = np.stack([frames[int(np.argmin(np.abs(pts - t)))] for t in times])
            query = hasher.hash_frames(to_square(q, 256)).hashes[:, 0]
            h, w = s.shape[1:3]
            (oy, ox), ch, cw = crop70_offset(seed), int(h * 0.7), int(w * 0.7)
            y0, x0 = int(h * oy), int(w * ox)
            whole.append(float(np.median(_bits(query, hasher.hash_frames(s).hashes[:, 0]))))
            for shift in SHIFTS:
                for dy, dx in ((shift, 0.0), (-shift, 0.0), (0.0, shift), (0.0, -shift)):
                    yy = min(max(0, y0 + int(round(h * dy))), h - ch)
                    xx = min(max(0, x0 + int(round(w * dx))), w - cw)
                    win = hasher.hash_frames(np.ascontiguousarray(s[:, yy : yy + ch, xx : xx + cw])).hashes[:, 0]
                    per_shift[shift].append(float(np.median(_bits(query, win))))
    table = {f"{s:.4f}": {"median": float(np.median(v)), "max": float(np.max(v))} for s, v in per_shift.items()}
    within = [s for s in SHIFTS if s > 0 and np.max(per_shift[s]) <= args.radius]
    tolerance = max(within) if within else None
    rows = None if tolerance is None else int((0.3 / (2 * tolerance) + 1) ** 2)
    result = {"sources": args.sources, "whole_frame_median": float(np.median(whole)), "by_shift": table,
              "radius": args.radius, "largest_shift_within_radius": tolerance, "grid_rows_per_bank_frame": rows}  # fmt: skip
    print(f"crop70 copies vs the source frame: whole frame {result['whole_frame_median']:.0f} bits (median)")
    for s, row in table.items():
        print(f"  same window moved by {100 * float(s):5.2f}% of the side: median {row['median']:5.0f}  max {row['max']:5.0f} bits")
    print(f"largest shift within {args.radius} bits: {tolerance}; a grid over 0-30% of each side: {rows} rows per bank frame")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

"""Damaged copies of real and synthetic media, made at random from a seed, and what a scan makes of them.

    python -m vscan.bench.fuzz_inputs OUT_DIR [--seed S] [--per-source N] [--scan] [--sources FILE ...]

``bench/bad_inputs.py`` holds one file of each kind of damage, chosen by hand; this makes many at random
(bit flips in the header or anywhere, a cut at any byte, a run of zeros or of 0xff, a piece repeated, two
pieces swapped: what bad sectors, carving, half-finished copies and hostile senders leave) from any media
given (default: synthetic clips in H.264 MP4, HEVC MKV and VP9 WebM, and pictures in six formats, all
written by ``vscan.bench.synth``; with ``../shared/data/vpdq`` present, its real sample videos too). With
``--scan`` each copy goes through a scan's decode task (``vscan.runtime.decode_task.decode_for_scan``) and
the outcome is counted by kind: a damaged file must give ``status ok`` or a typed error of its own
(``kind: input``), never an internal error or an exception out of the decode task, and the worst decode
time is printed (a damaged file must not stall a sweep).

Deterministic for a seed; the mutants' names say which damage and which source made them.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import time
from pathlib import Path

__all__ = ["DAMAGE", "mutate", "make_mutants", "default_sources", "scan_mutants"]

#: The kinds of damage ``mutate`` does.
DAMAGE = ("flip_head", "flip_any", "cut", "zero_run", "ff_run", "repeat", "swap")


def mutate(data: bytes, how: str, rng: random.Random) -> bytes:
    """``data`` damaged one way (one of ``DAMAGE``), at places ``rng`` picks."""
    out = bytearray(data)
    size = len(out)
    if how == "flip_head":  # a few bits of the first 4 KiB: the container's header, a picture's header
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(min(size, 4096))
            out[i] ^= 1 << rng.randrange(8)
    elif how == "flip_any":  # bytes overwritten anywhere
        for _ in range(rng.randint(1, 64)):
            out[rng.randrange(size)] = rng.randrange(256)
    elif how == "cut":  # ends at any byte
        del out[rng.randrange(1, size) :]
    elif how in ("zero_run", "ff_run"):  # a bad sector, an erased flash page
        at = rng.randrange(size) if how == "zero_run" else rng.randrange(min(size, 8192))
        length = min(rng.randrange(1, 2048 if how == "zero_run" else 16), size - at)
        out[at : at + length] = (b"\0" if how == "zero_run" else b"\xff") * length
    elif how == "repeat":  # a piece written again and again (a copy tool's retry)
        at = rng.randrange(size)
        end = min(size, at + rng.randrange(1, 4096))
        out[end:end] = out[at:end] * rng.randint(1, 20)
    elif how == "swap":  # two pieces in the wrong order (carving)
        a, b = sorted(rng.randrange(size) for _ in range(2))
        out = out[:a] + out[b:] + out[a:b]
    else:
        raise ValueError(f"unknown damage {how!r}; one of {', '.join(DAMAGE)}")
    return bytes(out)


def default_sources(root: Path) -> list[Path]:
    """Synthetic clips (H.264 MP4, HEVC MKV, VP9 WebM, as far as the local ffmpeg's encoders allow) and pictures
    (PNG, JPEG, WebP, GIF, BMP, TIFF) written under ``root``, and the real sample videos of ../shared when present."""
    from vscan.bench import synth

    root.mkdir(parents=True, exist_ok=True)
    out = []
    for name, codec in (("clip.mp4", "libx264"), ("clip.mkv", "libx265"), ("clip.webm", "libvpx-vp9")):
        path = root / name
        try:
            out.append(path if path.exists() else synth.make_clip(path, seed=61, seconds=3.0, size=(160, 120), codec=codec, gop=25))
        except Exception as exc:  # noqa: BLE001 - an encoder this ffmpeg lacks
            print(f"fuzz_inputs: no {name} ({codec}): {exc}", file=sys.stderr)
    for suffix in (".png", ".jpg", ".webp", ".gif", ".bmp", ".tif"):
        out.append(synth.write_image(root / f"picture{suffix}", seed=62, size=(160, 120)))
    real = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vpdq"
    out += sorted(real.rglob("*.mp4"))[:3] if real.is_dir() else []
    return out


def make_mutants(sources: list[Path], out: Path, *, seed: int = 1, per_source: int = 12) -> list[Path]:
    """``per_source`` damaged copies of each source under ``out``, named ``m<n>-<damage>-<source>``."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    made = []
    for source in sources:
        data = source.read_bytes()
        for _ in range(per_source):
            how = rng.choice(DAMAGE)
            path = out / f"m{len(made):04d}-{how}-{source.stem[:40]}{source.suffix}"
            path.write_bytes(mutate(data, how, rng))
            made.append(path)
    return made


def scan_mutants(paths: list[Path]) -> dict:
    """Each path through a scan's decode task: outcomes by kind, the files with an internal error or an exception,
    and the slowest decodes."""
    from vscan.config import ScanConfig
    from vscan.runtime.decode_task import decode_for_scan

    config = ScanConfig()
    outcomes: collections.Counter = collections.Counter()
    bad, times = [], []
    for path in paths:
        t0 = time.perf_counter()
        try:
            summary, _ = decode_for_scan(str(path), config)
        except Exception as exc:  # noqa: BLE001 - what the bench is looking for
            outcomes["exception"] += 1
            bad.append({"path": str(path), "exception": f"{type(exc).__name__}: {exc}"})
            continue
        times.append((time.perf_counter() - t0, str(path)))
        error = summary.get("error")
        kind = "ok" if error is None else f"{error.get('kind')}:{error['type']}"
        outcomes[kind] += 1
        if error is not None and error.get("kind") != "input":
            bad.append({"path": str(path), "error": error})
    times.sort(reverse=True)
    return {"files": len(paths), "outcomes": dict(outcomes.most_common()), "not_the_files_own": bad,
            "slowest": [{"seconds": round(t, 3), "path": p} for t, p in times[:5]]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-source", type=int, default=12)
    parser.add_argument("--sources", type=Path, nargs="*", help="media to damage (default: synthetic clips and pictures)")
    parser.add_argument("--scan", action="store_true", help="decode each as a scan does and count the outcomes")
    args = parser.parse_args(argv)
    sources = args.sources or default_sources(args.out / "sources")
    made = make_mutants(sources, args.out / "mutants", seed=args.seed, per_source=args.per_source)
    print(f"{len(made)} damaged copies of {len(sources)} sources under {args.out / 'mutants'}", file=sys.stderr)
    if args.scan:
        import av

        av.logging.set_level(None)  # FFmpeg's complaints about each damaged packet: the report says what counts
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        report = scan_mutants(made)
        print(json.dumps(report, indent=1))
        return 1 if report["not_the_files_own"] else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

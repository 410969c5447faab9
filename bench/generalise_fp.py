"""False positives per 1,000 unrelated files for the generalisation bench (issue #27).

    python -m vscan.bench.bench_generalise --workdir W --unrelated 1000   # the split's banks against W/unrelated

The unrelated corpus (``make_unrelated``), cached in ``<workdir>/unrelated``:

- clips and stills of every ``vscan.bench.distractors`` generator (textured pans
  like the synthetic sources', fractal zooms into one set, cellular automata,
  plasma, gradients), 16:9, 4:3 and 9:16, some mirrored or cropped;
- real media: every still of ``../shared/data/pdq`` and the sample videos of
  origins other than the split's sources, plus mirrored and cropped edits of them;
- the same content from other generators: ffmpeg's built-in test patterns
  (``smptebars`` / ``smptehdbars`` / ``pal75bars``, ``testsrc`` / ``testsrc2``,
  ``mandelbrot``, ``life``, ``cellauto``) at other sizes and rates than the
  pattern entries added to the bank (``pattern_sources``: ``smptebars``,
  ``testsrc``, ``mandelbrot``).

How a match on near-identical content of other origin is told from a false
positive (``same_content``): the matched file's sampled frames are compared
with every frame of the bank entry it matched, as 32x32 luma thumbnails; when
the median frame's closest entry frame differs by less than
``SAME_CONTENT_MAD`` grey levels (mean absolute difference), the file shows
the same picture (one test pattern drawn by two generators), and the match is
counted as ``same_content``, not as a false positive. Every other match is a
false positive.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

__all__ = ["SAME_CONTENT_MAD", "make_unrelated", "pattern_sources", "same_content", "unrelated_fp"]

#: Mean absolute luma difference (0-255) of 32x32 thumbnails below which two frames show the same picture: one
#: ffmpeg pattern at another size and rate scored 0.2-21, different patterns and generators 43-116.
SAME_CONTENT_MAD = 25.0
_SIZES = ((320, 180), (256, 192), (180, 320), (400, 224))
#: Bank-side pattern entries (name, ffmpeg lavfi source) and their other-generator look-alikes in the corpus.
_BANK_PATTERNS = (("pat-smptebars", "smptebars=size=640x360:rate=25"), ("pat-testsrc", "testsrc=size=640x360:rate=25"),
                  ("pat-mandelbrot", "mandelbrot=size=640x360:rate=25"))  # fmt: skip
_LOOKALIKES = ("smptehdbars", "pal75bars", "pal100bars", "smptebars", "testsrc", "testsrc2", "rgbtestsrc", "yuvtestsrc", "mandelbrot",
               "life", "cellauto")  # fmt: skip


def _lavfi(dst: Path, source: str, seconds: float) -> Path:
    if not dst.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-t", str(seconds), "-pix_fmt", "yuv420p",
                        "-c:v", "libx264", "-crf", "23", str(dst)], check=True)  # fmt: skip
    return dst


def pattern_sources(dst_dir: Path) -> list[Path]:
    """Test-pattern clips (4 s) added to the false-positive run's banks, so look-alikes of other generators can meet them."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    return [_lavfi(dst_dir / f"{name}.mp4", src, 4.0) for name, src in _BANK_PATTERNS]


def _clip(job: tuple) -> Path:
    from vscan.bench.distractors import renderer
    from vscan.bench.encoding import _encode

    dst, kind, seed, size = job
    if not dst.exists():
        render = renderer(kind, seed, size, 4.0)
        frames = (render(i / 10.0) for i in range(40))
        if seed % 7 == 0:  # mirrored
            frames = (np.ascontiguousarray(f[:, ::-1]) for f in frames)
        _encode(dst, frames, fps=10.0, codec="libx264", gop=None, crf=26, bitrate=None)
    return dst


def _still(job: tuple) -> Path:
    from PIL import Image

    from vscan.bench.distractors import renderer

    dst, kind, seed, size = job
    if not dst.exists():
        f = renderer(kind, seed, size, 4.0)(float(np.random.default_rng(seed).uniform(0, 4)))
        if seed % 3 == 0:
            f = np.ascontiguousarray(f[:, ::-1][size[1] // 20 :, size[0] // 16 :])  # a mirrored, cropped grab
        Image.fromarray(f).save(dst, quality=85) if dst.suffix == ".jpg" else Image.fromarray(f).save(dst)
    return dst


def _real(shared: Path, out: Path, exclude_origins: set[str]) -> list[Path]:
    files = []
    for p in sorted((shared / "pdq").rglob("*")):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".gif", ".webp"):
            dst = out / f"real-{p.parent.name}-{p.name}"
            if not dst.exists():
                dst.write_bytes(p.read_bytes())
            files.append(dst)
    for p in sorted((shared / "vpdq").glob("*.mp4")):
        if p.stem.split("-")[0] in exclude_origins:
            continue
        for tag, vf in (("", "scale='min(640,iw)':-2"), ("hflip", "hflip,scale='min(640,iw)':-2"), ("crop", "crop=iw*0.8:ih*0.8,scale=480:-2")):
            dst = out / f"real-{p.stem}{'-' + tag if tag else ''}.mp4"
            if not dst.exists():
                subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(p), "-t", "8", "-vf", vf, "-an", "-c:v", "libx264", "-crf", "23",
                                "-pix_fmt", "yuv420p", str(dst)], check=True)  # fmt: skip
            files.append(dst)
    return files


def make_unrelated(work: Path, count: int, shared: Path, exclude_origins: set[str], workers: int = 2) -> list[Path]:
    """At least ``count`` unrelated files in ``work/unrelated`` (kept for reruns): generated clips and stills, real media, look-alikes."""
    from vscan.bench.distractors import GENERATORS

    out = work / "unrelated"
    out.mkdir(parents=True, exist_ok=True)
    real = _real(shared, out, exclude_origins)
    looks = []
    for i, name in enumerate(_LOOKALIKES):
        for k, (w, h) in enumerate(((320, 240), (480, 270), (176, 144))):
            rate = (10, 25, 30)[k]
            looks.append(_lavfi(out / f"lookalike-{name}-{w}x{h}.mp4", f"{name}=size={w}x{h}:rate={rate}", 3.0 + k))
    n_gen = max(0, count - len(real) - len(looks))
    n_clips = n_gen * 3 // 5
    clips = [(out / f"u-{GENERATORS[j % 5]}{70_000 + j}.mp4", GENERATORS[j % 5], 70_000 + j, _SIZES[(j // 5) % 4]) for j in range(n_clips)]
    stills = [(out / f"s-{GENERATORS[j % 5]}{80_000 + j}.{'jpg' if j % 2 else 'png'}", GENERATORS[j % 5], 80_000 + j, (640, 360))
              for j in range(n_gen - n_clips)]  # fmt: skip
    with ProcessPoolExecutor(max_workers=workers) as pool:
        made = list(pool.map(_clip, clips, chunksize=8)) + list(pool.map(_still, stills, chunksize=16))
    return real + looks + made


def _thumbs(path: Path, frame_numbers: list[int] | None = None) -> np.ndarray:
    """32x32 luma thumbnails of a file's frames (all, or ``frame_numbers``), float32 [N, 32, 32]."""
    from vscan.decode import EveryFrame
    from vscan.frames.luma import luma
    from vscan.frames.prepare import iter_prepared, prepared_decoder

    dec = prepared_decoder(path)
    out = []
    for batch in iter_prepared(dec, path, EveryFrame(), side_px=32):
        keep = [k for k, i in enumerate(batch.frame_indices.tolist()) if frame_numbers is None or i in frame_numbers]
        out.append(luma(batch.rgb[keep]))
    return np.concatenate(out) if out else np.zeros((0, 32, 32), np.float32)


def same_content(query: Path, source: Path) -> float:
    """Median over ``query``'s frames (every 5th) of the mean absolute luma difference to the closest frame of ``source``."""
    q, s = _thumbs(query)[::5], _thumbs(source)
    if not len(q) or not len(s):
        return float("inf")
    mad = np.abs(q[:, None] - s[None]).mean(axis=(2, 3)).min(axis=1)
    return float(np.median(mad))


def unrelated_fp(records: dict[str, dict], files: list[Path], sources: dict[str, Path]) -> dict:
    """Per file with a perceptual match: a false positive, or the same content of other origin (``same_content``)."""
    fps, same, by_path = [], [], {}
    for f in files:
        r = records.get(f.name)
        hits = [m for m in (r or {}).get("matches", []) if m.get("is_match") and m.get("kind") == "perceptual"]
        if not hits:
            continue
        entry = hits[0]["bank_entry_id"]
        mad = same_content(f, sources[entry]) if entry in sources else float("inf")
        row = {"file": f.name, "entry": entry, "path": "+".join(hits[0].get("path") or ["original"]), "mad": round(mad, 1)}
        (same if mad < SAME_CONTENT_MAD else fps).append(row)
        by_path[row["path"]] = by_path.get(row["path"], 0) + (mad >= SAME_CONTENT_MAD)
    n = len(files)
    return {"files": n, "scanned": sum(1 for f in files if f.name in records), "false_positives": fps, "same_content": same,
            "per_1000": 1000.0 * len(fps) / max(n, 1), "fp_by_path": by_path}  # fmt: skip

"""Banks built from hash lists alone, as exchanges share them (issue #27 item 4), for vscan.bench.bench_generalise.

No media: each source is written as a hash list by the reference vPDQ (PyPI ``vpdq``) and the lists are
built into a bank with ``vscan bank build`` (``vscan.bank.store.build_bank``), as a platform receiving a
list would. ``LIST_KINDS``:

- ``list``: vPDQ of every frame (``seconds_per_hash=0``), vPDQ text files (frame, quality, hash, seconds);
- ``list1s``: vPDQ at one hash a second (``seconds_per_hash=1``, the reference's usual sharing rate);
- ``pdq``: PDQ per image: the same one-a-second grabs as image hashes, a ``.pdq`` list per source
  (``hash,quality`` lines: no frame times, so the matcher has no time alignment to check).

Thorn's ``perception`` as another column of the issue's table (``perception_distances``, ``python3 -m
vscan.bench.list_banks``): its ``FramewiseHasher`` at 1 frame/s, read by its own reader, with PDQ (quality >= 50) and
with PHash of 16 x 16 bits, matched by its benchmark's rule (``perception.benchmarking``: a file's distance to a video
is the closest pair of their frame hashes). perception pulls OpenCV's contrib build, so it runs in its own
interpreter (``--python``, a venv with ``pip install 'perception[pdq]==0.9.3'``), never in vscan's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["LIST_KINDS", "list_bank", "PERCEPTION_HASHERS", "perception_distances", "precision_threshold", "main"]

#: kind -> (vPDQ seconds per hash, list file suffix, directory of the lists)
LIST_KINDS = {"list": (0, ".txt", "lists"), "list1s": (1, ".txt", "lists1s"), "pdq": (1, ".pdq", "pdqlists")}


def _write_list(source: Path, out: Path, seconds_per_hash: int) -> Path:
    import vpdq

    from vscan.hashing.vpdq import format_vpdq_line

    feats = vpdq.computeHash(input_video_filename=str(source), seconds_per_hash=seconds_per_hash)
    if out.suffix == ".pdq":
        out.write_text("".join(f"{f.hex},{f.quality}\n" for f in feats))
    else:
        out.write_text("".join(format_vpdq_line(f.frame_number, f.quality, f.hex, f.timestamp) + "\n" for f in feats))
    return out


def list_bank(work: Path, sources: list[Path], kind: str = "list", tag: str = "", extend: Path | None = None) -> Path:
    """``work/<kind><tag>.bank`` built from ``kind``'s lists of ``sources`` (kept and reused in ``work``); with
    ``extend``, a copy of that bank with the lists imported into it."""
    from vscan.bank.store import build_bank

    seconds, suffix, folder = LIST_KINDS[kind]
    bank = work / f"{kind}{tag}.bank"
    if bank.exists():
        return bank
    lists = work / folder
    lists.mkdir(exist_ok=True)
    files = [p if p.exists() else _write_list(s, p, seconds) for s, p in ((s, lists / f"{s.stem}{suffix}") for s in sources)]
    if extend is not None:
        from vscan.bank.append import append_to_bank

        shutil.copyfile(extend, bank)
        append_to_bank(bank, files, label="reported")
    else:
        build_bank(bank, files, label="reported")
    return bank


#: perception's hashers (name -> bits), built in ``_PERCEPTION`` as FramewiseHasher(frame hasher, 1 frame/s).
PERCEPTION_HASHERS = {"pdq": 256, "phash16": 256}
_PERCEPTION = """
import json, sys, warnings
import numpy as np
from perception import hashers
from perception.hashers import tools
warnings.filterwarnings("ignore")
H = {"pdq": hashers.FramewiseHasher(frame_hasher=hashers.PDQHash(), frames_per_second=1, interframe_threshold=0.0,
                                    quality_threshold=50),
     "phash16": hashers.FramewiseHasher(frame_hasher=hashers.PHash(hash_size=16), frames_per_second=1,
                                        interframe_threshold=0.0)}
def frames(path):
    if path.lower().endswith((".jpg", ".jpeg", ".png", ".bmp", ".webp")):
        img = tools.read(path)
        v, q = H["pdq"].frame_hasher.compute_with_quality(img, hash_format="vector")
        return {"pdq": [v] if q >= 50 else [], "phash16": [H["phash16"].frame_hasher.compute(img, hash_format="vector")]}
    try:
        return tools.compute_synchronized_video_hashes(filepath=path, hashers=H, hash_format="vector")
    except Exception:
        return {k: [] for k in H}
def stack(v):
    return np.array([np.asarray(x, bool) for x in v]).reshape(len(v), 256)
args = json.loads(sys.stdin.read())
refs = {k: {s: stack(frames(s)[k]) for s in args["sources"]} for k in H}
out = {}
for f in args["files"]:
    got = frames(f)
    q = {k: stack(got.get(k) or []) for k in H}
    out[f] = {k: {s: (int((q[k][:, None] != r[None]).sum(-1).min()) if len(q[k]) and len(r) else 256)
                  for s, r in refs[k].items()} for k in H}
print(json.dumps(out))
"""


def perception_distances(python: str, sources: list[Path], files: list[Path]) -> dict[str, dict[str, dict[str, int]]]:
    """{file: {hasher: {source stem: bits}}}: the closest pair of ``file``'s and each source's perception frame hashes
    (module docstring), hashed by ``python`` (an interpreter with perception installed); 256 where either has none."""
    import json
    import subprocess

    args = {"sources": [str(s) for s in sources], "files": [str(f) for f in files]}
    done = subprocess.run([python, "-c", _PERCEPTION], input=json.dumps(args), capture_output=True, text=True, check=True)
    stem = {str(s): s.stem for s in sources}
    return {Path(f).name: {k: {stem[s]: d for s, d in v.items()} for k, v in per.items()}
            for f, per in json.loads(done.stdout).items()}  # fmt: skip


def precision_threshold(positive: list[int], negative: list[int], precision: float = 0.999) -> int:
    """perception's benchmark threshold (``compute_threshold_precision_recall``): the largest distance among the
    positives at which the share of positives among all pairs within it stays at least ``precision``
    (``negative``: each copy's closest wrong source and each distractor's closest source); -1 where none does."""
    best = -1
    for t in sorted(set(positive)):
        tp = sum(d <= t for d in positive)
        fp = sum(d <= t for d in negative)
        if tp / (tp + fp) < precision:
            break
        best = t
    return best


def _source_of(name: str, stems: set[str]) -> tuple[str | None, str]:
    src, _, rest = Path(name).stem.partition("__")
    return (src, rest.rstrip("0123456789")) if src in stems and rest else (None, "")


def main(argv: list[str] | None = None) -> dict:
    """Per kind, perception's recall on ``--copies`` (``<source>__<kind><n>`` files; others are distractors) against
    ``--sources``, at PDQ's 31 bits and at PHash-16's threshold chosen on ``--tune-copies`` against ``--tune-sources``."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    ap.add_argument("--python", required=True, help="an interpreter with perception installed (its own venv)")
    ap.add_argument("--sources", type=Path, required=True)
    ap.add_argument("--copies", type=Path, nargs="+", required=True, help="folders of copies and distractors")
    ap.add_argument("--tune-sources", type=Path, required=True)
    ap.add_argument("--tune-copies", type=Path, nargs="+", required=True)
    args = ap.parse_args(argv)

    def run(src_dir: Path, dirs: list[Path]):
        sources = sorted(src_dir.glob("*.mp4"))
        files = sorted(p for d in dirs for p in d.iterdir() if p.is_file())
        return {s.stem for s in sources}, perception_distances(args.python, sources, files)

    stems, tune = run(args.tune_sources, args.tune_copies)
    thresholds = {"pdq": 31}
    pos, neg = [], []
    for name, per in tune.items():
        src, _ = _source_of(name, stems)
        d = per["phash16"]
        pos += [d[src]] if src else []
        neg.append(min([v for s, v in d.items() if s != src] or [256]))
    thresholds["phash16"] = precision_threshold(pos, neg)
    stems, held = run(args.sources, args.copies)
    report = {"thresholds_bits": thresholds}
    for k, t in thresholds.items():
        per_kind, fps = {}, []
        for name, per in sorted(held.items()):
            src, kind = _source_of(name, stems)
            if src:
                row = per_kind.setdefault(kind, [0, 0])
                row[0] += per[k][src] <= t
                row[1] += 1
            elif min(per[k].values()) <= t:
                fps.append(name)
        report[k] = {"per_kind": per_kind, "false_positives": fps}
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()

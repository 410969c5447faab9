"""Banks built from hash lists alone, as exchanges share them (issue #27 item 4), for vscan.bench.bench_generalise.

No media: each source is written as a hash list by the reference vPDQ (PyPI ``vpdq``) and the lists are
built into a bank with ``vscan bank build`` (``vscan.bank.store.build_bank``), as a platform receiving a
list would. ``LIST_KINDS``:

- ``list``: vPDQ of every frame (``seconds_per_hash=0``), vPDQ text files (frame, quality, hash, seconds);
- ``list1s``: vPDQ at one hash a second (``seconds_per_hash=1``, the reference's usual sharing rate);
- ``pdq``: PDQ per image: the same one-a-second grabs as image hashes, a ``.pdq`` list per source
  (``hash,quality`` lines: no frame times, so the matcher has no time alignment to check).
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["LIST_KINDS", "list_bank"]

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

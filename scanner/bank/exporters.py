"""Writing a bank's rows back out in the text formats banks are built from.

    export_entries("reported.bank", "pytx_csv", "reported.csv")     # hand PDQs and MD5s to pytx
    export_entries("reported.bank", "vpdq_txt", "vpdq/")           # one vPDQ file per entry

One exporter per importer format (``EXPORTERS``, the same names as
``vscan.bank.importers.IMPORTERS``). Per-entry formats (vPDQ, PDQ list) write a
folder with one ``<entry_id>.txt`` / ``<entry_id>.pdq`` per entry that has frame
hashes; the others write one file, entries in source order (source file, then
line). A bank built from files of one format and exported to that format gives
files that build the same bank again (same entry ids, rows and
``content_sha256``), as long as the export keeps the source files' names.

What each format carries: vPDQ - frame numbers, qualities (100 where the bank
has none), timestamps (to the millisecond); PDQ list - hashes in frame order and
qualities (none when the bank has none); digest list - digests, and the file
name of md5sum-style entries (of media entries: their source path); pytx CSV -
each frame hash as a ``pdq`` row and each digest as a ``video_md5``/``sha1``/
``sha256`` row, the label as category. Labels travel in pytx CSV only.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path
from typing import Callable, NamedTuple

from vscan.bank.store import Bank
from vscan.errors import BankError
from vscan.hashing.vpdq import format_vpdq_line

__all__ = ["EXPORTERS", "Exporter", "export_entries"]

PYTX_SIGNAL = {"md5": "video_md5", "sha1": "sha1", "sha256": "sha256"}


class _Entry(NamedTuple):
    entry_id: str
    label: str | None
    source_path: str
    source_type: str
    source_ref: str | None
    frames: list[tuple]  # (frame_number, timestamp_seconds, quality, hash bytes), by frame number
    digests: list[tuple[str, str]]  # (algorithm, hex), by algorithm then digest


def _entries(bank: Bank) -> list[_Entry]:
    """Every entry with its rows, in source order: source path, line in the source, entry id."""
    frames: dict[str, list[tuple]] = defaultdict(list)
    for entry_id, *frame in bank.rows("frame_hashes"):
        frames[entry_id].append(tuple(frame))
    digests: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for entry_id, algorithm, digest in bank.rows("file_digests"):
        digests[entry_id].append((algorithm, digest))
    entries = [
        _Entry(e[0], e[1], e[2], e[3], e[4], frames[e[0]], sorted(digests[e[0]]))
        for e in bank.rows("entries")
    ]

    def line(ref: str | None) -> int:
        head = (ref or "").split(":", 1)[0]
        return int(head) if head.isdigit() else 0

    return sorted(entries, key=lambda e: (e.source_path, line(e.source_ref), e.entry_id))


def _entry_file(folder: Path, entry_id: str, suffix: str) -> Path:
    if not entry_id or entry_id.startswith(".") or any(c in entry_id for c in "/\\\0"):
        raise BankError(f"Entry id {entry_id!r} cannot be a file name; export it to digest_list or pytx_csv instead")
    return folder / f"{entry_id}{suffix}"


def _per_entry(suffix: str, lines: Callable[[list[tuple]], list[str]]) -> Callable[[Bank, Path], list[Path]]:
    def export(bank: Bank, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for entry in _entries(bank):
            if entry.frames:
                path = _entry_file(out, entry.entry_id, suffix)
                path.write_text("".join(f"{line}\n" for line in lines(entry.frames)), encoding="utf-8")
                written.append(path)
        return written

    return export


def _vpdq_lines(frames: list[tuple]) -> list[str]:
    return [format_vpdq_line(f, 100 if q is None else q, h.hex(), ts) for f, ts, q, h in frames]


def _pdq_lines(frames: list[tuple]) -> list[str]:
    if all(q is None for _, _, q, _ in frames):
        return [h.hex() for _, _, _, h in frames]
    return [f"{h.hex()},{100 if q is None else q}" for _, _, q, h in frames]


def _export_digest_list(bank: Bank, out: Path) -> list[Path]:
    lines = []
    for entry in _entries(bank):
        name = None
        if entry.source_type == "digest_list" and ":" in (entry.source_ref or ""):
            name = entry.source_ref.split(":", 1)[1]
        elif entry.source_type == "media":
            name = entry.source_path
        lines += [f"{digest}  {name}" if name else digest for _, digest in entry.digests]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return [out]


def _export_pytx_csv(bank: Bank, out: Path) -> list[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="") as fp:
        writer = csv.writer(fp, lineterminator="\n")
        writer.writerow(["signal_type", "signal_str", "collab", "category", "tags"])
        for entry in _entries(bank):
            category = entry.label or ""
            writer.writerows(["pdq", h.hex(), "", category, ""] for _, _, _, h in entry.frames)
            writer.writerows([PYTX_SIGNAL[a], d, "", category, ""] for a, d in entry.digests)
    return [out]


class Exporter(NamedTuple):
    """``write(bank, out)`` -> files written; ``per_entry``: ``out`` is a folder of one file per entry, else one file."""

    write: Callable[[Bank, Path], list[Path]]
    per_entry: bool


EXPORTERS: dict[str, Exporter] = {
    "vpdq_txt": Exporter(_per_entry(".txt", _vpdq_lines), per_entry=True),
    "pdq_list": Exporter(_per_entry(".pdq", _pdq_lines), per_entry=True),
    "digest_list": Exporter(_export_digest_list, per_entry=False),
    "pytx_csv": Exporter(_export_pytx_csv, per_entry=False),
}


def export_entries(bank: Bank | str | os.PathLike, fmt: str, out: str | os.PathLike) -> list[Path]:
    """Writes ``bank`` (a Bank or a bank file) in format ``fmt`` to ``out``; returns the files written.

    ``out`` is a folder for the per-entry formats (vpdq_txt, pdq_list) and a file
    for the others. Entries the format cannot hold (digests in vPDQ, an entry
    with no frames in a PDQ list) are left out.
    """
    if fmt not in EXPORTERS:
        raise BankError(f"Invalid export format ({fmt!r}). Supported values are {', '.join(EXPORTERS)}")
    if isinstance(bank, Bank):
        return EXPORTERS[fmt].write(bank, Path(out))
    with Bank(bank) as opened:
        return EXPORTERS[fmt].write(opened, Path(out))

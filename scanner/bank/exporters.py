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
``sha256`` row, the label as category; VICS JSON (a 2.0 case file) - each
entry with an MD5 or SHA-1 as a media item (MediaID from the entry id, label as
Category when it is a number); NCMEC XML - each entry with PDQ hashes, an MD5
or a SHA-1 as an image/video record (classification = label); StopNCII JSON -
each frame hash as an Active ImagePDQ record and each MD5 as a VideoMD5 record.
SHA-256 digests travel in digest lists and pytx CSV only.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Callable, NamedTuple

from vscan.bank.formats_ncmec import ncmec_document
from vscan.bank.formats_stopncii import stopncii_page
from vscan.bank.formats_vics import vics_document
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
    kind: str
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
        _Entry(*e[:6], frames[e[0]], sorted(digests[e[0]]))
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


def _write_json(out: Path, doc: dict) -> list[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return [out]


def _export_vics_json(bank: Bank, out: Path) -> list[Path]:
    media = []
    for n, entry in enumerate(_entries(bank), start=1):
        found = dict(entry.digests[::-1])  # algorithm -> its first digest
        if "md5" not in found and "sha1" not in found:
            continue
        tail = entry.entry_id.rpartition(":")[2]  # VICS ids are <file stem>:<MediaID>
        item = {"MediaID": int(tail) if tail.isdigit() else n}
        if entry.label and entry.label.isdigit():
            item["Category"] = int(entry.label)
        item.update({key: found[a].upper() for key, a in (("MD5", "md5"), ("SHA1", "sha1")) if a in found})
        media.append(item)
    return _write_json(out, vics_document(media, case_number=out.stem))


def _export_ncmec_xml(bank: Bank, out: Path) -> list[Path]:
    records = []
    for entry in _entries(bank):
        digests = [(a, d) for a, d in entry.digests if a in ("md5", "sha1")]
        if not entry.frames and not digests:
            continue
        prefix, kind, ncmec_id = entry.entry_id.split(":", 2) if entry.entry_id.count(":") >= 2 else ("", "", "")
        if prefix != "ncmec" or kind not in ("image", "video"):  # not from NCMEC: the whole id, kind by entry kind
            kind, ncmec_id = ("image" if entry.kind in ("image", "pdq_list") else "video"), entry.entry_id
        records.append((kind, ncmec_id, entry.label, [h.hex() for _, _, _, h in entry.frames], digests))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(ncmec_document(records), encoding="utf-8")
    return [out]


def _export_stopncii_json(bank: Bank, out: Path) -> list[Path]:
    records = []
    for entry in _entries(bank):
        records += [("ImagePDQ", h.hex(), "Active") for _, _, _, h in entry.frames]
        records += [("VideoMD5", d, "Active") for a, d in entry.digests if a == "md5"]
    return _write_json(out, stopncii_page(records))


class Exporter(NamedTuple):
    """``write(bank, out)`` -> files written; ``per_entry``: ``out`` is a folder of one file per entry, else one file."""

    write: Callable[[Bank, Path], list[Path]]
    per_entry: bool


EXPORTERS: dict[str, Exporter] = {
    "vpdq_txt": Exporter(_per_entry(".txt", _vpdq_lines), per_entry=True),
    "pdq_list": Exporter(_per_entry(".pdq", _pdq_lines), per_entry=True),
    "digest_list": Exporter(_export_digest_list, per_entry=False),
    "pytx_csv": Exporter(_export_pytx_csv, per_entry=False),
    "vics_json": Exporter(_export_vics_json, per_entry=False),
    "ncmec_xml": Exporter(_export_ncmec_xml, per_entry=False),
    "stopncii_json": Exporter(_export_stopncii_json, per_entry=False),
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

"""Scan results out for case tools: a Project VIC VICS JSON case file, or CSV.

    export_results(read_records("results.jsonl"), "vics", "case.json", detector_category=2)

VICS (data model 2.0, Default profile, one case): one media item per scanned
file with an MD5 (``MediaID`` 1.. in path order): ``MD5``/``SHA1`` upper case,
``MediaSize``, ``RelativeFilePath`` and ``MediaFiles[{MD5, FileName, FilePath}]``,
``Category`` = the category of the strongest matched bank entry when its label
is a VICS category number (``vscan.bank.formats_vics`` keeps them so), else
``detector_category`` for a file a detector or classifier flagged, else none;
``Comments`` = the record's reasons. Records hold SHA-256 and MD5: the SHA-1 is
computed here from the file when it is a plain file that can still be read and
its MD5 still agrees (evidence opened read-only), and left out otherwise (archive
members, files moved or changed since the scan). The VICS importer reads the
file back (``vscan bank build case.json``).

CSV: one row per record: path, status, risk, md5, sha1, sha256, size, category,
matched entries, reasons (``; ``-joined).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import posixpath
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from vscan.bank.formats_vics import vics_document
from vscan.errors import ConfigError
from vscan.inputs.paths import record_raw_path

__all__ = ["EXPORT_FORMATS", "export_results", "media_category"]

EXPORT_FORMATS = ("vics", "csv")
_CSV_COLUMNS = ("path", "status", "risk", "md5", "sha1", "sha256", "size_bytes", "category", "matched_entries", "reasons")


#: First characters that make a spreadsheet run a cell as a formula (OWASP CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet runs: a leading formula character gets a ``'``."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _sha1_if_unchanged(path: str, md5: str | None) -> str | None:
    """SHA-1 of ``path`` read read-only, when it is a plain file whose MD5 is still ``md5``."""
    if not md5 or "!" in path or not os.path.isfile(path):
        return None
    sha1, check = hashlib.sha1(), hashlib.md5()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                sha1.update(block)
                check.update(block)
    except OSError:
        return None
    return sha1.hexdigest() if check.hexdigest() == md5 else None


def _flagged_by_detector(record: dict[str, Any]) -> bool:
    return any(d.get("frames_above", 0) > 0 for d in record.get("detections") or [])


def media_category(record: dict[str, Any], detector_category: int | None) -> int | None:
    """The VICS category of a record: its first matched entry's numeric label, else
    ``detector_category`` when a detector flagged it, else None."""
    for match in record.get("matches") or []:
        label = match.get("label")
        if match.get("is_match") and isinstance(label, str) and label.isdigit():
            return int(label)
    return detector_category if _flagged_by_detector(record) else None


def _container_part(path: str) -> str:
    """An archive or disk-image member's container path as written in the member path; other paths whole."""
    from vscan.inputs.archives import is_container
    from vscan.inputs.containers import member_path, split_path

    parts = split_path(path, is_container, on_disk=False)  # the evidence need not be mounted to export
    return path[: -len(member_path("", parts[1]))] if parts else path


def relative_paths(paths: list[str]) -> dict[str, str]:
    """Each path relative to the folder all of them share (VICS ``RelativeFilePath``:
    the case's media as they sit under the evidence root). An archive or
    disk-image member keeps its ``!/`` part below its container."""
    containers = [_container_part(p) for p in paths]
    if not paths:
        return {}
    try:
        root = posixpath.commonpath([posixpath.dirname(c) for c in containers])
    except ValueError:  # relative and absolute paths mixed: nothing shared
        return {p: p.lstrip("/") for p in paths}
    return {p: posixpath.relpath(c, root) + (p[len(c):] if len(p) > len(c) else "") for p, c in zip(paths, containers)}


def _vics_media(records: list[dict[str, Any]], detector_category: int | None, sha1s: dict[str, str | None]) -> list[dict]:
    media = []
    relative = relative_paths([r["path"] for r in records])
    for record in records:
        if not record.get("md5"):
            continue  # not read at all: nothing a case tool can key on
        path, md5 = record["path"], record["md5"].upper()
        item: dict[str, Any] = {"MediaID": len(media) + 1, "MD5": md5}
        if sha1s[path]:
            item["SHA1"] = sha1s[path].upper()
        category = media_category(record, detector_category)
        if category is not None:
            item["Category"] = category
        item["IsPrecategorized"] = category is not None
        if record.get("size_bytes") is not None:
            item["MediaSize"] = record["size_bytes"]
        item["RelativeFilePath"] = relative[path]
        item["Comments"] = "; ".join(record.get("reasons") or []) or f"scanned by vscan: risk {record.get('risk', 0):g}"
        item["MediaFiles"] = [{"MD5": md5, "FileName": PurePosixPath(path).name, "FilePath": path}]
        media.append(item)
    return media


def export_results(
    records: Iterable[dict[str, Any]],
    fmt: str,
    out: str | os.PathLike,
    *,
    detector_category: int | None = None,
    case_number: str = "vscan",
) -> int:
    """Writes ``records`` (``vscan.output.read.read_records``) to ``out`` as ``fmt``; returns the items written."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"Invalid export format ({fmt!r}). Supported values are {', '.join(EXPORT_FORMATS)}")
    records = sorted(records, key=lambda r: r["path"])
    # Read back under the raw name (vscan.inputs.paths): the shown one may not open the file.
    sha1s = {r["path"]: _sha1_if_unchanged(record_raw_path(r), r.get("md5")) for r in records}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "vics":
        media = _vics_media(records, detector_category, sha1s)
        out.write_text(json.dumps(vics_document(media, case_number=case_number), indent=1) + "\n", encoding="utf-8")
        return len(media)
    with open(out, "w", encoding="utf-8", newline="") as fp:
        writer = csv.writer(fp, lineterminator="\n")
        writer.writerow(_CSV_COLUMNS)
        for r in records:
            # An entry matched both exactly and perceptually is one entry.
            matched = list(dict.fromkeys(m["bank_entry_id"] for m in r.get("matches") or [] if m.get("is_match")))
            category = media_category(r, detector_category)
            writer.writerow([_cell(r["path"]), r.get("status"), r.get("risk"), r.get("md5") or "", sha1s[r["path"]] or "",
                             r.get("sha256") or "", r.get("size_bytes") if r.get("size_bytes") is not None else "",
                             "" if category is None else category, _cell(" ".join(matched)),
                             _cell("; ".join(r.get("reasons") or []))])  # fmt: skip
    return len(records)

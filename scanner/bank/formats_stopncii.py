"""StopNCII hash-record JSON pages: reading one into a bank, and a page's shape.

A page is ``{count, nextPageToken, nextSetTimestamp, hasMoreRecords, hashRecords: [...]}``;
a record has ``signalType`` (ImagePDQ | VideoMD5 | VideoTMK | Text | URL),
``hashValue``, ``hashStatus`` (Received | Active | Withdrawn | Deleted),
``lastModtimestamp``, ``caseNumbers`` and ``CSPFeedbacks``. A Received or Active
ImagePDQ record becomes an ``image`` entry with that PDQ hash, a VideoMD5 record
a ``file_digest`` entry; id ``stopncii:<hash>``, label = the given label (StopNCII
carries no category). A later record for the same hash replaces the earlier one
(pages are read in file-name order); a Withdrawn or Deleted record removes it
and is never an entry: withdrawn material does not match. Signal types vscan
cannot match (VideoTMK, Text, URL, others) and withdrawn/deleted records are
counted in the bank's import notes.

Refused, naming the file and the element (``hashRecords[3].hashValue``): a page
without a ``hashRecords`` list, a record that is not an object, a missing or
unknown ``hashStatus``, a missing ``signalType``, a bad PDQ or MD5 value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vscan.bank.sources import EntryWriter, digest, fail, load_json, pdq
from vscan.hashing.vpdq import FrameHashes, hex_to_hashes

__all__ = ["import_stopncii_json", "is_stopncii", "stopncii_page", "ACTIVE", "DISABLED"]

ACTIVE = ("Received", "Active")
DISABLED = ("Withdrawn", "Deleted")


def is_stopncii(doc: Any) -> bool:
    """Whether a parsed JSON document is a StopNCII page (has ``hashRecords``)."""
    return isinstance(doc, dict) and "hashRecords" in doc


def import_stopncii_json(writer: EntryWriter, path: Path, rel: str, label: str | None) -> list[str]:
    """Entries of one StopNCII page; see the module docstring."""
    doc = load_json(path, "StopNCII JSON")
    if not is_stopncii(doc) or not isinstance(doc["hashRecords"], list):
        fail(path, "hashRecords", "expected a StopNCII page with a 'hashRecords' list")
    added: list[str] = []
    for i, record in enumerate(doc["hashRecords"]):
        where = f"hashRecords[{i}]"
        if not isinstance(record, dict):
            fail(path, where, "expected a hash record object")
        status, signal = record.get("hashStatus"), record.get("signalType")
        if status not in ACTIVE + DISABLED:
            fail(path, f"{where}.hashStatus", f"expected one of {', '.join(ACTIVE + DISABLED)}, got {status!r:.80}")
        if not isinstance(signal, str) or not signal:
            fail(path, f"{where}.signalType", f"expected a signal type, got {signal!r:.80}")
        if signal not in ("ImagePDQ", "VideoMD5"):
            writer.note(rel, f"unknown hash {signal}")
            continue
        if signal == "ImagePDQ":
            value = pdq(record.get("hashValue"), path, f"{where}.hashValue")
        else:
            value = digest(record.get("hashValue"), "md5", path, f"{where}.hashValue")
        entry_id = f"stopncii:{value}"
        if writer.remove_entry(entry_id) and entry_id in added:
            added.remove(entry_id)
        if status in DISABLED:
            writer.withdraw(entry_id, rel, f"disabled ({status})")
            continue
        source = (rel, "stopncii_json", None)
        if signal == "ImagePDQ":
            fh = FrameHashes([0], [np.nan], [100], hex_to_hashes([value]))
            added.append(writer.add_frame_hashes(entry_id, label, source, "image", fh, qualities_given=False))
        else:
            added.append(writer.add_file_digest(entry_id, label, source, "md5", value))
    return added


def stopncii_page(records: list[tuple[str, str, str]]) -> dict[str, Any]:
    """One last page holding ``(signalType, hashValue, hashStatus)`` records."""
    return {
        "count": len(records),
        "nextPageToken": None,
        "nextSetTimestamp": None,
        "hasMoreRecords": False,
        "hashRecords": [
            {
                "lastModtimestamp": 0,
                "signalType": signal,
                "hashValue": value,
                "hashStatus": status,
                "caseNumbers": {},
                "CSPFeedbacks": [],
            }
            for signal, value, status in records
        ],
    }

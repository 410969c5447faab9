"""Project VIC VICS JSON (data model 1.1-1.3 and 2.0, any 2.0 profile: Default,
US, UK, CUSTOM): reading one into a bank, and the document shape written back out.

Both shapes are read: a case file ``{"value": [{"CaseID", "CaseNumber", "Media": [...]}]}``
and a plain ``{"value": [media, ...]}``. One ``file_digest`` entry per media item
with an ``MD5`` and/or ``SHA1`` (stored lowercase), id ``<file stem>:<MediaID>``
(``<file stem>:<n>``, n the 1-based position, without a MediaID), label = ``Category``
(as text, e.g. ``"1"``) unless a label is given. Booleans (``IsPrecategorized``,
``VictimIdentified``, ``OffenderIdentified``, ``IsDistributed``, ``MediaFiles[].Unallocated``)
may be JSON booleans or the strings "true"/"false". Hashes vscan cannot match
(``PhotoDNA``, ``AlternativeHashes``) are counted per name in the bank's import
notes (``unknown hash PhotoDNA``), as are media items with no MD5 or SHA1.
Refused, naming the file and the element: a document without the OData
version key or of another data model version, ``value`` or ``Media`` not a
list, a media item not an object, a MediaID or Category that is not an
integer, a bad MD5/SHA1, a boolean that is neither.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vscan.bank.sources import EntryWriter, boolean, digest, fail, load_json

__all__ = ["import_vics_json", "is_vics", "vics_document", "VICS_CONTEXT"]

#: The 2.0 OData context vscan writes (the Default profile, a case file).
VICS_CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Cases"
_V1 = re.compile(r"/DataModels/(1\.[0-9]+)\.xml#(Cases|Media)\s*$")
_V2 = re.compile(r"/DataModels/2\.0\.xml/(Default|US|UK|CUSTOM)/\$metadata#(Cases|Media)\s*$")
_V1_VERSIONS = ("1.1", "1.2", "1.3")
_BOOLEANS = ("IsPrecategorized", "VictimIdentified", "OffenderIdentified", "IsDistributed")


def is_vics(doc: Any) -> bool:
    """Whether a parsed JSON document says it is VICS (carries an OData version key)."""
    return isinstance(doc, dict) and ("odata.metadata" in doc or "@odata.context" in doc)


def _version(doc: dict, path: Path) -> str:
    """'1.1'..'1.3' or '2.0' from the OData key; anything else is refused."""
    if "@odata.context" in doc:
        key, pattern = "@odata.context", _V2
    elif "odata.metadata" in doc:
        key, pattern = "odata.metadata", _V1
    else:
        fail(path, "$", "not a VICS document: no 'odata.metadata' (1.x) or '@odata.context' (2.0) key")
    found = pattern.search(str(doc[key]))
    if found is None or (key == "odata.metadata" and found.group(1) not in _V1_VERSIONS):
        fail(path, key, f"unsupported VICS data model {doc[key]!r:.120} (vscan reads 1.1-1.3 and 2.0)")
    return "2.0" if key == "@odata.context" else found.group(1)


def _media_items(doc: dict, path: Path) -> list[tuple[str, Any]]:
    """(element path, media item) of both shapes, in document order."""
    value = doc.get("value")
    if not isinstance(value, list):
        fail(path, "value", "expected a list of cases or media")
    items = []
    for i, item in enumerate(value):
        if isinstance(item, dict) and "Media" in item:
            if not isinstance(item["Media"], list):
                fail(path, f"value[{i}].Media", "expected a list of media")
            items += [(f"value[{i}].Media[{j}]", m) for j, m in enumerate(item["Media"])]
        else:
            items.append((f"value[{i}]", item))
    return items


def _integer(value: Any, path: Path, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    fail(path, where, f"expected an integer, got {value!r:.80}")


def import_vics_json(writer: EntryWriter, path: Path, rel: str, label: str | None) -> list[str]:
    """One entry per media item with an MD5 or SHA1; see the module docstring."""
    doc = load_json(path, "VICS JSON")
    if not isinstance(doc, dict):
        fail(path, "$", "expected a JSON object")
    _version(doc, path)
    added = []
    for n, (where, media) in enumerate(_media_items(doc, path), start=1):
        if not isinstance(media, dict):
            fail(path, where, "expected a media object")
        media_id = _integer(media["MediaID"], path, f"{where}.MediaID") if media.get("MediaID") is not None else n
        category = media.get("Category")
        category = None if category is None else _integer(category, path, f"{where}.Category")
        for key in _BOOLEANS:
            if media.get(key) is not None:
                boolean(media[key], path, f"{where}.{key}")
        for k, media_file in enumerate(media.get("MediaFiles") or []):
            if isinstance(media_file, dict) and media_file.get("Unallocated") is not None:
                boolean(media_file["Unallocated"], path, f"{where}.MediaFiles[{k}].Unallocated")
        if media.get("PhotoDNA"):
            writer.note(rel, "unknown hash PhotoDNA")
        for k, alt in enumerate(media.get("AlternativeHashes") or []):
            name = alt.get("HashName") if isinstance(alt, dict) else None
            if not isinstance(name, str) or not name:
                fail(path, f"{where}.AlternativeHashes[{k}]", "expected {HashName, HashValue}")
            writer.note(rel, f"unknown hash {name}")
        digests = [
            (algorithm, digest(media[key], algorithm, path, f"{where}.{key}"))
            for key, algorithm in (("MD5", "md5"), ("SHA1", "sha1"))
            if media.get(key)
        ]
        if not digests:
            writer.note(rel, "media without MD5 or SHA1")
            continue
        entry_label = label or (None if category is None else str(category))
        source = (rel, "vics_json", None)
        entry_id = writer.add_file_digest(f"{path.stem}:{media_id}", entry_label, source, *digests[0])
        for algorithm, value in digests[1:]:
            writer.add_digest(entry_id, algorithm, value)
        added.append(entry_id)
    return added


def vics_document(media: list[dict[str, Any]], *, case_number: str, case_id: int = 1) -> dict[str, Any]:
    """A VICS 2.0 case file holding ``media`` (VICS media objects) under one case."""
    return {
        "@odata.context": VICS_CONTEXT,
        "value": [{"CaseID": case_id, "CaseNumber": case_number, "Media": media}],
    }

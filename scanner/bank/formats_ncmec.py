"""NCMEC hash-sharing XML (namespace ``https://hashsharing.ncmec.org/hashsharing/v2``):
reading a page of records into a bank, and writing a page back out.

``queryResult > images|videos > image|video|deletedImage|deletedVideo``, each
record with ``<member id=...>``, ``<timestamp>``, ``<id>``, ``<classification>``
and ``<fingerprints>``. An ``image``/``video`` with an ``md5``, ``sha1`` or
``pdq`` fingerprint becomes one entry, id ``ncmec:image:<id>`` / ``ncmec:video:<id>``,
label = classification (e.g. ``A1``) unless a label is given: kind ``image`` or
``video`` with its PDQ hashes as frames 0.. when it has any, else ``file_digest``;
its MD5/SHA-1 digests on the same entry. A later record with the same id
replaces the earlier one (pages are read in file-name order); a ``deletedImage``/
``deletedVideo`` removes it and is itself never an entry: deleted material
does not match. Fingerprints vscan cannot match (pdna, netclean, videntifier,
tmk_pdqf, ...) are counted per name in the bank's import notes, as are
deleted records and records with no usable fingerprint.

Refused, naming the file and the line: XML that does not parse, a DOCTYPE
(no entity expansion), another root or namespace, an unknown record element,
a record without ``<id>``, a bad md5/sha1/pdq value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat
from xml.sax.saxutils import escape

import numpy as np

from vscan.bank.sources import EntryWriter, digest, fail, pdq
from vscan.errors import BankError
from vscan.hashing.vpdq import FrameHashes, hex_to_hashes

__all__ = ["NCMEC_NAMESPACE", "import_ncmec_xml", "ncmec_document"]

NCMEC_NAMESPACE = "https://hashsharing.ncmec.org/hashsharing/v2"
_RECORDS = {"image": "image", "video": "video", "deletedImage": "image", "deletedVideo": "video"}


@dataclass
class _Node:
    tag: str  # local name
    namespace: str
    attrs: dict[str, str]
    line: int
    children: list["_Node"] = field(default_factory=list)
    text: str = ""

    def child_text(self, tag: str) -> str | None:
        found = next((c for c in self.children if c.tag == tag), None)
        return None if found is None else found.text.strip()


def _parse(path: Path) -> _Node:
    """The document as a tree of _Node with line numbers; DOCTYPEs are refused."""
    parser = expat.ParserCreate(namespace_separator=" ")
    stack: list[_Node] = []
    root: list[_Node] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        namespace, _, tag = name.rpartition(" ")
        node = _Node(tag, namespace, attrs, parser.CurrentLineNumber)
        (stack[-1].children if stack else root).append(node)
        stack.append(node)

    def doctype(*_args) -> None:
        raise BankError(f"{path}:{parser.CurrentLineNumber}: a DOCTYPE is not allowed in NCMEC XML")

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda _name: stack.pop()
    parser.CharacterDataHandler = lambda data: setattr(stack[-1], "text", stack[-1].text + data) if stack else None
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(path.read_bytes(), True)
    except expat.ExpatError as exc:
        raise BankError(f"{path}:{exc.lineno}: not well-formed XML ({expat.errors.messages[exc.code]})") from None
    except OSError as exc:
        raise BankError(f"Cannot read NCMEC XML {path}: {exc}") from exc
    return root[0]


def _fingerprints(writer: EntryWriter, record: _Node, path: Path, rel: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(PDQ hexes, (algorithm, digest) pairs) of a record; other fingerprints are noted."""
    pdqs, digests = [], []
    for group in (c for c in record.children if c.tag == "fingerprints"):
        for fp in group.children:
            if fp.tag == "pdq":
                pdqs.append(pdq(fp.text, path, fp.line))
            elif fp.tag in ("md5", "sha1"):
                pair = (fp.tag, digest(fp.text, fp.tag, path, fp.line))
                digests += [pair] if pair not in digests else []
            else:
                writer.note(rel, f"unknown hash {fp.tag}")
    return pdqs, digests


def import_ncmec_xml(writer: EntryWriter, path: Path, rel: str, label: str | None) -> list[str]:
    """Entries of one NCMEC page; see the module docstring."""
    root = _parse(path)
    if root.tag != "queryResult" or root.namespace not in ("", NCMEC_NAMESPACE):
        fail(path, root.line, f"expected <queryResult> in namespace {NCMEC_NAMESPACE}, got {root.namespace} {root.tag}".strip())
    added: list[str] = []
    for group in root.children:
        if group.tag not in ("images", "videos"):
            fail(path, group.line, f"unexpected <{group.tag}> (expected <images> or <videos>)")
        for record in group.children:
            if record.tag not in _RECORDS:
                fail(path, record.line, f"unexpected <{record.tag}> (expected one of {', '.join(_RECORDS)})")
            ncmec_id = record.child_text("id")
            if not ncmec_id:
                fail(path, record.line, f"<{record.tag}> without an <id>")
            kind = _RECORDS[record.tag]
            entry_id = f"ncmec:{kind}:{ncmec_id}"
            if writer.remove_entry(entry_id) and entry_id in added:
                added.remove(entry_id)
            if record.tag.startswith("deleted"):
                writer.withdraw(entry_id, rel, f"disabled ({record.tag})")
                continue
            pdqs, digests = _fingerprints(writer, record, path, rel)
            if not pdqs and not digests:
                writer.note(rel, "record without md5, sha1 or pdq")
                continue
            entry_label = label or record.child_text("classification") or None
            source = (rel, "ncmec_xml", None)
            if pdqs:
                n = len(pdqs)
                fh = FrameHashes(np.arange(n), np.full(n, np.nan), np.full(n, 100), hex_to_hashes(pdqs))
                writer.add_frame_hashes(entry_id, entry_label, source, kind, fh, qualities_given=False)
            else:
                writer.add_file_digest(entry_id, entry_label, source, *digests.pop(0))
            for algorithm, value in digests:
                writer.add_digest(entry_id, algorithm, value)
            added.append(entry_id)
    return added


def ncmec_document(records: list[tuple[str, str, str | None, list[str], list[tuple[str, str]]]]) -> str:
    """A page of ``(kind 'image'|'video', id, classification, pdq hexes, (algorithm, digest))`` records."""
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<queryResult xmlns="{NCMEC_NAMESPACE}">\n']
    for kind in ("image", "video"):
        mine = [r for r in records if r[0] == kind]
        parts.append(f'  <{kind}s count="{len(mine)}">\n')
        for _, ncmec_id, classification, pdqs, digests in mine:
            parts.append(f"    <{kind}>\n      <id>{escape(ncmec_id)}</id>\n")
            if classification:
                parts.append(f"      <classification>{escape(classification)}</classification>\n")
            prints = [f"<{a}>{d}</{a}>" for a, d in digests] + [f"<pdq>{h}</pdq>" for h in pdqs]
            parts.append(f"      <fingerprints>{''.join(prints)}</fingerprints>\n    </{kind}>\n")
        parts.append(f"  </{kind}s>\n")
    parts.append("</queryResult>\n")
    return "".join(parts)


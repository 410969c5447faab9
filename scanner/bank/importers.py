"""Bank inputs: which format a file is, and one importer per format.

Text formats (the registry ``IMPORTERS``): upstream vPDQ ``.txt`` files, plain
PDQ hex lists, MD5/SHA-1/SHA-256 lists (md5sum style too), pytx CSV, and the
operators' hash sets: Project VIC VICS JSON (``formats_vics``), NCMEC
hash-sharing XML (``formats_ncmec``) and StopNCII JSON pages (``formats_stopncii``). Media
(videos, images) goes through an injected ``hash_media``. Every importer writes
through an ``EntryWriter`` (``vscan.bank.writer.BankWriter``) and refuses a
malformed line with a ``BankError`` that names the file and the 1-based line
(structured formats: the line or the element).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Callable, Iterator, Literal

import numpy as np

from vscan.bank.formats_ncmec import import_ncmec_xml
from vscan.bank.formats_stopncii import import_stopncii_json, is_stopncii
from vscan.bank.formats_vics import import_vics_json, is_vics
from vscan.bank.schema import ALGORITHMS, HEX, Kind
from vscan.bank.sources import EntryWriter, load_json, read_text
from vscan.errors import BankError, VscanError, error_info, is_permanent
from vscan.hashing.vpdq import ExtraHashes, FrameHashes, hex_to_hashes, is_vpdq_header, parse_vpdq_line
from vscan.inputs.digests import file_digests

__all__ = [
    "EntryWriter",
    "HashMedia",
    "Importer",
    "IMPORTERS",
    "InputType",
    "MEDIA_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "PYTX_TYPES",
    "NotAHashList",
    "detect_input_type",
    "import_file",
    "NOT_ADDED",
    "not_added",
    "import_vpdq_txt",
    "import_pdq_list",
    "import_digest_list",
    "import_pytx_csv",
    "import_media",
]

InputType = Literal["vpdq_txt", "pdq_list", "digest_list", "pytx_csv", "vics_json", "ncmec_xml", "stopncii_json", "media"]
HashMedia = Callable[[Path], "tuple[FrameHashes, float | None] | tuple[FrameHashes, float | None, ExtraHashes | None] | tuple[FrameHashes, float | None, ExtraHashes | None, tuple | None]"]  # the 4th: vscan.bank.entry_table.EntryGeometry

VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".3gp"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | IMAGE_EXTENSIONS
#: Text extensions that say nothing about the content (a README.txt, notes): skipped in a walked folder
#: when their first line is no hash-list line. Other text extensions name a list format and fail instead.
GENERIC_TEXT_EXTENSIONS = {".txt", ""}
_HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")
TEXT_EXTENSIONS = {".txt", ".csv", ".md5", ".sha1", ".sha256", ".pdq", ".vpdq", ".lst", ".list", ".json", ".xml", ""}

#: pytx signal types we read -> the hash they carry ('pdq' or a digest algorithm).
PYTX_TYPES = {
    "pdq": "pdq",
    "hash_pdq": "pdq",
    "video_md5": "md5",
    "hash_md5": "md5",
    "hash_video_md5": "md5",
    "md5": "md5",
    "sha256": "sha256",
    "hash_sha256": "sha256",
    "video_sha256": "sha256",
    "sha1": "sha1",
    "hash_sha1": "sha1",
}


Importer = Callable[[EntryWriter, Path, str, "str | None"], "list[str]"]


class NotAHashList(BankError):
    """A text file whose first meaningful line (or JSON document) is no hash-list
    format at all: a README, notes, another program's JSON. A build walking a folder
    skips it with a note; a hash list that is recognised but has a bad line still fails."""


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped line), skipping blank and ``#`` lines."""
    for number, line in enumerate(read_text(path, "hash list").splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, stripped


def detect_input_type(path: Path) -> InputType | None:
    """By extension, then by the first meaningful line; None = not a bank input."""
    suffix = path.suffix.lower()
    if suffix in MEDIA_EXTENSIONS:
        return "media"
    if suffix not in TEXT_EXTENSIONS:
        return None
    if suffix in (".md5", ".sha1", ".sha256"):
        return "digest_list"
    if suffix == ".xml":
        return "ncmec_xml"
    if suffix == ".json":
        doc = load_json(path, "JSON hash list")
        if is_vics(doc):
            return "vics_json"
        if is_stopncii(doc):
            return "stopncii_json"
        raise NotAHashList(f"{path}: JSON that is neither VICS (odata.metadata / @odata.context) nor a StopNCII page (hashRecords)")
    generic = suffix in GENERIC_TEXT_EXTENSIONS
    try:
        first = next(_lines(path), None)
    except BankError as exc:  # not UTF-8 text
        raise (NotAHashList if generic else BankError)(str(exc)) from None
    if first is None:
        raise (NotAHashList if generic else BankError)(f"{path}: empty hash list")
    _, line = first
    fields = [f.strip() for f in line.split(",")]
    # A header naming vPDQ's fields; in a file named as a hash list (.vpdq, .lst, ...), a header in another
    # order is refused by name rather than as an unrecognised line.
    if is_vpdq_header(line, source=str(path), line_number=first[0], strict=not generic and suffix != ".csv"):
        return "vpdq_txt"
    if suffix == ".csv" or fields[0].lower() in PYTX_TYPES or fields[0].lower() == "signal_type":
        return "pytx_csv"
    if len(fields) in (3, 4) and fields[0].lstrip("-").isdigit():
        return "vpdq_txt"
    token = line.split()[0].split(",")[0]
    if len(token) == 64 and HEX.fullmatch(token):
        # A bare 64-hex list is either PDQ or SHA-256: the name must say which.
        name = path.name.lower()
        if suffix == ".pdq":
            return "pdq_list"
        if "sha256" in name or len(line.split()) > 1:
            return "digest_list"
        if "pdq" in name or "," in line:
            return "pdq_list"
        raise BankError(
            f"{path}: 64-hex lines may be PDQ hashes or SHA-256 digests; put 'pdq' or 'sha256' in the "
            "file name, or give a ',quality' field for PDQ"
        )
    if len(token) in (32, 40) and HEX.fullmatch(token):
        return "digest_list"
    message = f"{path}:{first[0]}: unrecognised hash list line {line[:80]!r}"
    # A generic text file without a hex run is notes, not a broken list; a named list format or a line
    # holding a hash-like hex run is a hash list with a bad line, and fails.
    if generic and not _HEX_RUN.search(line):
        raise NotAHashList(message)
    raise BankError(message)


def import_vpdq_txt(writer: EntryWriter, path: Path, rel: str, label: str | None) -> list[str]:
    """One video entry per file, id = file stem; duration = last timestamp (None without timestamps)."""
    frames, quals, hexes, stamps = [], [], [], []
    line_of: dict[int, int] = {}
    for index, (number, line) in enumerate(_lines(path)):
        if index == 0 and is_vpdq_header(line, source=str(path), line_number=number):
            continue
        f, q, h, t = parse_vpdq_line(line, source=str(path), line_number=number)
        if f in line_of:
            raise BankError(f"{path}:{number}: duplicate frame number {f} (first on line {line_of[f]})")
        line_of[f] = number
        frames.append(f)
        quals.append(q)
        hexes.append(h)
        stamps.append(t)
    fh = FrameHashes(np.asarray(frames), np.asarray(stamps, np.float64), np.asarray(quals), hex_to_hashes(hexes))
    finite = fh.timestamps_seconds[np.isfinite(fh.timestamps_seconds)]
    duration = float(finite.max()) if finite.size else None
    return [writer.add_frame_hashes(path.stem, label, (rel, "vpdq_txt", None), "video", fh, duration)]


def import_pdq_list(writer: EntryWriter, path: Path, rel: str, label: str | None) -> list[str]:
    """One 'pdq_list' entry per file: line i (0-based, among hash lines) is frame i.

    ``hex`` or ``hex,quality``; without quality the hash is stored with quality NULL.
    """
    hexes, quals = [], []
    first: tuple[int, bool] | None = None  # (line, gave a quality)
    for number, line in _lines(path):
        fields = [f.strip() for f in line.split(",")]
        if len(fields) > 2 or len(fields[0]) != 64 or not HEX.fullmatch(fields[0]):
            raise BankError(f"{path}:{number}: expected 'pdq_hex[,quality]', got {line[:80]!r}")
        try:
            q = int(fields[1]) if len(fields) == 2 else -1
        except ValueError:
            raise BankError(f"{path}:{number}: invalid quality {fields[1]!r}") from None
        if len(fields) == 2 and not 0 <= q <= 100:
            raise BankError(f"{path}:{number}: quality {q} out of range 0..100")
        first = first or (number, q >= 0)
        if (q >= 0) != first[1]:
            has = "has" if first[1] else "has no"
            raise BankError(f"{path}:{number}: give a quality on every line or on none (line {first[0]} {has} quality)")
        hexes.append(fields[0].lower())
        quals.append(q)
    given = first is not None and first[1]
    n = len(hexes)
    fh = FrameHashes(np.arange(n), np.full(n, np.nan), np.asarray(quals if given else [100] * n), hex_to_hashes(hexes))
    return [writer.add_frame_hashes(path.stem, label, (rel, "pdq_list", None), "pdq_list", fh, qualities_given=given)]


def import_digest_list(writer: EntryWriter, path: Path, rel: str, label: str | None) -> list[str]:
    """One entry per line: ``digest`` or ``digest  name`` (md5sum style, ``*name`` too); id = stem:line."""
    added = []
    for number, line in _lines(path):
        parts = line.split(maxsplit=1)
        digest = parts[0].lower()
        algorithm = ALGORITHMS.get(len(digest))
        if algorithm is None or not HEX.fullmatch(digest):
            raise BankError(f"{path}:{number}: expected an MD5, SHA-1 or SHA-256 hex digest, got {parts[0][:80]!r}")
        name = parts[1].lstrip("*") if len(parts) == 2 else None
        ref = f"{number}:{name}" if name else str(number)
        added.append(writer.add_file_digest(f"{path.stem}:{number}", label, (rel, "digest_list", ref), algorithm, digest))
    return added


def _csv_rows(path: Path) -> Iterator[tuple[int, int, list[str]]]:
    """(row number, line the row starts on, stripped fields) of each CSV row.

    The two numbers differ only after a quoted field that spans lines; entry ids
    and refs use the row number, errors name the line.
    """
    reader = csv.reader(io.StringIO(read_text(path, "pytx CSV")))
    number = 0
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise BankError(f"{path}:{reader.line_num}: {exc}") from None
        number += 1
        yield number, start, [c.strip() for c in row]


def import_pytx_csv(writer: EntryWriter, path: Path, rel: str, label: str | None) -> list[str]:
    """pytx ``signal_type,signal_str,collab,category,tags``; one entry per row, id = stem:row number
    (the line number, unless a quoted field spans lines).

    PDQ rows become 'image' entries (one hash, quality NULL); digest rows 'file_digest'.
    Label: ``label`` if given, else category, else tags, else None.
    """
    added = []
    for number, line, row in _csv_rows(path):
        if not "".join(row) or row[0].startswith("#"):
            continue
        if number == 1 and row[0].lower() == "signal_type":
            continue
        if len(row) < 2 or len(row) > 5:
            raise BankError(f"{path}:{line}: expected signal_type,signal_str[,collab,category,tags], got {len(row)} fields")
        signal = PYTX_TYPES.get(row[0].lower())
        if signal is None:
            raise BankError(
                f"{path}:{line}: unsupported signal type {row[0]!r}. Supported values are {', '.join(sorted(PYTX_TYPES))}"
            )
        category = row[3] if len(row) > 3 and row[3] else None
        tags = row[4] if len(row) > 4 and row[4] else None
        row_label = label or category or tags
        entry_id, source = f"{path.stem}:{number}", (rel, "pytx_csv", str(number))
        if signal == "pdq":
            try:
                hashes = hex_to_hashes([row[1]])
            except BankError:
                raise BankError(f"{path}:{line}: invalid PDQ hex {row[1][:80]!r}") from None
            fh = FrameHashes([0], [np.nan], [100], hashes)
            added.append(writer.add_frame_hashes(entry_id, row_label, source, "image", fh, qualities_given=False))
        else:
            try:
                added.append(writer.add_file_digest(entry_id, row_label, source, signal, row[1]))
            except BankError as exc:
                raise BankError(f"{path}:{line}: {exc}") from None
    return added


def import_media(writer: EntryWriter, path: Path, rel: str, label: str | None, hash_media: HashMedia | None) -> list[str]:
    """One 'video' or 'image' entry, id = stem: the frames ``hash_media`` gives, its extra rows and geometry, the file's digests."""
    if hash_media is None:
        raise BankError(f"{path}: media file given but no media hasher (hash_media) was supplied")
    fh, duration, *rest = hash_media(path)
    kind: Kind = "image" if path.suffix.lower() in IMAGE_EXTENSIONS else "video"
    entry_id = writer.add_frame_hashes(path.stem, label, (rel, "media", None), kind, fh, duration)
    if rest and rest[0] is not None and len(rest[0]):
        writer.add_extra_hashes(entry_id, rest[0])
    if len(rest) > 1 and rest[1] is not None:  # its decoded size and border box (vscan.bank.hashers.media_geometry)
        writer.add_geometry(entry_id, rest[1])
    # The file's own digests too, so a byte-identical re-upload is an exact hit.
    sha256, md5, _, _ = file_digests(path)
    for algorithm, digest in (("md5", md5), ("sha256", sha256)):
        writer.add_digest(entry_id, algorithm, digest)
    return [entry_id]


#: Text format -> importer(writer, path, rel, label) -> entry ids added.
IMPORTERS: dict[str, Importer] = {
    "vpdq_txt": import_vpdq_txt,
    "pdq_list": import_pdq_list,
    "digest_list": import_digest_list,
    "pytx_csv": import_pytx_csv,
    "vics_json": import_vics_json,
    "ncmec_xml": import_ncmec_xml,
    "stopncii_json": import_stopncii_json,
}


def import_file(
    writer: EntryWriter,
    path: Path,
    *,
    rel: str | None = None,
    label: str | None = None,
    hash_media: HashMedia | None = None,
    input_type: InputType | None = None,
) -> list[str]:
    """Adds one input file to ``writer``; returns the entry ids added."""
    path = Path(path)
    rel = rel or path.name
    input_type = input_type or detect_input_type(path)
    if input_type is None:
        raise BankError(f"{path}: not a hash list or media file we know (extension {path.suffix!r})")
    if input_type == "media":
        return import_media(writer, path, rel, label, hash_media)
    if input_type not in IMPORTERS:
        raise BankError(f"Invalid input type ({input_type!r}). Supported values are {', '.join([*IMPORTERS, 'media'])}")
    return IMPORTERS[input_type](writer, path, rel, label)


#: How a reported file a build could not add is noted in ``meta.import_notes`` (``vscan bank info``; the CLI counts them).
NOT_ADDED = "not added: "


def not_added(exc: VscanError, path: Path, walked_media: bool) -> str | None:
    """The note for a media file found in a folder that cannot be read (cut off, damaged, encrypted, a list of other
    files: the file's own fault, ``vscan.errors.is_permanent``), or None to let the build fail: a file named directly,
    a hash list (it fails naming file and line), or a fault of the machine (a decoder crash, a worker lost)."""
    if not walked_media or not is_permanent(error_info(exc)):
        return None
    message = str(exc).removeprefix(f"{path}: ")
    return f"{NOT_ADDED}{type(exc).__name__}: {message}"

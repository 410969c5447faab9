"""What a file named like media holds instead, from its first bytes.

A seized disk holds files named like videos or pictures that are none: a vault
app's encrypted copies (random bytes, no header), a download that saved an
error page (HTML), a file wiped or never written (zeros), a document or an
archive under a media name, a text note. The decoder says only "Invalid data
found when processing input" for all of them; ``what_it_is`` says which it is,
so an operator can tell an encrypted file (a lead) from a wiped one. It runs
only after the decoders refused the file (vscan.inputs.truncated.why_unopenable
for PyAV, vscan.decode.images for PIL), never to choose a decoder.

``refers_elsewhere`` runs before any decoder opens a file
(vscan.decode.base.check_readable, and vscan.decode.pyav_reuse.open_container for
objects read by ranges): a list of other files is refused, never opened.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter

__all__ = ["HEAD_BYTES", "LIST_REFUSED", "refers_elsewhere", "what_it_is"]

#: Lists FFmpeg reads as a video made of other files or addresses, told by their start (bytes after a BOM and blanks).
_LISTS = ((b"ffconcat version", "an FFmpeg concat list (ffconcat)"), (b"#EXTM3U", "an HLS playlist (#EXTM3U)"))


#: Why such a list is refused, after what it is.
LIST_REFUSED = ("a text file naming other files or addresses, not a video; not opened (a file it names gets its own record "
                "where it is scanned)")


def refers_elsewhere(head: bytes) -> str | None:
    """Why a file whose first bytes are ``head`` is refused before any decoder opens it, or None. An ffconcat list, an
    HLS playlist or a DASH manifest is a few lines of text naming other files (or addresses): FFmpeg's probe opens it
    as a video made of them, so a 39-byte text file got the record (and the matches) of the clip it names, and one
    naming a pipe held a decoder until its timeout. A file it names gets its own record, under its own path, where it is
    among the inputs."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    for signature, kind in _LISTS:
        if start.startswith(signature):
            return f"{kind}: {LIST_REFUSED}"
    if start.startswith(b"<") and b"<MPD" in start[:4096]:
        return f"a DASH manifest (MPD): {LIST_REFUSED}"
    return None


#: How much of the start is read to tell.
HEAD_BYTES = 64 << 10

#: Signatures at offset 0 of kinds that are not video, as the file(1) magic database names them.
_NOT_VIDEO = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office (OLE2) document"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x7fELF", "a Linux program (ELF)"),
    (b"MZ", "a Windows program (PE)"),
    (b"\xff\xd8\xff", "a JPEG picture"),
    (b"\x89PNG\r\n\x1a\n", "a PNG picture"),
    (b"GIF8", "a GIF picture"),
)
#: Starts of media containers and streams (a damaged one of these is the decoder's to explain, never "random").
_MEDIA = (b"\x1a\x45\xdf\xa3", b"RIFF", b"OggS", b"FLV", b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3", b"\x00\x00\x00\x01",
          b"\x00\x00\x01", b"\x30\x26\xb2\x75", b"DKIF", b".RMF", b"FWS", b"CWS", b"ID3", b"fLaC")
_ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"moof", b"styp", b"sidx", b"jP  "}
#: Starts of pictures (JPEG, PNG, GIF, BMP, TIFF; WebP, HEIF and AVIF start as RIFF and ISO boxes, above).
_PICTURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")
#: Bits of entropy per byte over the head above which bytes with no known signature look random (and zlib cannot
#: shorten them: a counting pattern has every byte value as often, and is no cipher's output).
_RANDOM_BITS = 7.9


def what_it_is(head: bytes, *, still: bool = False) -> str | None:
    """A phrase naming what ``head`` (a file's first bytes, up to HEAD_BYTES) holds where it is not a video (``still``:
    not a picture, whose own signatures are then the decoder's to explain), or None when it does not tell (a media
    signature, or bytes that fit none of these)."""
    noun = "a picture" if still else "a video"
    if not head:
        return "the file is empty"
    if not head.strip(b"\x00"):
        return f"its first {len(head):,} bytes are all zero (a file wiped, never written, or a hole in a carved image)"
    if head.startswith(_MEDIA) or head[4:8] in _ISO_BOXES or head[:1] == b"\x47" and head[188:189] in (b"", b"\x47"):
        return None  # a video container or stream (MPEG-TS: a sync byte every 188): damaged, not something else
    if still and head.startswith(_PICTURES):
        return None  # a damaged picture
    for signature, kind in _NOT_VIDEO:
        if head.startswith(signature):
            return f"its first bytes are those of {kind}, not of {noun}"
    text = _text(head, noun)
    if text is not None:
        return text
    if len(head) >= 4096 and _entropy(head) >= _RANDOM_BITS and len(zlib.compress(head, 1)) >= len(head):
        return ("its bytes look random and have no container's signature: encrypted (a vault app's copy, say) or "
                "compressed without a header; no decoder can read it as it is")
    return None


def _text(head: bytes, noun: str) -> str | None:
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut by the head's end is still text
        if exc.start < len(head) - 4:
            return None
        decoded = head[: exc.start].decode("utf-8")
    printable = sum(c.isprintable() or c in "\t\r\n" for c in decoded)
    if printable < 0.95 * max(len(decoded), 1):
        return None
    lowered = decoded.lstrip("\ufeff \t\r\n").lower()
    if lowered.startswith(("<!doctype html", "<html")) or "<html" in lowered[:1024]:
        return f"it is an HTML page (a download that saved an error or login page), not {noun}"
    if lowered.startswith("<?xml"):
        return f"it is an XML document, not {noun}"
    return f"it is text, not {noun}: {decoded.strip()[:40]!r}"


def _entropy(head: bytes) -> float:
    n = len(head)
    return -sum(c / n * math.log2(c / n) for c in Counter(head).values())

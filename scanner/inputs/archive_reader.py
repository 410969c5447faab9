"""One open zip or tar archive: entries listed lazily within the limits, member checks, a per-process cache.

Ray workers read many members of one archive, so each process keeps the last
few archives open (:func:`cached_reader`); an archive changed on disk is
reopened. The archive is opened read-only.

A compressed tar is read through one decompressing stream per open archive
(:class:`Inflater`), kept open between members: members read in archive
order (as the driver dispatches them) cost one pass over the archive, not
one pass per member. Every decompressed byte goes through it, so it counts
them (``inflated``) and measures each member's compressed share as it is
read (the compressed file position before and after the member's bytes):
decompression stops as soon as a member's ratio passes ``max_ratio``, or the
content passes ``total_max_bytes``, whether the member is being listed
(skipped over) or read. A member behind the stream's position means
decompressing from the start again (``rewinds`` counts those).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import struct
import tarfile
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator

from vscan.errors import ArchiveError, ArchiveMemberError
from vscan.inputs.containers import (  # shared with disk images; importable from here as before
    MEMBER_SEPARATOR,
    ArchiveLimits,
    LazyListing,
    cached,
    unsafe_name,
)

__all__ = ["MEMBER_SEPARATOR", "RATIO_FLOOR_BYTES", "ArchiveLimits", "ArchiveReader", "Inflater", "cached_reader", "unsafe_name"]

#: Members smaller than this are never refused for their compression ratio.
RATIO_FLOOR_BYTES = 1 << 20
_CHUNK = 1 << 20
#: Decompressors by the archive's first bytes (gzip, bzip2, xz).
_OPENERS = (
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=_ShortReads(raw), mode="rb")),
    (b"BZh", lambda raw: bz2.BZ2File(_ShortReads(raw))),
    (b"\xfd7zXZ", lambda raw: lzma.LZMAFile(_ShortReads(raw))),
)
#: The most compressed bytes a decompressor is handed at a time, so the file's position follows what it has consumed
#: to within this: Python 3.12's gzip reads 128 KiB ahead, which at a bomb's ratio of ~1000 is 128 MB of content
#: already counted before the member that inflates it starts (its ratio measured against 0 compressed bytes).
_RAW_READ = 8 << 10


class _ShortReads:
    """A compressed file handed to a decompressor ``_RAW_READ`` bytes at most per read (module docstring)."""

    def __init__(self, raw) -> None:
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(_RAW_READ if size is None or size < 0 else min(size, _RAW_READ))

    def readable(self) -> bool:
        return True

    def __getattr__(self, name: str):  # tell, seek, close, name, mode: the file's own
        return getattr(self._raw, name)


@dataclass
class _Entry:
    name: str
    kind: str  # "file", "dir", "link", "special"
    size: int  # declared uncompressed size
    compressed: int | None  # zip: compressed size
    end: int  # uncompressed archive content up to the end of this member
    info: object  # ZipInfo or TarInfo


def _refuse_header(path: str, size: int, limit: int) -> None:
    # tarfile reads a PAX/long-name header whole, in one read() of its declared
    # size (one allocation of that size): refuse it before.
    if size > limit:
        raise ArchiveError(f"{path}: a tar header declares {size} bytes, more than {limit}: not read (header bomb)")


class _CappedFile:
    """A plain tar file for tarfile: no single read larger than the header
    limit. tarfile reads member data in small pieces and skips by seeking;
    only a header is read whole (a PAX header declaring gigabytes)."""

    def __init__(self, path: str, limit: int) -> None:
        self.path, self.limit = path, limit
        self._fh = open(path, "rb")  # read-only

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, os.fstat(self._fh.fileno()).st_size - self._fh.tell())
        _refuse_header(self.path, size, max(self.limit, _CHUNK))
        return self._fh.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()


class Inflater:
    """A compressed tar's decompressed bytes as one forward stream for tarfile.

    Seeking ahead decompresses (and counts), seeking behind starts again from
    the archive's first byte. Between :meth:`start_member` and the next one,
    the bytes inflated are measured against the compressed bytes consumed:
    past ``RATIO_FLOOR_BYTES`` and ``max_ratio`` decompression stops with
    ``ArchiveError``, as it does past ``total_max_bytes`` of content.
    """

    def __init__(self, path: str, opener, limits: ArchiveLimits) -> None:
        self.path, self.limits, self._opener = path, limits, opener
        self._raw = open(path, "rb")  # read-only
        self._stream = opener(self._raw)
        self.pos = 0  # position in the decompressed tar
        self.inflated = 0  # bytes decompressed in all, rewinds included
        self.rewinds = 0
        self._member: str | None = None
        self._mark = (0, 0)  # (compressed, decompressed) positions where the member started

    def start_member(self, name: str) -> None:
        """Measure what follows as member ``name``'s share of the archive."""
        self._member, self._mark = name, (self._raw.tell(), self.pos)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(_CHUNK), b""))
        _refuse_header(self.path, size, max(self.limits.header_max_bytes, _CHUNK))
        data = self._stream.read(size)
        self.pos += len(data)
        self.inflated += len(data)
        self._check()
        return data

    def _check(self) -> None:
        limits = self.limits
        if self.pos > limits.total_max_bytes:
            raise ArchiveError(f"{self.path}: content exceeds archive_total_max_bytes ({limits.total_max_bytes}): decompression stopped")
        if self._member is None:
            return
        packed, inflated = self._raw.tell() - self._mark[0], self.pos - self._mark[1]
        if inflated > RATIO_FLOOR_BYTES and inflated > limits.max_ratio * max(packed, 1):
            raise ArchiveError(
                f"{self.path}{MEMBER_SEPARATOR}{self._member}: decompression bomb ({inflated} bytes inflated from "
                f"{packed} compressed, ratio over archive_max_ratio {limits.max_ratio:g}): decompression stopped"
            )

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset + (self.pos if whence == io.SEEK_CUR else 0)
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < 0:
            raise io.UnsupportedOperation(f"{self.path}: seek({offset}, {whence}) in a compressed stream")
        if target < self.pos:
            # Everything before self.pos was measured on the way here: skip it unmeasured.
            self._stream.close()
            self._raw.seek(0)
            self._stream = self._opener(self._raw)
            self.pos, self._member = 0, None
            self.rewinds += 1
        while self.pos < target and self.read(min(_CHUNK, target - self.pos)):
            pass
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        self._stream.close()
        self._raw.close()


class ArchiveReader(LazyListing):
    """Entries of one archive, listed lazily in order, within the limits."""

    LISTING_ERRORS = (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, ValueError, lzma.LZMAError)
    NOUNS = ("archive", "entries")

    def __init__(self, path: str, limits: ArchiveLimits) -> None:
        super().__init__(path, limits)
        self._zip = self._tar = self.inflater = self._plain = None
        self._content = 0  # tar: declared content of the members listed so far (sparse members at full size)
        try:
            if path.lower().endswith(".zip"):
                self._count_zip_entries()
                self._zip = zipfile.ZipFile(path, "r")  # opens "rb": never modified
                self._listing = self._list_zip()
            else:
                with open(path, "rb") as fh:
                    magic = fh.read(6)
                opener = next((op for prefix, op in _OPENERS if magic.startswith(prefix)), None)
                if opener is None:
                    self._plain = _CappedFile(path, limits.header_max_bytes)
                    self._tar = tarfile.open(fileobj=self._plain, mode="r:")
                else:
                    self.inflater = Inflater(path, opener, limits)
                    self._tar = tarfile.open(fileobj=self.inflater, mode="r:")
                self._listing = self._list_tar()
        except ArchiveError:
            self.close()
            raise
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, ValueError, lzma.LZMAError) as exc:
            self.close()
            raise ArchiveError(f"{path}: cannot open archive: {type(exc).__name__}: {exc}") from exc
        self.compressed = self.inflater is not None

    def _count_zip_entries(self) -> None:
        """Refuse a zip with more than ``max_entries`` entries before its
        central directory is parsed (into memory): the end record's count
        may lie, so the directory is walked, one entry header at a time,
        counting what is really there."""
        limit = self.limits.max_entries
        with open(self.path, "rb") as fh:
            end = zipfile._EndRecData(fh)  # the end-of-central-directory record (zip64 aware)
            if end is None:
                raise zipfile.BadZipFile("File is not a zip file")
            declared = end[zipfile._ECD_ENTRIES_TOTAL]
            if declared > limit:
                raise ArchiveError(f"{self.path}: not listed: {declared} entries, more than archive_max_entries ({limit})")
            size_cd, offset_cd = end[zipfile._ECD_SIZE], end[zipfile._ECD_OFFSET]
            # As zipfile does: data prepended to the archive shifts every offset.
            concat = end[zipfile._ECD_LOCATION] - size_cd - offset_cd
            if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
                concat -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
            fh.seek(max(0, offset_cd + concat))
            count = 0
            while (head := fh.read(zipfile.sizeCentralDir)).startswith(zipfile.stringCentralDir):
                if len(head) < zipfile.sizeCentralDir:
                    break
                count += 1
                if count > limit:
                    raise ArchiveError(f"{self.path}: not listed: its central directory holds more than "
                                       f"archive_max_entries ({limit}) entries (its end record says {declared})")  # fmt: skip
                fields = struct.unpack(zipfile.structCentralDir, head)
                fh.seek(fields[zipfile._CD_FILENAME_LENGTH] + fields[zipfile._CD_EXTRA_FIELD_LENGTH]
                        + fields[zipfile._CD_COMMENT_LENGTH], io.SEEK_CUR)  # fmt: skip

    def close(self) -> None:
        for handle in (self._zip, self._tar, self.inflater, self._plain):
            if handle is not None:
                handle.close()

    def _list_zip(self) -> Iterator[_Entry]:
        end = 0
        for info in self._zip.infolist():
            end += info.file_size
            kind = "dir" if info.is_dir() else "file"
            if stat.S_ISLNK(info.external_attr >> 16):
                kind = "link"
            yield _Entry(info.filename, kind, info.file_size, info.compress_size, end, info)

    def _list_tar(self) -> Iterator[_Entry]:
        tf = self._tar
        limits = self.limits
        count = 0
        while True:
            info = tf.next()  # skips the previous member's bytes: measured as its own (Inflater)
            if info is None:
                return
            count += 1
            if count > limits.max_entries:
                raise ArchiveError(
                    f"{self.path}: listing stopped after {limits.max_entries} entries: "
                    f"more than archive_max_entries ({limits.max_entries})"
                )
            kind = "file" if info.isreg() else "dir" if info.isdir() else "link" if info.issym() or info.islnk() else "special"
            # The content listed so far, summed: a sparse member counts at its
            # declared size (holes included), not at the few bytes it stores.
            self._content += info.size
            end = max(self._content, info.offset_data + info.size)
            stored = sum(n for _, n in info.sparse) if info.sparse is not None else None
            yield _Entry(info.name, kind, info.size, stored, end, info)
            # Going on means inflating past this member: stop at the limits.
            if end > limits.total_max_bytes:
                raise ArchiveError(
                    f"{self.path}: listing stopped after {info.name!r}: archive content exceeds "
                    f"archive_total_max_bytes ({limits.total_max_bytes})"
                )
            if self.inflater is not None:
                self.inflater.start_member(info.name)

    def check(self, entry: _Entry) -> None:
        """Raise ArchiveMemberError for an entry that must not be read."""
        where = f"{self.path}{MEMBER_SEPARATOR}{entry.name}"
        limits = self.limits
        if reason := unsafe_name(entry.name):
            raise ArchiveMemberError(f"{where}: path traversal ({reason}): not read")
        if entry.kind == "link":
            raise ArchiveMemberError(f"{where}: link member: not followed, not read")
        if entry.kind != "file":
            raise ArchiveMemberError(f"{where}: not a regular member ({entry.kind}): not read")
        if entry.size > limits.member_max_bytes:
            raise ArchiveMemberError(
                f"{where}: declared size {entry.size} exceeds archive_member_max_bytes ({limits.member_max_bytes}): not read"
            )
        if entry.end > limits.total_max_bytes:
            raise ArchiveMemberError(f"{where}: ends past archive_total_max_bytes ({limits.total_max_bytes}): not read")
        packed = entry.compressed if entry.compressed is not None else (self.size if self.compressed else None)
        if packed is not None and entry.size > RATIO_FLOOR_BYTES and entry.size > limits.max_ratio * max(packed, 1):
            raise ArchiveMemberError(
                f"{where}: decompression bomb ({entry.size} bytes from {packed} compressed, "
                f"ratio over archive_max_ratio {limits.max_ratio:g}): not read"
            )
        if self._zip is not None and entry.info.flag_bits & 0x1:
            raise ArchiveMemberError(f"{where}: encrypted member: not read")

    def open_entry(self, entry: _Entry):
        if self._zip is not None:
            return self._zip.open(entry.info, "r")
        if self.inflater is not None:
            self.inflater.seek(entry.info.offset_data)
            self.inflater.start_member(entry.name)
        handle = self._tar.extractfile(entry.info)
        if handle is None:
            raise ArchiveMemberError(f"{self.path}{MEMBER_SEPARATOR}{entry.name}: no data")
        return handle


_open_archives: "OrderedDict[tuple[str, ArchiveLimits], ArchiveReader]" = OrderedDict()


def cached_reader(path: str, limits: ArchiveLimits) -> ArchiveReader:
    """The archive, from this process's cache when unchanged on disk."""
    return cached(_open_archives, (path, limits), path, lambda: ArchiveReader(path, limits))  # type: ignore[return-value]

"""Zip and tar inputs scanned in place: members are read into memory, never extracted.

A member is reported as ``<archive path>!/<member name>`` (``evidence.zip!/dir/clip.mp4``)
and gets one record like any file. The driver only *lists* archives
(:func:`iter_member_paths`, streaming: zip central directory, tar headers);
each member is read inside its Ray decode task (:func:`open_member`) straight
into an anonymous in-memory file (``memfd``), digested and decoded from there.
Nothing from an archive is ever written to a file system, and the archive is
opened read-only.

Which entries get a record:

* regular members with a media suffix (any suffix with ``all_files``);
* every path-traversal entry (absolute name, ``..`` component, drive letter,
  NUL): ``ArchiveMemberError``, never read;
* symlink, hardlink, device, FIFO members with a media suffix:
  ``ArchiveMemberError`` ("not followed"), never read; directories and other
  entries are passed over like non-media files in a folder;
* an archive that cannot be opened or listed (corrupt, truncated, not what
  its suffix says, over a listing limit): one ``ArchiveError`` record for the
  archive path itself, after the records of the members listed before the
  failure. An archive with no media members gets no record.

Decompression bombs: a member is refused (``ArchiveMemberError``, nothing
inflated) when its declared size exceeds ``ScanConfig.archive_member_max_bytes``,
when its declared size over its compressed size (zip; for a compressed tar,
over the whole archive's size) exceeds ``archive_max_ratio`` (members below
``RATIO_FLOOR_BYTES`` exempt), or when it ends past ``archive_total_max_bytes``
of uncompressed archive content. Reading stops at the member limit whatever
the header says. Listing a compressed tar stops at the same total and ratio
limits (the archive then gets an ``ArchiveError`` record for the unlisted rest).

Not handled: nested archives (an archive member named ``.zip`` is scanned
like any other non-media member: passed over), encrypted zip members
(``ArchiveMemberError``), a member name occurring twice (its first entry is
scanned, once). Compressed tars have no random access: a worker reads
members in order and keeps its position, but a member requested behind it
means decompressing from the start again.
"""

from __future__ import annotations

import os
import re
import stat
import tarfile
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from vscan.errors import ArchiveError, ArchiveMemberError
from vscan.inputs.media_types import MEDIA_SUFFIXES

__all__ = [
    "ARCHIVE_SUFFIXES",
    "MEMBER_SEPARATOR",
    "ArchiveLimits",
    "is_archive",
    "split_member",
    "iter_member_paths",
    "open_member",
]

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
MEMBER_SEPARATOR = "!/"
#: Members smaller than this are never refused for their compression ratio.
RATIO_FLOOR_BYTES = 1 << 20
_CHUNK = 1 << 20
_CACHE_SIZE = 4
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ArchiveLimits:
    member_max_bytes: int = 1 << 30
    max_ratio: float = 100.0
    total_max_bytes: int = 16 << 30

    @classmethod
    def from_config(cls, config) -> "ArchiveLimits":
        return cls(config.member_max_bytes, config.max_ratio, config.total_max_bytes)


def is_archive(path: str | os.PathLike) -> bool:
    """True for a name ending in a zip or tar suffix."""
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def split_member(path: str | os.PathLike) -> tuple[str, str] | None:
    """(archive path, member name) for ``archive.zip!/name``; None for other paths."""
    text = str(path)
    start = 0
    while (i := text.find(MEMBER_SEPARATOR, start)) >= 0:
        if is_archive(text[:i]) and i + len(MEMBER_SEPARATOR) < len(text):
            return text[:i], text[i + len(MEMBER_SEPARATOR) :]
        start = i + 1
    return None


def _unsafe_name(name: str) -> str | None:
    """Why a member name would escape an extraction folder, or None."""
    if "\x00" in name:
        return "NUL in name"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "'..' component"
    return None


def _has_media_suffix(name: str) -> bool:
    return os.path.splitext(name.rstrip("/"))[1].lower() in MEDIA_SUFFIXES


# --------------------------------------------------------------------------
# one open archive (cached per process: Ray workers read many members of it)
# --------------------------------------------------------------------------


@dataclass
class _Entry:
    name: str
    kind: str  # "file", "dir", "link", "special"
    size: int  # declared uncompressed size
    compressed: int | None  # zip: compressed size
    end: int  # uncompressed archive content up to the end of this member
    info: object  # ZipInfo or TarInfo


class _Archive:
    """Entries of one archive, listed lazily in order, within the limits."""

    def __init__(self, path: str, limits: ArchiveLimits) -> None:
        self.path = path
        self.limits = limits
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ArchiveError(f"{path}: not a regular file")
        self.key = (st.st_ino, st.st_size, st.st_mtime_ns)
        self.size = st.st_size
        self.entries: list[_Entry] = []
        self.by_name: dict[str, _Entry] = {}
        self.error: ArchiveError | None = None
        self.done = False
        try:
            if path.lower().endswith(".zip"):
                self._zip = zipfile.ZipFile(path, "r")  # opens "rb": never modified
                self._tar = None
                self.compressed = False
                self._listing = self._list_zip()
            else:
                self._zip = None
                with open(path, "rb") as fh:
                    self.compressed = fh.read(6).startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ"))
                self._tar = tarfile.open(path, "r:*")  # opens "rb": never modified
                self._listing = self._list_tar()
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, ValueError) as exc:
            raise ArchiveError(f"{path}: cannot open archive: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        for handle in (self._zip, self._tar):
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
        while True:
            info = tf.next()
            if info is None:
                return
            kind = "file" if info.isreg() else "dir" if info.isdir() else "link" if info.issym() or info.islnk() else "special"
            end = info.offset_data + info.size
            yield _Entry(info.name, kind, info.size, None, end, info)
            # Going on means inflating past this member: stop at the limits.
            if end > limits.total_max_bytes:
                raise ArchiveError(
                    f"{self.path}: listing stopped after {info.name!r}: archive content exceeds "
                    f"archive_total_max_bytes ({limits.total_max_bytes})"
                )
            if self.compressed and end > RATIO_FLOOR_BYTES and end > limits.max_ratio * self.size:
                raise ArchiveError(
                    f"{self.path}: listing stopped after {info.name!r}: decompression bomb "
                    f"({end} bytes inflated from {self.size}, ratio over archive_max_ratio {limits.max_ratio:g})"
                )

    def _advance(self) -> _Entry | None:
        if self.done:
            return None
        try:
            entry = next(self._listing)
        except StopIteration:
            self.done = True
            return None
        except ArchiveError as exc:
            self.done, self.error = True, exc
            return None
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, ValueError) as exc:
            self.done = True
            self.error = ArchiveError(f"{self.path}: archive listing failed after {len(self.entries)} entries: {type(exc).__name__}: {exc}")
            return None
        self.entries.append(entry)
        self.by_name.setdefault(entry.name, entry)
        return entry

    def iter_entries(self) -> Iterator[_Entry]:
        i = 0
        while True:
            if i < len(self.entries):
                yield self.entries[i]
                i += 1
            elif self._advance() is None:
                return

    def find(self, name: str) -> _Entry:
        entry = self.by_name.get(name)
        while entry is None and self._advance() is not None:
            entry = self.by_name.get(name)
        if entry is None:
            if self.error is not None:
                raise ArchiveMemberError(f"{self.path}{MEMBER_SEPARATOR}{name}: not reached: {self.error}")
            raise ArchiveMemberError(f"{self.path}{MEMBER_SEPARATOR}{name}: no such member")
        return entry

    def check(self, entry: _Entry) -> None:
        """Raise ArchiveMemberError for an entry that must not be read."""
        where = f"{self.path}{MEMBER_SEPARATOR}{entry.name}"
        limits = self.limits
        if reason := _unsafe_name(entry.name):
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
        handle = self._tar.extractfile(entry.info)
        if handle is None:
            raise ArchiveMemberError(f"{self.path}{MEMBER_SEPARATOR}{entry.name}: no data")
        return handle


_open_archives: "OrderedDict[tuple[str, ArchiveLimits], _Archive]" = OrderedDict()


def _archive(path: str, limits: ArchiveLimits) -> _Archive:
    """The archive, from this process's cache when unchanged on disk."""
    key = (path, limits)
    cached = _open_archives.get(key)
    if cached is not None:
        try:
            st = os.stat(path)
            if (st.st_ino, st.st_size, st.st_mtime_ns) == cached.key:
                _open_archives.move_to_end(key)
                return cached
        except OSError:
            pass
        _open_archives.pop(key).close()
    archive = _Archive(path, limits)
    _open_archives[key] = archive
    while len(_open_archives) > _CACHE_SIZE:
        _open_archives.popitem(last=False)[1].close()
    return archive


# --------------------------------------------------------------------------
# driver side: list
# --------------------------------------------------------------------------


def iter_member_paths(path: str | os.PathLike, *, all_files: bool = False, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[str]:
    """``archive!/member`` paths to scan, streaming; the archive path itself
    (once, last) when it cannot be opened or fully listed."""
    path = str(path)
    try:
        archive = _Archive(path, limits)  # not cached: the driver lists each archive once
    except (ArchiveError, OSError):
        yield path
        return
    try:
        seen: set[str] = set()
        for entry in archive.iter_entries():
            if entry.name in seen:
                continue
            wanted = _unsafe_name(entry.name) is not None or (
                entry.kind in ("file", "link", "special") and (all_files or _has_media_suffix(entry.name))
            )
            if wanted:
                seen.add(entry.name)
                yield f"{path}{MEMBER_SEPARATOR}{entry.name}"
        if archive.error is not None:
            yield path
    finally:
        archive.close()


def archive_error(path: str, limits: ArchiveLimits) -> ArchiveError:
    """Why an archive got a record of its own (re-listed in the worker)."""
    try:
        archive = _Archive(path, limits)
    except ArchiveError as exc:
        return exc
    try:
        for _ in archive.iter_entries():
            pass
        return archive.error or ArchiveError(f"{path}: archive listed without error on a second try (changed during the scan?)")
    finally:
        archive.close()


# --------------------------------------------------------------------------
# worker side: read one member into memory
# --------------------------------------------------------------------------


@contextmanager
def open_member(path: str, limits: ArchiveLimits) -> Iterator[Path]:
    """The member's bytes in an anonymous in-memory file; yields its path
    (``/proc/self/fd/N``, named after the member so its suffix picks the
    decoder). Reading stops at ``limits.member_max_bytes``."""
    from vscan.inputs.memory import memory_file

    parts = split_member(path)
    if parts is None:
        raise ArchiveMemberError(f"{path}: not an archive member path")
    archive_path, name = parts
    try:
        archive = _archive(archive_path, limits)
    except OSError as exc:
        raise ArchiveError(f"{archive_path}: cannot open archive: {exc}") from exc
    entry = archive.find(name)
    archive.check(entry)
    packed = entry.compressed if entry.compressed is not None else (archive.size if archive.compressed else None)
    with memory_file(os.path.basename(name)) as (fd, fd_path):
        total = 0
        try:
            with archive.open_entry(entry) as src:
                while block := src.read(_CHUNK):
                    total += len(block)
                    if total > limits.member_max_bytes:
                        raise ArchiveMemberError(f"{path}: more than archive_member_max_bytes ({limits.member_max_bytes}): reading stopped")
                    if packed is not None and total > RATIO_FLOOR_BYTES and total > limits.max_ratio * max(packed, 1):
                        raise ArchiveMemberError(f"{path}: decompression bomb (ratio over archive_max_ratio {limits.max_ratio:g}): reading stopped")
                    view = memoryview(block)
                    while view:
                        view = view[os.write(fd, view) :]
        except ArchiveMemberError:
            raise
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as exc:
            # RuntimeError/NotImplementedError: encrypted or unsupported zip compression.
            raise ArchiveMemberError(f"{path}: cannot read member: {type(exc).__name__}: {exc}") from exc
        yield fd_path


# --------------------------------------------------------------------------
# the scan's entry points (vscan.inputs.discover and vscan.runtime.decode_task)
# --------------------------------------------------------------------------


def expand(path: str, *, all_files: bool = False, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[str]:
    """``path`` itself, or the member paths of the zip/tar file it names."""
    if is_archive(path) and os.path.isfile(path):
        yield from iter_member_paths(path, all_files=all_files, limits=limits)
    else:
        yield path


def handles(path: str) -> bool:
    """True for an archive member path, or an archive path (which reaches
    decoding only when it could not be listed)."""
    if is_archive(path):
        return True
    return split_member(path) is not None and not os.path.lexists(path)

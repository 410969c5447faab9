"""One open zip or tar archive: entries listed lazily within the limits, member checks, a per-process cache.

Ray workers read many members of one archive, so each process keeps the last
few archives open (:func:`cached_reader`); an archive changed on disk is
reopened. The archive is opened read-only.
"""

from __future__ import annotations

import os
import re
import stat
import tarfile
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator

from vscan.errors import ArchiveError, ArchiveMemberError

__all__ = ["MEMBER_SEPARATOR", "RATIO_FLOOR_BYTES", "ArchiveLimits", "ArchiveReader", "cached_reader", "unsafe_name"]

MEMBER_SEPARATOR = "!/"
#: Members smaller than this are never refused for their compression ratio.
RATIO_FLOOR_BYTES = 1 << 20
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


def unsafe_name(name: str) -> str | None:
    """Why a member name would escape an extraction folder, or None."""
    if "\x00" in name:
        return "NUL in name"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "'..' component"
    return None


@dataclass
class _Entry:
    name: str
    kind: str  # "file", "dir", "link", "special"
    size: int  # declared uncompressed size
    compressed: int | None  # zip: compressed size
    end: int  # uncompressed archive content up to the end of this member
    info: object  # ZipInfo or TarInfo


class ArchiveReader:
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
        handle = self._tar.extractfile(entry.info)
        if handle is None:
            raise ArchiveMemberError(f"{self.path}{MEMBER_SEPARATOR}{entry.name}: no data")
        return handle


_open_archives: "OrderedDict[tuple[str, ArchiveLimits], ArchiveReader]" = OrderedDict()


def cached_reader(path: str, limits: ArchiveLimits) -> ArchiveReader:
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
    archive = ArchiveReader(path, limits)
    _open_archives[key] = archive
    while len(_open_archives) > _CACHE_SIZE:
        _open_archives.popitem(last=False)[1].close()
    return archive

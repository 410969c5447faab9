"""One open disk image: container, partitions, file systems, files listed lazily within the limits.

The container is a raw image (``.dd``, ``.img``, ``.raw``) or an EnCase/EWF
image (``.E01`` and its split segments ``.E02``, ...). Both are opened
through read-only file objects of our own (``open(path, "rb")``; libewf is
given those objects, never a path), so nothing here can write to the
evidence. The Sleuth Kit (pytsk3) reads the partition table (MBR, GPT; an
image without one is read as a single file system) and the file systems
(NTFS, FAT12/16/32, exFAT, ext2/3/4, and the others TSK knows).

Members are named ``p<N>/<path>`` (``N``: the partition's place among the
image's partitions in disk order, from 1) or ``<path>`` for an image that is
one bare file system. A partition whose file system cannot be opened is
itself an entry (kind ``"error"``), so it gets one record saying why. Only
allocated names are listed: deleted files are not (yet) recovered.

Limits (``ArchiveLimits``, the ``archives`` config section): a member over
``member_max_bytes`` or ending past ``total_max_bytes`` of listed member
bytes is refused unread; the listing keeps at most ``max_entries`` members
(only members are counted: a disk holds far more files than it holds media);
a name that could escape a folder (``/``, ``..``, NUL) is refused. A
directory reached twice (a crafted loop) is not walked again; folders are
walked with a stack of our own, at most ``MAX_DIR_DEPTH`` levels deep; a
folder that cannot be read or lies deeper gets its own FileAccessError
record and the rest of the image is still listed. Names keep their raw
bytes (vscan.inputs.paths).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterator

from vscan.errors import ArchiveError, ArchiveMemberError, FileAccessError
from vscan.inputs.containers import MEMBER_SEPARATOR, ArchiveLimits, LazyListing, cached, unsafe_name
from vscan.inputs.paths import MAX_DIR_DEPTH

__all__ = ["EWF_SUFFIXES", "RAW_SUFFIXES", "DiskEntry", "DiskImage", "cached_image"]

EWF_SUFFIXES = (".e01",)
RAW_SUFFIXES = (".dd", ".img", ".raw")
#: NTFS metadata files ($MFT, $LogFile, ..., $Extend) live in the first MFT records.
_NTFS_RESERVED = 16


@dataclass
class DiskEntry:
    name: str  # member name: "p2/Users/a/x.mp4"
    kind: str  # "file", "link", "special", "error"
    size: int
    end: int  # member bytes listed up to the end of this one
    fs: object = None  # pytsk3.FS_Info
    addr: int = 0  # metadata address (inode, MFT record, directory entry)
    why: str = ""  # kind "error": why the partition was not read


def _tsk():
    try:
        import pytsk3
    except ImportError as exc:  # a base dependency: only a broken install lacks it
        raise ArchiveError(f"disk images need pytsk3 ({exc}): pip install pytsk3") from exc
    return pytsk3


def _container(path: str):
    """(pytsk3 image, the file objects it reads through) for a raw or EWF image."""
    pytsk3 = _tsk()
    if path.lower().endswith(EWF_SUFFIXES):
        try:
            import pyewf
        except ImportError as exc:
            raise ArchiveError(f"{path}: EWF images need libewf-python ({exc}): pip install libewf-python") from exc
        try:
            segments = pyewf.glob(path)  # path.E01, .E02, ... in order
        except (OSError, IOError) as exc:
            raise ArchiveError(f"{path}: cannot find the EWF segments: {exc}") from exc
        files = [open(name, "rb") for name in segments]  # read-only
        handle = pyewf.handle()
        try:
            handle.open_file_objects(files, "r")
        except (OSError, IOError) as exc:
            for fh in files:
                fh.close()
            raise ArchiveError(f"{path}: cannot open EWF image ({len(segments)} segments): {exc}") from exc
        size, read = handle.get_media_size(), lambda offset, n: handle.read_buffer_at_offset(n, offset)
        closers = [handle.close, *(fh.close for fh in files)]
    else:
        fh = open(path, "rb")  # read-only
        size, read = os.fstat(fh.fileno()).st_size, lambda offset, n: os.pread(fh.fileno(), n, offset)
        closers = [fh.close]

    class _Image(pytsk3.Img_Info):
        def __init__(self) -> None:
            super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

        def read(self, offset: int, length: int) -> bytes:
            return read(offset, max(0, min(length, size - offset)))

        def get_size(self) -> int:
            return size

    return _Image(), closers


class DiskImage(LazyListing):
    """The members of one disk image, listed lazily in disk order, within the limits."""

    NOUNS = ("disk image", "members")
    MISSING = "no such file in the image"

    def __init__(self, path: str, limits: ArchiveLimits, wanted: Callable[[str], bool]) -> None:
        super().__init__(path, limits)
        self.wanted = wanted
        self._closers: list = []
        try:
            self._img, self._closers = _container(path)
            self._volumes = self._find_volumes()
        except (ArchiveError, OSError) as exc:
            self.close()
            if isinstance(exc, ArchiveError):
                raise
            raise ArchiveError(f"{path}: cannot open disk image: {exc}") from exc
        self._listing = self._list()
        self._total = 0

    def close(self) -> None:
        for close in self._closers:
            close()
        self._closers = []

    def _find_volumes(self) -> list[tuple[str, int, str]]:
        """(member prefix, byte offset, description) of each file system to read."""
        pytsk3 = _tsk()
        try:
            table = pytsk3.Volume_Info(self._img)
        except OSError:
            return [("", 0, "whole image")]  # no partition table: one bare file system
        block = table.info.block_size
        parts = sorted((p for p in table if p.flags == pytsk3.TSK_VS_PART_FLAG_ALLOC), key=lambda p: p.start)
        if not parts:
            raise ArchiveError(f"{self.path}: partition table with no partitions")
        return [(f"p{i}/", p.start * block, p.desc.decode(errors="replace")) for i, p in enumerate(parts, 1)]

    def _list(self) -> Iterator[DiskEntry]:
        pytsk3 = _tsk()
        for prefix, offset, desc in self._volumes:
            try:
                fs = pytsk3.FS_Info(self._img, offset=offset)
            except OSError as exc:
                why = f"no file system The Sleuth Kit reads at offset {offset} ({desc!r}): not scanned: {exc}"
                if not prefix:
                    raise ArchiveError(f"{self.path}: no partition table, and {why}") from exc
                yield DiskEntry(prefix.rstrip("/"), "error", 0, self._total, why=why)
                continue
            ntfs = fs.info.ftype == pytsk3.TSK_FS_TYPE_NTFS
            yield from self._walk(pytsk3, fs, fs.open_dir("/"), prefix, ntfs, set())

    def _walk(self, pytsk3, fs, root, prefix: str, ntfs: bool, seen: set[int]) -> Iterator[DiskEntry]:
        """Depth first, each folder's files then its sub-folders in name order,
        with a stack of our own (a crafted tree of any depth never reaches
        Python's recursion limit) and at most ``MAX_DIR_DEPTH`` levels. A
        folder that cannot be read, or lies past the depth cap, is an entry of
        kind ``"unreadable"`` (its own FileAccessError record) and the walk goes on."""
        stack: list[tuple[object, str, int]] = [(root, prefix, 0)]
        while stack:
            item, where, depth = stack.pop()
            try:
                directory = item if depth == 0 else item.as_directory()
                seen.add(directory.info.addr)
                files, subdirs = self._read_dir(pytsk3, directory, where, ntfs, seen)
            except OSError as exc:  # TSK: a damaged or unreadable folder
                yield self._unreadable(where, f"folder cannot be read: {exc}: its files were not listed")
                continue
            for name, meta in files:
                yield self._member(pytsk3, fs, where + name, meta)
            for name, sub in sorted(subdirs, key=lambda d: d[0], reverse=True):
                if sub.info.meta.addr in seen:
                    continue
                if depth + 1 > MAX_DIR_DEPTH:
                    yield self._unreadable(where + name, f"folder deeper than {MAX_DIR_DEPTH} levels: not walked")
                    continue
                stack.append((sub, where + name + "/", depth + 1))

    def _read_dir(self, pytsk3, directory, where: str, ntfs: bool, seen: set[int]) -> tuple[list, list]:
        """(name, meta) of the wanted files and (name, item) of the sub-folders of one folder."""
        files, subdirs = [], []
        for item in directory:
            raw = item.info.name.name
            if raw in (b".", b"..") or not item.info.name.flags & pytsk3.TSK_FS_NAME_FLAG_ALLOC:
                continue  # deleted names: recovering them is a follow-up
            meta = item.info.meta
            if meta is None or (ntfs and meta.addr < _NTFS_RESERVED):
                continue
            # Lossless: bytes that are not UTF-8 stay as escaped surrogates (vscan.inputs.paths)
            name = raw.decode("utf-8", errors="surrogateescape")
            if meta.type == pytsk3.TSK_FS_META_TYPE_DIR:
                if "/" not in name and meta.addr not in seen:
                    subdirs.append((name, item))
                continue
            if meta.type in (pytsk3.TSK_FS_META_TYPE_VIRT, pytsk3.TSK_FS_META_TYPE_VIRT_DIR):
                continue  # TSK's own virtual files ($MBR, $FAT1, $OrphanFiles)
            unsafe = "/" in name or unsafe_name(name) is not None
            if unsafe or self.wanted(where + name):
                files.append((name, meta))
        return files, subdirs

    def _count(self) -> None:
        if len(self.entries) >= self.limits.max_entries:
            raise ArchiveError(
                f"{self.path}: listing stopped after {self.limits.max_entries} members: "
                f"more than archive_max_entries ({self.limits.max_entries})"
            )

    def _member(self, pytsk3, fs, member: str, meta) -> DiskEntry:
        kind = "file" if meta.type == pytsk3.TSK_FS_META_TYPE_REG else "link" if meta.type == pytsk3.TSK_FS_META_TYPE_LNK else "special"
        size = int(meta.size) if kind == "file" else 0
        self._total += size
        self._count()
        return DiskEntry(member, kind, size, self._total, fs, int(meta.addr))

    def _unreadable(self, member: str, why: str) -> DiskEntry:
        self._count()
        return DiskEntry(member, "unreadable", 0, self._total, why=why)

    def check(self, entry: DiskEntry) -> None:
        """Raise for an entry that must not be read (ArchiveError for a partition)."""
        where = f"{self.path}{MEMBER_SEPARATOR}{entry.name}"
        limits = self.limits
        if entry.kind == "error":
            raise ArchiveError(f"{where}: {entry.why}")
        if entry.kind == "unreadable":
            raise FileAccessError(f"{where}: {entry.why}")
        base = entry.name.rsplit("/", 1)[-1]
        if "/" in base or unsafe_name(base):
            raise ArchiveMemberError(f"{where}: path traversal ({unsafe_name(base) or 'slash in name'}): not read")
        if entry.kind == "link":
            raise ArchiveMemberError(f"{where}: link: not followed, not read")
        if entry.kind != "file":
            raise ArchiveMemberError(f"{where}: not a regular file ({entry.kind}): not read")
        if entry.size > limits.member_max_bytes:
            raise ArchiveMemberError(f"{where}: size {entry.size} exceeds archive_member_max_bytes ({limits.member_max_bytes}): not read")
        if entry.end > limits.total_max_bytes:
            raise ArchiveMemberError(f"{where}: ends past archive_total_max_bytes ({limits.total_max_bytes}) of this image's members: not read")

    def read_blocks(self, entry: DiskEntry, chunk: int) -> Iterator[bytes]:
        """The member's bytes, ``chunk`` at a time, straight from the image."""
        handle = entry.fs.open_meta(inode=entry.addr)
        offset = 0
        while offset < entry.size:
            block = handle.read_random(offset, min(chunk, entry.size - offset))
            if not block:
                raise ArchiveMemberError(f"{self.path}{MEMBER_SEPARATOR}{entry.name}: read stopped at byte {offset} of {entry.size}")
            offset += len(block)
            yield block


_open_images: "OrderedDict[tuple, DiskImage]" = OrderedDict()


def cached_image(path: str, limits: ArchiveLimits, wanted: Callable[[str], bool], all_files: bool) -> DiskImage:
    """The image, from this process's cache when unchanged on disk."""
    return cached(_open_images, (path, limits, all_files), path, lambda: DiskImage(path, limits, wanted))  # type: ignore[return-value]

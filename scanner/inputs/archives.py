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
the header says, and a compressed tar's member stops as soon as its bytes
inflated pass ``archive_max_ratio`` times the compressed bytes they came
from (measured per member as it is read or skipped). Listing a compressed
tar stops at the same total and per-member ratio limits, and any archive's
listing at ``archive_max_entries`` entries (a zip's end record is checked
before its directory is read); the archive then gets an ``ArchiveError``
record for the unlisted rest.

Not handled: nested archives (an archive member named ``.zip`` is scanned
like any other non-media member: passed over), encrypted zip members
(``ArchiveMemberError``), a member name occurring twice (its first entry is
scanned, once). Compressed tars have no random access: each worker process
keeps one decompressing stream per archive and reads members in archive
order (the order they are dispatched in), one pass in all; only a member
requested behind the stream's position means decompressing from the start
again.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vscan.errors import ArchiveError, ArchiveMemberError
from vscan.inputs import disk_images
from vscan.inputs.archive_reader import (
    MEMBER_SEPARATOR,
    RATIO_FLOOR_BYTES,
    ArchiveLimits,
    ArchiveReader,
    cached_reader,
    unsafe_name,
)
from vscan.inputs.containers import member_path, split_path
from vscan.inputs.media_types import MEDIA_SUFFIXES

__all__ = [
    "ARCHIVE_SUFFIXES",
    "MEMBER_SEPARATOR",
    "ArchiveLimits",
    "is_archive",
    "is_container",
    "split_member",
    "iter_member_paths",
    "open_member",
]

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_CHUNK = 1 << 20


def is_archive(path: str | os.PathLike) -> bool:
    """True for a name ending in a zip or tar suffix."""
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def is_container(path: str | os.PathLike) -> bool:
    """True for an archive or a disk image (vscan.inputs.disk_images): its members are scanned."""
    return is_archive(path) or disk_images.is_disk_image(path)


def split_member(path: str | os.PathLike) -> tuple[str, str] | None:
    """(container path, member name) for ``archive.zip!/name`` or
    ``disk.E01!/p1/name`` (vscan.inputs.containers.member_path); None for other paths."""
    return split_path(path, is_container)


def _has_media_suffix(name: str) -> bool:
    return os.path.splitext(name.rstrip("/"))[1].lower() in MEDIA_SUFFIXES


# --------------------------------------------------------------------------
# driver side: list
# --------------------------------------------------------------------------


def iter_member_paths(path: str | os.PathLike, *, all_files: bool = False, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[str]:
    """``archive!/member`` paths to scan, streaming; the archive path itself
    (once, last) when it cannot be opened or fully listed."""
    path = str(path)
    try:
        archive = ArchiveReader(path, limits)  # not cached: the driver lists each archive once
    except (ArchiveError, OSError):
        yield path
        return
    try:
        seen: set[str] = set()
        for entry in archive.iter_entries():
            if entry.name in seen:
                continue
            wanted = unsafe_name(entry.name) is not None or (
                entry.kind in ("file", "link", "special") and (all_files or _has_media_suffix(entry.name))
            )
            if wanted:
                seen.add(entry.name)
                yield member_path(path, entry.name)
        if archive.error is not None:
            yield path
    finally:
        archive.close()


def archive_error(path: str, limits: ArchiveLimits, *, all_files: bool = False) -> ArchiveError:
    """Why an archive or disk image got a record of its own (re-listed in the worker)."""
    if disk_images.is_disk_image(path):
        return disk_images.image_error(path, limits, all_files=all_files)
    try:
        archive = ArchiveReader(path, limits)
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
def open_member(path: str, limits: ArchiveLimits, *, all_files: bool = False) -> Iterator[Path]:
    """The member's bytes in an anonymous in-memory file; yields its path
    (``/proc/self/fd/N``, named after the member so its suffix picks the
    decoder). Reading stops at ``limits.member_max_bytes``. Disk image
    members go to vscan.inputs.disk_images (``all_files`` as listed)."""
    from vscan.inputs.memory import memory_file

    parts = split_member(path)
    if parts is None:
        raise ArchiveMemberError(f"{path}: not an archive member path")
    archive_path, name = parts
    if disk_images.is_disk_image(archive_path):
        with disk_images.open_member(path, limits, all_files=all_files) as fd_path:
            yield fd_path
        return
    try:
        archive = cached_reader(archive_path, limits)
    except OSError as exc:
        raise ArchiveError(f"{archive_path}: cannot open archive: {exc}") from exc
    entry = archive.find(name)
    archive.check(entry)
    packed = entry.compressed  # zip; a compressed tar's members are measured as read (archive_reader.Inflater)
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
        except ArchiveError as exc:  # a compressed tar's limits, met while inflating
            raise ArchiveMemberError(f"{path}: {exc}") from exc
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as exc:
            # RuntimeError/NotImplementedError: encrypted or unsupported zip compression.
            raise ArchiveMemberError(f"{path}: cannot read member: {type(exc).__name__}: {exc}") from exc
        yield fd_path


# --------------------------------------------------------------------------
# the scan's entry points (vscan.inputs.discover and vscan.runtime.decode_task)
# --------------------------------------------------------------------------


def expand(path: str, *, all_files: bool = False, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[str]:
    """``path`` itself, or the member paths of the zip/tar file or disk image it names."""
    if is_archive(path) and os.path.isfile(path):
        yield from iter_member_paths(path, all_files=all_files, limits=limits)
    elif disk_images.is_disk_image(path) and os.path.isfile(path):
        yield from disk_images.iter_member_paths(path, all_files=all_files, limits=limits)
    else:
        yield path


def handles(path: str) -> bool:
    """True for an archive or disk image member path, or an archive or
    image path (which reaches decoding only when it could not be listed)."""
    if is_container(path):
        return True
    return split_member(path) is not None  # its container exists: a member, even where a file has its path (discover)

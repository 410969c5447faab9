"""Disk images scanned in place: E01/EWF (split segments too) and raw ``.dd``/``.img``/``.raw``.

Each media file inside gets one record, under a path such as
``disk.E01!/p2/Users/a/Videos/x.mp4`` (``p2``: the image's second partition
in disk order; an image without a partition table is one file system and its
files follow ``!/`` directly). The driver only *lists* an image
(:func:`iter_member_paths`); each file is read inside its Ray decode task
(:func:`open_member`) through The Sleuth Kit from the read-only image into
an anonymous in-memory file (``memfd``) and decoded from there, exactly as
zip/tar members are (``vscan.inputs.archives``). Nothing is extracted to a
file system; the image's bytes and times are never changed.

Which entries get a record (``vscan.inputs.disk_reader`` lists them):

* allocated regular files with a media suffix (any file with ``all_files``);
* links, devices, FIFOs with a media suffix, and unsafe names:
  ``ArchiveMemberError``, never read;
* a partition whose file system cannot be read (encrypted, unknown, swap):
  one ``ArchiveError`` record for ``disk.E01!/p3``;
* an image that cannot be opened (no partition table and no file system,
  missing EWF segments, corrupt) or fully listed: one ``ArchiveError`` record
  for the image path itself, after the members listed before the failure.

The ``archives`` limits apply: ``member_max_bytes`` per file,
``total_max_bytes`` of media bytes read from one image, ``max_entries``
media files listed per image. Not handled: deleted (unallocated) files,
volume shadow copies, encrypted volumes (BitLocker, LUKS), LVM, APFS
containers, EWF2 (``.Ex01``) and split raw (``.001``) images.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vscan.errors import ArchiveError, ArchiveMemberError
from vscan.inputs.archive_reader import ArchiveLimits
from vscan.inputs.containers import member_path, split_path
from vscan.inputs.disk_reader import EWF_SUFFIXES, RAW_SUFFIXES, DiskImage, cached_image
from vscan.inputs.media_types import MEDIA_SUFFIXES

__all__ = ["DISK_IMAGE_SUFFIXES", "is_disk_image", "split_member", "iter_member_paths", "image_error", "open_member"]

DISK_IMAGE_SUFFIXES = EWF_SUFFIXES + RAW_SUFFIXES
_CHUNK = 1 << 20


def is_disk_image(path: str | os.PathLike) -> bool:
    """True for a name ending in a disk image suffix (``.E01``, ``.dd``, ``.img``, ``.raw``)."""
    return str(path).lower().endswith(DISK_IMAGE_SUFFIXES)


def split_member(path: str | os.PathLike) -> tuple[str, str] | None:
    """(image path, member name) for ``disk.E01!/p1/name``; None for other paths."""
    return split_path(path, is_disk_image)


def _wanted(all_files: bool):
    if all_files:
        return lambda member: True
    return lambda member: os.path.splitext(member)[1].lower() in MEDIA_SUFFIXES


def iter_member_paths(path: str | os.PathLike, *, all_files: bool = False, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[str]:
    """``image!/member`` paths to scan, streaming; the image path itself
    (once, last) when it cannot be opened or fully listed."""
    path = str(path)
    try:
        image = DiskImage(path, limits, _wanted(all_files))  # not cached: the driver lists each image once
    except (ArchiveError, OSError):
        yield path
        return
    try:
        seen: set[str] = set()
        for entry in image.iter_entries():
            if entry.name not in seen:
                seen.add(entry.name)
                yield member_path(path, entry.name)
        if image.error is not None:
            yield path
    finally:
        image.close()


def image_error(path: str, limits: ArchiveLimits, *, all_files: bool = False) -> ArchiveError:
    """Why an image got a record of its own (re-listed in the worker)."""
    try:
        image = DiskImage(path, limits, _wanted(all_files))
    except ArchiveError as exc:
        return exc
    except OSError as exc:
        return ArchiveError(f"{path}: cannot open disk image: {exc}")
    try:
        for _ in image.iter_entries():
            pass
        return image.error or ArchiveError(f"{path}: disk image listed without error on a second try (changed during the scan?)")
    finally:
        image.close()


@contextmanager
def open_member(path: str, limits: ArchiveLimits, *, all_files: bool = False) -> Iterator[Path]:
    """The file's bytes, read from the image into an anonymous in-memory
    file; yields its path (``/proc/self/fd/N``, named after the file so its
    suffix picks the decoder)."""
    from vscan.inputs.memory import memory_file

    parts = split_member(path)
    if parts is None:
        raise ArchiveMemberError(f"{path}: not a disk image member path")
    image_path, name = parts
    try:
        image = cached_image(image_path, limits, _wanted(all_files), all_files)
    except OSError as exc:
        raise ArchiveError(f"{image_path}: cannot open disk image: {exc}") from exc
    entry = image.find(name)
    image.check(entry)
    with memory_file(os.path.basename(name)) as (fd, fd_path):
        try:
            for block in image.read_blocks(entry, _CHUNK):
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view) :]
        except OSError as exc:  # TSK: a damaged file system or image
            raise ArchiveMemberError(f"{path}: cannot read file from the image: {exc}") from exc
        yield fd_path

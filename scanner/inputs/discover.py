"""Discovery: the input files of a scan, streamed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from vscan.inputs.archives import ArchiveLimits, expand, handles, is_container, split_member
from vscan.inputs.media_types import MEDIA_SUFFIXES

__all__ = ["discover", "is_small", "real_path", "MEDIA_SUFFIXES"]


def real_path(path: str) -> str:
    """The file a path names, whatever links and ``..`` lead to it (members:
    the archive's real path plus the member name)."""
    member = split_member(path)
    if member is not None:
        return os.path.realpath(member[0]) + "!/" + member[1]
    return os.path.realpath(path)


def discover(paths: Iterable[str | os.PathLike], *, all_files: bool = False, archive_limits=None, list_containers: bool = True) -> Iterator[str]:
    """Stream input files, each real file once: named files always, folders
    walked in sorted order (media suffixes only unless ``all_files``). A
    file reached twice (a folder given twice, a file inside a folder also
    given, a symlink to a file already seen) is yielded once, under the
    first path that reached it. A missing path is yielded too, so it gets
    its own error record. Zip/tar files yield their media members as
    ``archive.zip!/member``, disk images (E01, dd) their media files as
    ``disk.E01!/p1/path`` (vscan.inputs.archives, vscan.inputs.disk_images);
    with ``list_containers=False`` they are yielded themselves, for the
    caller to list (the scan lists them in Ray tasks: vscan.runtime.listing)."""
    seen: set[str] = set()
    limits = archive_limits or ArchiveLimits()

    def listed(path: str) -> Iterator[str]:
        if not list_containers and is_container(path) and os.path.isfile(path):
            return iter((path,))
        return expand(path, all_files=all_files, limits=limits)

    for path in _walk(paths, all_files=all_files, expand=listed):
        real = real_path(path)
        if real not in seen:
            seen.add(real)
            yield path


def _walk(paths: Iterable[str | os.PathLike], *, all_files: bool, expand) -> Iterator[str]:
    for root in paths:
        root = Path(root)
        if not root.is_dir():
            yield from expand(str(root))
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            # A folder (or a link to one) named like media is not silently
            # passed over: it gets its own error record, and is still walked.
            media_dirs = [d for d in dirnames if Path(d).suffix.lower() in MEDIA_SUFFIXES]
            for name in sorted(filenames + media_dirs):
                if all_files or Path(name).suffix.lower() in MEDIA_SUFFIXES or is_container(name):
                    yield from expand(os.path.join(dirpath, name))


def is_small(path: str, limit: int) -> bool:
    """A plain file under ``limit`` bytes (archive members and unreadable paths are not)."""
    if limit <= 0 or handles(path):
        return False
    try:
        return os.stat(path).st_size < limit
    except OSError:
        return False

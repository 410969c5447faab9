"""Discovery: the input files of a scan, streamed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from vscan.inputs.archives import ArchiveLimits, expand, handles, is_archive
from vscan.inputs.media_types import MEDIA_SUFFIXES

__all__ = ["discover", "is_small", "MEDIA_SUFFIXES"]


def discover(paths: Iterable[str | os.PathLike], *, all_files: bool = False, archive_limits=None) -> Iterator[str]:
    """Stream input files: named files always, folders walked in sorted order
    (media suffixes only unless ``all_files``). A missing path is yielded too,
    so it gets its own error record. Zip/tar files yield their media members
    as ``archive.zip!/member`` (vscan.inputs.archives)."""
    limits = archive_limits or ArchiveLimits()
    for root in paths:
        root = Path(root)
        if not root.is_dir():
            yield from expand(str(root), all_files=all_files, limits=limits)
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            # A folder (or a link to one) named like media is not silently
            # passed over: it gets its own error record, and is still walked.
            media_dirs = [d for d in dirnames if Path(d).suffix.lower() in MEDIA_SUFFIXES]
            for name in sorted(filenames + media_dirs):
                if all_files or Path(name).suffix.lower() in MEDIA_SUFFIXES or is_archive(name):
                    yield from expand(os.path.join(dirpath, name), all_files=all_files, limits=limits)



def is_small(path: str, limit: int) -> bool:
    """A plain file under ``limit`` bytes (archive members and unreadable paths are not)."""
    if limit <= 0 or handles(path):
        return False
    try:
        return os.stat(path).st_size < limit
    except OSError:
        return False

"""Discovery: the input files of a scan, streamed."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

from vscan.errors import FileAccessError, error_info
from vscan.inputs.archives import ArchiveLimits, expand, handles, is_container, split_member
from vscan.inputs.containers import escaped, member_path
from vscan.inputs.media_types import MEDIA_SUFFIXES
from vscan.inputs.objectstore import is_uri, list_uri, normalize
from vscan.inputs.paths import MAX_DIR_DEPTH

__all__ = ["discover", "is_small", "real_path", "refused", "Refused", "MEDIA_SUFFIXES"]


def real_path(path: str) -> str:
    """The file a path names, whatever links and ``..`` lead to it (members:
    the archive's real path plus the member name)."""
    member = split_member(path)
    if member is not None:
        return member_path(os.path.realpath(member[0]), member[1])
    return os.path.realpath(path)


def discover(paths: Iterable[str | os.PathLike], *, all_files: bool = False, archive_limits=None, list_containers: bool = True,
             follow_links: bool = False) -> Iterator[str]:  # fmt: skip
    """Stream input files, each real file once: named files always, folders
    walked in sorted order (media suffixes only unless ``all_files``). A
    file reached twice (a folder given twice, a file inside a folder also
    given, a symlink to a file already seen) is yielded once, under the
    first path that reached it. A missing path is yielded too, so it gets
    its own error record. Zip/tar files yield their media members as
    ``archive.zip!/member``, disk images (E01, dd) their media files as
    ``disk.E01!/p1/path`` (vscan.inputs.archives, vscan.inputs.disk_images);
    with ``list_containers=False`` they are yielded themselves, for the
    caller to list (the scan lists them in Ray tasks: vscan.runtime.listing).
    A symbolic link in a folder to a file outside every input given (the folders and files of
    ``paths``) is a :class:`Refused` path unless ``follow_links``: on a mounted disk image an absolute
    link names this machine's own files, which would be scanned (and matched) under the evidence's
    path. A file named on the command line is always read, wherever its links lead."""
    seen: set[str] = set()
    limits = archive_limits or ArchiveLimits()

    def listed(path: str) -> Iterator[str]:
        if not list_containers and is_container(path) and os.path.isfile(path):
            return iter((path,))
        return expand(path, all_files=all_files, limits=limits)

    for path in _walk(paths, all_files=all_files, expand=listed, follow_links=follow_links):
        if is_uri(path):  # an object key: unique in its listing, not remembered (a bucket may hold millions)
            yield path
            continue
        real = path if isinstance(path, Refused) else real_path(path)  # a refused path: its own record, never folded
        if real not in seen:
            seen.add(real)
            yield path


class Refused(str):
    """A discovered path that gets its error record without being decoded: a
    folder that cannot be listed, or one past the walk's depth cap. It is
    its path (a ``str``) with ``error``, the record's error (vscan.errors.error_info)."""

    error: dict


def refused(path: str, exc: BaseException) -> Refused:
    found = Refused(path)
    found.error = error_info(exc)
    return found


def _entries(folder: str) -> tuple[list[str], list[str], list[str], set[str]]:
    """(files, folders, folders to walk, links) in ``folder``, sorted by name:
    as os.walk sees them (a link to a folder is a folder, never walked); links: the
    names that are symbolic links."""
    files, dirs, walk, links = [], [], [], set()
    with os.scandir(folder) as it:
        for entry in it:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry.name)
            if entry.is_symlink():
                links.add(entry.name)
            elif is_dir:
                walk.append(entry.name)
    return sorted(files), sorted(dirs), sorted(walk), links


def _outside(path: str, roots: Callable[[], list[str]]) -> FileAccessError | None:
    """The error for a link to a file outside every one of ``roots()`` (the inputs' real paths), or None."""
    target = os.path.realpath(path)
    if any(target == root or target.startswith(root.rstrip(os.sep) + os.sep) for root in roots()):
        return None
    return FileAccessError(f"{path}: a symbolic link to {target}, outside the inputs given: not followed (on a mounted "
                           "disk image an absolute link names this machine's own files; --follow-links reads it)")  # fmt: skip


def _walk(paths: Iterable[str | os.PathLike], *, all_files: bool, expand, follow_links: bool = False) -> Iterator[str]:
    """Each folder's files in name order, then its sub-folders, depth first,
    with a stack of our own (no recursion: a tree of any depth is walked
    within MAX_DIR_DEPTH levels). A folder that cannot be listed, or lies
    deeper, is yielded as a :class:`Refused` path: its own FileAccessError
    record, and the walk goes on."""
    paths = list(paths)

    @functools.cache
    def roots() -> list[str]:  # the inputs' real paths, resolved once the walk meets a link (none: never)
        return [os.path.realpath(p) for p in paths if not is_uri(p) and split_member(os.fspath(p)) is None]

    for root in paths:
        if is_uri(root):  # s3://bucket/prefix: listed page by page (vscan.inputs.objectstore)
            yield from list_uri(normalize(root), all_files=all_files)
            continue
        root = os.fspath(root)
        if not os.path.isdir(root):
            yield from expand(str(root))
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            folder, depth = stack.pop()
            try:
                filenames, dirnames, walk, links = _entries(folder)
            except OSError as exc:
                yield refused(folder, FileAccessError(f"{folder}: folder cannot be listed: {exc.strerror or exc}: its files were not scanned"))
                continue
            # A folder (or a link to one) named like media is not silently
            # passed over: it gets its own error record, and is still walked.
            media_dirs = [d for d in dirnames if Path(d).suffix.lower() in MEDIA_SUFFIXES]
            for name in sorted(filenames + media_dirs):
                if all_files or Path(name).suffix.lower() in MEDIA_SUFFIXES or is_container(name):
                    away = None if follow_links or name not in links else _outside(os.path.join(folder, name), roots)
                    if away is not None:
                        yield refused(os.path.join(folder, name), away)
                        continue
                    yield from _named_once(os.path.join(folder, name), expand)
            for name in reversed(walk):
                sub = os.path.join(folder, name)
                if depth + 1 > MAX_DIR_DEPTH:
                    yield refused(sub, FileAccessError(f"{sub}: folder deeper than {MAX_DIR_DEPTH} levels below {root}: not walked"))
                    continue
                stack.append((sub, depth + 1))


def _named_once(path: str, expand) -> Iterator[str]:
    """``expand(path)``; or, when ``path`` is also the path of a member (a folder named ``x.zip!``
    beside an archive ``x.zip``: ``x.zip!/b.mp4`` names both), a FileAccessError record under the
    path written as members write names (``x.zip!!/b.mp4``): the member keeps the plain path."""
    member = split_member(path)
    if member is None:
        yield from expand(path)
        return
    yield refused(escaped(path), FileAccessError(
        f"{path}: this file's path is also the path of member {member[1]!r} of {member[0]}: "
        f"not scanned, so that each record names one thing (rename the folder {os.path.dirname(path)!r} to scan it)"))  # fmt: skip


def is_small(path: str, limit: int) -> bool:
    """A plain file under ``limit`` bytes (archive members and unreadable paths are not)."""
    if limit <= 0 or handles(path):
        return False
    try:
        return os.stat(path).st_size < limit
    except OSError:
        return False

"""What archives and disk images share: the member separator, the limits, member-name checks,
a lazily listed container and the per-process cache of open containers
(vscan.inputs.archive_reader for zip/tar, vscan.inputs.disk_reader for disk images)."""

from __future__ import annotations

import os
import re
import stat
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterator

from vscan.errors import ArchiveError, ArchiveMemberError

__all__ = ["MEMBER_SEPARATOR", "HEADER_MAX_BYTES", "ArchiveLimits", "LazyListing", "cached", "escaped", "member_path",
           "split_path", "unsafe_name"]  # fmt: skip

#: Between a container's path and a member's name: ``case.zip!/clip.mp4``, ``disk.E01!/p1/DCIM/clip.mp4``.
#: Names may hold ``!/`` too (a folder named ``x.zip!``, a member named ``a.tar!/b.mp4``): in a member
#: path every run of ``!`` that ends at a ``/`` is written one ``!`` longer, on both sides
#: (``member_path``), so the separator is the one ``!/`` not preceded by another ``!``, and a name
#: without ``!/`` reads as it always did.
MEMBER_SEPARATOR = "!/"
_BANGS_AT_SLASH = re.compile(r"(!+)/")
_ESCAPED_BANGS = re.compile(r"!(!+)/")
_CACHE_SIZE = 4
_DRIVE = re.compile(r"^[A-Za-z]:")

#: The largest tar header block (PAX extended header, GNU long name) read: a
#: header declaring more is refused before any of it is read or allocated.
HEADER_MAX_BYTES = 8 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    member_max_bytes: int = 1 << 30
    max_ratio: float = 100.0
    total_max_bytes: int = 16 << 30
    max_entries: int = 100_000
    header_max_bytes: int = HEADER_MAX_BYTES

    @classmethod
    def from_config(cls, config) -> "ArchiveLimits":
        return cls(config.member_max_bytes, config.max_ratio, config.total_max_bytes, config.max_entries)


def member_path(container: str, name: str) -> str:
    """The path of member ``name`` of the container at ``container``, unambiguous (see MEMBER_SEPARATOR)."""
    return _escape(container) + MEMBER_SEPARATOR + _escape(name)


def escaped(path: str) -> str:
    """A file's own path written as member paths write names (every ``!`` run before ``/`` one longer):
    the record path of a file whose real path is also a member path (vscan.inputs.discover)."""
    return _escape(path)


def _escape(text: str) -> str:
    return _BANGS_AT_SLASH.sub(lambda m: "!" + m.group(0), text) if "!/" in text else text


def _unescape(text: str) -> str:
    return _ESCAPED_BANGS.sub(r"\1/", text) if "!!/" in text else text


def split_path(path: str | os.PathLike, is_container: Callable[[str], bool], *, on_disk: bool = True) -> tuple[str, str] | None:
    """(container path, member name) of a member path whose container ``is_container`` accepts and,
    ``on_disk``, exists (not as a folder); None for other paths: a file's own path that holds ``!/``
    (``case.zip!/inner.tar`` where no ``case.zip`` exists) is not a member path."""
    text = str(path)
    if MEMBER_SEPARATOR not in text:
        return None
    for run in _BANGS_AT_SLASH.finditer(text):
        at = run.end() - len(MEMBER_SEPARATOR)
        if len(run.group(1)) != 1 or run.end() == len(text):
            continue
        container = _unescape(text[:at])
        if is_container(container) and (not on_disk or (os.path.lexists(container) and not os.path.isdir(container))):
            return container, _unescape(text[run.end():])
    return None


def unsafe_name(name: str) -> str | None:
    """Why a member name would escape an extraction folder, or None."""
    if "\x00" in name:
        return "NUL in name"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "'..' component"
    return None


class LazyListing:
    """Members of one container file (an archive, a disk image), listed
    lazily from ``self._listing`` in order, kept for later look-ups; a
    listing that fails keeps what came before and remembers why."""

    #: Exceptions of the listing that end it with an ArchiveError (the rest propagate).
    LISTING_ERRORS: tuple[type[BaseException], ...] = (OSError,)
    #: What the container is and what its members are called, for messages.
    NOUNS = ("container", "members")
    MISSING = "no such member"

    def __init__(self, path: str, limits: ArchiveLimits) -> None:
        self.path = path
        self.limits = limits
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ArchiveError(f"{path}: not a regular file")
        self.key = (st.st_ino, st.st_size, st.st_mtime_ns)
        self.size = st.st_size
        self.entries: list = []
        self.by_name: dict = {}
        self.error: ArchiveError | None = None
        self.done = False

    def _advance(self):
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
        except self.LISTING_ERRORS as exc:
            what, members = self.NOUNS
            self.done = True
            self.error = ArchiveError(f"{self.path}: {what} listing failed after {len(self.entries)} {members}: {type(exc).__name__}: {exc}")
            return None
        self.entries.append(entry)
        self.by_name.setdefault(entry.name, entry)
        return entry

    def iter_entries(self) -> Iterator:
        i = 0
        while True:
            if i < len(self.entries):
                yield self.entries[i]
                i += 1
            elif self._advance() is None:
                return

    def find(self, name: str):
        entry = self.by_name.get(name)
        while entry is None and self._advance() is not None:
            entry = self.by_name.get(name)
        if entry is None:
            where = f"{self.path}{MEMBER_SEPARATOR}{name}"
            raise ArchiveMemberError(f"{where}: not reached: {self.error}" if self.error is not None else f"{where}: {self.MISSING}")
        return entry

    def close(self) -> None:
        raise NotImplementedError


def cached(cache: OrderedDict, key: tuple, path: str, make: Callable[[], LazyListing]) -> LazyListing:
    """The container at ``path`` from this process's ``cache`` while
    unchanged on disk (inode, size, mtime), else ``make()`` it; at most
    ``_CACHE_SIZE`` stay open."""
    hit = cache.get(key)
    if hit is not None:
        try:
            st = os.stat(path)
            if (st.st_ino, st.st_size, st.st_mtime_ns) == hit.key:
                cache.move_to_end(key)
                return hit
        except OSError:
            pass
        cache.pop(key).close()
    opened = cache[key] = make()
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)[1].close()
    return opened

"""The scan's input paths, with archives and disk images listed in Ray tasks.

Discovery (vscan.inputs.discover) walks folders in the driver but leaves
zip/tar files and disk images unlisted; each is listed by
:func:`list_container` in a Ray task (a compressed tar is decompressed to
be listed: that work, up to ``archive_total_max_bytes``, never runs in the
driver's dispatch loop). Paths come out in discovery order, an archive's
members in their place (then the archive itself when it could not be fully
listed: its own error record, as vscan.inputs.archives says): the driver
takes the next path only when it has room for it, and the next archive's
listing runs ahead while earlier files decode, at most ``LOOKAHEAD``
discovered paths ahead. A listing task that dies gives the archive path
itself, whose decode task lists it again and records why it fails.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any, Iterable

from vscan.config import ScanConfig
from vscan.inputs.archives import ArchiveLimits, expand, is_container, split_member
from vscan.inputs.discover import discover, real_path

__all__ = ["ListedInputs", "list_container", "LOOKAHEAD"]

#: Discovered paths read ahead of the driver, so the next archives' listings start early.
LOOKAHEAD = 16


def list_container(path: str, all_files: bool, limits: ArchiveLimits) -> list[str]:
    """The Ray task: the member paths of one archive or disk image (vscan.inputs.archives.expand)."""
    return list(expand(path, all_files=all_files, limits=limits))


class ListedInputs:
    """Input paths for the driver: :meth:`take` the next, or None while it
    waits for an archive's listing (:meth:`pending`); ``done`` at the end."""

    def __init__(self, paths: Iterable[str | os.PathLike], config: ScanConfig) -> None:
        import ray

        self._all_files, self._limits = config.inputs.all_files, ArchiveLimits.from_config(config.archives)
        self._found = discover(paths, all_files=self._all_files, archive_limits=self._limits, list_containers=False,
                               follow_links=config.inputs.follow_links)
        self._list = ray.remote(num_cpus=1, max_retries=1)(list_container)  # a dead worker: once more, then decode records it
        self._ahead: deque[tuple[str, Any]] = deque()  # discovered paths, with their listing's ref (containers)
        self._members: deque[str] = deque()  # the listed archive's paths, not yet taken
        self._seen: set[str] = set()  # member paths taken (a member also named on its own comes once)
        self._discovering = True
        self.done = False

    def pending(self) -> list[Any]:
        """Listing tasks the next path waits for (empty unless take() returned None)."""
        return [ref for _, ref in self._ahead if ref is not None][:1]

    def take(self) -> str | None:
        """The next path to scan; None when there is none yet (a listing is
        running) or none left (``done``)."""
        import ray
        from ray.exceptions import RayError

        while True:
            if self._members:
                path = self._members.popleft()
                if self._first(path):
                    return path
                continue
            self._read_ahead()
            if not self._ahead:
                self.done = True
                return None
            path, ref = self._ahead[0]
            if ref is not None:
                if not ray.wait([ref], timeout=0)[0]:
                    return None
                try:
                    listed = ray.get(ref)
                except RayError:
                    listed = [path]  # the decode task lists it again and records why it fails
                self._ahead.popleft()
                self._members.extend(listed)
                continue
            self._ahead.popleft()
            if self._first(path):
                return path

    def _first(self, path: str) -> bool:
        if split_member(path) is None:
            return True  # discovery saw to it
        real = real_path(path)
        if real in self._seen:
            return False
        self._seen.add(real)
        return True

    def _read_ahead(self) -> None:
        while self._discovering and len(self._ahead) < LOOKAHEAD:
            path = next(self._found, None)
            if path is None:
                self._discovering = False
                return
            listing = None
            if is_container(path) and split_member(path) is None and os.path.isfile(path):
                listing = self._list.remote(path, self._all_files, self._limits)
            self._ahead.append((path, listing))

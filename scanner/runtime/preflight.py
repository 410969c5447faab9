"""Before Ray starts: is there anything to scan at all?

A resumed scan whose every input already has its record (same versions)
has nothing to decode; starting Ray and the model stage for it costs
seconds and does nothing. :func:`nothing_to_scan` answers from discovery
and the resume index alone. Containers (zip/tar, disk images) are listed by
Ray tasks, so an input holding one always starts Ray; so does ``--state``,
whose unchanged files are recognised by their digest in the decode tasks.
"""

from __future__ import annotations

import os
from typing import Iterable

from vscan.config import ScanConfig
from vscan.inputs.archives import ArchiveLimits, is_container, split_member
from vscan.inputs.discover import discover

__all__ = ["nothing_to_scan"]


def nothing_to_scan(paths: Iterable[str | os.PathLike], config: ScanConfig, ledger, *, state_path=None) -> bool:
    """True when every input file has a record that ``ledger`` (a
    vscan.output.resume.RunLedger) skips; the ledger has then counted them,
    as a scan would have. False leaves the ledger's counts as they were."""
    if state_path is not None:
        return False
    paths = list(paths)
    limits = ArchiveLimits.from_config(config.archives)

    def found() -> Iterable[str]:
        for path in discover(paths, all_files=config.inputs.all_files, archive_limits=limits, list_containers=False):
            if is_container(path) and split_member(path) is None:
                raise _HasContainer
            yield path

    counts = (ledger.skipped_resumed, ledger.retried_transient, ledger.retries_exhausted)
    try:
        needs_scan = next(ledger.filter(found()), None) is not None
    except _HasContainer:
        needs_scan = True
    if needs_scan:
        ledger.skipped_resumed, ledger.retried_transient, ledger.retries_exhausted = counts
    return not needs_scan


class _HasContainer(Exception):
    """An archive or disk image among the inputs: its members are listed on Ray."""

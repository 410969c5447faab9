"""Before Ray starts: is there anything to decode at all?

A resumed scan whose every input already has its record (same versions)
has nothing to decode; neither has a ``--state`` run whose every input is
unchanged. Starting Ray and the model stage for them costs seconds and does
nothing. :func:`nothing_to_scan` answers from discovery and the resume
index alone; :func:`records_without_ray` also digests the inputs left (up
to :data:`DRIVER_DIGEST_MAX_BYTES`, in the driver) and, when the state
knows every one, gives their ``unchanged`` records, the same records the
decode tasks would have produced. Containers (zip/tar, disk images) are
listed by Ray tasks, so an input holding one always starts Ray, as do
known-benign lists (checked in the decode tasks) and object-storage inputs.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterable, Iterator

from vscan.config import ScanConfig
from vscan.inputs.archives import ArchiveLimits, is_container, split_member
from vscan.inputs.discover import discover

__all__ = ["nothing_to_scan", "records_without_ray", "write_records", "has_uri", "plain_files", "HasContainer",
           "DRIVER_DIGEST_MAX_BYTES", "PREFLIGHT_MAX_FILES"]  # fmt: skip

#: --state without Ray: at most this many bytes are digested in the driver;
#: past it the decode tasks digest the files, in parallel.
DRIVER_DIGEST_MAX_BYTES = 256 << 20
#: The pre-flight looks at most at this many inputs: a sweep with more starts
#: Ray at once (its discovery is not walked twice before the first decode).
PREFLIGHT_MAX_FILES = 20_000


def nothing_to_scan(paths: Iterable[str | os.PathLike], config: ScanConfig, ledger, *, state_path=None) -> bool:
    """True when every input file has a record that ``ledger`` (a
    vscan.output.resume.RunLedger) skips; the ledger has then counted them,
    as a scan would have. False leaves the ledger's counts as they were."""
    if state_path is not None:
        return False
    paths = list(paths)
    if has_uri(paths):
        return False
    counts = (ledger.skipped_resumed, ledger.retried_transient, ledger.retries_exhausted)
    try:
        needs_scan = next(ledger.filter(plain_files(paths, config)), None) is not None
    except HasContainer:
        needs_scan = True
    if needs_scan:
        ledger.skipped_resumed, ledger.retried_transient, ledger.retries_exhausted = counts
    return not needs_scan


def has_uri(paths: list) -> bool:
    """Object-storage inputs (s3://) are listed and read by the scan proper, never twice."""
    from vscan.inputs.objectstore import is_uri

    return any(is_uri(p) for p in paths)


def plain_files(paths, config: ScanConfig) -> Iterator[str]:
    """The inputs' files as discovery lists them, containers unopened; raises ``HasContainer`` at
    an archive or disk image (its members need the scan proper) or past ``PREFLIGHT_MAX_FILES``."""
    limits = ArchiveLimits.from_config(config.archives)
    for n, path in enumerate(discover(paths, all_files=config.inputs.all_files, archive_limits=limits, list_containers=False,
                                          follow_links=config.inputs.follow_links)):
        if n >= PREFLIGHT_MAX_FILES or (is_container(path) and split_member(path) is None):
            raise HasContainer
        yield path


class HasContainer(Exception):
    """An archive or disk image among the inputs (its members are listed on Ray), or more
    inputs than the pre-flight looks at: the scan proper starts."""


class _NeedsRay(Exception):
    """A file the state does not know (or cannot be read here): it is decoded on Ray."""


def records_without_ray(paths: Iterable[str | os.PathLike], config: ScanConfig, ledger, *,
                        state_path=None) -> list[dict[str, Any]] | None:  # fmt: skip
    """The records of a run that needs no decoding (an empty list when every
    input is already recorded), or None when something must be decoded.
    The ledger counts the skipped files only when a list is returned."""
    if state_path is None:
        return [] if nothing_to_scan(paths, config, ledger) else None
    paths = list(paths)
    if ledger.state is None or config.matching.ignore or has_uri(paths):
        return None
    from vscan.inputs.digests import file_digests

    known = ledger.known_sha256() or frozenset()
    counts = (ledger.skipped_resumed, ledger.retried_transient, ledger.retries_exhausted)
    records: list[dict[str, Any]] = []
    digested = 0
    try:
        for path in ledger.filter(plain_files(paths, config)):
            digested += os.path.getsize(path)
            if digested > DRIVER_DIGEST_MAX_BYTES or not os.path.isfile(path):
                raise _NeedsRay
            t0 = time.perf_counter()
            sha256 = file_digests(path)[0]
            if sha256 not in known:
                raise _NeedsRay
            record = ledger.unchanged_record({"path": path, "sha256": sha256, "timings": {"digest": time.perf_counter() - t0}})
            if record is None:
                raise _NeedsRay
            # Digested by the driver: no Ray node decoded it, no model actor saw it.
            records.append({**record, "ran_on": {"decode_node": None, "model_node": None, "model_actor": None}})
    except (_NeedsRay, HasContainer, OSError):
        ledger.skipped_resumed, ledger.retried_transient, ledger.retries_exhausted = counts
        return None
    return records


def write_records(records: list[dict[str, Any]], sink, ledger, summary) -> Iterator[dict[str, Any]]:
    """Stamp, write (one commit) and count ``records``, then hand them out: durable first."""
    if not records:
        return
    batch = [ledger.stamp(r) for r in records]
    sink.write_many(batch)
    for record in batch:
        ledger.recorded(record)
        summary.add(record)
    yield from batch

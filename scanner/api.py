"""The public entry points: scan files, stream their records, hash one file."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from vscan.config import ScanConfig
from vscan.errors import ConfigError, InputError
from vscan.runtime.summary import ScanSummary

__all__ = ["scan", "scan_iter", "ScanRun", "hash_file", "check_inputs"]

PathLike = str | os.PathLike


def check_inputs(paths: Iterable[PathLike], *, bank: PathLike | None, config: ScanConfig) -> list[str]:
    """Usage mistakes caught before anything starts: inputs that do not exist,
    folders with nothing to scan, and a scan that would check nothing (no
    bank and no detector: it would report an all-clear it never looked for).
    Returns the inputs as absolute paths."""
    from vscan.inputs.discover import discover

    out = []
    for raw in paths:
        from vscan.inputs.objectstore import check_uri, is_uri

        if is_uri(raw):  # s3://bucket/prefix: the bucket answers and holds objects there (vscan.inputs.objectstore)
            out.append(check_uri(str(raw)))
            continue
        path = Path(raw)
        if not os.path.lexists(path) and "!/" not in str(path):
            raise InputError(f"{raw}: no such file or folder" + _url_hint(str(raw)))
        # Containers are not listed here (a worker lists them): an archive alone counts as something to scan.
        if path.is_dir() and next(iter(discover([path], all_files=config.inputs.all_files, list_containers=False, follow_links=config.inputs.follow_links)), None) is None:
            which = "files" if config.inputs.all_files else "media files (use --all-files to try every file)"
            raise InputError(f"{raw}: folder holds no {which}")
        out.append(os.path.abspath(path))
    if not out:
        raise InputError("nothing to scan: give at least one file or folder")
    for listed in config.matching.ignore:
        if not os.path.isfile(listed):
            raise InputError(f"{listed}: known-benign list not found (--ignore)")
    for allow in config.matching.allow:
        if not os.path.isfile(allow):
            raise InputError(f"{allow}: allow bank not found (--allow)")
    if bank is None and not config.models.detectors and not config.models.triage:
        raise ConfigError("nothing to check against: give a bank (--bank), a detector model (--model) or --triage; "
                          "a scan without either would report every file as clear")  # fmt: skip
    return out


def _url_hint(text: str) -> str:
    """For an input that looks like a URL: what vscan reads instead (it opens paths only)."""
    # A Path has folded "s3://b/k" to "s3:/b/k"; a one-letter scheme is a Windows drive.
    found = re.match(r"([A-Za-z][A-Za-z0-9+.-]+):/", text)
    if not found:
        return ""
    scheme = found.group(1).lower()
    storage = scheme in ("s3", "gs", "gcs", "az", "abfs", "abfss", "wasb", "wasbs", "oss", "minio")
    where = "the bucket" if storage else "the files"
    return (f" ({scheme}:// is a URL: vscan scans paths on this machine, s3://, gs:// and az:// prefixes and http(s):// "
            f"objects. Mount {where} as a "
            "folder (e.g. gcsfuse, rclone mount) and scan that folder, or copy the files here first)")


class ScanRun:
    """Records as they stream out of a scan (each one already durable in the
    sink), then ``summary`` once iteration has finished. Breaking off early
    stops the scan; what was written stays, and the same call resumes it."""

    def __init__(self, records: Iterator[dict[str, Any]], close: Callable[[], None]) -> None:
        self._records, self._close = records, close
        self.summary: ScanSummary | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            self.summary = yield from self._records
        finally:
            self._close()


def scan_iter(
    paths: PathLike | Iterable[PathLike],
    *,
    bank: PathLike | None = None,
    out: Any = "results.jsonl",
    config: ScanConfig | None = None,
    ray_address: str | None = None,
    risk_policy: Any = None,
    state: PathLike | None = None,
    hash_store: PathLike | None = None,
) -> ScanRun:
    """Like :func:`scan`, as an iterable of records (see :class:`ScanRun`)."""
    from vscan.output.sinks import Sink, open_sink
    from vscan.runtime.driver import stream_scan

    config = config or ScanConfig()
    if not isinstance(config, ScanConfig):
        raise ConfigError(f"Invalid config ({config!r}). Supported values are a vscan.ScanConfig.")
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    inputs = check_inputs(paths, bank=bank, config=config)
    bank_path = os.path.abspath(bank) if bank is not None else None
    if bank_path is not None:
        from vscan.bank.store import Bank

        Bank(bank_path).close()  # a bad bank stops the scan before it starts
    owned = not isinstance(out, Sink)
    sink = open_sink(out) if owned else out
    records = stream_scan(inputs, sink=sink, bank_path=bank_path, config=config, ray_address=ray_address,
                          risk_policy=risk_policy, state_path=state, hash_store=hash_store)  # fmt: skip
    return ScanRun(records, sink.close if owned else (lambda: None))


def scan(
    paths: PathLike | Iterable[PathLike],
    *,
    bank: PathLike | None = None,
    out: Any = "results.jsonl",
    config: ScanConfig | None = None,
    ray_address: str | None = None,
    risk_policy: Any = None,
    state: PathLike | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    hash_store: PathLike | None = None,
) -> ScanSummary:
    """Scan files and folders against ``bank`` (and ``config.models``), one
    record per file to ``out``: a path or URL (``*.jsonl``, ``*.parquet``,
    ``*.sqlite``, ``postgresql://...``) or an open :class:`vscan.output.sinks.Sink`.

    Paths that ``out`` already holds a record for with the same versions are
    skipped, so the same call resumes a killed scan. ``state``: an SQLite file
    that remembers results by content across runs. ``hash_store``: a folder
    keeping every hashed frame for ``vscan rematch`` (vscan.output.hash_store). Ray is started locally
    unless ``ray_address`` names a cluster. Returns the :class:`ScanSummary`.
    """
    run = scan_iter(paths, bank=bank, out=out, config=config, ray_address=ray_address, risk_policy=risk_policy, state=state,
                    hash_store=hash_store)
    for record in run:
        if on_record is not None:
            on_record(record)
    assert run.summary is not None
    return run.summary


def hash_file(path: PathLike, *, policy: Any = None, device: str = "auto"):
    """vPDQ frame hashes of one video or image (every frame by default):
    a :class:`vscan.hashing.vpdq.FrameHashes` (frame numbers, timestamps,
    qualities, 256-bit hashes), as ``vscan hash`` prints them."""
    from vscan.decode import EveryFrame
    from vscan.hashing.media import hash_media
    from vscan.hashing.pdq import PDQHasher

    if not os.path.lexists(path):
        raise InputError(f"{path}: no such file")
    return hash_media(path, policy or EveryFrame(), hasher=PDQHasher(device=device)).frames  # type: ignore[arg-type]

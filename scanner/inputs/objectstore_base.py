"""What every object-store backend shares (vscan.inputs.objectstore and its
``gs://`` / ``az://`` backends): the transient error, the retry budget, the
media-suffix filter and whole-object fetches built on range reads."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

from vscan.errors import VscanError

__all__ = ["OnePerProcess", "bucket_and_key", "ObjectStoreError", "max_attempts", "retry_seconds", "wanted", "fetch_by_ranges", "FETCH_BLOCK_BYTES"]

#: Whole-object fetches go in blocks this large (one request each, retried on its own).
FETCH_BLOCK_BYTES = 8 << 20


class ObjectStoreError(VscanError):
    """The object store kept failing (throttling, 5xx, connection) after every retry: the run's circumstances, not the file's."""

    kind = "transient"


def max_attempts() -> int:
    """Attempts per request before a transient failure is recorded (``VSCAN_OBJECT_MAX_ATTEMPTS``, or the older ``VSCAN_S3_MAX_ATTEMPTS``)."""
    return max(1, int(os.environ.get("VSCAN_OBJECT_MAX_ATTEMPTS") or os.environ.get("VSCAN_S3_MAX_ATTEMPTS") or 10))


def retry_seconds() -> float:
    """A deadline for SDKs that retry by time, not count (Google's): about what ``max_attempts`` backed-off attempts take."""
    return float(os.environ.get("VSCAN_OBJECT_RETRY_SECONDS") or min(120.0, 0.5 * 2 ** min(max_attempts(), 8)))


def wanted(name: str, all_files: bool) -> bool:
    """A key listed for scanning: not a folder marker, and media unless ``--all-files``."""
    from vscan.inputs.media_types import MEDIA_SUFFIXES

    return not name.endswith("/") and (all_files or Path(name).suffix.lower() in MEDIA_SUFFIXES)


def fetch_by_ranges(uri: str, folder: Path, info: dict[str, Any], read_range: Callable[[int, int], bytes]) -> tuple[Path, dict[str, Any]]:
    """The object written to ``folder`` block by block with ``read_range(start, stop)``
    (each request pinned to the version ``info`` names by the backend); info gains ``bytes_read``."""
    local = folder / (Path(uri.split("://", 1)[1]).name or "object")
    size, read = int(info["size_bytes"]), 0
    with open(local, "wb") as out:
        while read < size:
            block = read_range(read, min(size, read + FETCH_BLOCK_BYTES))
            if not block:
                raise ObjectStoreError(f"{uri}: the store sent nothing at byte {read} of {size}")
            out.write(block)
            read += len(block)
    return local, {**info, "bytes_read": read}


T = TypeVar("T")


class OnePerProcess(Generic[T]):
    """The process's SDK client, made by ``make`` on first use (under a lock) and then shared: boto3, Google and Azure
    clients are thread-safe, and one per decode thread cost a client's set-up per file."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make, self._made, self._lock = make, None, threading.Lock()

    def __call__(self) -> T:
        made = self._made
        if made is not None:
            return made
        with self._lock:
            if self._made is None:
                self._made = self._make()
            return self._made


def bucket_and_key(uri: str) -> tuple[str, str]:
    """(bucket or container, key) of ``scheme://bucket/key``."""
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key

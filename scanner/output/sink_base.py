"""The Sink interface, its error, and the JSON form of a record that every sink stores."""

from __future__ import annotations

import fcntl
import json
import math
import os
from abc import ABC, abstractmethod
from typing import Any, Iterator, NamedTuple

from vscan.errors import VscanError
from vscan.inputs.paths import raw_bytes, safe_text

__all__ = ["Sink", "SinkError", "ResumeRow", "resume_row", "to_json_line", "lock_output", "busy_message"]


class SinkError(VscanError):
    """The output sink cannot be opened or written."""


def busy_message(target: str, holder: str = "") -> str:
    """What a second scan on one output is told."""
    who = f" (pid {holder})" if holder else ""
    return (f"{target} is being written by another vscan scan{who}: two scans on one output would duplicate "
            "or corrupt its records. Wait for that scan to end (the same command then resumes), or give this one another --out.")  # fmt: skip


def lock_output(path: "os.PathLike[str] | str", target: str) -> int:
    """An exclusive lock for the run on ``<out>.lock`` beside a file sink
    (flock: released when the process ends, however it ends); its fd. Raises
    SinkError, naming the holder's pid, while another scan holds it."""
    lock_path = os.fspath(path) + ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise SinkError(busy_message(target, holder)) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def unlock_output(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # the flock goes with the last descriptor


def _clean(value: Any) -> Any:
    # JSON has no NaN: an unknown number is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        # A path inside a message may carry bytes that are not UTF-8 (lone
        # surrogates) or NUL: no sink can store those as text (vscan.inputs.paths).
        return safe_text(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json_line(record: dict[str, Any]) -> str:
    return json.dumps(_clean(record), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _columns(record: dict[str, Any]) -> tuple:
    error = record.get("error") or {}
    return (
        record.get("path"),
        record.get("sha256"),
        record.get("status"),
        error.get("type"),
        record.get("risk"),
        to_json_line(record),
    )


class ResumeRow(NamedTuple):
    """What resume needs of a stored record, and nothing more."""

    path: str
    versions: dict[str, Any] | None
    status: str | None
    error_type: str | None
    path_bytes: str | None = None  # base64 raw path, when ``path`` is not the raw name (vscan.inputs.paths)
    error_kind: str | None = None  # input / transient / internal (vscan.errors); None in records before kinds

    @property
    def key(self) -> bytes | None:
        """The path's identity: its raw bytes."""
        if self.path_bytes:
            import base64

            return base64.b64decode(self.path_bytes)
        return None if self.path is None else raw_bytes(self.path)


def resume_row(record: dict[str, Any]) -> ResumeRow:
    error = record.get("error") or {}
    return ResumeRow(record.get("path"), record.get("versions"), record.get("status"), error.get("type"),
                     record.get("path_bytes"), error.get("kind"))  # fmt: skip


class Sink(ABC):
    """Receives one record per input file; ``write`` returns once durable.

    ``write_many`` stores several records with one commit (one fsync, one
    transaction): when it returns, every one of them is durable; when it
    raises, the caller must treat none of them as acknowledged."""

    #: where results go, for messages and the manifest
    target: str

    @abstractmethod
    def write(self, record: dict[str, Any]) -> None: ...

    def write_many(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self.write(record)

    @abstractmethod
    def records(self) -> list[dict[str, Any]]:
        """Every record acknowledged so far, this run and earlier ones, in order."""

    @abstractmethod
    def resume_rows(self) -> Iterator[ResumeRow]:
        """Path, versions and status of every record acknowledged so far, in
        order, streamed in bounded memory (whatever the number of records)."""

    @abstractmethod
    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Store or update (by ``manifest["run_id"]``) one run's manifest."""

    @abstractmethod
    def manifests(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

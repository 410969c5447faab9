"""The Sink interface, its error, and the JSON form of a record that every sink stores."""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from typing import Any

from vscan.errors import VscanError

__all__ = ["Sink", "SinkError", "to_json_line"]


class SinkError(VscanError):
    """The output sink cannot be opened or written."""


def _clean(value: Any) -> Any:
    # JSON has no NaN: an unknown number is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
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


class Sink(ABC):
    """Receives one record per input file; ``write`` returns once durable."""

    #: where results go, for messages and the manifest
    target: str

    @abstractmethod
    def write(self, record: dict[str, Any]) -> None: ...

    @abstractmethod
    def records(self) -> list[dict[str, Any]]:
        """Every record acknowledged so far, this run and earlier ones, in order."""

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

"""Result sinks: where per-file records go, one at a time, as files finish.

    Sink (ABC)
    └── JsonlSink    one JSON object per line; each record flushed and
                     fsync'ed before ``write`` returns (acknowledged =
                     durable), so a crash loses nothing already written.
"""

from __future__ import annotations

import json
import math
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

__all__ = ["Sink", "JsonlSink", "open_sink", "to_json_line"]


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


class Sink(ABC):
    """Receives one record per input file; ``write`` returns once durable."""

    @abstractmethod
    def write(self, record: dict[str, Any]) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class JsonlSink(Sink):
    """Appends JSON lines to ``path`` (created if missing, never truncated)."""

    def __init__(self, path: str | os.PathLike, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")
        self._fsync = fsync

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(to_json_line(record) + "\n")
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def open_sink(target: str | os.PathLike) -> Sink:
    """The sink for ``--out``: a ``.jsonl`` path (the only kind so far)."""
    return JsonlSink(target)

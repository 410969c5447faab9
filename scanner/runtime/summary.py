"""What a scan returns: counts, rates, and the pipeline profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ScanSummary"]


@dataclass
class ScanSummary:
    """Counts over the records a scan wrote, its wall time, and the pipeline profile."""

    files: int = 0
    ok: int = 0
    errors: int = 0
    matched: int = 0
    video_seconds: float = 0.0
    frames_sampled: int = 0
    wall_seconds: float = 0.0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    #: Files sent again after an infrastructure fault (a node or model actor died, frames lost).
    infra_retries: int = 0
    #: Queue depths and stage utilisation (_QueueStats.report), for profiling.
    pipeline: dict[str, Any] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> None:
        self.files += 1
        if record["status"] == "ok":
            self.ok += 1
            self.video_seconds += record.get("duration_seconds") or 0.0
            self.frames_sampled += record.get("frames_sampled") or 0
            if any(m.get("is_match") for m in record["matches"]):
                self.matched += 1
        else:
            self.errors += 1
            kind = record["error"]["type"]
            self.errors_by_type[kind] = self.errors_by_type.get(kind, 0) + 1

    @property
    def video_seconds_per_second(self) -> float:
        return self.video_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def files_per_second(self) -> float:
        return self.files / self.wall_seconds if self.wall_seconds > 0 else 0.0

"""What a scan returns: counts, rates, and the pipeline profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ScanSummary"]


@dataclass
class ScanSummary:
    """Counts over the records a scan wrote, its wall time, and the pipeline profile.

    ``files`` counts the records this run wrote: the files it scanned
    (``scanned``: decoded and matched, ``ok``), the ones it recorded without
    decoding (``skipped_unchanged``: ``--state`` knew their content;
    ``skipped_known_benign``: on an ``--ignore`` list) and the ``errors``.
    Files an earlier run over the same output had already recorded get no
    record and are counted in ``skipped_already_recorded``. ``video_seconds``
    and ``frames_sampled`` count only what this run decoded."""

    files: int = 0
    ok: int = 0
    errors: int = 0
    matched: int = 0
    video_seconds: float = 0.0
    frames_sampled: int = 0
    wall_seconds: float = 0.0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    #: Files with a record from an earlier run over the same output (same versions): no new record.
    skipped_already_recorded: int = 0
    #: ``--state``: content scanned before with the same versions; the record repeats that result.
    skipped_unchanged: int = 0
    #: On a known-benign list (``--ignore``): digested, never decoded.
    skipped_known_benign: int = 0
    #: Files sent again after an infrastructure fault (a node or model actor died, frames lost).
    infra_retries: int = 0
    #: Files scanned as far as they could be read (a video cut off or damaged, a picture cut short: the record's ``partial``).
    read_in_part: int = 0
    #: Queue depths and stage utilisation (_QueueStats.report), for profiling.
    pipeline: dict[str, Any] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> None:
        self.files += 1
        ok = record["status"] == "ok"
        if ok:
            self.ok += 1
            if any(m.get("is_match") for m in record.get("matches") or []):
                self.matched += 1
        skipped = record.get("skipped")
        if skipped == "unchanged":
            # Not tried in this run, whatever the earlier result (an unchanged error included):
            # its seconds were scanned, or its error met, by an earlier run.
            self.skipped_unchanged += 1
            return
        if skipped == "known-benign":
            self.skipped_known_benign += 1
            return
        if not ok:
            self.errors += 1
            kind = record["error"]["type"]
            self.errors_by_type[kind] = self.errors_by_type.get(kind, 0) + 1
            return
        if record.get("partial"):
            self.read_in_part += 1
        self.video_seconds += record.get("duration_seconds") or 0.0
        self.frames_sampled += record.get("frames_sampled") or 0

    @property
    def scanned(self) -> int:
        """Files this run decoded and matched (errors and skipped files not included)."""
        return self.files - self.errors - self.skipped_unchanged - self.skipped_known_benign

    @property
    def skipped(self) -> int:
        """Files not decoded: already recorded, unchanged or known-benign."""
        return self.skipped_already_recorded + self.skipped_unchanged + self.skipped_known_benign

    @property
    def nothing_scanned(self) -> bool:
        """A run that decoded nothing (everything skipped, or no input): rates mean nothing."""
        return self.scanned == 0 and self.errors == 0

    @property
    def video_seconds_per_second(self) -> float:
        return self.video_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def files_per_second(self) -> float:
        return self.files / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def counts_text(self, *, error_kinds: bool = True) -> str:
        """scanned (read in part) / skipped (why) / errors (by kind, with ``error_kinds``) / matched, each counted apart:
        the console's last counts line and the report's header."""
        why = [f"{n} {what}" for n, what in ((self.skipped_already_recorded, "already recorded"), (self.skipped_unchanged, "unchanged"),
                                             (self.skipped_known_benign, "known-benign")) if n]  # fmt: skip
        errors = ", ".join(f"{k} {v}" for k, v in sorted(self.errors_by_type.items())) if error_kinds else ""
        return (f"scanned {self.scanned}" + (f" ({self.read_in_part} read in part)" if self.read_in_part else "")
                + f", skipped {self.skipped}" + (f" ({', '.join(why)})" if why else "")
                + f", errors {self.errors}" + (f" ({errors})" if errors else "") + f", matched {self.matched}")

    def counts(self) -> dict[str, Any]:
        """The counts as a plain dict (the run manifest's ``counts`` and the report's header)."""
        return {"files": self.files, "scanned": self.scanned, "ok": self.ok, "matched": self.matched, "errors": self.errors,
                "errors_by_type": dict(self.errors_by_type), "skipped": self.skipped,
                "skipped_already_recorded": self.skipped_already_recorded, "skipped_unchanged": self.skipped_unchanged,
                "skipped_known_benign": self.skipped_known_benign, "video_seconds": self.video_seconds,
                "frames_sampled": self.frames_sampled, "infra_retries": self.infra_retries, "read_in_part": self.read_in_part}  # fmt: skip

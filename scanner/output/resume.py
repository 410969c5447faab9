"""Resume after a crash, and skip unchanged files on nightly sweeps.

Resume (always on): a scan started over an output that already holds
records skips every input path that has a record stamped with the same
``versions`` (bank, models, result-relevant config: see vscan.output.audit).
Sinks acknowledge a record only once durable and cut a torn last write on
reopen, so a scan killed at any moment and started again with the same
command ends with exactly one record per input file. A changed bank or
model gives new records (stamped with the new versions) next to the old.

Nightly state (``--state FILE``, optional): a SQLite DB keyed by
(sha256, bank_sha256, model_sha256, config_sha256) holding each file's last
record. Decode workers digest a file first and stop there when its content
is known for the current versions; the file still gets its one record: the
previous result, copied, with the current path, ``"skipped": "unchanged"``
and ``"previous_scan"`` (UTC time of the scan that produced it). Errors that
depend on the run, not the content (timeouts, crashes, model failures), are
not remembered: those files are tried again.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from vscan.output.sinks import Sink, to_json_line

__all__ = ["RunLedger", "StateDB"]

_TRANSIENT_ERRORS = {"DecodeTimeoutError", "DecoderCrashError", "ModelError"}


class StateDB:
    """(sha256, versions) -> last record, in one SQLite file (WAL, commit per file)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS scanned (sha256 TEXT NOT NULL, bank_sha256 TEXT NOT NULL, "
            "model_sha256 TEXT NOT NULL, config_sha256 TEXT NOT NULL, scanned_at TEXT NOT NULL, record TEXT NOT NULL, "
            "PRIMARY KEY (sha256, bank_sha256, model_sha256, config_sha256))"
        )

    @staticmethod
    def _key(versions: dict[str, Any]) -> tuple[str, str, str]:
        return (versions["bank_sha256"] or "", versions["model_sha256"], versions["config_sha256"])

    def known(self, versions: dict[str, Any]) -> frozenset[str]:
        rows = self._db.execute(
            "SELECT sha256 FROM scanned WHERE bank_sha256=? AND model_sha256=? AND config_sha256=?", self._key(versions)
        )
        return frozenset(r for (r,) in rows)

    def get(self, sha256: str, versions: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        row = self._db.execute(
            "SELECT record, scanned_at FROM scanned WHERE sha256=? AND bank_sha256=? AND model_sha256=? AND config_sha256=?",
            (sha256, *self._key(versions)),
        ).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    def put(self, record: dict[str, Any], versions: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO scanned VALUES (?, ?, ?, ?, ?, ?)",
            (record["sha256"], *self._key(versions), datetime.now(timezone.utc).isoformat(timespec="seconds"),
             to_json_line(record)),
        )  # fmt: skip

    def close(self) -> None:
        self._db.close()


class RunLedger:
    """What this run may skip, and bookkeeping of what it wrote."""

    def __init__(self, sink: Sink, versions: dict[str, Any], *, state_path: str | os.PathLike | None = None) -> None:
        self.sink = sink
        self.versions = versions
        self.done_paths = {r["path"] for r in sink.records() if r.get("versions") == versions}
        self.skipped_resumed = 0
        self.state = StateDB(state_path) if state_path else None
        self.manifest: dict[str, Any] | None = None

    @classmethod
    def begin(cls, sink: Sink, inputs: list, *, config, bank_path, state_path=None) -> "RunLedger":
        """Digest bank and models, read what the sink holds, store the run's manifest."""
        from vscan.output import audit

        bank = audit.bank_digests(bank_path)
        models = audit.model_digests()
        versions = audit.scan_versions(config, bank, models)
        ledger = cls(sink, versions, state_path=state_path)
        ledger.manifest = audit.start_manifest(
            sink_target=getattr(sink, "target", type(sink).__name__), inputs=[str(p) for p in inputs], config=config,
            bank=bank, models=models, versions=versions, state_path=str(state_path) if state_path else None,
        )  # fmt: skip
        sink.write_manifest(ledger.manifest)
        return ledger

    def finish(self, summary, *, error: BaseException | None = None) -> None:
        """Close the state DB and complete the run's manifest (counts, end time)."""
        from vscan.output import audit

        self.close()
        if self.manifest is not None:
            status = "completed" if error is None else "failed"
            message = None if error is None else f"{type(error).__name__}: {error}"
            self.sink.write_manifest(
                audit.finish_manifest(self.manifest, summary, status=status, skipped_resumed=self.skipped_resumed, error=message)
            )

    def filter(self, paths: Iterable[str]) -> Iterator[str]:
        """Input paths without a record for the current versions yet."""
        for path in paths:
            if path in self.done_paths:
                self.skipped_resumed += 1
                continue
            yield path

    def known_sha256(self) -> frozenset[str] | None:
        return self.state.known(self.versions) if self.state else None

    def unchanged_record(self, summary: dict[str, Any]) -> dict[str, Any] | None:
        """The record of a file whose content was scanned before with these versions."""
        if self.state is None or summary.get("sha256") is None:
            return None
        hit = self.state.get(summary["sha256"], self.versions)
        if hit is None:
            return None
        previous, scanned_at = hit
        return {**previous, "path": summary["path"], "skipped": "unchanged", "previous_scan": scanned_at,
                "timings": {k: round(float(v), 6) for k, v in summary.get("timings", {}).items()}}  # fmt: skip

    def stamp(self, record: dict[str, Any]) -> dict[str, Any]:
        record["versions"] = self.versions
        return record

    def recorded(self, record: dict[str, Any]) -> None:
        if self.state is None or record.get("sha256") is None or record.get("skipped"):
            return
        if record["status"] == "error" and record["error"]["type"] in _TRANSIENT_ERRORS:
            return
        clean = {k: v for k, v in record.items() if k not in ("skipped", "previous_scan")}
        self.state.put(clean, self.versions)

    def close(self) -> None:
        if self.state is not None:
            self.state.close()

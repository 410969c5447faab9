"""Resume after a crash, and skip unchanged files on nightly sweeps.

Resume (always on): a scan started over an output that already holds
records skips every input path that has a record stamped with the same
``versions`` (bank, models, risk policy, vscan version, result-relevant
config: see vscan.output.audit). Sinks acknowledge a record only once
durable and cut a torn last write on reopen, so a scan killed at any moment
and started again with the same command ends with exactly one record per
input file. A changed bank or model gives new records (stamped with the new
versions) next to the old.

A path whose last record is an error that is not the file's own
(``vscan.errors.is_permanent``: a transient timeout, decoder crash, model or
infrastructure error, or an internal error, i.e. a bug) is tried again, until it has been re-tried ``runtime.transient_retries`` times;
the manifest counts the re-tried paths (``retried_transient``) and those
left as they were after their last re-try (``retries_exhausted``).

Resume reads only paths, versions and statuses (``Sink.resume_rows``,
streamed) into an index in a temporary SQLite file, so its memory stays
bounded whatever the number of records the sink holds. Paths are keyed by
their raw bytes (``path_bytes``, vscan.inputs.paths): any name a file
system allows resumes.

Nightly state (``--state FILE``, optional): a SQLite DB keyed by
(sha256, bank_sha256, model_sha256, config_sha256) holding each file's last
record. Decode workers digest a file first and stop there when its content
is known for the current versions; the file still gets its one record: the
previous result, copied, with the current path, ``"skipped": "unchanged"``
and ``"previous_scan"`` (UTC time of the scan that produced it). Only
errors of kind ``input`` are remembered; the others (timeouts, crashes,
model failures, internal errors) are tried again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from vscan.errors import is_permanent
from vscan.inputs.paths import path_fields, raw_bytes
from vscan.output.sinks import Sink, to_json_line

__all__ = ["RunLedger", "StateDB"]


def _retried(status: str | None, error_type: str | None, kind: str | None) -> bool:
    """Whether a stored record is an error the next run tries again (vscan.errors.is_permanent)."""
    return status == "error" and not is_permanent({"type": error_type, "kind": kind})


class _ResumeIndex:
    """path -> (last record transient?, transient failures) for one versions
    stamp, in SQLite's own temporary database (an empty file name): its pages
    spill to an unnamed file in the temp folder (SQLite removes its name when
    it opens it), so memory stays bounded and nothing is left behind however
    the process ends (a Ctrl-C leaves by os._exit; a named folder was left in
    /tmp then, holding the output's paths)."""

    def __init__(self, rows, versions: dict[str, Any]) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE done (path BLOB PRIMARY KEY, transient INTEGER NOT NULL, failures INTEGER NOT NULL)")
        batch: list[tuple[bytes, int, int]] = []
        self._db.execute("BEGIN")
        for row in rows:
            if row.versions != versions or row.path is None:
                continue
            transient = int(_retried(row.status, row.error_type, row.error_kind))
            batch.append((row.key, transient, transient))
            if len(batch) >= 10_000:
                self._add(batch)
        self._add(batch)
        self._db.execute("COMMIT")

    def _add(self, batch: list[tuple[bytes, int, int]]) -> None:
        # Rows come in sink order: the last record of a path sets its state.
        self._db.executemany(
            "INSERT INTO done VALUES (?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
            "transient = excluded.transient, failures = failures + excluded.failures",
            batch,
        )
        batch.clear()

    def get(self, path: str) -> tuple[int, int] | None:
        return self._db.execute("SELECT transient, failures FROM done WHERE path = ?", (raw_bytes(path),)).fetchone()

    def close(self) -> None:
        self._db.close()


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
        # Column config_sha256 holds every other part of the versions stamp
        # (config, risk policy, vscan version).
        rest = {k: v for k, v in versions.items() if k not in ("bank_sha256", "model_sha256")}
        rest_sha256 = hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()
        return (versions["bank_sha256"] or "", versions["model_sha256"], rest_sha256)

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

    def __init__(self, sink: Sink, versions: dict[str, Any], *, state_path: str | os.PathLike | None = None,
                 transient_retries: int = 2) -> None:  # fmt: skip
        self.sink = sink
        self.versions = versions
        self.transient_retries = transient_retries
        self._done = _ResumeIndex(sink.resume_rows(), versions)
        self.skipped_resumed = 0
        self.retried_transient = 0
        self.retries_exhausted = 0
        self.state = StateDB(state_path) if state_path else None
        self.manifest: dict[str, Any] | None = None
        self.bank_path: str | None = None  # the bank whose versions these are (begin)

    @classmethod
    def begin(cls, sink: Sink, inputs: list, *, config, bank_path, risk_policy=None, state_path=None) -> "RunLedger":
        """Digest bank, models and risk policy (None: the default one), read
        what the sink holds, store the run's manifest."""
        from vscan.output import audit

        bank = audit.bank_digests(bank_path)
        models = audit.model_digests(config.models.detectors)
        versions = audit.scan_versions(config, bank, models, risk_policy)
        ledger = cls(sink, versions, state_path=state_path, transient_retries=config.runtime.transient_retries)
        ledger.bank_path = str(bank_path) if bank_path is not None else None
        ledger.manifest = audit.start_manifest(
            sink_target=getattr(sink, "target", type(sink).__name__), inputs=[str(p) for p in inputs], config=config,
            bank=bank, models=models, versions=versions, state_path=str(state_path) if state_path else None,
        )  # fmt: skip
        sink.write_manifest(ledger.manifest)
        return ledger

    def finish(self, summary, *, error: BaseException | None = None) -> None:
        """Close the state DB and complete the run's manifest (counts, end
        time; ``interrupted`` after Ctrl-C or when the caller stopped
        iterating). When the run already failed, a failure to store the
        manifest is added to that error as a note and never replaces it."""
        from vscan.output import audit

        self.close()
        if self.manifest is None:
            return
        # Ctrl-C, or a consumer that stopped iterating (the generator closed): interrupted.
        stopped = isinstance(error, (KeyboardInterrupt, GeneratorExit))
        status = "completed" if error is None else "interrupted" if stopped else "failed"
        message = None if error is None else f"{type(error).__name__}: {error}"
        manifest = audit.finish_manifest(self.manifest, summary, status=status, skipped_resumed=self.skipped_resumed,
                                         error=message, retried_transient=self.retried_transient,
                                         retries_exhausted=self.retries_exhausted)  # fmt: skip
        try:
            self.sink.write_manifest(manifest)
        except Exception as exc:
            if error is None:
                raise
            error.add_note(f"the run's manifest could not be stored either: {type(exc).__name__}: {exc}")

    def filter(self, paths: Iterable[str]) -> Iterator[str]:
        """Input paths without a record for the current versions yet, and
        those whose last record is a transient failure with re-tries left."""
        for path in paths:
            hit = self._done.get(path)
            if hit is not None:
                transient, failures = hit
                if not transient:
                    self.skipped_resumed += 1
                    continue
                if failures > self.transient_retries:  # the first try plus every re-try failed
                    self.retries_exhausted += 1
                    continue
                self.retried_transient += 1
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
        previous.pop("path_bytes", None)
        return {**previous, **path_fields(summary["path"]), "skipped": "unchanged", "previous_scan": scanned_at,
                "timings": {k: round(float(v), 6) for k, v in summary.get("timings", {}).items()}}  # fmt: skip

    def stamp(self, record: dict[str, Any]) -> dict[str, Any]:
        record["versions"] = self.versions
        return record

    def recorded(self, record: dict[str, Any]) -> None:
        if self.state is None or record.get("sha256") is None or record.get("skipped"):
            return
        if record["status"] == "error" and not is_permanent(record["error"]):
            return  # the run's fault or vscan's, not the content's: the next run tries again
        clean = {k: v for k, v in record.items() if k not in ("skipped", "previous_scan")}
        self.state.put(clean, self.versions)

    def close(self) -> None:
        self._done.close()
        if self.state is not None:
            self.state.close()
            self.state = None

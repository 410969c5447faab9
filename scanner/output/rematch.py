"""Re-match a hash store against a new or changed bank, without decoding
(``vscan rematch``).

Each file's stored frames (vscan.output.hash_store) go through the same
matcher as a scan's model stage (``FileMatcher.file_result``: exact digests,
all 8 dihedral variants, the border-free and overlay-filled frames, time
alignment) and the same risk policy and record builder, under the config of
the store's latest run; the record is stamped with the new versions, so
resume and ``--state`` treat it as a scan's record. It says ``rematched``
(store, run, when the frames were hashed).

A file is listed for re-scan instead of guessed when:

- its stored frames are too sparse: under adaptive sampling the new matches
  of its first-pass frames ask for a second pass (``Adaptive.refine``: dense
  windows, or a few confirming frames) and the store lacks a frame near one
  of that pass's samples (within half a dense step; 0.1 s for a confirming
  frame): the first scan matched nothing there, so it never decoded them;
- nothing is stored for it (its scan failed, it was on a known-benign list,
  or its content's frames were never stored);
- it was scanned under other sampling/matching settings than the latest run.

The run's ``--allow`` banks are applied as in the scan (vscan.verdict.allow).
Region search and the off-centre search need pixels and are not replayed
(documented in docs/platform.md); detector and triage evidence is not stored,
so a store of a scan with ``--model``/``--triage`` is refused.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np

from vscan.config import ScanConfig
from vscan.errors import ConfigError
from vscan.output.hash_store import StoredFile, read_store, run_manifests
from vscan.runtime.hashed_matcher import HashedMatcher as _Matcher

__all__ = ["RematchSummary", "rematch", "RESCAN_REASONS"]

RESCAN_REASONS = ("sparse", "not-stored", "other-config")
#: Records written to the sink per commit.
GROUP = 256


@dataclass
class RematchSummary:
    files: int = 0
    matched: int = 0
    rescan: dict[str, int] = field(default_factory=lambda: {k: 0 for k in RESCAN_REASONS})
    skipped_resumed: int = 0
    frames_matched: int = 0
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "matched": self.matched, "rescan": self.rescan, "skipped_resumed": self.skipped_resumed,
                "frames_matched": self.frames_matched, "wall_seconds": round(self.wall_seconds, 3)}  # fmt: skip


def latest_config(root: str | os.PathLike) -> tuple[ScanConfig, dict[str, dict[str, Any]]]:
    """The config of the store's latest run, and every run's manifest."""
    runs = run_manifests(root)
    if not runs:
        raise ConfigError(f"{root}: not a hash store (no runs/*.json; write one with vscan scan --hash-store {root})")
    latest = runs[max(runs)]
    config = ScanConfig.from_dict(_toml(latest["config_toml"]), source=f"{root}/runs/{latest['run']}.json")
    if config.models.detectors or config.models.triage:
        raise ConfigError(f"{root}: run {latest['run']} used detector/triage models, whose evidence the store does not keep; "
                          "rematch covers bank matching only: scan again")  # fmt: skip
    return config, runs


def _config_digest(config: ScanConfig) -> str:
    return json.dumps(config.result_dict(), sort_keys=True)


def _toml(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)


def rematch(root: str | os.PathLike, *, bank: str | os.PathLike, sink, risk_policy=None,
            rescan_list: str | os.PathLike | None = None) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Yield each file's new record once durable in ``sink``; returns a RematchSummary.
    Files to scan again go to ``rescan_list`` (JSON lines: path, reason)."""
    from vscan.output.resume import RunLedger
    from vscan.runtime.summary import ScanSummary
    from vscan.verdict.risk import DefaultRiskPolicy

    t0 = time.perf_counter()
    config, runs = latest_config(root)
    config = replace(config, runtime=replace(config.runtime, device="cpu", keep_frame_hashes=False))
    digest = _config_digest(config)
    risk_policy = risk_policy or DefaultRiskPolicy()
    bank = os.path.abspath(bank)
    ledger = RunLedger.begin(sink, [str(root)], config=config, bank_path=bank, risk_policy=risk_policy)
    matcher = _Matcher(config, bank)
    allow = None
    if config.matching.allow:  # the run's --allow banks apply to its rematch too (vscan.verdict.allow)
        from vscan.verdict.allow import AllowBanks

        allow = AllowBanks(config)
    policy_text = config.sampling.policy.describe()
    summary, totals = RematchSummary(), ScanSummary()
    rescan = open(rescan_list, "w") if rescan_list else None
    pending: list[dict[str, Any]] = []
    error: BaseException | None = None

    def commit() -> Iterator[dict[str, Any]]:
        sink.write_many(pending)
        for r in pending:
            ledger.recorded(r)
            totals.add(r)
        yield from pending
        pending.clear()

    def relist(path: str, reason: str, detail: str) -> None:
        summary.rescan[reason] += 1
        if rescan is not None:
            rescan.write(json.dumps({"path": path, "reason": reason, "detail": detail}) + "\n")

    try:
        for stored in read_store(root):
            row = stored.row if isinstance(stored, StoredFile) else stored
            if next(ledger.filter([row["path"]]), None) is None:
                summary.skipped_resumed += 1
                continue
            if not isinstance(stored, StoredFile):
                relist(row["path"], "not-stored", f"scan status {row['status']}" + (f", skipped {row['skipped']}" if row["skipped"] else ""))
                continue
            run_config = _toml(runs[stored.run]["config_toml"]) if stored.run in runs else None
            if run_config is None or _config_digest(ScanConfig.from_dict(run_config)) != digest:
                relist(row["path"], "other-config", f"hashed by run {stored.run} under other sampling/matching settings")
                continue
            record, why = _record(matcher, stored, config, risk_policy, policy_text, allow)
            if record is None:
                relist(row["path"], "sparse", why)
                continue
            record["rematched"] = {"hash_store": str(root), "scan_run": stored.run, "hashed_at": row["scanned_at"]}
            summary.files += 1
            summary.frames_matched += int(record["frames_sampled"])
            summary.matched += any(m["is_match"] for m in record["matches"])
            pending.append(ledger.stamp(record))
            if len(pending) >= GROUP:
                yield from commit()
        yield from commit()
    except BaseException as exc:
        error = exc
        raise
    finally:
        if rescan is not None:
            rescan.close()
        summary.wall_seconds = time.perf_counter() - t0
        totals.wall_seconds = summary.wall_seconds
        ledger.manifest["rematch"] = summary.to_dict() if ledger.manifest is not None else None
        ledger.finish(totals, error=error)
    return summary


def _record(matcher: _Matcher, stored: StoredFile, config: ScanConfig, risk_policy, policy_text: str, allow=None) -> tuple[dict | None, str]:
    """The record a scan would give for the stored frames, or (None, why) when they are too sparse.

    As the scan does: the first pass's frames are matched, the sampling policy
    picks the second pass from those matches, and the record is the match of
    both passes' frames; the second pass's frames must be in the store."""
    from vscan.verdict.record import build_record

    t0 = time.perf_counter()
    prev = json.loads(stored.row["record"])
    duration = float(prev.get("duration_seconds") or 0.0)
    keep = stored.first_pass.copy()
    result = _match(matcher, stored, keep, prev)
    refine = getattr(config.sampling.policy, "refine", None)
    second = None
    if refine is not None:
        extra = {"sampled_seconds": stored.timestamps[keep]} if "sampled_seconds" in inspect.signature(refine).parameters else {}
        second = refine(result["matches"], duration, **extra)
    if second is not None:
        wanted, tolerance = _second_pass_times(second, duration)
        if wanted is None:
            return None, f"second pass {second.describe()} cannot be replayed from stored frames"
        gap, nearest = _nearest(stored.timestamps, wanted)
        if len(wanted) and gap.max() > tolerance:
            missing = int((gap > tolerance).sum())
            return None, f"{missing} of {len(wanted)} second-pass samples ({second.describe()}) not stored"
        keep[nearest] = True
        result = _match(matcher, stored, keep, prev)
    summary = {k: prev.get(k) for k in ("path", "sha256", "md5", "sha1", "size_bytes", "media", "duration_seconds", "truncated")}
    summary["frames_sampled"] = int(keep.sum())
    summary["frames_decoded"] = int(prev.get("frames_decoded") or 0)  # what the scan that hashed them decoded
    summary["sampling"] = policy_text if second is None else f"{policy_text} + {second.describe()}"
    record = build_record(summary, policy_text=policy_text, matches=result["matches"], risk_policy=risk_policy,
                          timings={"match": time.perf_counter() - t0})  # fmt: skip
    if second is not None:
        record["second_pass"] = {"status": "ok", "sampling": second.describe(), "frames_sampled": int(keep.sum() - stored.first_pass.sum()),
                                 "frames_decoded": 0}  # fmt: skip
    if result.get("skipped_disabled"):
        record["skipped_disabled"] = result["skipped_disabled"]
    if allow is not None:
        record["_frame_hashes"] = {"frame_numbers": stored.frame_numbers[keep], "timestamps": stored.timestamps[keep],
                                   "border_box": stored.row.get("border_box"),
                                   "sets": {k: (v[keep], q[keep]) for k, (v, q) in stored.sets.items() if len(q) == len(keep)}}  # fmt: skip
        allow.apply(record)
        record.pop("_frame_hashes")
    return record, ""


def _match(matcher: _Matcher, stored: StoredFile, keep: np.ndarray, prev: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {"frame_numbers": stored.frame_numbers[keep], "timestamps": stored.timestamps[keep],
                               "duration_seconds": float(prev.get("duration_seconds") or 0.0)}  # fmt: skip
    if prev.get("sha1"):
        payload["sha1"] = prev["sha1"]
    if stored.row.get("border_box") is not None:
        payload["border_box"] = np.asarray(stored.row["border_box"], np.float64)
    names = {"frames": "frames", "unbordered": "unbordered_frames", "unoverlaid": "unoverlaid_frames"}
    hashed = {names[k]: (v[keep], q[keep]) for k, (v, q) in stored.sets.items() if k in names and len(q) == len(keep)}
    return matcher.file_result(payload, hashed, prev.get("sha256"), prev.get("md5"))


def _second_pass_times(second, duration: float) -> tuple[np.ndarray | None, float]:
    """The times a second pass aims at, as its ``decide`` picks them, and how
    far a stored frame may lie from one (None: a policy not replayed)."""
    from vscan.decode import sampling

    if isinstance(second, sampling.Windows):
        step = 1.0 / second.fps
        targets = np.concatenate([np.arange(a, b + 1e-9, step) for a, b in second.spans]) if second.spans else np.zeros(0)
        return targets[(targets >= 0) & (targets < duration)], 0.5 * step + 1e-3
    if isinstance(second, getattr(sampling, "Confirm", ())):  # (a newer policy: a few frames confirming a first pass that decided)
        return np.asarray(second.seconds, np.float64), 0.1  # the frame on screen then (a frame or two at most)
    return None, 0.0


def _nearest(times: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per target: the distance to the nearest stored time, and its index."""
    if not len(targets):
        return np.zeros(0), np.zeros(0, np.int64)
    if not len(times):
        return np.full(len(targets), np.inf), np.zeros(len(targets), np.int64)
    order = np.argsort(times)
    sorted_t = times[order]
    hi = np.clip(np.searchsorted(sorted_t, targets), 0, len(sorted_t) - 1)
    lo = np.clip(hi - 1, 0, len(sorted_t) - 1)
    pick = np.where(np.abs(sorted_t[lo] - targets) <= np.abs(sorted_t[hi] - targets), lo, hi)
    return np.abs(sorted_t[pick] - targets), order[pick]

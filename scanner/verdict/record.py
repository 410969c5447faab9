"""The per-file result record (schema ``schema/result.v1.json``)."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from vscan.inputs.paths import path_fields
from vscan.verdict.risk import Evidence, RiskPolicy

__all__ = ["SCHEMA_VERSION", "build_record", "known_benign_record", "match_dict", "result_schema"]

SCHEMA_VERSION = 1


@lru_cache(maxsize=1)
def result_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) every record validates against."""
    return json.loads(resources.files("vscan.verdict").joinpath("schema/result.v1.json").read_text())


def match_dict(m, duration_seconds: float | None) -> dict[str, Any]:
    exact = m.signal != "pdq"
    matched_seconds = (duration_seconds or 0.0) if exact else m.matched_seconds
    return {
        "bank_entry_id": m.bank_entry_id,
        "label": m.label,
        "kind": "exact" if exact else "perceptual",
        "algorithm": m.signal,
        "is_match": m.is_match,
        "query_pct": round(m.query_pct, 3),
        "compared_pct": round(m.compared_pct, 3),
        "matched_seconds": round(matched_seconds, 3),
        "query_span_seconds": None if exact or np.isnan(m.query_span_seconds[0]) else [round(v, 3) for v in m.query_span_seconds],
        "reference_span_seconds": None
        if exact or np.isnan(m.reference_span_seconds[0])
        else [round(v, 3) for v in m.reference_span_seconds],
        "distance_min": m.distance_min,
        **_robust_match_fields(m, exact),
    }


def _robust_match_fields(m, exact: bool) -> dict[str, Any]:
    """How a robust match was found (vscan.bank.match): path, alignment, spans."""
    if exact or m.decided_by is None and not m.path and np.isnan(m.align_rate):
        return {}

    def span(v):
        return None if np.isnan(v[0]) else [round(float(x), 3) for x in v]

    return {
        "path": list(m.path) or ["original"],
        "dihedral": m.dihedral,
        "decided_by": m.decided_by,
        # path "region": where in the query frame the known picture sits (fractions of the frame)
        "region": None if getattr(m, "region", None) is None else dict(zip(("top", "bottom", "left", "right"), m.region)),
        "alignment": None
        if np.isnan(m.align_rate)
        else {
            "rate": round(m.align_rate, 4),
            "offset_seconds": round(m.align_offset_seconds, 3),
            "seconds": round(m.aligned_seconds, 3),
            "frames": m.aligned_frames,
            "query_span_seconds": span(m.aligned_query_span_seconds),
            "reference_span_seconds": span(m.aligned_reference_span_seconds),
        },
    }


def _within(m, duration_seconds: float | None):
    """``m`` with ``matched_seconds`` at most the file's duration: the bound
    holds for every record and reason, whatever the matcher was told (it ends
    the last sample at the duration when given it, vscan.bank.match)."""
    if m.signal != "pdq" or duration_seconds is None or not m.matched_seconds > duration_seconds:
        return m
    return replace(m, matched_seconds=float(duration_seconds))


def _file_identity(summary: dict[str, Any]) -> dict[str, Any]:
    """The head every record starts with: schema, path (display-safe, and its
    raw bytes when they differ: vscan.inputs.paths), digests, size."""
    return {"schema_version": SCHEMA_VERSION, **path_fields(summary["path"]), "sha256": summary.get("sha256"), "md5": summary.get("md5"),
            "sha1": summary.get("sha1"), "size_bytes": summary.get("size_bytes"),
            **({"digest_skipped": summary["digest_skipped"]} if summary.get("digest_skipped") else {}),
            **({"object": summary["object"]} if summary.get("object") else {})}  # fmt: skip  (object storage: URI, ETag, version)


def _rounded(timings: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in timings.items()}


def build_record(
    summary: dict[str, Any],
    *,
    policy_text: str,
    matches: list | None = None,
    risk_policy: RiskPolicy,
    timings: dict[str, float] | None = None,
    detections: list | None = None,
    detection_timeline: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ok = summary.get("error") is None
    matches = [_within(m, summary.get("duration_seconds")) for m in matches or []]
    decision = risk_policy.assess(
        Evidence(path=summary["path"], matches=matches, duration_seconds=summary.get("duration_seconds"), detections=detections or ())
    ) if ok else None
    all_timings = {**summary.get("timings", {}), **(timings or {})}
    return {
        **_file_identity(summary),
        "status": "ok" if ok else "error",
        "error": summary.get("error"),
        "media": summary.get("media"),
        "duration_seconds": summary.get("duration_seconds"),
        "frames_decoded": int(summary.get("frames_decoded", 0)),
        "frames_sampled": int(summary.get("frames_sampled", 0)),
        "sampling": summary.get("sampling") or policy_text,
        "truncated": summary.get("truncated"),  # the frame budget was spread over the file (vscan.decode.Budgeted)
        **({"partial": summary["partial"]} if summary.get("partial") else {}),  # demuxed short of the declared duration
        "risk": decision.risk if decision else None,
        "reasons": list(decision.reasons) if decision else [f"error: {summary['error']['type']}"],
        "matches": [match_dict(m, summary.get("duration_seconds")) for m in matches],
        "detections": [d.to_dict() for d in detections or ()],
        "detection_timeline": detection_timeline,
        "timings": _rounded(all_timings),
    }


def known_benign_record(summary: dict[str, Any], policy_text: str) -> dict[str, Any]:
    """The record of a file on a known-benign list (``--ignore``): digested,
    never decoded, risk 0, and which list knew it."""
    hit = summary["known_benign"]
    return {
        **_file_identity(summary),
        "status": "ok",
        "error": None,
        "media": None,
        "duration_seconds": None,
        "frames_decoded": 0,
        "frames_sampled": 0,
        "sampling": policy_text,
        "risk": 0.0,
        "reasons": [f"known-benign: {hit['digest']} on {hit['list']}" + (f" {hit['version']}" if hit.get("version") else "")],
        "matches": [],
        "detections": [],
        "detection_timeline": None,
        "skipped": "known-benign",
        "known_benign": hit,
        "timings": _rounded(summary.get("timings", {})),
    }


"""Audit trail: what produced a set of results.

Each run stores one manifest through its sink (``<out>.manifest.json``
beside file sinks, table ``vscan_runs`` in databases), written when the run
starts (``status: "running"``, ``ended: null``) and updated when it ends, so
a killed run stays visible as one that never finished. The manifest holds
the vscan version, the full scan configuration, the SHA-256 of the bank and
of every model file, the host, start and end times (UTC) and the counts.

``versions`` is also stamped on every record: resume and the nightly state
skip only files whose results came from the same versions. It covers
everything that can change a result and nothing else: the bank's content,
every model file and detector manifest (the shipped models and the user's
``--model`` ones, by SHA-256 of their bytes), the risk policy's class and
values, the vscan version, and the result sections of the configuration
(vscan.config.RESULT_SECTIONS; the runtime and input-selection sections,
speed and placement only, are left out).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import sys
import uuid
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vscan.inputs.digests import sha256_file
from vscan.models.manifest import MODELS_DIR
from vscan.version import __version__

__all__ = ["scan_versions", "model_digests", "risk_policy_dict", "bank_digests", "config_dict", "start_manifest", "finish_manifest"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def model_digests(detectors: tuple[str, ...] = (), models_dir: Path = MODELS_DIR) -> dict[str, str]:
    """SHA-256 of every ONNX model file shipped (``models/<name>/<file>.onnx``)
    and, for each detector manifest of ``config.models.detectors``, of the
    manifest and of the model file it names (computed, not read from the
    manifest), keyed ``detector:<name>/<file>``."""
    from vscan.inputs.kept_digests import kept_sha256
    from vscan.models.manifest import load_manifest

    digests = {str(p.relative_to(models_dir)): sha256_file(p) for p in sorted(models_dir.glob("*/*.onnx"))}
    for path in detectors:
        manifest = load_manifest(path)
        digests[f"detector:{manifest.name}/{manifest.model_path.name}"] = kept_sha256(manifest.model_path)  # a model of 100s of MB
        digests[f"detector:{manifest.name}/{manifest.manifest_path.name}"] = sha256_file(manifest.manifest_path)
    return digests


def risk_policy_dict(policy) -> dict[str, Any]:
    """The risk policy as its class and values (what the versions stamp digests)."""
    cls = type(policy)
    values = asdict(policy) if is_dataclass(policy) else dict(sorted(vars(policy).items()))
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "values": values}


def bank_digests(bank_path: str | os.PathLike | None) -> dict[str, Any] | None:
    if bank_path is None:
        return None
    from vscan.bank.store import Bank
    from vscan.inputs.kept_digests import kept_sha256

    with Bank(bank_path) as bank:  # the stored content digest: one row, not a pass over every row (vscan.bank.digest)
        content = bank.content_digest()
    # the file's own digest kept between scans while the file is unchanged: not a read of the whole bank at every start
    return {"path": str(bank_path), "content_sha256": content, "file_sha256": kept_sha256(bank_path)}


def config_dict(config) -> dict[str, Any]:
    """Every section of the config (vscan.config.ScanConfig.to_dict)."""
    return config.to_dict()


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def scan_versions(config, bank: dict[str, Any] | None, models: dict[str, str], risk_policy=None) -> dict[str, str | None]:
    """The versions a result depends on: bank content, model files, risk
    policy (None: the default one), vscan version, result-relevant config."""
    if risk_policy is None:
        from vscan.verdict.risk import DefaultRiskPolicy

        risk_policy = DefaultRiskPolicy()
    versions = {
        "bank_sha256": bank["content_sha256"] if bank else None,
        "model_sha256": _digest(models),
        "risk_policy_sha256": _digest(risk_policy_dict(risk_policy)),
        "vscan_version": __version__,
        # Only the result sections (vscan.config.RESULT_SECTIONS): runtime and
        # input-selection settings never make a resume rescan.
        "config_sha256": _digest(_result_config(config)),
    }
    ignore = getattr(config.matching, "ignore", ())
    if ignore:
        # Known-benign lists by content, never by path: a list updated in place gives new records, not stale
        # skips; the same list moved or copied elsewhere changes nothing. In list order (the first hit names it).
        versions["ignore_sha256"] = _digest([_file_digest(p) for p in ignore])
    return versions


def _result_config(config) -> dict[str, Any]:
    """The result sections, the known-benign lists' paths as if none were given (their content is
    ``ignore_sha256``): with no lists the digest is what it always was."""
    sections = config.result_dict()
    matching = sections.get("matching")
    if isinstance(matching, dict) and matching.get("ignore"):
        sections = {**sections, "matching": {**matching, "ignore": type(matching["ignore"])()}}
    return sections


def _file_digest(path: str) -> str | None:
    from vscan.inputs.kept_digests import kept_sha256

    try:
        return kept_sha256(path)  # kept between scans while the list is unchanged (an NSRL list is tens of GB)
    except OSError:
        return None  # loading the list reports it


def _ray_version() -> str | None:
    """Ray's version, from its installed metadata when Ray is not loaded yet: importing
    Ray only for it cost a run with nothing to decode 0.6-1.3 s (it never starts Ray)."""
    ray = sys.modules.get("ray")
    if ray is not None:
        return getattr(ray, "__version__", None)
    from importlib import metadata

    try:
        return metadata.version("ray")
    except metadata.PackageNotFoundError:
        return None


def start_manifest(*, sink_target: str, inputs: list[str], config, bank: dict[str, Any] | None,
                   models: dict[str, str], versions: dict[str, Any], state_path: str | None) -> dict[str, Any]:  # fmt: skip
    return {
        "run_id": uuid.uuid4().hex,
        "vscan_version": __version__,
        "status": "running",
        "started": _now(),
        "ended": None,
        "argv": list(sys.argv),
        "inputs": inputs,
        "out": sink_target,
        "state": state_path,
        "config": config_dict(config),
        "bank": bank,
        "models": models,
        "versions": versions,
        "host": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "ray": _ray_version(),
            "cpu_count": os.cpu_count(),
            "pid": os.getpid(),
        },
        "counts": None,
    }


def finish_manifest(manifest: dict[str, Any], summary, *, status: str, skipped_resumed: int, error: str | None = None,
                    retried_transient: int = 0, retries_exhausted: int = 0) -> dict[str, Any]:  # fmt: skip
    # The summary the scan returns carries the same count (ScanSummary.skipped), set here where the run ends.
    summary.skipped_already_recorded = skipped_resumed
    counts = summary.counts() if hasattr(summary, "counts") else {k: v for k, v in asdict(summary).items() if k not in ("wall_seconds", "pipeline")}
    counts["skipped_already_recorded"] = skipped_resumed
    counts["retried_transient"] = retried_transient
    counts["retries_exhausted"] = retries_exhausted
    return {**manifest, "status": status, "ended": _now(), "wall_seconds": round(summary.wall_seconds, 3),
            "counts": counts, "pipeline": getattr(summary, "pipeline", None) or None, "error": error}  # fmt: skip

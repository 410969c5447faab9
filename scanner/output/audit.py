"""Audit trail: what produced a set of results.

Each run stores one manifest through its sink (``<out>.manifest.json``
beside file sinks, table ``vscan_runs`` in databases), written when the run
starts (``status: "running"``, ``ended: null``) and updated when it ends, so
a killed run stays visible as one that never finished. The manifest holds
the vscan version, the full scan configuration, the SHA-256 of the bank and
of every model file, the host, start and end times (UTC) and the counts.

``versions`` (bank, models, result-relevant config digests) is also stamped
on every record: resume and the nightly state skip only files whose results
came from the same versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import sys
import uuid
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vscan.inputs.digests import sha256_file
from vscan.models.manifest import MODELS_DIR
from vscan.version import __version__

__all__ = ["scan_versions", "model_digests", "bank_digests", "config_dict", "start_manifest", "finish_manifest"]



def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def model_digests(models_dir: Path = MODELS_DIR) -> dict[str, str]:
    """SHA-256 of every ONNX model file shipped (``models/<name>/<file>.onnx``)."""
    return {str(p.relative_to(models_dir)): sha256_file(p) for p in sorted(models_dir.glob("*/*.onnx"))}


def bank_digests(bank_path: str | os.PathLike | None) -> dict[str, Any] | None:
    if bank_path is None:
        return None
    from vscan.bank.store import Bank

    with Bank(bank_path) as bank:
        info = bank.info()
    return {"path": str(bank_path), "content_sha256": info.content_sha256, "file_sha256": info.file_sha256}


def config_dict(config) -> dict[str, Any]:
    """Every section of the config (vscan.config.ScanConfig.to_dict)."""
    return config.to_dict()


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def scan_versions(config, bank: dict[str, Any] | None, models: dict[str, str]) -> dict[str, str | None]:
    """The versions a result depends on: bank content, model files, result-relevant config."""
    return {
        "bank_sha256": bank["content_sha256"] if bank else None,
        "model_sha256": _digest(models),
        # Only the result sections (vscan.config.RESULT_SECTIONS): runtime and
        # input-selection settings never make a resume rescan.
        "config_sha256": _digest(config.result_dict()),
    }


def start_manifest(*, sink_target: str, inputs: list[str], config, bank: dict[str, Any] | None,
                   models: dict[str, str], versions: dict[str, Any], state_path: str | None) -> dict[str, Any]:  # fmt: skip
    import ray

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
            "ray": ray.__version__,
            "cpu_count": os.cpu_count(),
            "pid": os.getpid(),
        },
        "counts": None,
    }


def finish_manifest(manifest: dict[str, Any], summary, *, status: str, skipped_resumed: int, error: str | None = None) -> dict[str, Any]:
    counts = {k: v for k, v in asdict(summary).items() if k not in ("wall_seconds", "pipeline")}
    counts["skipped_already_recorded"] = skipped_resumed
    return {**manifest, "status": status, "ended": _now(), "wall_seconds": round(summary.wall_seconds, 3),
            "counts": counts, "pipeline": getattr(summary, "pipeline", None) or None, "error": error}  # fmt: skip

"""One uploaded file through the scan's own stages, in the service's process
(no Ray: decode, then the model stage, then the record, as the driver does for
one file, adaptive second pass included).

A worker process scans one file at a time (the model stage's batches are
per call); run more workers for more concurrent scans. There is no per-file
decode watchdog here (the scan's Ray workers have one): a front proxy's
request timeout bounds a request.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["scan_upload", "hash_image", "serve_config"]

_hasher_lock = threading.Lock()
_hasher = None


def hash_image(path: Path) -> np.ndarray:
    """The PDQ hash of an image, [1, 32] uint8 (as ``vscan hash photo.jpg``)."""
    global _hasher
    from vscan.decode import EveryFrame
    from vscan.hashing.media import hash_media
    from vscan.hashing.pdq import PDQHasher

    with _hasher_lock:
        if _hasher is None:
            _hasher = PDQHasher(device="cpu", threads=1)
    frames = hash_media(path, EveryFrame(), hasher=_hasher).frames
    if not len(frames.hashes):
        raise ValueError("no picture decoded")
    return np.ascontiguousarray(frames.hashes[:1])


def serve_config(settings) -> Any:
    """The scan settings of POST /v/scan: ``settings.config_toml`` (vscan config show), on the CPU unless it says otherwise."""
    from vscan.config import Runtime, ScanConfig

    if not settings.config_toml:
        return ScanConfig(runtime=Runtime(device="cpu"))
    import tomllib

    return ScanConfig.from_dict(tomllib.loads(settings.config_toml), source="vscan serve --config")


def scan_upload(path: str, state, settings) -> dict[str, Any]:
    """The record of one file (a local path, or an s3:// URI), stamped with the service's versions."""
    from vscan.output import audit
    from vscan.runtime.decode_task import decode_for_scan
    from vscan.runtime.outcome import Outcomes, Task, second_pass_decoded
    from vscan.runtime.payload import FileSummary, ModelResult
    from vscan.verdict.risk import DefaultRiskPolicy

    config = state.scan_config(serve_config(settings))  # a hash-list bank: its frame size, as vscan scan
    policy = DefaultRiskPolicy()
    records: list[dict[str, Any]] = []
    outcomes = Outcomes(records.append, policy_text=config.sampling.policy.describe(), risk_policy=policy,
                        timeout_seconds=config.runtime.file_timeout_seconds)  # fmt: skip
    task = Task(0, str(path), config.sampling.decoder, time.monotonic())
    with state.scan_lock:
        worker = state.scanner(config)
        summary, payload = decode_for_scan(str(path), config)
        task.summary = FileSummary.from_dict(summary)
        if task.summary.error is not None or payload is None:
            outcomes.fail(task, task.summary.error or {"type": "DecodeError", "message": "nothing decoded"})
        else:
            digests = (0, task.summary.sha256, task.summary.md5)
            (result,) = map(ModelResult.of, worker.run([(*digests, 1)], payload))
            if result.refine is None:
                outcomes.finish_passes(task, result)
            else:  # adaptive sampling's second pass, as the driver runs it
                task.first_pass, task.first_result, task.policy = task.summary, result, result.refine
                second_config = replace(config, sampling=replace(config.sampling, policy=task.policy))
                summary, second = decode_for_scan(str(path), second_config)
                task.summary = FileSummary.from_dict(summary)
                if task.summary.error is not None or second is None:
                    outcomes.decode_failed(task, task.summary.error or {"type": "DecodeError", "message": "nothing decoded"})
                else:
                    task.summary = second_pass_decoded(task)
                    (result,) = map(ModelResult.of, worker.run([(*digests, 2)], payload, second))
                    outcomes.finish_passes(task, result)
    (record,) = records
    if state.versions is None:  # once per bank generation: the same stamp a scan with this bank and config gives
        state.versions = audit.scan_versions(config, audit.bank_digests(state.path), audit.model_digests(config.models.detectors), policy)
    record["versions"] = state.versions
    return record

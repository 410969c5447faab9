"""Triage between the model stage's payloads and its results.

``run_triage(triage, payloads)`` runs vscan.detect.triage.Triage over every
file of a model call at once (their ``triage_frames``, vscan.detect.frames_view);
``add_triage(result, item)`` adds one file's triage to its model result:
LabelEvidence in ``detections``, the per-frame series in
``detection_timeline`` (with ``faces``: per-face scores of chained models,
strongest first), and ``triage_moments`` for the second sampling pass.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from vscan.detect.adapters import timeline

__all__ = ["run_triage", "add_triage"]


def run_triage(triage, payloads: Sequence[Any]) -> list[tuple[Any, np.ndarray]]:
    """(TriageResult, timestamps) per decoded file (vscan.runtime.payload.DecodedFile: its
    ``triage_frames`` view), all files in shared batches."""
    files = []
    for p in payloads:
        frames = p.triage_frames
        times = np.asarray(p.timestamps, np.float64)
        if frames is None or len(frames) != len(times):
            frames, times = np.zeros((0, 1, 1, 3), np.uint8), np.zeros(0, np.float64)
        size = p.source_size
        source = (int(size[0]), int(size[1])) if size is not None and min(size) > 0 else (int(frames.shape[2]), int(frames.shape[1]))
        files.append((frames, times, source))
    return list(zip(triage.run(files), (f[1] for f in files)))


def add_triage(result: dict[str, Any], item: tuple[Any, np.ndarray]) -> dict[str, Any]:
    triaged, times = item
    result["detections"] = list(result.get("detections") or []) + triaged.evidence
    tl = result.get("detection_timeline")
    series = dict(triaged.series)
    if tl is None and len(times):
        tl = timeline(times, series)
    elif tl is not None and len(times):
        extra = timeline(times, series)
        if extra["timestamps_seconds"] == tl["timestamps_seconds"]:
            tl = {**tl, "series": {**tl["series"], **extra["series"]}}
    if tl is not None:
        tl = {**tl, "faces": triaged.per_face, "frames_with_faces": int(triaged.faces)}
    result["detection_timeline"] = tl
    result["triage_moments"] = triaged.moments
    return result

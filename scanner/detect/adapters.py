"""Classifier and detector models: frames in, per-frame label scores out, and
their per-file aggregation into detector evidence.

    Detector(manifest)                 ONNX session + preprocessing + decoding
      .scores(frames, source_size)  -> FrameScores: score [N, L] per frame and
                                       label (and the best box per label)
    aggregate(detector, scores, t)  -> LabelEvidence per risk label: max,
                                       top-k mean, share of frames >= threshold,
                                       strongest frames' timestamps
    timeline(...)                   -> compact per-frame series for the report

A frame's score for a label is the class probability (softmax/sigmoid) or,
for a detector, the score of its best box of that label after NMS (0 when
there is none). Inputs are prepared in numpy/Pillow (``vscan.detect.preprocess``)
or, for a CUDA session with torch installed, on the GPU
(``vscan.kernels.preprocess``); outputs are decoded in numpy
(``vscan.detect.decoding``). CPU detectors need no torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from vscan.detect.decoding import best_boxes, class_scores
from vscan.detect.preprocess import prepare
from vscan.errors import ModelError

__all__ = ["Detector", "FrameScores", "LabelEvidence", "StrongFrame", "aggregate", "timeline", "TIMELINE_MAX_POINTS"]

#: Per-file timelines in records are capped at this many points (bucket maxima).
TIMELINE_MAX_POINTS = 240
_MAX_CANDIDATES = 1000  # boxes per frame entering NMS


@dataclass(frozen=True)
class FrameScores:
    """``scores`` float32 [N, L] per frame and label (``labels`` order);
    ``boxes`` float32 [N, L, 4] x1, y1, x2, y2 in source pixels (NaN: none)
    for detectors, None for classifiers; ``num_detections`` int [N] boxes
    kept after NMS per frame (detectors only)."""

    labels: tuple[str, ...]
    scores: np.ndarray
    boxes: np.ndarray | None = None
    num_detections: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.scores.ndim != 2 or self.scores.shape[1] != len(self.labels):
            raise ValueError(f"Expected scores [N, {len(self.labels)}], got {self.scores.shape}")
        if self.boxes is not None and self.boxes.shape != (*self.scores.shape, 4):
            raise ValueError(f"Expected boxes [{self.scores.shape[0]}, {len(self.labels)}, 4], got {self.boxes.shape}")


@dataclass(frozen=True)
class StrongFrame:
    timestamp_seconds: float
    score: float
    box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class LabelEvidence:
    """One risk label of one model over one file."""

    model: str
    kind: str
    label: str
    weight: float
    frames: int
    max_score: float
    top_k: int
    top_k_mean: float
    threshold: float
    frames_above: int
    share_above: float
    strongest: tuple[StrongFrame, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["strongest"] = [
            {"timestamp_seconds": s.timestamp_seconds, "score": s.score, "box": list(s.box) if s.box else None}
            for s in self.strongest
        ]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LabelEvidence":
        strongest = tuple(
            StrongFrame(s["timestamp_seconds"], s["score"], tuple(s["box"]) if s.get("box") else None)
            for s in d.get("strongest", ())
        )
        return cls(**{**d, "strongest": strongest})


def _torch_importable() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


class Detector:
    """One classifier or detector ONNX model, verified against its manifest."""

    def __init__(self, manifest, *, device: str = "auto", threads: int = 0) -> None:
        from vscan.hashing.pdq import _load_session, onnx_providers

        if manifest.kind not in ("classifier", "detector"):
            raise ModelError(f"Invalid model kind ({manifest.kind!r}) for {manifest.name}. Supported values are classifier, detector.")
        manifest.verify()
        self.manifest = manifest
        self.session = _load_session(str(manifest.model_path), tuple(onnx_providers(device)), threads)  # type: ignore[arg-type]
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        self.input_name = manifest.input.name or inputs[0].name
        self.output_name = manifest.output.name or outputs[0].name
        batch_dim = next(a for a in inputs if a.name == self.input_name).shape[0]
        # Exports with a fixed batch (YOLOv8's default is 1) take that many frames per call.
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
        self.risk_labels = tuple(label for label in manifest.labels if label in manifest.risk.labels)
        #: Inputs prepared on the GPU (vscan.kernels.preprocess) for a CUDA session when torch is installed.
        self.prepare_on_torch = self.device == "cuda" and _torch_importable()

    @property
    def name(self) -> str:
        return self.manifest.name

    def scores(self, frames: np.ndarray, source_size, *, batch_frames: int = 64) -> FrameScores:
        """``frames`` uint8 [N, S, S, 3] RGB whose frames were ``source_size``
        (width, height) before the square resize: one (w, h) for all, or one
        per frame ([N, 2]) when the frames come from several files."""
        labels = self.manifest.labels
        n = len(frames)
        sizes = np.asarray(source_size, dtype=np.int64).reshape(-1, 2)
        if len(sizes) == 1:
            sizes = np.repeat(sizes, n, axis=0)
        if len(sizes) != n:
            raise ValueError(f"Expected one source size or {n}, got {len(sizes)}")
        scores = np.zeros((n, len(labels)), np.float32)
        boxes = np.full((n, len(labels), 4), np.nan, np.float32) if self.manifest.kind == "detector" else None
        counts = np.zeros(n, np.int64) if boxes is not None else None
        step = self.fixed_batch or max(1, batch_frames)
        out = self.manifest.output
        for start in range(0, n, step):
            chunk = frames[start : start + step]
            m = len(chunk)
            x, geometry = self._prepare(chunk, sizes[start : start + m])
            if self.fixed_batch and m < self.fixed_batch:
                x = np.concatenate([x, np.zeros((self.fixed_batch - m, *x.shape[1:]), x.dtype)])
            (raw,) = self.session.run([self.output_name], {self.input_name: x})
            raw = np.asarray(raw, dtype=np.float32)[:m]
            if boxes is None:
                scores[start : start + m] = class_scores(raw, decoding=out.decoding, activation=out.activation,
                                                         num_labels=len(labels), name=self.name)  # fmt: skip
            else:
                s, b, c = best_boxes(raw, geometry, sizes[start : start + m], out=out, num_labels=len(labels),
                                     name=self.name, max_candidates=_MAX_CANDIDATES)  # fmt: skip
                scores[start : start + m], boxes[start : start + m], counts[start : start + m] = s, b, c
        return FrameScores(labels=labels, scores=scores, boxes=boxes, num_detections=counts)

    def _prepare(self, frames: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, list]:
        """The model's input for ``frames``: on the GPU through torch when the
        session runs on CUDA and torch is installed, else numpy and Pillow."""
        spec = self.manifest.input
        args = dict(height=spec.height, width=spec.width, layout=spec.layout, colour=spec.colour, scale=spec.scale,
                    mean=spec.mean, std=spec.std, letterbox=spec.letterbox, pad_value=spec.pad_value, dtype=spec.dtype)  # fmt: skip
        if not self.prepare_on_torch:
            return prepare(np.ascontiguousarray(frames), sizes, **args)
        import torch

        from vscan.kernels.preprocess import prepare as prepare_on_torch

        x, geometry = prepare_on_torch(torch.from_numpy(np.ascontiguousarray(frames)).to(self.device), sizes.tolist(), **args)
        return x.cpu().numpy(), geometry


def aggregate(detector: Detector, frame_scores: FrameScores, timestamps: np.ndarray, *, strongest: int = 3) -> list[LabelEvidence]:
    """Per risk label: max, top-k mean, share of frames >= threshold, and the
    ``strongest`` frames (score, timestamp, box)."""
    risk = detector.manifest.risk
    n = frame_scores.scores.shape[0]
    out = []
    for label in detector.risk_labels:
        j = frame_scores.labels.index(label)
        s = frame_scores.scores[:, j].astype(np.float64)
        order = np.argsort(-s, kind="stable")
        k = min(risk.top_k, n)
        above = int((s >= risk.threshold).sum())
        strong = []
        for i in order[: min(strongest, n)]:
            if s[i] <= 0:
                break
            box = None
            if frame_scores.boxes is not None and not np.isnan(frame_scores.boxes[i, j, 0]):
                box = tuple(round(float(v), 1) for v in frame_scores.boxes[i, j])
            strong.append(StrongFrame(round(float(timestamps[i]), 3), round(float(s[i]), 4), box))
        out.append(
            LabelEvidence(
                model=detector.name,
                kind=detector.manifest.kind,
                label=label,
                weight=risk.labels[label],
                frames=n,
                max_score=round(float(s.max()), 4) if n else 0.0,
                top_k=risk.top_k,
                top_k_mean=round(float(s[order[:k]].mean()), 4) if n else 0.0,
                threshold=risk.threshold,
                frames_above=above,
                share_above=round(above / n, 4) if n else 0.0,
                strongest=tuple(strong),
            )
        )
    return out


def timeline(
    timestamps: np.ndarray, series: dict[str, np.ndarray], *, max_points: int = TIMELINE_MAX_POINTS
) -> dict[str, Any]:
    """Compact per-frame series: at most ``max_points`` points, each the
    maximum of a run of consecutive frames (a short spike stays visible)."""
    n = len(timestamps)
    if n > max_points:
        edges = np.linspace(0, n, max_points + 1).astype(int)
        starts = edges[:-1]
        t = timestamps[starts]
        series = {k: np.maximum.reduceat(v, starts) for k, v in series.items()}
    else:
        t = timestamps
    return {
        "timestamps_seconds": [round(float(v), 3) for v in t],
        "series": {k: [round(float(x), 3) for x in v] for k, v in series.items()},
    }


def detections_for_file(
    detectors: Sequence[Detector], frames: np.ndarray, timestamps: np.ndarray, source_size: tuple[int, int], *, batch_frames: int
) -> tuple[list[LabelEvidence], dict[str, Any] | None]:
    """Run every detector on one file's frames: (evidence, timeline or None)."""
    return detections_for_files(detectors, [(frames, timestamps, source_size)], batch_frames=batch_frames)[0]


def detections_for_files(
    detectors: Sequence[Detector],
    files: Sequence[tuple[np.ndarray, np.ndarray, tuple[int, int]]],
    *,
    batch_frames: int,
) -> list[tuple[list[LabelEvidence], dict[str, Any] | None]]:
    """Every detector over several files' (frames, timestamps, source size)
    at once: the device sees batches that mix files. (evidence, timeline or
    None) per file, as if each file had been run alone."""
    counts = [len(f[0]) for f in files]
    bounds = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    frames = np.concatenate([f[0] for f in files]) if files else np.zeros((0, 1, 1, 3), np.uint8)
    sizes = np.concatenate([np.repeat(np.asarray(f[2], np.int64).reshape(1, 2), n, axis=0) for f, n in zip(files, counts)]) if files else np.zeros((0, 2), np.int64)
    per_model = [det.scores(frames, sizes, batch_frames=batch_frames) for det in detectors]
    out = []
    for i, (_, timestamps, _) in enumerate(files):
        lo, hi = bounds[i], bounds[i + 1]
        evidence: list[LabelEvidence] = []
        series: dict[str, np.ndarray] = {}
        for det, fs in zip(detectors, per_model):
            part = FrameScores(
                labels=fs.labels,
                scores=fs.scores[lo:hi],
                boxes=None if fs.boxes is None else fs.boxes[lo:hi],
                num_detections=None if fs.num_detections is None else fs.num_detections[lo:hi],
            )
            evidence += aggregate(det, part, timestamps)
            for label in det.risk_labels:
                series[f"{det.name}/{label}"] = part.scores[:, part.labels.index(label)]
        out.append((evidence, timeline(np.asarray(timestamps, np.float64), series) if series else None))
    return out

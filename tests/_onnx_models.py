"""Tiny real ONNX models for the detector tests, exported from torch modules
at test time (nothing is downloaded or committed). Their outputs on
synthetic solid-colour / bright-square frames are known exactly:

- ``colour_classifier`` (softmax, NCHW, RGB): logits (10 (R - B), 10 (B - R))
  from the mean channel values in 0..1, labels red, blue;
- ``channel_tagger`` (sigmoid, NHWC, **BGR**, mean/std 0.5): logit 5 x mean of
  each input channel, labels in the model's channel order (blue, green, red);
- ``square_detector`` (YOLOv8-style [N, 4 + 2, 4], letterboxed): anchor 0 is
  the bounding box of pixels brighter than 0.5, anchors 1-2 near-duplicates
  (shifted 1 px, lower scores: NMS must drop them), anchor 3 a low-score box.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch
from torch import nn


class ColourClassifier(nn.Module):
    def forward(self, x):  # [N, 3, H, W] in 0..1
        m = x.mean(dim=(2, 3))
        d = m[:, 0] - m[:, 2]
        return torch.stack((10 * d, -10 * d), dim=1)


class ChannelTagger(nn.Module):
    def forward(self, x):  # [N, H, W, 3] in -1..1
        return 5 * x.mean(dim=(1, 2))


class SquareDetector(nn.Module):
    def forward(self, x):  # [N, 3, S, S] in 0..1
        s = x.shape[-1]
        mask = (x.mean(dim=1) > 0.5).to(x.dtype)  # [N, S, S]
        cols, rows = mask.amax(dim=1), mask.amax(dim=2)  # [N, S]
        idx = torch.arange(s, dtype=x.dtype)
        x1 = (idx + (1 - cols) * 1e4).amin(dim=1)
        x2 = (idx * cols).amax(dim=1) + 1
        y1 = (idx + (1 - rows) * 1e4).amin(dim=1)
        y2 = (idx * rows).amax(dim=1) + 1
        score = cols.amax(dim=1)
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        one = torch.ones_like(cx)
        anchors = [
            (cx, cy, w, h, score, 0.05 * one),
            (cx + 1, cy, w, h, 0.9 * score, 0.05 * one),
            (cx, cy - 1, w, h, 0.8 * score, 0.05 * one),
            (2 * one, 2 * one, 4 * one, 4 * one, 0.1 * one, 0.05 * one),
        ]
        return torch.stack([torch.stack(a, dim=1) for a in anchors], dim=2)  # [N, 6, 4]


def _export(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example,), str(path), input_names=[input_name], output_names=[output_name],
            dynamic_axes={input_name: {0: "N"}, output_name: {0: "N"}}, dynamo=False,
        )
    return hashlib.sha256(path.read_bytes()).hexdigest()


def colour_classifier(folder: Path, *, risk: str = "red = 1.0") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sha = _export(ColourClassifier().eval(), torch.rand(2, 3, 32, 32), folder / "colour.onnx", "images", "logits")
    (folder / "manifest.toml").write_text(f"""
[model]
name = "colour"
kind = "classifier"
version = "1"
file = "colour.onnx"
sha256 = "{sha}"
labels = ["red", "blue"]

[input]
size = [32, 32]
layout = "NCHW"
colour = "RGB"
scale = {1 / 255}

[output]
decoding = "softmax"

[risk]
threshold = 0.5
top_k = 2
labels = {{ {risk} }}
""")
    return folder / "manifest.toml"


def channel_tagger(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sha = _export(ChannelTagger().eval(), torch.rand(2, 24, 24, 3), folder / "tagger.onnx", "pixels", "logits")
    (folder / "manifest.toml").write_text(f"""
[model]
name = "tagger"
kind = "classifier"
version = "1"
file = "tagger.onnx"
sha256 = "{sha}"
labels = ["blue", "green", "red"]

[input]
size = [24, 24]
layout = "NHWC"
colour = "BGR"
scale = {1 / 255}
mean = [0.5, 0.5, 0.5]
std = [0.5, 0.5, 0.5]

[output]
decoding = "sigmoid"

[risk]
labels = {{ red = 0.5, green = 1.0 }}
""")
    return folder / "manifest.toml"


def square_detector(folder: Path, *, size: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sha = _export(SquareDetector().eval(), torch.rand(2, 3, size, size), folder / "square.onnx", "images", "output0")
    (folder / "manifest.toml").write_text(f"""
[model]
name = "square"
kind = "detector"
version = "1"
file = "square.onnx"
sha256 = "{sha}"
labels = ["square", "other"]

[input]
size = [{size}, {size}]
letterbox = true
pad_value = 114

[output]
decoding = "yolo"
score_threshold = 0.25
iou_threshold = 0.45

[risk]
threshold = 0.5
labels = {{ square = 0.8 }}
""")
    return folder / "manifest.toml"

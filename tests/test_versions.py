"""The versions stamp decides what resume skips: every speed-only setting
(runtime, inputs) changed alone keeps every file skipped, and every setting
that can change a result (each key of the result sections, the risk policy,
a detector's model file or manifest, the vscan version) changed alone makes
every file scan again. Records come from a real scan on Ray; each changed
configuration goes through the run ledger (vscan.output.resume) over the
same sink, the component that decides; two of them run a real scan again."""

from __future__ import annotations

import typing
from dataclasses import fields

import pytest

from vscan.bench import synth
from vscan.config import RESULT_SECTIONS, Runtime, Sampling, ScanConfig, _SECTIONS
from vscan.decode import FixedRate
from vscan.errors import ConfigError
from vscan.output import audit
from vscan.output.resume import RunLedger
from vscan.output.sinks import JsonlSink
from vscan.runtime.driver import run_scan
from vscan.verdict.risk import DefaultRiskPolicy

BASE = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu"))


def other_values(section: str):
    """(key, another valid value) for every key of a section."""
    current = getattr(BASE, section)
    hints = typing.get_type_hints(type(current))
    for f in fields(current):
        value = getattr(current, f.name)
        if f.name == "policy":
            candidates = ["keyframes"]
        elif f.name == "detectors":
            continue  # a path that must exist: test_detector_files_are_in_the_stamp
        elif f.name == "ignore":
            candidates = [("/lists/nsrl.db",)]  # the stamp holds the lists' paths
        elif f.name == "allow":
            candidates = [("/banks/allow.bank",)]  # likewise the allow banks' paths (--allow)
        elif f.name == "triage_models":
            candidates = [("/models/deepfake/manifest.toml",)]  # likewise the triage manifests' paths
        elif typing.get_origin(hints[f.name]) is typing.Literal:
            candidates = [c for c in typing.get_args(hints[f.name]) if c != value]
        elif isinstance(value, bool):
            candidates = [not value]
        elif value is None:
            candidates = [4]
        else:
            candidates = [value * 2, value // 2 if isinstance(value, int) else value / 2, value + 1]
        for candidate in candidates:
            try:
                BASE.updated({section: {f.name: candidate}})
            except ConfigError:
                continue
            yield f.name, candidate
            break
        else:
            raise AssertionError(f"no other valid value for {section}.{f.name}")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, ray_local):
    root = tmp_path_factory.mktemp("versions")
    for i in range(2):
        synth.make_clip(root / "in" / f"clip{i}.mp4", seed=i, seconds=1.0, size=(96, 64))
    out = root / "r.jsonl"
    with JsonlSink(out) as sink:
        run_scan([root / "in"], sink=sink, config=BASE)
    return root, out, sorted(str(p) for p in (root / "in").glob("*.mp4"))


def to_scan(out, paths, config, risk_policy=None) -> list[str]:
    with JsonlSink(out) as sink:
        ledger = RunLedger.begin(sink, paths, config=config, bank_path=None, risk_policy=risk_policy)
        try:
            return list(ledger.filter(paths))
        finally:
            ledger.close()


def test_speed_only_settings_keep_every_file_skipped(scanned):
    _, out, paths = scanned
    assert to_scan(out, paths, BASE) == []
    changed = 0
    for section in set(_SECTIONS) - set(RESULT_SECTIONS):
        for key, value in other_values(section):
            assert to_scan(out, paths, BASE.updated({section: {key: value}})) == [], f"{section}.{key}={value!r}"
            changed += 1
    assert changed == sum(len(fields(getattr(BASE, s))) for s in set(_SECTIONS) - set(RESULT_SECTIONS))


def test_every_result_setting_makes_every_file_scan_again(scanned):
    _, out, paths = scanned
    changed = 0
    for section in RESULT_SECTIONS:
        for key, value in other_values(section):
            assert to_scan(out, paths, BASE.updated({section: {key: value}})) == paths, f"{section}.{key}={value!r}"
            changed += 1
    assert changed == sum(len(fields(getattr(BASE, s))) for s in RESULT_SECTIONS) - 1  # all but detectors
    assert to_scan(out, paths, BASE, DefaultRiskPolicy(min_partial_seconds=3.0)) == paths


def test_the_vscan_version_is_in_the_stamp(scanned, monkeypatch):
    _, out, paths = scanned
    monkeypatch.setattr(audit, "__version__", "99.0.0")
    assert to_scan(out, paths, BASE) == paths


def test_detector_files_are_in_the_stamp(scanned):
    from _onnx_models import colour_classifier

    root, out, paths = scanned
    manifest = colour_classifier(root / "model")
    config = BASE.updated({"models": {"detectors": [str(manifest)]}})
    with JsonlSink(root / "d.jsonl") as sink:
        run_scan([root / "in"], sink=sink, config=config)
    assert to_scan(root / "d.jsonl", paths, config) == []
    onnx = next((root / "model").rglob("*.onnx"))
    data = onnx.read_bytes()
    onnx.write_bytes(data + b"\0")  # the user's model file changed, same path
    assert to_scan(root / "d.jsonl", paths, config) == paths
    onnx.write_bytes(data)
    assert to_scan(root / "d.jsonl", paths, config) == []
    colour_classifier(root / "model", risk="red = 0.5")  # the manifest changed, same paths
    assert to_scan(root / "d.jsonl", paths, config) == paths


def test_real_resume_skips_after_a_speed_change_and_rescans_after_a_result_change(scanned):
    root, out, paths = scanned
    with JsonlSink(out) as sink:
        before = len(sink.records())
        speed = run_scan([root / "in"], sink=sink, config=BASE.updated({"runtime": {"small_file_group": 1, "batch_frames": 7}}))
        assert speed.files == 0 and len(sink.records()) == before
        result = run_scan([root / "in"], sink=sink, config=BASE.updated({"matching": {"distance_threshold": 20}}))
        assert result.files == len(paths) and len(sink.records()) == before + len(paths)

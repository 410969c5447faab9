"""bench/gpu_check.py's tests part: every needs_cuda test of a test file that
does not use Ray, through pytest (this module is also the pytest plugin, ``-p``,
that leaves the Ray ones out), one result per test from its JUnit XML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from .gpu_check_measure import Recorder
from .gpu_check_plan import ROOT, WHEEL_DIR, Plan


#: Fixtures that start or join Ray (tests/conftest.py): a test using one is left out.
RAY_FIXTURES = frozenset({"ray_local", "ray_address"})


def _test_files() -> list[str]:
    """Test files with needs_cuda tests (``needs_cuda`` or conftest's ``DEVICES``)."""
    found = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        text = path.read_text()
        if "needs_cuda" in text or "DEVICES" in text:
            found.append(str(path.relative_to(ROOT)))
    return found


def pytest_collection_modifyitems(config, items) -> None:
    """pytest hook, active when the tests part loads this module (``-p``):
    leaves out the needs_cuda tests that need Ray (a Ray fixture, or a module
    that imports ray), listing them in $VSCAN_GPU_CHECK_LEFT_OUT."""
    listing = os.environ.get("VSCAN_GPU_CHECK_LEFT_OUT")
    if not listing:
        return
    keep, drop = [], []
    for item in items:
        module = getattr(getattr(item, "module", None), "__dict__", {})
        needs_ray = bool(RAY_FIXTURES & set(getattr(item, "fixturenames", ()))) or "ray" in module
        (drop if needs_ray else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    Path(listing).write_text(json.dumps([i.nodeid for i in drop if "needs_cuda" in i.keywords]))


def part_tests(plan: Plan, rec: Recorder, deadline: float, work: Path) -> None:
    files = _test_files()
    rec["files"] = files
    left_out = work / "left_out.json"
    env = {**os.environ, "VSCAN_GPU_CHECK_LEFT_OUT": str(left_out)}
    if plan.device == "cuda":
        env["VSCAN_REQUIRE_CUDA"] = "1"
    else:
        env.pop("VSCAN_REQUIRE_CUDA", None)  # dry run: collected and skipped, the skip's reason reported
    carried = WHEEL_DIR / "shared"
    if not (ROOT.parent / "shared" / "data").is_dir() and (carried / "data").is_dir():
        env["VSCAN_SHARED_DIR"] = str(carried)  # the PDQ sample images carried in .whl/ (tests/conftest.py)
    rec["require_cuda"] = env.get("VSCAN_REQUIRE_CUDA") == "1"
    junit = work / "junit.xml"
    # One process, whatever the suite's own run uses (pytest-xdist's workers and their environment).
    for name in [k for k in env if k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS"))]:
        env.pop(name)
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "needs_cuda", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "vscan.bench.gpu_check_pytest",
           f"--junitxml={junit}", *files]  # fmt: skip
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=max(deadline - time.monotonic() - 2, 1))
    rec["left_out_needing_ray"] = json.loads(left_out.read_text()) if left_out.exists() else None
    rec["pytest_rc"] = p.returncode
    rec["pytest_tail"] = (p.stdout + p.stderr)[-3000:]
    if not junit.exists():  # pytest itself did not run (not installed, a broken conftest): no results to report
        raise RuntimeError(f"pytest wrote no results (rc {p.returncode}): {(p.stdout + p.stderr)[-600:]}")
    rec["tests"] = _junit_results(junit)
    counts: dict[str, int] = {}
    for t in rec.data["tests"]:
        counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
    rec["counts"] = counts


def _junit_results(path: Path) -> list[dict[str, str]]:
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                outcome = {"failure": "failed"}.get(kind, kind)
                message = " ".join(m for m in (node.get("message"), node.text) if m)[:400]
        classname, name = case.get("classname") or "", case.get("name") or ""
        # A module skipped at collection (an importorskip) has no class: its name is the module's.
        test_id = f"{classname.replace('.', '/')}.py::{name}" if classname else f"{name.replace('.', '/')}.py"
        if outcome == "failed" and "CUDAExecutionProvider" in message:
            message = "onnxruntime has no CUDA provider (the image's CPU build; onnxruntime-gpu is not carried): " + message
        out.append({"id": test_id, "outcome": outcome, "seconds": float(case.get("time") or 0), "message": message})
    return out

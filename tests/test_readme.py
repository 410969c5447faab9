"""Every command block of the README, run as a newcomer would run it, in order, in one empty folder.

The commands run in the environment the tests run in (vscan installed) with
``import torch`` refused (tests/_no_torch.py), as after the README's
``pip install -e '.[cpu]'``, which does not install torch; not in a fresh
virtual environment: the lines that create the venv and pip
install into it are checked for what they say but not run (a fresh install
downloads from PyPI, ~1 minute and a network), and the test-suite command
is not run from inside the test suite. Everything else runs: the demo, the
walk-through after it, and the Python example; each must exit 0 and say
what the README says it says.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _no_torch import logs, no_torch_env

from vscan.verdict.record import result_schema

ROOT = Path(__file__).resolve().parents[1]

#: Lines not run, and why.
NOT_RUN = {
    "python3 -m venv": "creates the fresh venv: the tests run in the installed environment",
    ". .venv/bin/activate": "activates that venv",
    "pip install": "installs into the fresh venv (PyPI download); the tests run where vscan is installed",
    "python3 -m pytest": "the test suite itself",
}


def readme_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block of the README, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)


def _runnable(line: str) -> str | None:
    """The part of a README line that runs here, or None (comment, blank, or NOT_RUN)."""
    code = line.split("  #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
    if not code:
        return None
    parts = [p.strip() for p in code.split("&&")]
    kept = [p for p in parts if not any(p.startswith(prefix) for prefix in NOT_RUN)]
    return " && ".join(kept) or None


def test_readme_blocks_are_shell_or_python_and_setup_lines_are_known():
    blocks = readme_blocks()
    assert {lang for lang, _ in blocks} <= {"sh", "python"}
    first = blocks[0][1]
    assert "python3 -m venv .venv" in first and "pip install -e '.[cpu]'" in first and "vscan demo" in first


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory) -> tuple[Path, list[tuple[str, subprocess.CompletedProcess]]]:
    """Run every README command, in order, in one empty folder (the user's clone), torch refused."""
    folder = tmp_path_factory.mktemp("readme")
    env, log = no_torch_env(tmp_path_factory.mktemp("no-torch"))
    bindir = Path(sys.executable).parent
    env.update({"COLUMNS": "80", "PYTHONUNBUFFERED": "1", "PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}"})
    ran: list[tuple[str, subprocess.CompletedProcess]] = []
    for lang, text in readme_blocks():
        if lang == "python":
            run = subprocess.run([sys.executable, "-c", text], cwd=folder, env=env, capture_output=True, text=True, timeout=900)
            ran.append((text, run))
            continue
        for line in text.splitlines():
            code = _runnable(line)
            if code is None:
                continue
            run = subprocess.run(["bash", "-c", code], cwd=folder, env=env, capture_output=True, text=True, timeout=900)
            ran.append((code, run))
    (folder / ".no-torch-log").symlink_to(log)
    return folder, ran


def _output(ran, start: str) -> str:
    return next(run.stdout for code, run in ran if code.startswith(start))


def test_every_readme_command_exits_0(walkthrough):
    _, ran = walkthrough
    assert len(ran) >= 10
    for code, run in ran:
        assert run.returncode == 0, f"README command failed: {code}\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"


def test_the_demo_says_what_matched_and_how_to_read_it(walkthrough):
    folder, ran = walkthrough
    demo = _output(ran, "vscan demo")
    assert "Matched or flagged: 12 files" in demo
    assert "Could not be scanned: 2" in demo and "Not matched:" in demo
    assert "report:  vscan report" in demo
    # Every edited re-upload (crop, flip, pad, ...) matches, no unrelated clip does.
    records = [json.loads(line) for line in (folder / "vscan-demo" / "results.jsonl").read_text().splitlines()]
    matched = {Path(r["path"]).name: any(m["is_match"] for m in r["matches"]) for r in records if r.get("status") == "ok"}
    uploads = [name for name in matched if name.startswith("upload-")]
    assert len(uploads) >= 10 and all(matched[name] for name in uploads), matched
    assert not any(matched[name] for name in matched if name not in uploads), matched


def test_the_walkthrough_ran_without_torch(walkthrough):
    """The block was in force in every ``vscan`` command and in the demo's decode processes (the
    demo's few files run without Ray, vscan.runtime.embedded, in decode processes of their own)."""
    folder, ran = walkthrough
    firsts = [lines[0] for lines in logs(folder / ".no-torch-log").values() if lines and lines[0].startswith("loaded ")]
    commands = [line for line in firsts if any(word.endswith(f"{os.sep}vscan") for word in line.split())]
    assert len(commands) >= len([code for code, _ in ran if code.startswith("vscan ")]), firsts
    assert len([line for line in firsts if "vscan.runtime.embedded_decode" in line]) >= 2, firsts


def test_the_walkthrough_resumes_and_reports(walkthrough):
    folder, ran = walkthrough
    scans = [run.stdout for code, run in ran if code.startswith("vscan scan vscan-demo/archive")]
    assert len(scans) == 2
    assert "Matched or flagged" in scans[0] and "scanned 15" in scans[0]
    assert "Nothing left to scan" in scans[1] and "17 already recorded" in scans[1]
    assert (folder / "report.html").stat().st_size > 1000
    assert (folder / "results.csv").read_text().count("\n") == 18  # a header and one row per file
    assert "[sampling]" in (folder / "sweep.toml").read_text()
    python = next(run.stdout for code, run in ran if code.lstrip().startswith("import vscan"))
    assert re.fullmatch(r"\d+ \d+ \d+ \d+\n", python)


def test_demo_records_have_only_documented_fields(walkthrough):
    folder, _ = walkthrough
    documented = set(result_schema()["properties"])
    for line in (folder / "vscan-demo" / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert set(record) <= documented, set(record) - documented

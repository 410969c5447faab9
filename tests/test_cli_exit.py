"""The ``vscan`` command ends without the interpreter's teardown (vscan.cli.main._end): after a
one-file scan that teardown (garbage collection over the modules numba, scipy and onnxruntime load)
was 0.9-1.7 s of a 3-5 s run on a loaded 2-core machine (issue #30). atexit's handlers still run,
the standard streams are flushed, and the exit status is the command's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_RUN = """
import atexit, runpy, sys
from pathlib import Path
out = Path(sys.argv[1])
class Teardown:
    def __del__(self):  # runs in the interpreter's teardown only
        out.with_suffix(".teardown").write_text("ran")
keep = Teardown()
atexit.register(lambda: out.with_suffix(".atexit").write_text("ran"))
sys.argv = ["vscan", *sys.argv[2:]]
runpy.run_module("vscan.cli", run_name="__main__", alter_sys=True)
"""


def _vscan(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    out = tmp_path / "marks"
    done = subprocess.run([sys.executable, "-c", _RUN, str(out), *args], capture_output=True, text=True, timeout=120)
    return done, {p.suffix for p in tmp_path.iterdir()}


def test_the_command_ends_after_atexit_without_the_teardown(tmp_path):
    done, marks = _vscan(tmp_path, "--version")
    assert done.returncode == 0 and done.stdout.startswith("vscan ")  # flushed
    assert ".atexit" in marks and ".teardown" not in marks


def test_an_error_keeps_its_status_and_message(tmp_path):
    done, marks = _vscan(tmp_path, "scan", str(tmp_path / "missing"), "--bank", str(tmp_path / "b.bank"))
    assert done.returncode == 2 and "no such file or folder" in done.stderr
    assert ".atexit" in marks and ".teardown" not in marks

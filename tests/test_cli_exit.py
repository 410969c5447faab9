"""The ``vscan`` command ends without the interpreter's teardown (vscan.cli.main._end): after a
one-file scan that teardown (garbage collection over the modules numba, scipy and onnxruntime load)
was 0.9-1.7 s of a 3-5 s run on a loaded 2-core machine (issue #30). atexit's handlers still run,
the standard streams are flushed, and the exit status is the command's."""

from __future__ import annotations

import subprocess
import sys
import time
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
import threading, time
if "--with-thread" in sys.argv:  # a non-daemon thread still writing when the command returns: joined
    sys.argv.remove("--with-thread")
    threading.Thread(target=lambda: (time.sleep(0.5), out.with_suffix(".thread").write_text("ran"))).start()
if "--with-executor" in sys.argv:  # an executor's queued write: its exit hook lets it finish
    from concurrent.futures import ThreadPoolExecutor
    sys.argv.remove("--with-executor")
    pool = ThreadPoolExecutor(1)
    for name in (".first", ".queued"):
        pool.submit(lambda name=name: (time.sleep(0.3), out.with_suffix(name).write_text("ran")))
if "--with-stuck-thread" in sys.argv:  # a thread nothing ends (as Ray leaves after a lost node): cut off
    sys.argv.remove("--with-stuck-thread")
    out.with_suffix(".started").write_text(repr(time.time()))
    threading.Thread(target=threading.Event().wait, name="never-ends").start()
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


def test_a_non_daemon_thread_still_writing_is_joined_first(tmp_path):
    done, marks = _vscan(tmp_path, "--with-thread", "--version")
    assert done.returncode == 0 and {".thread", ".atexit"} <= marks and ".teardown" not in marks


def test_an_executors_queued_write_finishes(tmp_path):
    done, marks = _vscan(tmp_path, "--with-executor", "--version")
    assert done.returncode == 0 and {".first", ".queued", ".atexit"} <= marks and ".teardown" not in marks


def test_a_thread_that_never_ends_is_named_and_cut_off_at_the_deadline(tmp_path):
    from vscan.cli.ending import JOIN_DEADLINE_SECONDS

    done, marks = _vscan(tmp_path, "--with-stuck-thread", "--version")
    waited_s = time.time() - float((tmp_path / "marks.started").read_text())
    assert done.returncode == 0 and done.stdout.startswith("vscan ") and ".atexit" in marks
    assert "never-ends" in done.stderr and "cut off" in done.stderr
    assert waited_s < JOIN_DEADLINE_SECONDS + 15  # the deadline plus start-up on a loaded machine, not a hang

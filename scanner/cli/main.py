"""The ``vscan`` command line (console script ``vscan = "vscan.cli.main:main"``).

Commands live in modules by group, each registering on :data:`vscan.cli.app.app`:

    scan_cmd     vscan scan, vscan config show
    bank_cmd     vscan hash, vscan bank build|info, vscan models list|check
    feedback_cmd vscan bank import|lookup|disable|enable|history|compact, vscan feedback
    report_cmd   vscan report, vscan demo, vscan bench
    export_cmd   vscan export
"""

import os
import sys

# First: Ctrl-C while the commands load exits 130 (vscan.cli.starting).
from vscan.cli import starting

starting.install()

from vscan.cli import scan_cmd, bank_cmd, feedback_cmd, report_cmd, export_cmd  # noqa: E402,F401  (they register the commands, in --help order)
from vscan.cli import rematch_cmd, serve_cmd  # noqa: E402,F401  (vscan rematch, vscan serve)
from vscan.cli.app import app  # noqa: E402

__all__ = ["app", "main"]

if not starting.is_the_command():  # imported by a program or a test: its Ctrl-C is its own again
    starting.started()


def main() -> None:
    starting.install()  # (again: main() may be called by a program that imported this module)
    if not starting.is_the_command():
        app()
        return
    try:
        app()
    except SystemExit as stop:
        _end(stop.code)
    _end(0)


def _end(code: object) -> None:
    """The command's end, without the interpreter's teardown: after a one-file scan that was 0.9-1.7 s on a
    loaded 2-core machine (garbage collection over the ~2,000 modules numba, scipy and onnxruntime load, and
    the model session freed), a third of the whole run (issue #30). Everything the command writes is closed
    by then (sinks, state, manifests: context managers). Non-daemon threads are joined and threading's exit
    hooks run (executors finish their queued work) within a deadline (vscan.cli.ending: a thread nothing ends,
    as Ray leaves after a lost node, is named and cut off), atexit's handlers run (logging, Ray's shutdown),
    the standard streams are flushed, then the process exits with the command's code."""
    import atexit

    from vscan.cli import ending

    if isinstance(code, str):  # SystemExit("message"): printed, status 1, as the interpreter does
        print(code, file=sys.stderr)
        code = 1
    status = 0 if code is None else code if isinstance(code, int) else 1
    ending.join_threads()  # as the interpreter's own end, before atexit, but bounded
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (vscan ... | head): nothing more can be said
            pass
    os._exit(status)


if __name__ == "__main__":
    main()

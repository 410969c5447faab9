"""Ctrl-C while the ``vscan`` command is still starting.

Loading the commands takes a second (more on a loaded machine); Ray and the
model stage take longer. Until a command handles Ctrl-C itself (a
KeyboardInterrupt it catches), SIGINT ends the process with 130 and says that
nothing was written, instead of a traceback or a death by the signal.
``import vscan`` loads nothing heavy (its names load on first use), so
:func:`install` is the first code of ours that runs; only the interpreter's own
start (site-packages, before any vscan code runs) is outside it. An ignored
SIGINT (a background job started by a non-interactive shell) stays ignored.
"""

import os
import signal
import sys

__all__ = ["MESSAGE", "install", "is_the_command", "started"]

MESSAGE = ("Interrupted: 0 records from this run are saved: vscan was still starting and wrote nothing. "
           "Run the same command again to resume.")  # fmt: skip


def _exit_130(signum, frame) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # one message, however often Ctrl-C is pressed
    print(MESSAGE, file=sys.stderr, flush=True)
    if is_the_command():
        # Nothing is written and nothing started yet (Ray and the model stage start after started()), so leave at once.
        # SystemExit from inside an import unwound into the interpreter's teardown with a native library half-loaded
        # and its threads running: once, under load, that ended by SIGABRT ("terminate called without an active
        # exception") instead of 130.
        sys.stdout.flush()
        os._exit(130)
    raise SystemExit(130)  # a program or test that imports the CLI: its own end


def install() -> None:
    """Ctrl-C exits 130 from here on, unless SIGINT is ignored or already handled."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _exit_130)


def started() -> None:
    """The command handles Ctrl-C itself (KeyboardInterrupt) from here on."""
    if signal.getsignal(signal.SIGINT) is _exit_130:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def is_the_command() -> bool:
    """Whether this process is the ``vscan`` command (the console script or ``python -m vscan.cli``),
    not a program or test that imports the CLI."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None:
        return spec.name == "vscan.cli.__main__"
    stem = os.path.basename(getattr(main, "__file__", "") or "").split(".")[0].split("-script")[0]
    return stem == "vscan"

"""The command's end: the threads a normal interpreter end would join, joined within a deadline.

The ``vscan`` command ends with ``os._exit`` after atexit's handlers (vscan.cli.main._end), skipping the
interpreter's teardown (0.9-1.7 s of a one-file scan on a loaded 2-core machine, issue #30). The
interpreter's own end first runs threading's exit hooks (concurrent.futures executors register theirs:
queued work finishes, e.g. a sink write) and joins every non-daemon thread. An unbounded join is what a
plain ``threading._shutdown()`` does, and a scan whose Ray cluster lost a worker raylet mid-scan then never
ended: Ray leaves a non-daemon thread there that nothing ends. So here both are bounded by one deadline; a
thread still running then is named in a log line and cut off by the exit that follows.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: The whole join's budget: long enough for a last sink write or upload to finish, short enough that a
#: thread nothing will end (Ray's, after a lost node) costs a user a pause, not a hang.
JOIN_DEADLINE_SECONDS = 3.0


@dataclass(frozen=True)
class Ending:
    """What the bounded join left: the threads still running at the deadline, and how long it waited."""

    left: tuple[str, ...]
    waited_seconds: float


def join_threads(deadline_seconds: float = JOIN_DEADLINE_SECONDS) -> Ending:
    """Run threading's exit hooks, then join non-daemon threads, all within ``deadline_seconds``.

    Called from the main thread only. The hooks run in a daemon thread of their own, so a hook that
    blocks (an executor waiting on a worker that never returns) is given up on at the deadline too.
    """
    started = time.monotonic()
    deadline = started + deadline_seconds
    hooks = _run_hooks_in_background()
    _join_until(hooks, deadline)
    for thread in _non_daemon_threads():
        _join_until(thread, deadline)
    left = tuple(thread.name for thread in _non_daemon_threads() if thread.is_alive())
    if hooks.is_alive():
        left = (*left, "threading exit hooks (concurrent.futures executors)")
    ending = Ending(left=left, waited_seconds=time.monotonic() - started)
    if ending.left:
        log.warning("vscan: %d thread(s) still running %.1f s after the command ended, cut off: %s",
                    len(ending.left), ending.waited_seconds, ", ".join(ending.left))
    return ending


def _run_hooks_in_background() -> threading.Thread:
    """threading's exit hooks in registration order reversed, as ``threading._shutdown`` runs them."""
    hooks = list(reversed(getattr(threading, "_threading_atexits", [])))

    def run() -> None:
        for hook in hooks:
            try:
                hook()
            except Exception:  # one executor failing to wind down must not keep the others from theirs
                log.exception("vscan: a threading exit hook failed at the command's end")

    runner = threading.Thread(target=run, name="vscan-exit-hooks", daemon=True)
    runner.start()
    return runner


def _non_daemon_threads() -> list[threading.Thread]:
    me = threading.current_thread()
    return [t for t in threading.enumerate() if t is not me and not t.daemon and t.is_alive()]


def _join_until(thread: threading.Thread, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        thread.join(timeout=remaining)

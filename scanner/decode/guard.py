"""No hang, ever: a decode that stops making progress is abandoned within seconds.

``run_guarded(work, stall_seconds)`` runs ``work(watch)`` in a daemon thread
and waits while it makes progress: a decoded frame (the decoder's
``frames_decoded``, once ``watch.decoder`` is set) or a ``watch.beat()``.
After ``stall_seconds`` without either it sets the decoder's cancel event
(its loops stop at their next frame) and raises DecodeStallError, so the
caller can decode the file again another way long before the per-file
limit. A thread stuck inside C code (decord's ``get_batch``) cannot be
stopped from Python; it is left behind as a daemon and the worker's
per-file watchdog (vscan.runtime.decode_task) still bounds the file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from vscan.errors import DecodeTimeoutError

__all__ = ["DecodeStallError", "STALL_SECONDS", "Watch", "run_guarded"]

#: Seconds without a decoded frame after which a decode is abandoned. The
#: slowest legitimate step is one decord window (64 frames) or one
#: keyframe-to-frame run of PyAV at 4K on a loaded core: well under this.
STALL_SECONDS = 8.0

T = TypeVar("T")


class DecodeStallError(DecodeTimeoutError):
    """A decoder delivered no frame for the stall limit and was abandoned
    (records show it as DecodeTimeoutError when no fallback succeeded)."""


class Watch:
    """What the guard watches: the decoder in use and explicit beats."""

    def __init__(self) -> None:
        self.decoder: Any = None
        self.cancel = threading.Event()
        self._beats = 0

    def use(self, decoder: T) -> T:
        """Watch this decoder's frame count and give it the cancel event."""
        decoder.cancel = self.cancel
        self.decoder = decoder
        return decoder

    def beat(self) -> None:
        self._beats += 1

    def progress(self) -> tuple[int, int]:
        return self._beats, int(getattr(self.decoder, "frames_decoded", 0) or 0)


def run_guarded(work: Callable[[Watch], T], stall_seconds: float = STALL_SECONDS, *, what: str = "decoder") -> T:
    """work(watch) in a thread; its result, its exception, or DecodeStallError."""
    watch = Watch()
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = work(watch)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=target, name="vscan-decode", daemon=True)
    thread.start()
    last, since = watch.progress(), time.monotonic()
    poll = min(0.25, stall_seconds / 4)
    while not done.wait(poll):
        now, current = time.monotonic(), watch.progress()
        if current != last:
            last, since = current, now
        elif now - since >= stall_seconds:
            watch.cancel.set()
            raise DecodeStallError(
                f"{what} delivered no frame for {stall_seconds:g} s "
                f"({last[1]} frames decoded before it stopped); abandoned"
            )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]

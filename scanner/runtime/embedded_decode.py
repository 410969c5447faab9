"""The decode process of an embedded scan (vscan.runtime.embedded).

A small scan runs without Ray, but its decoding still runs in a process of
its own: a decoder that aborts (decord can, on some streams) or hangs past
the per-file limit (decode_task's faulthandler watchdog ends the process)
takes this process down, never the scan. It runs the Ray decode task's own
function (vscan.runtime.decode_task.decode_task), one file per request, so
a file's summary and frames are what a Ray worker would have produced.

Protocol, pickles on two pipes: the driver sends ``(known_sha256, benign)``
once, then ``(key, path, config)`` per file (None: exit); this process
answers ``(key, FileSummary, DecodedFile | None)`` per file, in order, each
a message of vscan.runtime.framed (its arrays out of band: never copied into
or out of a pickle).
Anything a decoder prints to stdout goes to /dev/null, not into the pipe.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys

__all__ = ["main"]


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it ends this process
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # a decoder's C-level prints never reach the pipe
    requests = sys.stdin.buffer
    from vscan.runtime.decode_task import decode_task
    from vscan.runtime.framed import write_message

    known, benign = pickle.load(requests)
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        if request is None:
            return
        key, path, config = request
        summaries, payload = decode_task([path], config, known, benign)
        write_message(answers, (key, summaries[0], payload))  # framed, frames out of band (vscan.runtime.framed)


if __name__ == "__main__":
    main()

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

The scan's other decode processes are forked from this one once it has
imported the decoders (``main``'s arguments: a pipe to write their process
ids to, then each one's request and answer pipes): each would otherwise
start an interpreter and import the same modules again, ~0.35 CPU-s a
process on a 2-core machine (issue #30). Each serves its own pipes as this
one serves its stdin and stdout; this one reaps them when its stdin ends.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys

__all__ = ["main"]

#: Imported before the others are forked: what decoding a first file imports (PyAV, vscan's ranged reads), not done again in each.
_PRELOAD = ("av", "vscan.inputs.ranged_pyav", "vscan.decode.sampling", "numpy.ma")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it ends this process
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # a decoder's C-level prints never reach the pipe
    requests = sys.stdin.buffer
    from vscan.runtime.decode_task import decode_task
    from vscan.runtime.framed import write_message

    known, benign = pickle.load(requests)
    children: list[int] = []
    if argv:
        pids, pipes = int(argv[0]), [int(fd) for fd in argv[1:]]
        own = _fork(pids, list(zip(pipes[::2], pipes[1::2])), answers, children)
        if own is not None:  # a forked process: its own pipes
            requests, answers = own
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            break
        if request is None:
            break
        key, path, config = request
        summaries, payload = decode_task([path], config, known, benign)
        write_message(answers, (key, summaries[0], payload))  # framed, frames out of band (vscan.runtime.framed)
    for pid in children:  # ended by the driver (or on their own stdin's end): their CPU counted with this process's
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    answers.flush()
    os._exit(0)  # nothing left to tidy: the interpreter's own shutdown would only cost CPU


def _fork(pid_fd: int, pipes: list[tuple[int, int]], answers, children: list[int]):
    """Fork a decode process for each (request fd, answer fd) of ``pipes``, their ids written to ``pid_fd``
    (8 bytes each, in order). Returns None here, and (requests, answers) as files in a forked process."""
    import importlib

    for name in _PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    for i, (request_fd, answer_fd) in enumerate(pipes):
        pid = os.fork()
        if pid == 0:  # the forked process: its own pipes, none of the others' (their ends are the driver's to close)
            for j, fds in enumerate(pipes):
                if j != i:
                    os.close(fds[0]), os.close(fds[1])
            os.close(pid_fd)
            answers.close()  # this one's answer pipe: the driver sees it end when this one ends, whatever the forks do
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # (stdin's buffered reader is this one's, never read here)
            children.clear()  # (its elders' ids: not its children)
            return os.fdopen(request_fd, "rb"), os.fdopen(answer_fd, "wb")
        children.append(pid)
    for request_fd, answer_fd in pipes:
        os.close(request_fd), os.close(answer_fd)
    os.write(pid_fd, b"".join(pid.to_bytes(8, "little") for pid in children))
    os.close(pid_fd)
    return None


if __name__ == "__main__":
    main()

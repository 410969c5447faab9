"""The decode processes of a scan without Ray (vscan.runtime.embedded), seen from the scanning process.

Each runs vscan.runtime.embedded_decode: files go in on its stdin, each
decoded file comes back on its stdout as a message of vscan.runtime.framed
(a pickle, its arrays' buffers beside it). The
scanning process waits on them with select(), beside its model thread
(vscan.runtime.embedded_model).
"""

from __future__ import annotations

import os
import pickle
import select
import subprocess
import sys
import time
from collections import deque
from typing import Any

from vscan.config import ScanConfig
from vscan.runtime.framed import read_message
from vscan.runtime.outcome import Task

__all__ = ["_DecodeProcess", "_Decoders"]

#: Native thread pools (OpenMP, numpy's OpenBLAS) of a decode process: one thread, as Ray gives a one-CPU task's worker.
_ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
#: Seconds the driver waits past the per-file limit (x1.5) for a decode process whose own watchdog did not end it.
_STUCK_MARGIN_SECONDS = 10.0


def _widen(fd: int) -> None:
    """The answer pipe as wide as Linux allows a user (fs/pipe-max-size, at most 4 MiB): a decoded file
    (0.4-5 MB) then goes across in a few reads, each a wait for the GIL the model thread holds."""
    try:
        import fcntl

        with open("/proc/sys/fs/pipe-max-size") as f:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, min(int(f.read()), 4 << 20))
    except (ImportError, AttributeError, OSError, ValueError):
        pass  # not Linux: the default pipe


class _DecodeProcess:
    """vscan.runtime.embedded_decode, started at once: it imports the decoders while the model loads here."""

    def __init__(self, known: Any, benign: Any) -> None:
        command = [sys.executable, "-P", "-m", "vscan.runtime.embedded_decode"]  # -P: the working folder is not on its path
        env = {**_ONE_THREAD, **os.environ}  # one decode slot each, as a Ray decode task's worker (unless the user says otherwise)
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0, env=env)
        _widen(self.proc.stdout.fileno())
        self.waiting: deque[Task] = deque()  # its files, in the order it answers
        self.since = time.monotonic()  # when its current file started (as near as the driver knows)
        self._send((known, benign))

    def _send(self, message: Any) -> None:
        data = memoryview(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        while data:  # an unbuffered pipe: a big message (a --state run's known digests) may go in parts
            data = data[self.proc.stdin.write(data) :]

    def fileno(self) -> int:
        return self.proc.stdout.fileno()

    def decode(self, task: Task, config: ScanConfig) -> None:
        if not self.waiting:
            self.since = time.monotonic()
        self._send((task.key, task.path, config))
        self.waiting.append(task)

    def answer(self) -> tuple | None:
        """The next file's (key, FileSummary, DecodedFile | None), once select() says it is coming; None: the process died."""
        try:
            return read_message(self.fileno())
        except (EOFError, pickle.UnpicklingError, OSError):
            return None

    def cpu_seconds(self) -> float | None:
        """CPU-seconds the process has used so far (Linux's /proc; None elsewhere or once it has ended)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError, AttributeError):
            return None

    def close(self) -> None:
        """Ended at once: whatever it still decodes (a scan stopped by Ctrl-C or an error) is not wanted."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class _Decoders:
    """The decode processes: as many as a Ray node here would have decode slots, at most one per file."""

    def __init__(self, count: int, known: Any, benign: Any) -> None:
        self.procs = [_DecodeProcess(known, benign) for _ in range(count)]
        self.cpu_seconds: float | None = None  # all of theirs, once closed

    def decode(self, task: Task, config: ScanConfig) -> None:
        min(self.procs, key=lambda p: len(p.waiting)).decode(task, config)

    @property
    def pending(self) -> bool:
        return any(p.waiting for p in self.procs)

    def remaining(self) -> list[Task]:
        return [t for p in self.procs for t in p.waiting]

    def wait(self, others: list, limit: float) -> tuple[list, bool]:
        """What is ready to read: decode processes with an answer coming, and any of ``others``
        (the model thread); and whether the oldest busy process, past ``limit`` x1.5 without
        its own watchdog ending it, was killed instead (then it alone is returned)."""
        busy = [p for p in self.procs if p.waiting]
        timeout = None
        if busy:
            first = min(busy, key=lambda p: p.since)
            timeout = max(0.0, first.since + limit * 1.5 + _STUCK_MARGIN_SECONDS - time.monotonic())
        ready, _, _ = select.select(busy + others, [], [], timeout)
        if ready or not busy:
            return ready, False
        first.proc.kill()
        return [first], True

    def take(self, proc: _DecodeProcess, killed: bool) -> tuple[Task, tuple | None, float]:
        """A ready process's next file: (its task, its answer or None: the process died or was killed, seconds it took)."""
        answer = None if killed else proc.answer()
        now = time.monotonic()
        task, took, proc.since = proc.waiting.popleft(), now - proc.since, now
        return task, answer, took

    def close(self) -> None:
        """Every process ended; the CPU-seconds they used kept (``cpu_seconds``: None where unknown)."""
        used = [proc.cpu_seconds() for proc in self.procs]
        self.cpu_seconds = None if None in used else sum(used)
        for proc in self.procs:
            proc.close()

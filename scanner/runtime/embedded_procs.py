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
import signal
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
#: Whether the decode processes after the first are forked from it (Linux: ``_Forked`` reads their state in /proc).
_FORK = sys.platform.startswith("linux") and hasattr(os, "fork")
#: Seconds the first decode process has to reap the ones forked from it, once idle, before it is killed.
_REAP_SECONDS = 2.0
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


class _Forked:
    """A decode process forked by the first one (vscan.runtime.embedded_decode), as much of subprocess.Popen as
    ``_DecodeProcess`` uses: its pipes, and its id (read when first asked: the first process writes it once forked).
    It is not this process's child: the first one reaps it; here it has ended once it is gone or a zombie, or once
    its id names a process started at another time (a forked one outlived by its first is reaped by init, and its id
    may be given to another process: that one is never signalled)."""

    def __init__(self, ids: "_ForkedIds", index: int, requests: int, answers: int) -> None:
        self._ids, self._index = ids, index
        self.stdin = os.fdopen(requests, "wb", buffering=0)
        self.stdout = os.fdopen(answers, "rb", buffering=0)

    @property
    def pid(self) -> int | None:
        return self._ids.get(self._index)

    def poll(self) -> int | None:
        pid = self.pid
        if pid is None:
            return -signal.SIGKILL  # the first process ended before it forked this one
        state = _proc_state(pid)
        # Gone, a zombie, or its id taken by another process since (reaped by init once the first one ended): ended.
        return None if state is not None and state[0] != "Z" and state[1] == self._ids.started(self._index) else 0

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("forked decode process", timeout)
            time.sleep(0.005)
        return code


class _ForkedIds:
    """The forked decode processes' ids, from the pipe the first one writes them to (read once, when first needed)."""

    def __init__(self, fd: int, count: int) -> None:
        self._fd, self._count, self._ids = fd, count, None
        self._started: list[int | None] = []

    def get(self, index: int) -> int | None:
        if self._ids is None:
            data = b""
            while len(data) < 8 * self._count and (part := os.read(self._fd, 8 * self._count - len(data))):
                data += part
            os.close(self._fd)
            self._ids = [int.from_bytes(data[i : i + 8], "little") for i in range(0, len(data) - 7, 8)]
            # Each one's start time (in clock ticks after boot), so that a later look knows the same process by it.
            self._started = [(_proc_state(pid) or ("", None))[1] for pid in self._ids]
        return self._ids[index] if index < len(self._ids) else None

    def started(self, index: int) -> int | None:
        """The start time ``get(index)``'s process had when its id was read (None: it was gone already)."""
        self.get(index)
        return self._started[index] if index < len(self._started) else None


def _proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks after boot) of process ``pid`` from /proc, or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[19])  # fields 3 and 22 of proc(5)'s stat
    except (OSError, IndexError, ValueError):
        return None


class _DecodeProcess:
    """vscan.runtime.embedded_decode, started at once: it imports the decoders while the model loads here;
    with ``forks``, that many more forked from it once it has (``forked``: theirs, as _DecodeProcess too)."""

    def __init__(self, known: Any, benign: Any, forks: int = 0, *, proc: Any = None) -> None:
        self.forked: list[_DecodeProcess] = []
        self.waiting: deque[Task] = deque()  # its files, in the order it answers
        self.since = time.monotonic()  # when its current file started (as near as the driver knows)
        if proc is not None:  # one forked from the first (its known digests and lists inherited)
            self.proc = proc
            _widen(self.proc.stdout.fileno())
            return
        command = [sys.executable, "-P", "-m", "vscan.runtime.embedded_decode"]  # -P: the working folder is not on its path
        env = {**_ONE_THREAD, **os.environ}  # one decode slot each, as a Ray decode task's worker (unless the user says otherwise)
        theirs, ours = [], []  # the forked processes' pipe ends: theirs go to the first process, ours stay here
        if forks:
            ids_read, ids_write = os.pipe()
            theirs.append(ids_write)
            for _ in range(forks):
                (req_read, req_write), (ans_read, ans_write) = os.pipe(), os.pipe()
                theirs += [req_read, ans_write]
                ours.append((req_write, ans_read))
            command += [str(fd) for fd in theirs]
        try:
            self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0, env=env,
                                         pass_fds=theirs)  # fmt: skip
        finally:
            for fd in theirs:
                os.close(fd)
        _widen(self.proc.stdout.fileno())
        if forks:
            ids = _ForkedIds(ids_read, forks)
            self.forked = [_DecodeProcess(None, None, proc=_Forked(ids, i, *fds)) for i, fds in enumerate(ours)]
        self._send((known, benign))

    def _send(self, message: Any) -> None:
        data = memoryview(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        try:
            while data:  # an unbuffered pipe: a big message (a --state run's known digests) may go in parts
                data = data[self.proc.stdin.write(data) :]
        except OSError:  # the process died (a decoder's abort) before this file went: its answer() says so (EOF), as for the files it held
            pass

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
        """Ended at once: whatever it still decodes (a scan stopped by Ctrl-C or an error) is not wanted. The first
        process, idle, with forked ones (ended before it): ended by its stdin's end, once it has reaped them, so that
        their CPU counts among this process's children's as theirs did when each was started here."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self.forked and not self.waiting:
            try:
                self.proc.wait(timeout=_REAP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class _Decoders:
    """The decode processes: as many as a Ray node here would have decode slots, at most one per file."""

    def __init__(self, count: int, known: Any, benign: Any) -> None:
        # the others forked from the first (vscan.runtime.embedded_decode) where /proc tells a forked one's state, else started here
        first = _DecodeProcess(known, benign, forks=count - 1 if _FORK else 0)
        self.procs = [first, *first.forked] + [_DecodeProcess(known, benign) for _ in range(count - 1 - len(first.forked))]
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
        """Every process ended, the forked ones first (the first one reaps them as its stdin ends); the CPU-seconds
        they used kept (``cpu_seconds``: None where unknown)."""
        used = [proc.cpu_seconds() for proc in self.procs]
        self.cpu_seconds = None if None in used else sum(used)
        for proc in self.procs[::-1]:
            proc.close()

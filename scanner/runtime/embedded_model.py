"""The model stage of a scan without Ray (vscan.runtime.embedded), on a thread of its own.

The command's own loop reads decoded files from its decode processes; the
ModelWorker runs here. Run in that loop, each model call (~30-70 ms a file)
left every decode process that had finished a file blocked on its pipe (a
decoded file is 0.4-5 MB), and the first files waited for the whole model
load. Here:

- the worker is built on this thread while the loop already collects the
  first decoded files (the loop is woken when it is ready);
- each call takes every decoded file waiting (up to ``call_frames``
  frames; a bigger file goes alone), as a Ray model stage's call does, so
  hashing batches across files and decoding goes on during the call;
- a call that raises is made again file by file, so the files before the
  one that fails keep their results; the loop records those, then raises
  the error, as the one-file calls did.

The loop waits on :meth:`ModelThread.fileno` beside its decode processes.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Any, Callable

from vscan.runtime.payload import ModelResult

__all__ = ["ModelThread", "native_threads"]

#: Seconds the loop waits for a model call in progress when the scan stops early (Ctrl-C, an error).
_CLOSE_WAIT_SECONDS = 30.0


def native_threads(threads: int) -> Any:
    """This process's native thread pools (numpy's BLAS, OpenMP) limited to ``threads`` for the scan, as Ray's
    workers are (Ray sets their OMP_NUM_THREADS from their CPUs): OpenBLAS's own threads spin between the model's
    small products, on a busy 2-core machine the 256-clip sweep took 23-24 s and 19-23 CPU-s with them, 7-9 s and
    6.5 CPU-s without. Returns what restores them (``restore_original_limits()``), or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=max(1, threads))


class ModelThread:
    """The worker built by ``build`` on a thread of its own; files in, (task, result) out."""

    def __init__(self, build: Callable[[], Any], *, call_frames: int, threads: int | None = None) -> None:
        """``threads``: this process's native thread pools limited to it while the thread runs (:func:`native_threads`;
        again after the first call, which loads libraries of their own: numba's import brings scipy's OpenBLAS)."""
        self.call_frames = call_frames
        self._threads = threads
        self._native: list[Any] = []
        self.worker: Any = None
        self.ready = threading.Event()  # the worker was built (or failed to be)
        self.waiting_frames = 0  # frames of files submitted and not yet taken into a call
        self.calls = 0
        #: CPU-seconds of this thread building the worker and in its calls (issue #30: where the scan's CPU goes)
        self.build_cpu_seconds = self.calls_cpu_seconds = 0.0
        self._build = build
        self._lock = threading.Condition()
        self._inbox: deque[tuple[Any, tuple, tuple, int]] = deque()  # (task, file tuple, passes, frames)
        self._outbox: deque[tuple[Any, ModelResult]] = deque()
        self._error: BaseException | None = None
        self._pending = 0  # files submitted whose result has not been handed out
        self._closing = False
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._run, name="vscan-model", daemon=True)
        self._thread.start()

    def fileno(self) -> int:
        """Readable when a result (or the worker, or an error) is ready: for select()."""
        return self._wake_read

    @property
    def pending(self) -> bool:
        """Files at the model, or results not handed out yet."""
        return self._pending > 0

    def submit(self, task: Any, file: tuple, passes: tuple) -> None:
        """One decoded file: ``file`` (key, sha256, md5, passes) and its payloads, as ModelWorker.run takes them."""
        frames = sum(len(p.frames) for p in passes)
        with self._lock:
            self._inbox.append((task, file, passes, frames))
            self.waiting_frames += frames
            self._pending += 1
            self._lock.notify()

    def results(self) -> list[tuple[Any, ModelResult]]:
        """The results ready, in the order of their calls (call once select() says :meth:`fileno` is readable);
        then :meth:`raise_error`: a call that failed leaves the results of the files before it here."""
        os.read(self._wake_read, 4096)  # the wake-ups so far
        with self._lock:
            out = list(self._outbox)
            self._outbox.clear()
            self._pending -= len(out)
        return out

    def raise_error(self) -> None:
        """The model's error (the worker did not build, a call failed), once its results before it were handled."""
        with self._lock:
            error = self._error
        if error is not None:
            raise error

    def built(self) -> Any:
        """The worker, once built (waits for it); the build's error raised."""
        self.ready.wait()
        if self.worker is None:
            self.raise_error()
        return self.worker

    def close(self) -> None:
        """The thread told to stop once its call in progress ends (it takes no new one)."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        self._thread.join(_CLOSE_WAIT_SECONDS)
        if self._thread.is_alive():  # still in its call: restored from here (the thread restores them as it ends, _run)
            self._restore_native()
        if not self._thread.is_alive():  # (a thread still in its call may yet write to its end)
            for fd in (self._wake_read, self._wake_write):
                os.close(fd)

    def _limit_native(self) -> None:
        native = native_threads(self._threads) if self._threads is not None else None
        if native is not None:
            with self._lock:
                self._native.append(native)

    def _restore_native(self) -> None:
        """The native thread pools as they were, in the thread that limited them (``_run``'s end): restored from another
        thread, OpenBLAS kept its own count, and the next scan's model thread could no longer limit it: the second and
        later scans in one process (``vscan serve``, a library, a bench's runs) hashed and matched with OpenBLAS's 2
        threads spinning (threadpoolctl said 2 inside their calls, 1 in the first scan's)."""
        while True:
            with self._lock:
                if not self._native:
                    return
                native = self._native.pop()
            native.restore_original_limits()

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._restore_native()

    def _serve(self) -> None:
        self._limit_native()
        cpu = time.thread_time()
        try:
            self.worker = self._build()
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, which raises it
            self._finish([], exc)
            return
        finally:
            self.build_cpu_seconds = time.thread_time() - cpu
            self.ready.set()
        self._wake()
        while True:
            with self._lock:
                while not self._inbox and not self._closing:
                    self._lock.wait()
                if self._closing:
                    return
                batch = self._take()
            cpu = time.thread_time()
            results, error = self._call(batch)
            self.calls_cpu_seconds += time.thread_time() - cpu
            if self.calls == 1:
                self._limit_native()
            self._finish(list(zip((task for task, *_ in batch), results)), error)
            if error is not None:
                return

    def _take(self) -> list[tuple[Any, tuple, tuple, int]]:
        """Every file waiting, up to ``call_frames`` frames (at least one file, whatever its size)."""
        batch, frames = [self._inbox.popleft()], 0
        frames = batch[0][3]
        while self._inbox and frames + self._inbox[0][3] <= self.call_frames:
            frames += self._inbox[0][3]
            batch.append(self._inbox.popleft())
        self.waiting_frames -= frames
        return batch

    def _call(self, batch: list[tuple[Any, tuple, tuple, int]]) -> tuple[list[ModelResult], BaseException | None]:
        """One model call over the batch; where it raises, file by file up to the file that fails."""
        self.calls += 1
        try:
            return [ModelResult.of(r) for r in self.worker.run([f for _, f, _, _ in batch], *(p for *_, passes, _ in batch for p in passes))], None
        except Exception as exc:  # noqa: BLE001 - the loop raises it, after the results of the files before it
            if len(batch) == 1:
                return [], exc
        results: list[ModelResult] = []
        for item in batch:
            one, error = self._call([item])
            results += one
            if error is not None:
                return results, error
        return results, None

    def _finish(self, results: list[tuple[Any, ModelResult]], error: BaseException | None) -> None:
        with self._lock:
            self._outbox.extend(results)
            if error is not None:
                self._error = error
                self._pending -= len(self._inbox)  # never taken: the loop stops at the error
                self._inbox.clear()
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"x")
        except OSError:  # (the loop has stopped reading)
            pass

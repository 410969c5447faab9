"""Lookups of concurrent requests searched together.

The bank index's kernel (vscan.bank.mih_kernel) costs about the same for a
batch of tens of hashes as for one (its per-call set-up dominates a single
hash), so one thread searches whatever requests are waiting, as one batch:
the first request waits for nothing, and the ones that arrive while a batch
is searched go together in the next. Under load, batches grow by themselves;
idle, a lookup is searched alone at once.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

import numpy as np

__all__ = ["LookupBatcher"]


class LookupBatcher:
    def __init__(self, holder, radius: int, *, max_batch: int = 128) -> None:
        self.holder, self.radius, self.max_batch = holder, radius, max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.batches = self.searched = 0
        threading.Thread(target=self._run, name="vscan-lookup-batcher", daemon=True).start()

    async def search(self, hash32: np.ndarray) -> list[dict[str, Any]]:
        """The bank matches of one hash ([32] uint8), from the next batch."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((np.asarray(hash32, np.uint8).reshape(32), future, loop))
        return await future

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < self.max_batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            state = self.holder.current  # one bank generation for the whole batch
            try:
                found = state.search(np.stack([h for h, _, _ in items]), self.radius)
            except Exception as exc:  # every request of the batch gets the error (a 500), none hangs
                for _, future, loop in items:
                    loop.call_soon_threadsafe(_fail, future, exc)
                continue
            self.batches += 1
            self.searched += len(items)
            for (_, future, loop), hits in zip(items, found):
                loop.call_soon_threadsafe(_done, future, hits)


def _done(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)

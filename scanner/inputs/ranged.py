"""Objects decoded where they lie: a seekable file that reads by range requests.

A keyframe first pass needs the container's index and the wanted keyframes'
packets, not the whole object (vscan.inputs.ranged_pyav decodes from a
:class:`RangeFile` and asks for those packets' byte ranges up front). What
is read is counted (``object.bytes_read``), so a record says how much of
the object it saw.

**Digests.** An object read in part has no content digest: the record's
``sha256``/``md5``/``sha1`` are null and ``object.read`` is ``"ranges"``
(``object.etag``/``version_id`` still name what was read: every range is
pinned to them). Exact-digest bank entries cannot match such a record, so
objects are read whole, with their digests, whenever a digest decides
something: ``--state`` (content already scanned), ``--ignore`` lists, a bank
or ``--allow`` bank holding digest-only entries (an MD5 or SHA list: the
driver resolves ``runtime.object_reads = "auto"`` to "whole"), and
``runtime.object_reads = "whole"`` or ``VSCAN_OBJECT_READS=whole``. Stills
are read whole too (their decoders take files).
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from vscan.inputs.objectstore_base import ObjectStoreError

__all__ = ["RangeFile", "BLOCK_BYTES", "registered", "source_for", "ranges_wanted"]

#: The unit of a range request (and of the cache): small enough that a keyframe costs little more
#: than its packet, large enough that a container's header takes one or two requests.
BLOCK_BYTES = int(os.environ.get("VSCAN_OBJECT_RANGE_BLOCK") or 32 << 10)
#: Read-ahead when the decoder reads straight on (a dense pass): doubles up to this.
MAX_AHEAD_BYTES = 8 << 20
#: Blocks kept (least recently used dropped first).
CACHE_BYTES = 64 << 20

_SOURCES: dict[str, "RangeFile"] = {}
_lock = threading.Lock()


class _Positioned(io.RawIOBase):
    """A read-only, seekable raw file of ``_extent()`` bytes with its own position (RangeFile and its views)."""

    _pos = 0

    def _extent(self) -> int:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._extent()}[whence]
        self._pos = max(0, base + int(offset))
        return self._pos


class RangeFile(_Positioned):
    """A read-only, seekable view of an object of ``size`` bytes; ``read_range(start, stop)`` fetches bytes."""

    def __init__(self, read_range: Callable[[int, int], bytes], size: int, block: int = BLOCK_BYTES) -> None:
        super().__init__()
        self._read_range, self.size, self.block = read_range, int(size), int(block)
        self._pos = 0
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._last_block = -2
        self._lock = threading.RLock()
        self._ahead = 1
        self._run = 0  # blocks read straight on since the last jump
        #: Read ahead when the decoder reads straight on (off while a keyframe pass reads packets it fetched up front).
        self.read_ahead = True
        self.bytes_read = 0
        self.requests = 0
        self.fetch_seconds = 0.0
        #: The store's failure (after its retries), once one happened: every later read fails at once with it.
        self.failure: ObjectStoreError | None = None

    def _extent(self) -> int:
        return self.size

    def view(self) -> "RangeFile":
        """A reader of its own position over the same cache and counters (one per open container:
        a decoder abandoned after a stall may still be reading while its fallback starts)."""
        return _View(self)

    def readinto(self, buffer) -> int:
        with self._lock:
            return self._readinto(buffer)

    def _readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self.size - self._pos))
        if n == 0:
            return 0
        first, last = self._pos // self.block, (self._pos + n - 1) // self.block
        self._run = self._run + (last - first + 1) if first in (self._last_block, self._last_block + 1) else 0
        # 1 MiB read straight on is a dense pass, not one packet: read ahead, doubling
        sequential = self.read_ahead and self._run * self.block >= 1 << 20
        self._ahead = min(self._ahead * 2, MAX_AHEAD_BYTES // self.block) if sequential else 1
        self._ensure(first, max(last, first + self._ahead - 1))
        view, done = memoryview(buffer), 0
        while done < n:
            b = (self._pos + done) // self.block
            data = self._cache[b]
            self._cache.move_to_end(b)
            offset = self._pos + done - b * self.block
            take = min(n - done, len(data) - offset)
            view[done : done + take] = data[offset : offset + take]
            done += take
        self._pos += n
        self._last_block = last
        return n

    def prefetch(self, spans: list[tuple[int, int]]) -> None:
        """Fetch ``(start, size)`` byte spans now, neighbours in one request (a keyframe pass's packets)."""
        with self._lock:
            self._prefetch(spans)

    def _prefetch(self, spans: list[tuple[int, int]]) -> None:
        blocks = sorted({b for start, size in spans for b in range(start // self.block, (start + max(size, 1) - 1) // self.block + 1)})
        run: list[int] = []
        for b in blocks:
            if run and b != run[-1] + 1:
                self._ensure(run[0], run[-1])
                run = []
            run.append(b)
        if run:
            self._ensure(run[0], run[-1])

    def _ensure(self, first: int, last: int) -> None:
        """Blocks first..last in the cache: each missing run fetched with one range request."""
        last = min(last, (self.size - 1) // self.block)
        b = first
        while b <= last:
            if b in self._cache:
                b += 1
                continue
            stop = b
            while stop + 1 <= last and stop + 1 not in self._cache:
                stop += 1
            self._fetch(b, stop)
            b = stop + 1

    def _fetch(self, first: int, last: int) -> None:
        if self.failure is not None:
            raise self.failure
        start, stop = first * self.block, min(self.size, (last + 1) * self.block)
        t0 = time.perf_counter()
        try:
            data = self._read_range(start, stop)
        except ObjectStoreError as exc:
            self.failure = exc
            raise
        finally:
            self.fetch_seconds += time.perf_counter() - t0
        if len(data) != stop - start:
            self.failure = ObjectStoreError(f"asked for bytes {start}-{stop - 1}, the store sent {len(data)}")
            raise self.failure
        self.bytes_read += len(data)
        self.requests += 1
        for b in range(first, last + 1):
            self._cache[b] = data[(b - first) * self.block : (b - first + 1) * self.block]
        while len(self._cache) * self.block > CACHE_BYTES:
            self._cache.popitem(last=False)


class _View(_Positioned):
    """RangeFile.view: its own position; reads go through the shared file under its lock."""

    def __init__(self, shared: RangeFile) -> None:
        super().__init__()
        self.shared, self._pos = shared, 0

    def _extent(self) -> int:
        return self.shared.size

    def readinto(self, buffer) -> int:
        with self.shared._lock:
            self.shared._pos = self._pos
            n = self.shared._readinto(buffer)
            self._pos = self.shared._pos
            return n


@contextmanager
def registered(uri: str, source: RangeFile) -> Iterator[RangeFile]:
    """``source`` is what the decoders read for ``uri`` while this lasts (vscan.inputs.ranged_pyav.ranged_decoder)."""
    with _lock:
        _SOURCES[uri] = source
    try:
        yield source
    finally:
        with _lock:
            _SOURCES.pop(uri, None)


def source_for(path: str) -> RangeFile | None:
    with _lock:
        return _SOURCES.get(str(path))


def ranges_wanted(uri: str, known_sha256: Any, benign: Any, reads: str = "auto") -> bool:
    """Decode ``uri`` by range reads (module docstring): not when a digest decides something, nor for stills.
    ``reads``: ``runtime.object_reads`` as the driver resolved it ("whole" when the bank holds digest-only
    entries); the ``VSCAN_OBJECT_READS`` variable overrides it."""
    from vscan.decode import is_still

    reads = os.environ.get("VSCAN_OBJECT_READS", reads).lower()
    if reads == "whole":
        return False
    return uri.startswith(("s3://", "gs://", "az://")) and known_sha256 is None and not benign and not is_still(uri)

"""The service's bank: its memory-mapped lookup index, entry metadata and
in-process scanner, swapped whole when the bank's generation changes.

A request takes :attr:`BankHolder.current` once and uses that
:class:`BankState` to the end, so a reload never changes a bank under a
request, and no request waits for one: the new state is opened (its index
built when out of date, vscan.bank.lookup) in a background thread while the
old one keeps answering, then swapped in by one assignment. The old state is
closed by the garbage collector once its last request is done.

The generation is the bank's ``meta.content_digest`` (every import, disable
and enable changes it, vscan.bank.digest) plus the bank file's and its WAL's
size and modification time (a bank rewritten in place, or one written before
the digest was kept).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["BankHolder", "BankState", "generation_of"]


def generation_of(bank_path: str | os.PathLike) -> str:
    """A string that changes whenever the bank's content may have changed."""
    path = Path(bank_path)
    parts = []
    for p in (path, Path(f"{path}-wal")):
        try:
            st = p.stat()
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append("-")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'content_digest'").fetchone()
        finally:
            conn.close()
        parts.insert(0, row[0] if row else "")
    except sqlite3.Error:
        parts.insert(0, "?")
    return "/".join(parts)


@dataclass
class BankState:
    """One generation of the bank, opened: everything a request needs."""

    path: Path
    generation: str
    lookup: Any  # vscan.bank.lookup.BankLookup
    conn: sqlite3.Connection  # read-only, shared by request threads (sqlite3 is serialized)
    opened_at: float
    rows: int
    entries: int
    versions: dict[str, Any] | None = None  # the versions stamp of POST /v/scan records (vscan.serve.scan_one)
    _scanner: Any = None
    _scan_config: tuple[Any, Any] | None = None  # (the service's config, as this bank is scanned with it)
    _scan_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, bank_path: str | os.PathLike) -> "BankState":
        from vscan.bank.lookup import BankLookup

        path = Path(bank_path).resolve()
        generation = generation_of(path)
        lookup = BankLookup.open(path)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        entries = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        rows = len(lookup.index) + lookup.delta_size
        return cls(path, generation, lookup, conn, time.time(), rows, entries)

    def search(self, hashes: np.ndarray, radius: int) -> list[list[dict[str, Any]]]:
        """Per query hash: its bank matches, nearest first, one per entry
        (its nearest frame): entry id, label, kind, source, frame, distance."""
        q, rowid, dist = self.lookup.search(hashes, radius)
        found: list[list[dict[str, Any]]] = [[] for _ in range(len(hashes))]
        if not q.size:
            return found
        where = self._frames(np.unique(rowid))
        meta = self._entries({where[r][0] for r in rowid.tolist()})
        best: dict[tuple[int, str], dict[str, Any]] = {}
        for i, r, d in zip(q.tolist(), rowid.tolist(), dist.tolist()):
            entry, frame, seconds = where[r]
            hit = best.get((i, entry))
            if hit is None or d < hit["distance"]:
                best[(i, entry)] = {"bank_content_id": entry, "distance": int(d), "frame": frame, "timestamp_seconds": seconds,
                                    **meta.get(entry, {})}  # fmt: skip
        for (i, _), hit in best.items():
            found[i].append(hit)
        for hits in found:
            hits.sort(key=lambda h: (h["distance"], h["bank_content_id"]))
        return found

    def _frames(self, rowids: np.ndarray) -> dict[int, tuple[str, int, float | None]]:
        return self.lookup.table.where(rowids)  # the row table behind the index (vscan.bank.row_table)

    def _entries(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        from vscan.bank.entry_table import entry_fields  # the one reader of entry metadata, at match time

        return {e: {"label": f.label, "kind": f.kind, "source_type": f.source_type, "source_ref": f.source_ref,
                    "duration_seconds": f.duration_seconds, "num_frames": f.num_frames}
                for e, f in entry_fields(self.conn, sorted(ids)).items()}  # fmt: skip

    def scanner(self, config) -> Any:
        """The in-process model stage for whole-file scans (vscan.serve.scan_one), made on first use."""
        if self._scanner is None:
            from vscan.runtime.model_actor import ModelWorker

            self._scanner = ModelWorker(config, str(self.path), threads=1)
        return self._scanner

    def scan_config(self, config) -> Any:
        """``config`` as a scan against this bank uses it (a bank of hash lists alone: ``sampling.list_frame_size``,
        vscan.bank.query_side.scan_config_for_bank, as ``vscan scan`` does), worked out once a generation."""
        if self._scan_config is None or self._scan_config[0] != config:
            from vscan.bank.query_side import scan_config_for_bank

            self._scan_config = (config, scan_config_for_bank(config, self.path))
        return self._scan_config[1]

    @property
    def scan_lock(self) -> threading.Lock:
        return self._scan_lock


class BankHolder:
    """The current :class:`BankState`, reloaded in the background when the
    bank's generation changes (checked every ``check_seconds``)."""

    def __init__(self, bank_path: str | os.PathLike, *, check_seconds: float = 2.0,
                 on_reload: Callable[[BankState], None] | None = None) -> None:  # fmt: skip
        self.bank_path = Path(bank_path)
        self.check_seconds = check_seconds
        self.on_reload = on_reload
        self.current = BankState.open(self.bank_path)
        self.reloads = 0
        self.reload_errors = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="vscan-bank-reload", daemon=True)
        if check_seconds > 0:
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.check_seconds):
            self.check()

    def check(self) -> bool:
        """Reload when the generation changed; True when a new state went in."""
        try:
            if generation_of(self.bank_path) == self.current.generation:
                return False
            fresh = BankState.open(self.bank_path)
        except Exception as exc:  # a bank being written: the current state keeps answering, retried next time
            self.reload_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        self.current = fresh  # one assignment: requests in flight keep the state they took
        self.reloads += 1
        if self.on_reload is not None:
            self.on_reload(fresh)
        return True

    def close(self) -> None:
        self._stop.set()

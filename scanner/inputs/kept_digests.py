"""SHA-256 of the large files a scan reads at every start (its bank, its known-benign lists), kept between runs.

A scan's manifest names the bank file it matched against by its SHA-256 (``vscan.output.audit.bank_digests``), and
its versions stamp each ``--ignore`` list by its content (``vscan.output.audit.scan_versions``). Each was a full
read of the file at every start: a 10M-row bank (961 MB) took 0.74 s of a one-file scan's 2.4 s on this machine, a
sparse bank of 10,000 reported hours (24 GB) would take ~17 s from the page cache and minutes from disk, and an NSRL
list is tens of GB.

The digest is kept in a small SQLite table in the user's cache folder (``$VSCAN_CACHE_DIR``, else
``$XDG_CACHE_HOME/vscan``, else ``~/.cache/vscan``), under the file's real path and its ``stat``: device, inode, size,
and modification and change times to the nanosecond. Any write to the file changes its modification and change
times (the change time cannot be set back from user space), and a file put in its place (a rebuild, a rename over
it) has another inode: then it is read again. A digest is kept only for a file last written ``SETTLED_SECONDS`` or
more before it was read (as git's index treats a file as racy): a file system whose times are coarse (FAT's 2 s)
could otherwise see a write just after the read within the same tick, and the stat would not move. A cache folder
that cannot be made, opened or written is passed by: the digest is computed, as before. The file itself is only ever
opened read-only.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from vscan.inputs.digests import sha256_file

__all__ = ["MIN_KEPT_BYTES", "SETTLED_SECONDS", "cache_dir", "kept_sha256"]

#: The table's file in ``cache_dir()``.
_DB_NAME = "file-digests.sqlite"
#: Files smaller than this are read every time: the read costs less than the cache's own look-up.
MIN_KEPT_BYTES = 16 << 20
#: A file written less than this many seconds before it is read is read again next time (module docstring).
SETTLED_SECONDS = 3.0


def cache_dir() -> Path:
    """Where vscan keeps what it can compute again: ``$VSCAN_CACHE_DIR``, ``$XDG_CACHE_HOME/vscan`` or ``~/.cache/vscan``."""
    if os.environ.get("VSCAN_CACHE_DIR"):
        return Path(os.environ["VSCAN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vscan"


def _stamp(path: str | os.PathLike) -> tuple[str, str, int, float]:
    """(real path, stat key, size, seconds since its last write) of ``path``: the key must be unchanged for a kept digest
    to stand."""
    real = os.path.realpath(path)
    st = os.stat(real)
    age = time.time() - st.st_mtime  # a write after the read moves the mtime past this one's tick once it is this old
    return real, f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}", st.st_size, age


def _open() -> sqlite3.Connection | None:
    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(folder / _DB_NAME, timeout=5.0)
        db.execute("CREATE TABLE IF NOT EXISTS sha256 (path TEXT PRIMARY KEY, stamp TEXT NOT NULL, digest TEXT NOT NULL)")
        return db
    except (OSError, sqlite3.Error):
        return None


def kept_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex of ``path``'s bytes: the digest kept for it when its stat is what it was then, else read and kept.
    Raises OSError as reading it would (a missing or unreadable file)."""
    real, stamp, size, age = _stamp(path)
    if size < MIN_KEPT_BYTES:
        return sha256_file(real)
    db = _open()
    if db is None:
        return sha256_file(real)
    try:
        try:
            row = db.execute("SELECT digest FROM sha256 WHERE path = ? AND stamp = ?", (real, stamp)).fetchone()
        except sqlite3.Error:
            row = None
        if row is not None:
            return str(row[0])
        digest = sha256_file(real)
        if _stamp(real)[1] == stamp and age >= SETTLED_SECONDS:  # settled, and not changed while it was read: kept
            try:
                with db:
                    db.execute("INSERT OR REPLACE INTO sha256 (path, stamp, digest) VALUES (?, ?, ?)", (real, stamp, digest))
            except sqlite3.Error:
                pass  # a read-only or locked cache: computed again next time
        return digest
    finally:
        db.close()

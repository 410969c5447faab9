"""File digests, in one streaming pass; files are opened read-only."""

from __future__ import annotations

import hashlib
import os

__all__ = ["SPARSE_MIN_BYTES", "SPARSE_STORED_SHARE", "file_digests", "record_digests", "sha256_file", "sparse_note"]

#: A file at least this long whose stored bytes are under ``SPARSE_STORED_SHARE`` of its length is not
#: digested (``sparse_note``): its holes read as zeros, and SHA-256, MD5 and SHA-1 of a 50 GB hole took
#: 175 s of a decode slot here (a 10 TB one would hold it for hours). Its frames are still read.
SPARSE_MIN_BYTES = 1 << 30
SPARSE_STORED_SHARE = 1 / 16


def file_digests(path: str | os.PathLike) -> tuple[str, str, int, str]:
    """(SHA-256 hex, MD5 hex, size in bytes, SHA-1 hex) of a file, in one
    streaming pass (SHA-1: VICS, NCMEC and NSRL lists carry it).

    Opened read-only: evidence files are never modified."""
    sha256, md5, sha1, size = hashlib.sha256(), hashlib.md5(), hashlib.sha1(), 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            sha256.update(block)
            md5.update(block)
            sha1.update(block)
            size += len(block)
    return sha256.hexdigest(), md5.hexdigest(), size, sha1.hexdigest()


def _stored_bytes(fd: int, size: int, limit: int) -> int:
    """Bytes of ``fd`` held on disk, walking its data extents (SEEK_DATA/SEEK_HOLE), stopping past ``limit``."""
    stored, at = 0, 0
    while at < size and stored <= limit:
        try:
            start = os.lseek(fd, at, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after ``at``
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        stored, at = stored + end - start, end
    return stored


def sparse_note(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not digested, or None: a sparse file of at least ``SPARSE_MIN_BYTES`` with under
    ``SPARSE_STORED_SHARE`` of it stored (a hostile or preallocated file: a torrent client's unfinished
    download, a carved image's hole). Judged by the file system's block count (one ``stat``: every other
    file is left unopened here), confirmed by its data extents where the system tells them; never by reading it."""
    st = os.stat(path)
    blocks = getattr(st, "st_blocks", None)
    limit = int(st.st_size * SPARSE_STORED_SHARE)
    if st.st_size < SPARSE_MIN_BYTES or blocks is None or blocks * 512 >= limit:
        return None
    stored = blocks * 512
    if hasattr(os, "SEEK_DATA"):
        with open(path, "rb") as fh:
            try:
                stored = _stored_bytes(fh.fileno(), st.st_size, limit)
            except OSError:  # the file system cannot say: the block count stands
                pass
    if stored >= limit:
        return None
    return (f"not digested: a sparse file, {st.st_size:,} bytes long with {stored:,} of them stored (the rest "
            f"reads as zeros); hashing it would hold a decode slot for minutes. Its frames are still read")


def record_digests(path: str | os.PathLike) -> dict:
    """A record's digest fields: sha256, md5, size_bytes, sha1 (``file_digests``), or for a sparse file
    (``sparse_note``) null digests, its size and ``digest_skipped`` saying why."""
    note = sparse_note(path)
    if note is not None:
        return {"sha256": None, "md5": None, "size_bytes": os.path.getsize(path), "sha1": None, "digest_skipped": note}
    sha256, md5, size, sha1 = file_digests(path)
    return {"sha256": sha256, "md5": md5, "size_bytes": size, "sha1": sha1}


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """SHA-256 hex of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()

"""File digests, in one streaming pass; files are opened read-only."""

from __future__ import annotations

import hashlib
import os

__all__ = ["file_digests", "sha256_file"]


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


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """SHA-256 hex of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()

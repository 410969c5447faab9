"""Query hashes for ``vscan bank lookup``: reading them (PDQ hex lines, vPDQ
lines, pytx CSV) and their 8 dihedral variants computed from the hash alone.

A PDQ bit is "DCT coefficient (i, j) > the median". Mirroring a picture
whose 64 x 64 cells were symmetric would negate the coefficients of odd
frequency along that axis, and transposing transposes them, so a variant's
bits are the hash's bits inverted there and transposed (the reference PDQ's
own dihedral hashes). PDQ's Jarosz filter and cell centres are not symmetric:
the transposes are exact, but a mirrored or quarter-turned variant lies 6-46
bits (a median of 30 on real frames of 256 px; 6 at 320 px wide) from the
hash of the edited frame itself. Scans hash the 8 variants from the frames
themselves, each the turned frame's own hash (``vscan.kernels.pdq``); this
is for hashes that were computed elsewhere, with no picture to turn.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vscan.errors import BankError
from vscan.hashing.pdq_ops import DIHEDRAL_NAMES, pack_permutation

__all__ = ["QueryHashes", "read_query_hashes", "dihedral_variants"]


@dataclass(frozen=True)
class QueryHashes:
    """``hashes`` uint8 [Q, 32]; ``lines`` [Q] the 1-based line each came from."""

    hashes: np.ndarray
    lines: np.ndarray
    hex: list[str]


def _is_hex64(text: str) -> bool:
    if len(text) != 64:
        return False
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def read_query_hashes(path_or_text: str | os.PathLike | io.TextIOBase) -> QueryHashes:
    """Hashes from PDQ hex lines (``hex`` or ``hex,quality``), vPDQ lines
    (``frame,quality,hex,timestamp``) or pytx CSV (``pdq,hex,...``; other
    signal types are skipped); blank lines and ``#`` comments are skipped.
    BankError names the first line holding no PDQ hash."""
    if isinstance(path_or_text, io.TextIOBase):
        text, name = path_or_text.read(), "<stdin>"
    else:
        name = str(path_or_text)
        try:
            text = Path(path_or_text).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise BankError(f"Cannot read query hashes from {name}: {exc}") from exc
    hexes, lines = [], []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        fields = [f.strip() for f in row]
        if not fields or not fields[0] or fields[0].startswith("#"):
            continue
        found = next((f for f in fields[:3] if _is_hex64(f)), None)
        if found is None:
            if fields[0].lower() in ("signal_type", "pdq_hash", "hash") or (len(fields) > 1 and fields[0].lower() != "pdq" and not _is_hex64(fields[0]) and number == 1):
                continue  # a header line
            if len(fields) > 1 and fields[0].lower() not in ("pdq",) and not fields[0].isdigit():
                continue  # pytx CSV: another signal type
            raise BankError(f"{name}:{number}: no 64-hex-digit PDQ hash in {','.join(fields)[:100]!r}")
        hexes.append(found.lower())
        lines.append(number)
    hashes = np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(len(hexes), 32).copy()
    return QueryHashes(hashes, np.asarray(lines, np.int64), hexes)


def _bit_positions() -> np.ndarray:
    """[256]: packed position (byte * 8 + bit) of coefficient bit k = 16 * i + j."""
    perm, _ = pack_permutation()
    pos = np.empty(256, np.int64)
    pos[perm] = np.arange(256)
    return pos


def dihedral_variants(hashes: np.ndarray) -> np.ndarray:
    """uint8 [Q, 8, 32]: the 8 variants of each hash, in ``DIHEDRAL_NAMES`` order (module docstring)."""
    hashes = np.ascontiguousarray(hashes, np.uint8).reshape(-1, 32)
    pos = _bit_positions()
    bits = np.unpackbits(hashes, axis=1, bitorder="little")[:, pos].reshape(-1, 16, 16).astype(bool)
    odd = (np.arange(1, 17) % 2 == 1)  # frequency u = i + 1: mirroring negates odd u
    flip_h = bits ^ odd[None, None, :]
    flip_v = bits ^ odd[None, :, None]
    rot180 = flip_h ^ odd[None, :, None]
    t = lambda x: x.transpose(0, 2, 1)  # noqa: E731
    variants = np.stack([bits, t(flip_h), rot180, t(flip_v), flip_h, flip_v, t(bits), t(rot180)], axis=1)
    flat = variants.reshape(-1, 8, 256)
    packed_bits = np.empty_like(flat)
    packed_bits[:, :, pos] = flat
    assert len(DIHEDRAL_NAMES) == 8
    return np.packbits(packed_bits, axis=2, bitorder="little")

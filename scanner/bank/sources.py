"""What every bank importer shares: the writer it writes through, reading a source
as text or JSON, and checked values with errors that name the file and the line
or element (``path:12: ...``, ``path:value[0].Media[3].MD5: ...``).

Structured formats (VICS, NCMEC, StopNCII) use ``fail``, ``digest``, ``pdq`` and
``boolean`` with an element path; line formats name the 1-based line.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any, NoReturn, Protocol

from vscan.bank.schema import ALGORITHMS, HEX, Kind
from vscan.errors import BankError
from vscan.hashing.vpdq import ExtraHashes, FrameHashes

__all__ = ["EntryWriter", "read_text", "load_json", "fail", "digest", "pdq", "boolean"]

_LENGTHS = {algorithm: length for length, algorithm in ALGORITHMS.items()}


class EntryWriter(Protocol):
    """What importers write through: ``vscan.bank.writer.BankWriter``."""

    def add_frame_hashes(
        self, entry_id: str, label: str | None, source: tuple[str, str, str | None], kind: Kind,
        frame_hashes: FrameHashes, duration_seconds: float | None = None, *, qualities_given: bool = True,
    ) -> str: ...  # fmt: skip

    def add_extra_hashes(self, entry_id: str, extra: ExtraHashes) -> None: ...

    def add_geometry(self, entry_id: str, geometry: tuple) -> None: ...

    def add_file_digest(
        self, entry_id: str, label: str | None, source: tuple[str, str, str | None], algorithm: str, digest: str
    ) -> str: ...

    def add_digest(self, entry_id: str, algorithm: str, digest: str) -> None: ...

    def remove_entry(self, entry_id: str) -> bool: ...

    def note(self, source: str, what: str) -> None: ...

    def withdraw(self, entry_id: str, source: str, what: str) -> None: ...


def read_text(path: Path, what: str) -> str:
    """The file as UTF-8 text (a BOM is dropped); bytes that are not UTF-8 name their line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BankError(f"Cannot read {what} {path}: {exc}") from exc
    data = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BankError(f"{path}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_json(path: Path, what: str) -> Any:
    """The parsed JSON document; a syntax error names its line and column."""
    try:
        return json.loads(read_text(path, what))
    except json.JSONDecodeError as exc:
        raise BankError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None


def fail(path: Path, where: str | int, message: str) -> NoReturn:
    """Raises the BankError of a bad value at ``where`` (an element path or a line)."""
    raise BankError(f"{path}:{where}: {message}")


def digest(value: Any, algorithm: str, path: Path, where: str | int) -> str:
    """``value`` as a lowercase hex digest of ``algorithm``, or a BankError naming ``where``."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or len(text) != _LENGTHS[algorithm] or not HEX.fullmatch(text):
        fail(path, where, f"expected an {algorithm.upper()} digest of {_LENGTHS[algorithm]} hex characters, got {value!r:.80}")
    return text


def pdq(value: Any, path: Path, where: str | int) -> str:
    """``value`` as a lowercase 64-hex PDQ hash, or a BankError naming ``where``."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or len(text) != 64 or not HEX.fullmatch(text):
        fail(path, where, f"expected a PDQ hash of 64 hex characters, got {value!r:.80}")
    return text


def boolean(value: Any, path: Path, where: str) -> bool:
    """A JSON boolean or the strings 'true'/'false' (any case); anything else is refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    fail(path, where, f"expected true or false, got {value!r:.80}")

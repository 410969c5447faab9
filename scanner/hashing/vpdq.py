"""Hash values: PDQ hashes as bytes, per-frame hash tables, vPDQ text files.

A PDQ hash is 32 bytes; byte b is ``bytes.fromhex(hex64)[b]``, so hex <-> bytes
is ``bytes.fromhex`` / ``.hex()`` and a batch is a ``uint8`` array ``[N, 32]``.

vPDQ hash files (facebook/ThreatExchange ``vpdq/``) hold one line per frame,
``frame_number,quality,hex,timestamp_seconds`` with 3 decimals and a newline
after every line, the last one included. Older files have no timestamp field;
they read with ``NaN`` timestamps and write back without the field.
A list exported from a spreadsheet or a database may open with a header line
(``frame_number,quality,hash,timestamp``); it is read past when it names the
fields in vPDQ's order, and refused, naming the line, otherwise.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Sequence, Union

import numpy as np

from vscan.errors import BankError

__all__ = [
    "PDQ_NUM_BYTES",
    "FrameHashes",
    "hex_to_hashes",
    "hashes_to_hex",
    "read_vpdq",
    "parse_vpdq_line",
    "is_vpdq_header",
    "write_vpdq",
    "vpdq_text",
    "format_vpdq_line",
    "file_digests",
]

PDQ_NUM_BYTES = 32
_HEX64 = re.compile(r"[0-9a-f]{64}")

PathOrText = Union[str, os.PathLike, IO[str]]


@dataclass(frozen=True)
class FrameHashes:
    """PDQ hashes of N frames of one video (or N images), in frame order.

    ``timestamps_seconds`` is NaN where the source gave no timestamp.
    """

    frame_numbers: np.ndarray  # int64 [N]
    timestamps_seconds: np.ndarray  # float64 [N]
    qualities: np.ndarray  # int32 [N], 0..100
    hashes: np.ndarray  # uint8 [N, 32]

    def __post_init__(self) -> None:
        fields = {
            "frame_numbers": np.int64,
            "timestamps_seconds": np.float64,
            "qualities": np.int32,
            "hashes": np.uint8,
        }
        for name, dtype in fields.items():
            value = np.asarray(getattr(self, name))
            if value.dtype != dtype:
                if name == "hashes" and value.dtype != np.uint8:
                    raise BankError(f"hashes must be uint8, got dtype {value.dtype}")
                value = value.astype(dtype)
            object.__setattr__(self, name, value)
        n = self.hashes.shape[0] if self.hashes.ndim == 2 else -1
        if self.hashes.ndim != 2 or self.hashes.shape[1] != PDQ_NUM_BYTES:
            raise BankError(f"hashes must have shape [N, 32], got {tuple(self.hashes.shape)}")
        for name in ("frame_numbers", "timestamps_seconds", "qualities"):
            shape = getattr(self, name).shape
            if shape != (n,):
                raise BankError(
                    f"{name} must have shape [{n}] to match hashes {tuple(self.hashes.shape)}, "
                    f"got {tuple(shape)}"
                )

    def __len__(self) -> int:
        return int(self.hashes.shape[0])

    @classmethod
    def empty(cls) -> "FrameHashes":
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.float64),
            np.zeros(0, np.int32),
            np.zeros((0, PDQ_NUM_BYTES), np.uint8),
        )

    def select(self, mask_or_index: np.ndarray) -> "FrameHashes":
        return FrameHashes(
            self.frame_numbers[mask_or_index],
            self.timestamps_seconds[mask_or_index],
            self.qualities[mask_or_index],
            self.hashes[mask_or_index],
        )

    def filter_quality(self, min_quality: int) -> "FrameHashes":
        """Frames with quality >= ``min_quality`` (vPDQ and pytx use 50)."""
        return self.select(self.qualities >= min_quality)

    @classmethod
    def concat(cls, parts: Sequence["FrameHashes"]) -> "FrameHashes":
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.frame_numbers for p in parts]),
            np.concatenate([p.timestamps_seconds for p in parts]),
            np.concatenate([p.qualities for p in parts]),
            np.concatenate([p.hashes for p in parts]),
        )

    def hex(self) -> list[str]:
        return hashes_to_hex(self.hashes)


@dataclass(frozen=True)
class ExtraHashes:
    """Extra hashes of an entry's frames (table ``extra_hashes``): row i is frame
    ``frame_numbers[i]`` prepared as ``preps[i]`` (``borders``, ``crop0.90``, ...)."""

    frame_numbers: np.ndarray  # int64 [K]
    preps: tuple[str, ...]
    qualities: np.ndarray  # int32 [K]
    hashes: np.ndarray  # uint8 [K, 32]

    def __post_init__(self) -> None:
        k = len(self.preps)
        if self.frame_numbers.shape != (k,) or self.qualities.shape != (k,) or self.hashes.shape != (k, 32):
            raise ValueError(
                f"Expected frame_numbers [{k}], qualities [{k}], hashes [{k}, 32]; got "
                f"{self.frame_numbers.shape}, {self.qualities.shape}, {self.hashes.shape}"
            )

    def __len__(self) -> int:
        return len(self.preps)


def hex_to_hashes(hexes: Iterable[str]) -> np.ndarray:
    """64-char hex strings -> uint8 [N, 32]. Upper case is accepted."""
    hexes = list(hexes)
    out = np.empty((len(hexes), PDQ_NUM_BYTES), np.uint8)
    for i, h in enumerate(hexes):
        h_lower = h.strip().lower() if isinstance(h, str) else None
        if h_lower is None or not _HEX64.fullmatch(h_lower):
            raise BankError(f"Invalid PDQ hex at index {i} ({h!r}): expected 64 hex characters")
        out[i] = np.frombuffer(bytes.fromhex(h_lower), np.uint8)
    return out


def hashes_to_hex(hashes: np.ndarray) -> list[str]:
    """uint8 [N, 32] -> 64-char lowercase hex strings."""
    hashes = np.asarray(hashes)
    if hashes.dtype != np.uint8 or hashes.ndim != 2 or hashes.shape[1] != PDQ_NUM_BYTES:
        raise BankError(f"Expected uint8 [N, 32], got {hashes.dtype} {tuple(hashes.shape)}")
    return [row.tobytes().hex() for row in np.ascontiguousarray(hashes)]


def format_vpdq_line(frame_number: int, quality: int, hex64: str, timestamp_seconds: float | None) -> str:
    """One line of a vPDQ hash file, without the newline, exactly as upstream writes it."""
    if timestamp_seconds is None or math.isnan(timestamp_seconds):
        return f"{int(frame_number)},{int(quality)},{hex64}"
    return f"{int(frame_number)},{int(quality)},{hex64},{timestamp_seconds:.3f}"


#: Names a header line may give each field, lower-case, in vPDQ's order (frame, quality, hash, timestamp).
VPDQ_HEADER_NAMES = (
    {"frame", "frame_number", "frame_num", "frame_no", "frameno", "frame_index", "frame number", "index", "idx", "#"},
    {"quality", "q", "pdq_quality", "quality_score"},
    {"hash", "pdq", "pdq_hash", "pdq_hex", "hex", "hash_hex", "signal", "signal_value"},
    {"timestamp", "timestamp_seconds", "timestamp_sec", "timestamp_s", "seconds", "sec", "secs", "ts", "time", "time_s",
     "pts_time"},
)
_WORD = re.compile(r"[A-Za-z_#][A-Za-z0-9_ #()./-]*")


def is_vpdq_header(line: str, *, source: str = "<text>", line_number: int = 0, strict: bool = True) -> bool:
    """True for a header line naming vPDQ's fields in its order (``frame_number,quality,hash[,timestamp]``,
    any case, optionally quoted); False for a line that holds data. With ``strict``, a line of 3 or 4 words
    that is neither raises BankError naming the line and the order it expects (a header in another order);
    without, it is False (a format sniffer asking "is this a vPDQ header?" of any text)."""
    fields = [f.strip().strip('"').strip("'").strip() for f in line.strip().split(",")]
    if len(fields) not in (3, 4) or not all(_WORD.fullmatch(f) for f in fields):
        return False
    if _HEX64.fullmatch(fields[2].lower()):  # a hash in the hash column: data (a bad number is parse's to name)
        return False
    if all(f.lower() in names for f, names in zip(fields, VPDQ_HEADER_NAMES)):
        return True
    if not strict:
        return False
    raise BankError(
        f"{source}:{line_number}: header {line.strip()!r} does not name vPDQ's fields in order; "
        "expected frame_number,quality,hash[,timestamp]"
    )


def parse_vpdq_line(line: str, *, source: str = "<text>", line_number: int = 0) -> tuple[int, int, str, float]:
    """``frame,quality,hex[,ts]`` -> (frame, quality, hex, ts or NaN); BankError names the line. Spaces around a
    field are allowed (``0, 100, e271...``: a list tidied by hand or a spreadsheet's CSV)."""
    fields = [f.strip() for f in line.strip().split(",")]
    where = f"{source}:{line_number}"
    if len(fields) not in (3, 4):
        raise BankError(f"{where}: expected 3 or 4 comma-separated fields, got {len(fields)}: {line.strip()!r}")
    try:
        frame_number = int(fields[0])
        quality = int(fields[1])
        timestamp = float(fields[3]) if len(fields) == 4 else math.nan
    except ValueError:
        raise BankError(f"{where}: invalid number in {line.strip()!r}") from None
    hex64 = fields[2].lower()
    if not _HEX64.fullmatch(hex64):
        raise BankError(f"{where}: invalid PDQ hex {fields[2]!r} (expected 64 hex characters)")
    if not 0 <= quality <= 100:
        raise BankError(f"{where}: quality {quality} out of range 0..100")
    return frame_number, quality, hex64, timestamp


def _read_text(path_or_text: PathOrText) -> tuple[str, str]:
    """-> (text, source name). A str with a newline, or that names no file, is the text itself."""
    if hasattr(path_or_text, "read"):
        return path_or_text.read(), getattr(path_or_text, "name", "<stream>")
    if isinstance(path_or_text, str) and (
        "\n" in path_or_text or ("," in path_or_text and not os.path.isfile(path_or_text)) or not path_or_text
    ):
        return path_or_text, "<text>"
    path = Path(path_or_text)
    try:
        with open(path, encoding="utf-8", newline="") as fp:
            return fp.read(), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise BankError(f"Cannot read vPDQ file {path}: {exc}") from exc


def read_vpdq(path_or_text: PathOrText) -> FrameHashes:
    """Read a vPDQ hash file (a path, an open text file, or the text itself). Blank and ``#`` lines are skipped,
    a first line naming the fields too (``is_vpdq_header``)."""
    text, source = _read_text(path_or_text)
    frames, qualities, hexes, timestamps = [], [], [], []
    first = True
    for i, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):  # blank and comment lines, as the bank importer
            continue
        if first:
            first = False
            if is_vpdq_header(line, source=source, line_number=i):
                continue
        f, q, h, t = parse_vpdq_line(line, source=source, line_number=i)
        frames.append(f)
        qualities.append(q)
        hexes.append(h)
        timestamps.append(t)
    return FrameHashes(
        np.asarray(frames, np.int64),
        np.asarray(timestamps, np.float64),
        np.asarray(qualities, np.int32),
        hex_to_hashes(hexes) if hexes else np.zeros((0, PDQ_NUM_BYTES), np.uint8),
    )


def write_vpdq(frame_hashes: FrameHashes, fp: Union[str, os.PathLike, IO[str]]) -> None:
    """Write in upstream's format: every line ends with a newline, the last included."""
    lines = [
        format_vpdq_line(f, q, h, t) + "\n"
        for f, q, h, t in zip(
            frame_hashes.frame_numbers.tolist(),
            frame_hashes.qualities.tolist(),
            frame_hashes.hex(),
            frame_hashes.timestamps_seconds.tolist(),
        )
    ]
    if isinstance(fp, (str, os.PathLike)):
        with open(fp, "w", encoding="utf-8", newline="\n") as out:
            out.writelines(lines)
    else:
        fp.writelines(lines)


def vpdq_text(frame_hashes: FrameHashes) -> str:
    buf = io.StringIO()
    write_vpdq(frame_hashes, buf)
    return buf.getvalue()

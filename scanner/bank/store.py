"""Reading banks: ``Bank`` (open, build, describe, load for matching) and its records.

A bank is one SQLite file of reference hashes with their metadata; the format is
described in ``vscan.bank.schema`` and ``docs/bank-format.md``. Banks are
written by ``vscan.bank.writer``; ``Bank.build`` and ``build_bank`` write one
from files and folders the way ``vscan bank build`` does.

    bank = Bank.build("reported.bank", ["reported/"], label="reported")
    info = bank.info()
    index = bank.load_index()      # in memory, for vscan.bank.match
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal, Sequence

import numpy as np

from vscan.bank.digest import stored_content_digest
from vscan.bank.entry_table import EntryGeometry, all_entry_fields, entry_geometries, geometry_array, geometry_of_row
from vscan.bank.importers import HashMedia
from vscan.bank.rows import row_kind
from vscan.bank.schema import FORMAT_VERSION, TABLE_ORDER
from vscan.bank.writer import write_bank
from vscan.errors import BankError
from vscan.inputs.kept_digests import kept_sha256

if TYPE_CHECKING:
    from vscan.bank.hashers import RowPlan
    from vscan.bank.writer import BuildStep
    from vscan.decode import SamplingPolicy

__all__ = ["FORMAT_VERSION", "Bank", "BankInfo", "BankIndex", "ExtraRows", "build_bank", "bank_row_plan", "file_extra_rows", "tick_seconds"]

Table = Literal["entries", "frame_hashes", "file_digests", "extra_hashes", "entry_geometry"]


@dataclass(frozen=True)
class BankInfo:
    """What a bank holds, and its checksums (``Bank.info()``, ``vscan bank info``).

    ``content_sha256`` is over every row in key order, so it depends on the rows
    only, not on SQLite's file layout; ``file_sha256`` is over the file's bytes.
    ``skipped_inputs``: files in input folders that were neither hash lists nor media.
    ``import_notes``: per source file, what its importer counted and did not add
    (``{"page.xml": {"disabled (deletedImage)": 2, "unknown hash pdna": 5}}``).
    """

    path: str
    format_version: int
    created_by: str
    num_entries: int
    num_frame_hashes: int
    num_digests: int
    labels: dict[str, int]  # label ('' for none) -> number of entries
    kinds: dict[str, int]
    skipped_inputs: tuple[str, ...]
    content_sha256: str  # over all rows in key order: independent of SQLite's file layout
    file_sha256: str
    import_notes: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Bank rows (frames plus extra rows): in total, per row kind (``row_kind``), and per second of
    #: the video entries' durations (what a bank of N reported hours holds: docs/banks.md).
    rows_total: int = 0
    rows_by_kind: dict[str, int] = field(default_factory=dict)
    video_seconds: float = 0.0
    rows_per_video_second: float = 0.0
    rows_per_video_second_by_kind: dict[str, float] = field(default_factory=dict)
    #: The generation id (the content digest, new with every change) and the lineage (the
    #: generation the bank was last built whole at; None for banks written before it was kept).
    lineage: str | None = None
    generation: str = ""  # the same as content_sha256, under the name scans and indexes use
    row_plan: str = "full"  # the rows kept of media (``vscan bank build --rows``); imports use it too


@dataclass(frozen=True)
class ExtraRows:
    """Extra rows in memory: ``frame_rows`` index the BankIndex frame arrays."""

    frame_rows: np.ndarray  # int64 [K]
    preps: tuple[str, ...]
    qualities: np.ndarray  # int32 [K]
    hashes: np.ndarray  # uint8 [K, 32]


@dataclass
class BankIndex:
    """A bank in memory, ready for matching. Frames sorted by (entry row, frame number)."""

    entry_ids: list[str]
    labels: list[str | None]
    kinds: list[str]
    durations_seconds: np.ndarray  # float64 [E], NaN if unknown
    hashes: np.ndarray  # uint8 [M, 32]
    entry_rows: np.ndarray  # int32 [M]: row into entry_ids
    frame_numbers: np.ndarray  # int64 [M]
    timestamps_seconds: np.ndarray  # float64 [M], NaN if unknown
    qualities: np.ndarray  # int32 [M], 100 where the source gave none
    digests: dict[tuple[str, str], list[str]]  # (algorithm, hex) -> entry ids
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # derived search structures
    extra: ExtraRows | None = None  # table extra_hashes (None when the bank has none)
    #: The disabled entries (``vscan.bank.updates``), left out of the arrays above and
    #: held here, so a scan can say which of them it would have matched; None when none.
    disabled: "BankIndex | None" = None
    #: int32 [E, 6]: each entry's (width, height, x0, y0, x1, y1) (``vscan.bank.entry_table.EntryGeometry``),
    #: -1s where it has none (hash lists, banks built before it was kept); None: no entry has one.
    geometry: np.ndarray | None = None

    @property
    def num_entries(self) -> int:
        return len(self.entry_ids)

    def entry_geometry(self, entry: "int | str") -> EntryGeometry | None:
        """Entry ``entry``'s (width, height, (x0, y0, x1, y1)) (row into ``entry_ids``, or its id), None when it has none."""
        row = self.entry_ids.index(entry) if isinstance(entry, str) else int(entry)
        if not 0 <= row < self.num_entries:
            raise IndexError(f"No entry {entry!r} in this index ({self.num_entries} entries)")
        return None if self.geometry is None else geometry_of_row(self.geometry[row])

    def __len__(self) -> int:
        return int(self.hashes.shape[0])


def file_extra_rows(entry_rows: np.ndarray, frame_numbers: np.ndarray, x_entry, x_frame, x_prep, x_quality, x_hash) -> ExtraRows:
    """Extra rows (entry row, frame number, prep, quality, hash each) filed under the frame they were
    cut from: frames are sorted by (entry row, frame number), so each is found by bisection; rows whose
    frame the index lacks are dropped. ``Bank.load_index`` and ``MappedBank.narrow`` both file them here."""
    m = int(frame_numbers.size)
    frame_key = (np.asarray(entry_rows, np.int64) << 32) + np.asarray(frame_numbers, np.int64)
    want = (np.asarray(x_entry, np.int64) << 32) + np.asarray(x_frame, np.int64)
    pos = np.minimum(np.searchsorted(frame_key, want), max(m - 1, 0))
    ok = (frame_key[pos] == want) if m else np.zeros(want.size, bool)
    return ExtraRows(frame_rows=pos[ok].astype(np.int64), preps=tuple(np.asarray(x_prep, object)[ok].tolist()),
                     qualities=np.asarray(x_quality, np.int32)[ok], hashes=np.asarray(x_hash, np.uint8).reshape(-1, 32)[ok])  # fmt: skip


class Bank:
    """A bank file, open read-only: ``Bank(path)`` or ``Bank.open(path)``; ``Bank.build`` writes one.

    ``info()`` describes it, ``rows(table)`` gives a table's rows in key order,
    ``load_index()`` loads it for matching. Use it as a context manager, or call
    ``close()``. Raises BankError for a missing file, a file that is not a bank,
    or an unsupported format version.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise BankError(f"Bank file not found: {self.path}")
        try:
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            meta = dict(self._conn.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            raise BankError(f"{self.path} is not a vscan bank: {exc}") from exc
        self.meta = meta
        version = int(meta.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise BankError(f"{self.path}: unsupported bank format version {version} (this vscan reads {FORMAT_VERSION})")

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Bank":
        """The bank at ``path``, open read-only (the same as ``Bank(path)``)."""
        return cls(path)

    @classmethod
    def build(
        cls,
        path: str | os.PathLike,
        inputs: Sequence[str | os.PathLike],
        *,
        label: str | None = None,
        device: str = "auto",
        policy: "SamplingPolicy | None" = None,
    ) -> "Bank":
        """Builds a bank at ``path`` exactly as ``vscan bank build`` does, and opens it.

        ``inputs``: files and folders (walked recursively, in sorted order) of
        vPDQ files, PDQ lists, digest lists, pytx CSV, videos and images. Media
        is hashed by ``vscan.bank.hashers.media_hasher``: with ``policy``
        (default every frame, at most ``BANK_MAX_FPS`` a second, so sparse scans line up at any phase), borders
        removed and centre crops stored as extra rows, on ``device``. ``label``
        is every entry's label. The file is replaced only when the build succeeds.
        """
        from vscan.bank.hashers import media_hasher
        from vscan.bank.one_pass import BANK_MAX_FPS
        from vscan.decode import EveryFrame

        write_bank(path, inputs, label=label, hash_media=media_hasher(policy or EveryFrame(max_fps=BANK_MAX_FPS), device))
        return cls(path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Bank":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def has_extra_hashes(self) -> bool:
        return self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'extra_hashes'").fetchone() is not None

    def entry_geometry(self, entry_id: str) -> EntryGeometry | None:
        """The entry's decoded frame size and picture box (``vscan.bank.entry_table.EntryGeometry``), None when it has none."""
        return entry_geometries(self._conn, [entry_id]).get(entry_id)

    @property
    def has_digest_only_entries(self) -> bool:
        """Entries known by their file digests alone (an imported MD5/SHA list): only a content digest matches them."""
        return self._conn.execute("SELECT 1 FROM entries WHERE kind = 'file_digest' LIMIT 1").fetchone() is not None

    def rows(self, table: Table) -> list[tuple]:
        """All rows of ``table`` in key order (``extra_hashes``: none when the bank has no such table)."""
        if table not in TABLE_ORDER:
            raise BankError(f"Invalid table ({table!r}). Supported values are {', '.join(TABLE_ORDER)}")
        if table in ("extra_hashes", "entry_geometry") and not self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone():  # fmt: skip
            return []
        return self._conn.execute(f"SELECT * FROM {table} ORDER BY {TABLE_ORDER[table]}").fetchall()

    def info(self) -> BankInfo:
        """Counts, labels, kinds and checksums of this bank."""
        c = self._conn
        file_hash = kept_sha256(self.path)  # kept once the file has settled (vscan.inputs.kept_digests)
        labels = Counter(label or "" for (label,) in c.execute("SELECT label FROM entries"))
        kinds = Counter(kind for (kind,) in c.execute("SELECT kind FROM entries"))
        num_frames = c.execute("SELECT count(*) FROM frame_hashes").fetchone()[0]
        rows = Counter({"frame": num_frames} if num_frames else {})
        if self.has_extra_hashes:
            for prep, n in c.execute("SELECT prep, count(*) FROM extra_hashes GROUP BY prep"):
                rows[row_kind(prep)] += n
        seconds = float(c.execute("SELECT coalesce(sum(duration_seconds), 0) FROM entries WHERE kind = 'video'").fetchone()[0])
        total = sum(rows.values())
        return BankInfo(
            path=str(self.path),
            format_version=int(self.meta["format_version"]),
            created_by=self.meta.get("created_by", ""),
            num_entries=c.execute("SELECT count(*) FROM entries").fetchone()[0],
            num_frame_hashes=num_frames,
            num_digests=c.execute("SELECT count(*) FROM file_digests").fetchone()[0],
            labels=dict(sorted(labels.items())),
            kinds=dict(sorted(kinds.items())),
            skipped_inputs=tuple(json.loads(self.meta.get("skipped_inputs", "[]"))),
            import_notes=json.loads(self.meta.get("import_notes", "{}")),
            content_sha256=(digest := self.content_digest()),
            file_sha256=file_hash,
            rows_total=total,
            rows_by_kind=dict(sorted(rows.items())),
            video_seconds=round(seconds, 3),
            rows_per_video_second=round(total / seconds, 2) if seconds else 0.0,
            rows_per_video_second_by_kind={k: round(v / seconds, 2) for k, v in sorted(rows.items())} if seconds else {},
            lineage=self.lineage,
            generation=digest,
            row_plan=self.meta.get("row_plan", "full"),
        )

    @property
    def generation(self) -> str:
        """The bank's generation id: its content digest, which every change writes anew (a build, an
        import, a disabled or enabled entry; ``vscan.bank.digest``). Indexes and scans record it."""
        return self.content_digest()

    @property
    def lineage(self) -> str | None:
        """The generation the bank was last written whole at (a build): in-place changes keep it,
        a rebuild at the same path changes it (None for banks written before it was kept)."""
        return self.meta.get("lineage")

    def content_digest(self) -> str:
        """The bank's content checksum (``vscan.bank.digest``): one row to read,
        changed by every appended import, disabled or enabled entry."""
        return stored_content_digest(self._conn)

    def load_index(self) -> BankIndex:
        """The bank in memory, ready for matching (``vscan.bank.match``): the fallback where no index
        can be written beside the bank. Its frame rows are read once into the shared row table
        (``vscan.bank.row_table.RowTable``, with no index: every row read from the bank), its
        entries from the one entry reader (``vscan.bank.entry_table``).

        Disabled entries (``vscan.bank.updates``) are left out and kept apart
        in ``BankIndex.disabled``: nothing is rebuilt when one is disabled."""
        from vscan.bank.row_table import RowTable
        from vscan.bank.updates import disabled_ids

        off = disabled_ids(self._conn)
        table = RowTable(None, self._conn)
        table.close()  # everything is read: no later reads
        entries = all_entry_fields(self._conn)
        extra = self.rows("extra_hashes")
        digests = self._conn.execute("SELECT * FROM file_digests ORDER BY algorithm, digest, entry_id").fetchall()
        geometry = entry_geometries(self._conn)
        index = _in_memory(table, [f for f in entries if f.entry_id not in off], extra, digests, geometry)
        if off:
            index.disabled = _in_memory(table, [f for f in entries if f.entry_id in off], extra, digests, geometry)
        return index


def _in_memory(table, entries: list, extra_rows: list[tuple], digest_rows: list[tuple], geometry: dict) -> BankIndex:
    """The BankIndex of ``entries`` (sorted by entry_id) from a row table holding every row: frames
    sorted by (entry row, frame number), each extra row filed under its frame."""
    row_of = {f.entry_id: i for i, f in enumerate(entries)}
    # the table's entry numbers (in the order its rows met them) -> rows of ``entries`` (-1: not among them)
    rows_of_numbers = np.asarray([row_of.get(table.entry_id(e), -1) for e in range(len(table.new_entries))] or [-1], np.int64)
    entry_rows = rows_of_numbers[table.delta_entry] if table.delta_rows else np.zeros(0, np.int64)
    pick = np.flatnonzero(entry_rows >= 0)
    pick = pick[np.lexsort((table.delta_frame[pick], entry_rows[pick]))]
    entry_rows, frame_numbers = entry_rows[pick].astype(np.int32), table.delta_frame[pick]
    digests: dict[tuple[str, str], list[str]] = {}
    for entry_id, algorithm, digest in digest_rows:
        if entry_id in row_of:
            digests.setdefault((algorithm, digest), []).append(entry_id)
    extra = None
    if rows := [r for r in extra_rows if r[0] in row_of]:
        extra = file_extra_rows(entry_rows, frame_numbers, [row_of[r[0]] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                                [100 if r[3] is None else r[3] for r in rows], np.frombuffer(b"".join(r[4] for r in rows), np.uint8))  # fmt: skip
    return BankIndex(
        entry_ids=[f.entry_id for f in entries],
        labels=[f.label for f in entries],
        kinds=[f.kind for f in entries],
        durations_seconds=np.asarray([np.nan if f.duration_seconds is None else f.duration_seconds for f in entries], np.float64),
        hashes=table.delta_hashes[pick],
        entry_rows=entry_rows,
        frame_numbers=frame_numbers.astype(np.int64),
        timestamps_seconds=table.delta_time[pick].astype(np.float64),
        qualities=table.delta_quality[pick].astype(np.int32),
        digests=digests,
        extra=extra,
        geometry=geometry_array(geometry.get(f.entry_id) for f in entries) if geometry else None,
    )


def build_bank(
    out_path: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    *,
    label: str | None = None,
    hash_media: HashMedia | None = None,
    replace: bool = True,
    resume_key: str | None = None,
    progress: "Callable[[BuildStep], None] | None" = None,
    row_plan: str | None = None,
) -> BankInfo:
    """Builds a bank from files and directories (``vscan.bank.writer.write_bank``); returns its info.

    Media needs ``hash_media`` (``vscan.bank.hashers.media_hasher`` hashes as
    ``vscan bank build`` does; ``Bank.build`` passes it for you). ``replace``,
    ``resume_key``, ``progress``: as ``write_bank`` (``vscan bank build`` passes
    ``replace=False`` unless ``--replace``, and a key that makes it resumable).
    """
    write_bank(out_path, inputs, label=label, hash_media=hash_media, replace=replace, resume_key=resume_key, progress=progress,
               row_plan=row_plan)  # fmt: skip
    with Bank(out_path) as bank:
        return bank.info()


def bank_row_plan(bank_path: "str | Path") -> "RowPlan":
    """The rows a bank keeps of media (``meta.row_plan``, written by ``vscan bank build --rows``):
    ``vscan bank import`` hashes new media the same way. Banks without it: full."""
    from vscan.bank.hashers import FULL_ROWS, ROW_PLANS

    with Bank(bank_path) as bank:
        return ROW_PLANS.get(bank.meta.get("row_plan", "full"), FULL_ROWS)


def tick_seconds(bank_path: "str | Path") -> float | None:
    """Seconds between a bank's ticks where it keeps media frame rows on a clock where footage is fast
    (1 / ``RowPlan.clock_frames_per_second``: ``--rows sparse``), from ``bank_row_plan``; None for any other bank or a file
    that is not a readable bank."""
    try:
        clock = bank_row_plan(bank_path).clock_frames_per_second
    except BankError:
        return None
    return None if clock is None else 1.0 / clock

"""Importing newer lists into an existing bank, in place (``vscan bank import``).

    summary = append_to_bank("stopncii.bank", ["stopncii-2026-11-29.json"])

The same importers as ``vscan bank build`` write through ``BankAppender``,
which adds entries the bank lacks (new frame rows get higher SQLite rowids,
so the lookup index sees them as its delta segment: nothing is rebuilt),
leaves entries it already holds as they are, disables in place entries the
list marks withdrawn or deleted (StopNCII ``hashStatus``, NCMEC
``deletedImage``/``deletedVideo``; history kept, ``vscan.bank.updates``),
and enables again a withdrawn entry the list holds once more. One
transaction: a failed import changes nothing. The content digest changes
with every entry added, disabled or enabled.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

from vscan.bank.importers import HashMedia, import_file
from vscan.bank.updates import bump_digest, connect_rw, set_disabled
from vscan.bank.writer import BankWriter, _classify, walk_inputs
from vscan.errors import BankError

__all__ = ["BankAppender", "append_to_bank"]


class BankAppender(BankWriter):
    """``BankWriter``'s interface on an existing bank (module docstring)."""

    def __init__(self, path: str | os.PathLike, *, who: str = "import"):
        super().__init__(path)
        self.who = who
        self.summary = {"added": 0, "already_in_bank": 0, "withdrawn": 0, "relisted": 0}
        self._rows = hashlib.sha256()

    def __enter__(self) -> "BankAppender":
        self._conn = connect_rw(self.path)
        self._conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        conn = self.conn
        try:
            if exc_type is None:
                notes = json.loads((conn.execute("SELECT value FROM meta WHERE key = 'import_notes'").fetchone() or ["{}"])[0])
                for source, counts in self.import_notes.items():
                    merged = notes.setdefault(source, {})
                    for what, n in counts.items():
                        merged[what] = merged.get(what, 0) + n
                if notes:
                    conn.execute("INSERT OR REPLACE INTO meta VALUES ('import_notes', ?)", (json.dumps(notes, sort_keys=True),))
                if self.summary["added"]:
                    bump_digest(conn, {"action": "append", "added": self.summary["added"], "rows_sha256": self._rows.hexdigest()})
                conn.commit()
            else:
                conn.rollback()
        finally:
            conn.close()
            self._conn = None

    def _in_bank(self, entry_id: str) -> bool:
        """Held by the bank before this import."""
        return entry_id not in self._ids and self.conn.execute("SELECT 1 FROM entries WHERE entry_id = ?", (entry_id,)).fetchone() is not None

    def unique_id(self, entry_id: str, source: str) -> str:
        if entry_id in self._ids:  # twice in this import: as BankWriter does
            return super().unique_id(entry_id, source)
        return entry_id  # an id the bank holds is that entry again (see _existing), never a new one

    def _existing(self, entry_id: str) -> bool:
        """True (and the entry relisted if a list had withdrawn it) when the bank already holds ``entry_id``."""
        if not self._in_bank(entry_id):
            return False
        self.summary["already_in_bank"] += 1
        row = self.conn.execute("SELECT reason FROM disabled_entries WHERE entry_id = ?", (entry_id,)).fetchone()
        if row is not None and (row[0] or "").startswith("withdrawn:"):
            set_disabled(self.conn, [entry_id], False, reason="listed again", who=self.who, action="relisted")
            self.summary["relisted"] += 1
        return True

    def add_frame_hashes(self, entry_id, label, source, kind, frame_hashes, duration_seconds=None, *, qualities_given=True) -> str:
        if self._existing(entry_id):
            return entry_id
        self.summary["added"] += 1
        self._rows.update(repr((entry_id, frame_hashes.hashes.tobytes())).encode())
        return super().add_frame_hashes(entry_id, label, source, kind, frame_hashes, duration_seconds, qualities_given=qualities_given)

    def add_file_digest(self, entry_id, label, source, algorithm, digest) -> str:
        if self._existing(entry_id):
            return entry_id
        self.summary["added"] += 1
        self._rows.update(repr((entry_id, algorithm, digest)).encode())
        return super().add_file_digest(entry_id, label, source, algorithm, digest)

    def add_extra_hashes(self, entry_id, extra) -> None:
        if entry_id in self._ids:
            super().add_extra_hashes(entry_id, extra)

    def add_geometry(self, entry_id, geometry) -> None:
        if entry_id in self._ids:  # an entry this import added (one the bank held keeps what it has)
            super().add_geometry(entry_id, geometry)

    def add_digest(self, entry_id, algorithm, digest) -> None:
        if entry_id in self._ids:
            super().add_digest(entry_id, algorithm, digest)

    def withdraw(self, entry_id: str, source: str, what: str) -> None:
        self.note(source, what)
        if self._in_bank(entry_id):
            if set_disabled(self.conn, [entry_id], True, reason=f"withdrawn: {what} in {source}", who=self.who, action="withdrawn"):
                self.summary["withdrawn"] += 1


def append_to_bank(
    bank_path: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    *,
    label: str | None = None,
    hash_media: HashMedia | None = None,
    who: str = "import",
) -> dict[str, int]:
    """Imports ``inputs`` into the bank in place; returns counts: added,
    already_in_bank, withdrawn (disabled now), relisted (enabled again)."""
    if not Path(bank_path).is_file():
        raise BankError(f"Bank file not found: {bank_path}")
    with BankAppender(bank_path, who=who) as appender:
        for path, rel, walked in walk_inputs(inputs):
            kind = _classify(path, walked)
            if kind is None or kind.startswith("skipped"):
                appender.note(rel, "skipped (not a hash list or media)" if kind is None else kind)
                continue
            import_file(appender, path, rel=rel, label=label, hash_media=hash_media, input_type=kind)  # type: ignore[arg-type]
    return appender.summary

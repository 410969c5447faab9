"""Changing a bank in place: disable / enable entries, match feedback, the
history of both, and the bank's running content digest.

    disable_entries("reported.bank", ["stopncii:ab12..."], reason="false positive", who="alice")
    enable_entries("reported.bank", ["stopncii:ab12..."], reason="reviewed again")
    relabel_entries("reported.bank", ["vid-7"], label="category-2", reason="re-reviewed")
    record_feedback("reported.bank", "vid-7", "false_positive", path="/uploads/x.mp4")
    history("reported.bank", "vid-7")     # [Event(...), ...] oldest first

Tables (created on first change; banks without them have no disabled entries
and no history)::

    entry_events(seq INTEGER PRIMARY KEY AUTOINCREMENT, entry_id, action, who, at, reason, detail)
        action in disable | enable | false_positive | confirmed | withdrawn | relisted | relabel
    disabled_entries(entry_id TEXT PRIMARY KEY, since, who, reason)

Nothing is rebuilt: a disabled entry's rows stay where they are; loading the
bank (``Bank.load_index``, ``vscan.bank.lookup.BankLookup``) leaves them out.
``meta.content_digest`` (the checksum ``Bank.info().content_sha256`` reads,
so resume and --state see every change) is sha256(previous digest + the
change), updated in the same transaction as the change.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from vscan.errors import BankError

__all__ = ["Event", "ACTIONS", "connect_rw", "disable_entries", "enable_entries", "relabel_entries", "record_feedback",
           "history", "disabled_ids", "bump_digest", "current_user"]  # fmt: skip

ACTIONS = ("disable", "enable", "false_positive", "confirmed", "withdrawn", "relisted", "relabel")
#: Kinds an entry with frame rows may be given (a file_digest entry has no rows, and rows need a frame kind).
RELABEL_KINDS = ("video", "image", "pdq_list")
UPDATES_SCHEMA = """
CREATE TABLE IF NOT EXISTS entry_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id TEXT NOT NULL,
    action TEXT NOT NULL,
    who TEXT,
    at TEXT NOT NULL,
    reason TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS entry_events_by_entry ON entry_events(entry_id, seq);
CREATE TABLE IF NOT EXISTS disabled_entries (
    entry_id TEXT PRIMARY KEY,
    since TEXT NOT NULL,
    who TEXT,
    reason TEXT
);
"""


@dataclass(frozen=True)
class Event:
    """One change or feedback on an entry, as kept in ``entry_events``."""

    seq: int
    entry_id: str
    action: str
    who: str | None
    at: str
    reason: str | None
    detail: dict

    def to_dict(self) -> dict:
        return {"seq": self.seq, "entry_id": self.entry_id, "action": self.action, "who": self.who, "at": self.at,
                "reason": self.reason, "detail": self.detail}  # fmt: skip


def current_user() -> str:
    """Who made a change: $VSCAN_USER, else the login name."""
    try:
        return os.environ.get("VSCAN_USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def connect_rw(path: str | os.PathLike) -> sqlite3.Connection:
    """The bank open for writing, with the update tables present; BankError for a missing file or a non-bank."""
    path = Path(path)
    if not path.is_file():
        raise BankError(f"Bank file not found: {path}")
    try:
        conn = sqlite3.connect(path, timeout=30)
        conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        conn.executescript(UPDATES_SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise BankError(f"{path} is not a vscan bank: {exc}") from exc
    return conn


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def disabled_ids(conn: sqlite3.Connection) -> set[str]:
    """Entry ids disabled now (none for a bank never changed)."""
    if not has_table(conn, "disabled_entries"):
        return set()
    return {e for (e,) in conn.execute("SELECT entry_id FROM disabled_entries")}


def bump_digest(conn: sqlite3.Connection, change: object) -> str:
    """meta.content_digest := sha256(previous + change as JSON); the previous is
    the full content checksum for a bank written before digests were kept."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'content_digest'").fetchone()
    if row is None:
        from vscan.bank.digest import full_content_sha256

        previous = full_content_sha256(conn)
    else:
        previous = row[0]
    digest = hashlib.sha256((previous + json.dumps(change, sort_keys=True, default=str)).encode()).hexdigest()
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('content_digest', ?)", (digest,))
    return digest


def _known(conn: sqlite3.Connection, entry_ids: list[str]) -> None:
    missing = [e for e in entry_ids if conn.execute("SELECT 1 FROM entries WHERE entry_id = ?", (e,)).fetchone() is None]
    if missing:
        raise BankError(f"No such bank entr{'y' if len(missing) == 1 else 'ies'}: {', '.join(missing[:5])}")


def _log(conn, entry_id, action, who, at, reason, detail) -> None:
    conn.execute("INSERT INTO entry_events (entry_id, action, who, at, reason, detail) VALUES (?, ?, ?, ?, ?, ?)",
                 (entry_id, action, who, at, reason, json.dumps(detail or {}, sort_keys=True)))  # fmt: skip


def set_disabled(conn: sqlite3.Connection, entry_ids: Iterable[str], disabled: bool, *, reason: str | None, who: str | None,
                 action: str | None = None, detail: dict | None = None) -> list[str]:  # fmt: skip
    """Disables (or enables) entries inside the caller's transaction; logs every
    one, changes the state of those not already so; returns the changed ids."""
    who, at = who or current_user(), _now()
    action = action or ("disable" if disabled else "enable")
    changed = []
    for entry_id in entry_ids:
        _log(conn, entry_id, action, who, at, reason, detail)
        is_off = conn.execute("SELECT 1 FROM disabled_entries WHERE entry_id = ?", (entry_id,)).fetchone() is not None
        if disabled and not is_off:
            conn.execute("INSERT INTO disabled_entries VALUES (?, ?, ?, ?)", (entry_id, at, who, reason))
            changed.append(entry_id)
        elif not disabled and is_off:
            conn.execute("DELETE FROM disabled_entries WHERE entry_id = ?", (entry_id,))
            changed.append(entry_id)
    if changed:
        bump_digest(conn, {"action": "disable" if disabled else "enable", "entries": sorted(changed)})
    return changed


def _change(path, entry_ids, disabled, reason, who, action=None, detail=None) -> list[str]:
    entry_ids = list(dict.fromkeys(entry_ids))
    conn = connect_rw(path)
    try:
        with conn:
            _known(conn, entry_ids)
            return set_disabled(conn, entry_ids, disabled, reason=reason, who=who, action=action, detail=detail)
    finally:
        conn.close()


def disable_entries(path: str | os.PathLike, entry_ids: Iterable[str], *, reason: str | None = None,
                    who: str | None = None, detail: dict | None = None) -> list[str]:  # fmt: skip
    """Disables entries (they stop matching at the next load); returns those
    that were enabled. BankError when an id is not in the bank."""
    return _change(path, entry_ids, True, reason, who, detail=detail)


def enable_entries(path: str | os.PathLike, entry_ids: Iterable[str], *, reason: str | None = None,
                   who: str | None = None) -> list[str]:  # fmt: skip
    """Enables disabled entries again; returns those that were disabled."""
    return _change(path, entry_ids, False, reason, who)


def relabel_entries(path: str | os.PathLike, entry_ids: Iterable[str], *, label: str | None = None, kind: str | None = None,
                    reason: str | None = None, who: str | None = None) -> list[str]:  # fmt: skip
    """Sets the label (and/or the kind) of entries, logged with the old values; a new generation
    (``meta.content_digest``) is written, so resume and --state rescan, while the index and the
    scan arrays stay (labels and kinds are read from the bank at match time). Returns the ids
    whose fields changed. BankError for an unknown id, nothing to set, or a kind that does not fit."""
    if label is None and kind is None:
        raise BankError("Nothing to change: give a label and/or a kind")
    if kind is not None and kind not in RELABEL_KINDS:
        raise BankError(f"Invalid kind ({kind!r}). Supported values are {', '.join(RELABEL_KINDS)}")
    entry_ids = list(dict.fromkeys(entry_ids))
    conn = connect_rw(path)
    try:
        with conn:
            _known(conn, entry_ids)
            return _relabel(conn, entry_ids, label, kind, reason, who or current_user())
    finally:
        conn.close()


def _relabel(conn: sqlite3.Connection, entry_ids: list[str], label, kind, reason, who) -> list[str]:
    at, changed = _now(), []
    for entry_id in entry_ids:
        old_label, old_kind = conn.execute("SELECT label, kind FROM entries WHERE entry_id = ?", (entry_id,)).fetchone()
        if kind is not None and old_kind == "file_digest":
            raise BankError(f"{entry_id} is a file_digest entry (no frame rows): its kind cannot be changed")
        new_label = old_label if label is None else label
        new_kind = old_kind if kind is None else kind
        _log(conn, entry_id, "relabel", who, at, reason, {"label": [old_label, new_label], "kind": [old_kind, new_kind]})
        if (new_label, new_kind) != (old_label, old_kind):
            conn.execute("UPDATE entries SET label = ?, kind = ? WHERE entry_id = ?", (new_label, new_kind, entry_id))
            changed.append(entry_id)
    if changed:
        bump_digest(conn, {"action": "relabel", "entries": sorted(changed), "label": label, "kind": kind})
    return changed


def record_feedback(path: str | os.PathLike, entry_id: str, verdict: str, *, file: str | None = None,
                    reason: str | None = None, who: str | None = None, disable: bool | None = None) -> bool:  # fmt: skip
    """Logs a reviewer's verdict on a match (``false_positive`` or ``confirmed``)
    with the scanned file; a false positive also disables the entry unless
    ``disable=False``. Returns whether the entry's state changed."""
    if verdict not in ("false_positive", "confirmed"):
        raise BankError(f"Invalid feedback ({verdict!r}). Supported values are false_positive, confirmed")
    detail = {"file": file} if file else {}
    conn = connect_rw(path)
    try:
        with conn:
            _known(conn, [entry_id])
            if verdict == "false_positive" and disable is not False:
                return bool(set_disabled(conn, [entry_id], True, reason=reason or f"false positive on {file}", who=who,
                                         action="false_positive", detail=detail))  # fmt: skip
            _log(conn, entry_id, verdict, who or current_user(), _now(), reason, detail)
            return False
    finally:
        conn.close()


def history(path_or_conn: str | os.PathLike | sqlite3.Connection, entry_id: str | None = None) -> list[Event]:
    """Events of one entry (or of all), oldest first."""
    own = not isinstance(path_or_conn, sqlite3.Connection)
    conn = sqlite3.connect(f"file:{Path(path_or_conn)}?mode=ro", uri=True) if own else path_or_conn
    try:
        if not has_table(conn, "entry_events"):
            return []
        sql = "SELECT seq, entry_id, action, who, at, reason, detail FROM entry_events"
        rows = conn.execute(sql + (" WHERE entry_id = ? ORDER BY seq" if entry_id else " ORDER BY seq"), (entry_id,) if entry_id else ())
        return [Event(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6] or "{}")) for r in rows]
    finally:
        if own:
            conn.close()

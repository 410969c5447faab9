"""The bank file format: one SQLite file of reference hashes with their metadata.

Schema (format version 1; full description in ``docs/bank-format.md``)::

    meta(key TEXT PRIMARY KEY, value TEXT)
        format_version, created_by, hash_algorithm ('pdq'), skipped_inputs (JSON list),
        import_notes (optional, JSON {source: {what: count}}: unknown hash types, disabled records)
    entries(entry_id TEXT PRIMARY KEY, label TEXT, source_path TEXT, source_type TEXT,
            source_ref TEXT, kind TEXT, duration_seconds REAL, num_frames INTEGER)
        kind in video | image | pdq_list | file_digest
        source_type in vpdq_txt | pdq_list | digest_list | pytx_csv | vics_json | ncmec_xml |
                       stopncii_json | media | api (no CHECK: older readers read newer types)
        source_ref: line number or file name inside the source, when one source gives many entries
    frame_hashes(entry_id TEXT, frame_number INTEGER, timestamp_seconds REAL, quality INTEGER,
                 hash BLOB(32), PRIMARY KEY (entry_id, frame_number))
        quality NULL = not given by the source; loaded as 100 (bank hashes are trusted)
    file_digests(entry_id TEXT, algorithm TEXT, digest TEXT, PRIMARY KEY (algorithm, digest, entry_id))
        algorithm in md5 | sha1 | sha256, digest lowercase hex
    extra_hashes(entry_id TEXT, frame_number INTEGER, prep TEXT, quality INTEGER, hash BLOB(32),
                 PRIMARY KEY (entry_id, frame_number, prep))      -- optional (added later in v1)
        more hashes of a frame of frame_hashes, prepared differently: prep 'borders' (borders
        removed), 'crop0.900' (centre crop keeping 90% of each side), 'borders+crop0.900'; banks
        without the table read as having no extra rows, and readers that ignore it still work
    entry_geometry(entry_id TEXT PRIMARY KEY, width INTEGER, height INTEGER,
                   x0 INTEGER, y0 INTEGER, x1 INTEGER, y1 INTEGER)   -- optional (added later in v1)
        a media entry's decoded frame size (width x height px, as displayed) and the box of the
        picture inside its bars in those pixels (x0, y0 inclusive, x1, y1 exclusive; no bars: the
        whole frame); written by builds and imports of media, created with its first row: banks
        without it, and entries from hash lists, have no geometry (``vscan.bank.entry_table``)

Changed in place (``vscan.bank.updates``, ``vscan.bank.append``; created on the first change)::

    entry_events(seq INTEGER PRIMARY KEY AUTOINCREMENT, entry_id, action, who, at, reason, detail)
    disabled_entries(entry_id TEXT PRIMARY KEY, since, who, reason)
    meta.content_digest: the content checksum, replaced at every change (``vscan.bank.digest``)

The writer (``vscan.bank.writer``) creates these tables, the reader
(``vscan.bank.store``) checks ``FORMAT_VERSION``; both take the names from here.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["FORMAT_VERSION", "SCHEMA", "GEOMETRY_SCHEMA", "KINDS", "Kind", "ALGORITHMS", "TABLE_ORDER", "HEX"]

FORMAT_VERSION = 1
Kind = Literal["video", "image", "pdq_list", "file_digest"]
KINDS = ("video", "image", "pdq_list", "file_digest")
#: Digest algorithm by hex length.
ALGORITHMS = {32: "md5", 40: "sha1", 64: "sha256"}
#: Each table's primary key: the order rows are written, read and checksummed in.
TABLE_ORDER = {
    "entries": "entry_id",
    "frame_hashes": "entry_id, frame_number",
    "file_digests": "algorithm, digest, entry_id",
    "extra_hashes": "entry_id, frame_number, prep",
    "entry_geometry": "entry_id",
}
HEX = re.compile(r"[0-9a-fA-F]+")

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
    entry_id TEXT PRIMARY KEY,
    label TEXT,
    source_path TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source_ref TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('video', 'image', 'pdq_list', 'file_digest')),
    duration_seconds REAL,
    num_frames INTEGER NOT NULL
);
CREATE TABLE frame_hashes (
    entry_id TEXT NOT NULL REFERENCES entries(entry_id),
    frame_number INTEGER NOT NULL,
    timestamp_seconds REAL,
    quality INTEGER CHECK (quality BETWEEN 0 AND 100),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (entry_id, frame_number)
);
CREATE TABLE extra_hashes (
    entry_id TEXT NOT NULL REFERENCES entries(entry_id),
    frame_number INTEGER NOT NULL,
    prep TEXT NOT NULL,
    quality INTEGER CHECK (quality BETWEEN 0 AND 100),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (entry_id, frame_number, prep)
);
CREATE TABLE file_digests (
    entry_id TEXT NOT NULL REFERENCES entries(entry_id),
    algorithm TEXT NOT NULL CHECK (algorithm IN ('md5', 'sha1', 'sha256')),
    digest TEXT NOT NULL,
    PRIMARY KEY (algorithm, digest, entry_id)
);
"""

#: Created with a bank's first geometry row (``BankWriter.add_geometry``): older banks open without it.
GEOMETRY_SCHEMA = """
CREATE TABLE IF NOT EXISTS entry_geometry (
    entry_id TEXT PRIMARY KEY REFERENCES entries(entry_id),
    width INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    x0 INTEGER NOT NULL, y0 INTEGER NOT NULL, x1 INTEGER NOT NULL, y1 INTEGER NOT NULL,
    CHECK (0 <= x0 AND x0 < x1 AND x1 <= width AND 0 <= y0 AND y0 < y1 AND y1 <= height)
);
"""

"""Result sinks: where per-file records go, one at a time, as files finish.

    Sink (ABC)            write(record) returns once the record is durable
    ├── JsonlSink         *.jsonl: one JSON object per line, flushed and
    │                     fsync'ed per record; a torn last line (a crash
    │                     mid-write: never acknowledged) is cut on reopen
    ├── ParquetSink       *.parquet: JSONL write-ahead log (fsync per record)
    │                     beside the file, folded into the Parquet file on
    │                     close (tmp + fsync + rename) and on reopen after a
    │                     crash. Readers see the Parquet file after close.
    ├── SqliteSink        *.sqlite / *.db: WAL mode, synchronous=FULL,
    │                     one commit per record
    └── PostgresSink      postgresql://...: psycopg 3, one commit per record

Every sink also gives back what it already holds (``records()``: the basis
of resume) and keeps the run manifests (``write_manifest``: a
``<out>.manifest.json`` beside file sinks, a ``vscan_runs`` table in
databases). Each holds the full record as JSON plus a few columns to query.

Choosing by target (``open_sink``): ``*.jsonl``, ``*.parquet``,
``*.sqlite``/``*.db``, ``postgresql://`` or ``postgres://``. The interface is
in vscan.output.sink_base, the file sinks in vscan.output.file_sinks, the
database sinks in vscan.output.sql_sinks; this module names them all.
"""

from __future__ import annotations

import os
from pathlib import Path

from vscan.errors import ConfigError
from vscan.output.file_sinks import JsonlSink, ParquetSink
from vscan.output.sink_base import Sink, SinkError, to_json_line
from vscan.output.sql_sinks import PostgresSink, SqliteSink

__all__ = [
    "Sink",
    "JsonlSink",
    "ParquetSink",
    "SqliteSink",
    "PostgresSink",
    "SinkError",
    "open_sink",
    "to_json_line",
]


def open_sink(target: str | os.PathLike) -> Sink:
    """The sink for ``--out``, chosen by suffix or URL scheme."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresSink(text)
    suffix = Path(text).suffix.lower()
    if suffix == ".jsonl":
        return JsonlSink(text)
    if suffix == ".parquet":
        return ParquetSink(text)
    if suffix in (".sqlite", ".db", ".sqlite3"):
        return SqliteSink(text)
    raise ConfigError(
        f"Invalid --out ({text!r}). Supported values are *.jsonl, *.parquet, *.sqlite, *.db, postgresql://..."
    )

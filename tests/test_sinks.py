"""Sink conformance: every sink passes the same tests (real files, real SQLite,
real PostgreSQL). PostgreSQL needs VSCAN_TEST_POSTGRES_DSN (``.ci/run`` starts
a server and sets it); without it those cases skip, and fail under CI=true."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from vscan.errors import ConfigError
from vscan.output.sinks import JsonlSink, ParquetSink, PostgresSink, SqliteSink, open_sink

@pytest.fixture
def pg_dsn(pg_database):
    """A fresh database per test, dropped afterwards."""
    return pg_database()


SINKS = ["jsonl", "parquet", "sqlite", "postgres"]


@pytest.fixture(params=SINKS)
def target(request, tmp_path):
    kind = request.param
    if kind == "postgres":
        return request.getfixturevalue("pg_dsn")
    return str(tmp_path / {"jsonl": "r.jsonl", "parquet": "r.parquet", "sqlite": "r.sqlite"}[kind])


def record(i: int, **extra) -> dict:
    return {
        "schema_version": 1, "path": f"dir/file-{i}.mp4", "sha256": f"{i:064x}", "md5": None,
        "size_bytes": 1000 + i, "status": "error" if i % 3 == 0 else "ok",
        "error": {"type": "DecodeError", "message": "bad"} if i % 3 == 0 else None,
        "risk": None if i % 3 == 0 else float("nan") if i % 5 == 1 else 0.25 * (i % 4),
        "reasons": ["é unicode ✓"], "matches": [], "timings": {"decode": 0.5}, **extra,
    }  # fmt: skip


def expected(i: int, **extra) -> dict:
    r = record(i, **extra)
    if isinstance(r["risk"], float) and r["risk"] != r["risk"]:
        r["risk"] = None  # NaN is stored as null
    return r


def test_open_sink_picks_by_suffix_or_url(tmp_path):
    for name, cls in [("a.jsonl", JsonlSink), ("a.parquet", ParquetSink), ("a.sqlite", SqliteSink), ("a.db", SqliteSink)]:
        with open_sink(tmp_path / name) as sink:
            assert type(sink) is cls
    with pytest.raises(ConfigError, match="Supported values"):
        open_sink(tmp_path / "a.csv")


def test_conformance_write_read_reopen_append(target):
    with open_sink(target) as sink:
        assert sink.records() == []
        for i in range(5):
            sink.write(record(i))
        assert sink.records() == [expected(i) for i in range(5)]
    with open_sink(target) as sink:  # reopening never truncates; appends keep order
        assert sink.records() == [expected(i) for i in range(5)]
        sink.write(record(5))
    with open_sink(target) as sink:
        assert sink.records() == [expected(i) for i in range(6)]


def test_conformance_manifests_insert_and_update(target):
    with open_sink(target) as sink:
        sink.write_manifest({"run_id": "a", "started": "2024-01-01T00:00:00", "ended": None})
        sink.write_manifest({"run_id": "b", "started": "2024-01-02T00:00:00", "ended": None})
        sink.write_manifest({"run_id": "a", "started": "2024-01-01T00:00:00", "ended": "2024-01-01T01:00:00"})
    with open_sink(target) as sink:
        runs = sink.manifests()
    assert [(m["run_id"], m["ended"]) for m in runs] == [("a", "2024-01-01T01:00:00"), ("b", None)]


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from test_sinks import record
    from vscan.output.sinks import open_sink
    sink = open_sink(sys.argv[1])
    i = 0
    while True:
        sink.write(record(i))
        print(i, flush=True)  # acknowledged: write returned
        i += 1
    """
)


@pytest.mark.parametrize("kill_after", [1, 37])
def test_conformance_kill_minus_9_loses_no_acknowledged_record(target, kill_after):
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, target, os.path.dirname(__file__)], stdout=subprocess.PIPE, text=True
    )
    acked = -1
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked + 1 >= kill_after:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert acked + 1 >= kill_after, "the writer died before acknowledging anything"
    with open_sink(target) as sink:
        got = sink.records()
        # Every acknowledged record is there, and what is there is exactly the
        # records written, in order, none torn or doubled. The writer may be a
        # few records ahead of the acknowledgements this test had read.
        assert len(got) >= acked + 1
        assert got == [expected(i) for i in range(len(got))]
        n = len(got)
        sink.write(record(1000))  # the sink works on after the crash
    with open_sink(target) as sink:
        assert len(sink.records()) == n + 1 and sink.records()[-1] == expected(1000)


def test_jsonl_torn_last_line_is_cut(tmp_path):
    out = tmp_path / "r.jsonl"
    with JsonlSink(out) as sink:
        sink.write(record(1))
    with open(out, "a") as fh:
        fh.write('{"schema_version": 1, "path": "half')  # a crash mid-write
    with JsonlSink(out) as sink:
        assert sink.records() == [expected(1)]
        sink.write(record(2))
    lines = out.read_text().splitlines()
    assert [json.loads(x)["path"] for x in lines] == ["dir/file-1.mp4", "dir/file-2.mp4"]


def test_parquet_is_queryable_and_log_folded_exactly_once(tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "r.parquet"
    with ParquetSink(out) as sink:
        for i in range(4):
            sink.write(record(i))
        assert (tmp_path / "r.parquet.wal.jsonl").exists()
    assert not (tmp_path / "r.parquet.wal.jsonl").exists()
    table = pq.read_table(out)
    assert table.column("path").to_pylist() == [f"dir/file-{i}.mp4" for i in range(4)]
    assert table.column("status").to_pylist() == ["error", "ok", "ok", "error"]
    # A crash after the fold's rename but before the log was removed: the log
    # is already in the file and must not be folded twice.
    with ParquetSink(out) as sink:
        sink.write(record(9))
        wal = (tmp_path / "r.parquet.wal.jsonl").read_bytes()
    (tmp_path / "r.parquet.wal.jsonl").write_bytes(wal)
    with ParquetSink(out) as sink:
        assert [r["path"] for r in sink.records()] == [f"dir/file-{i}.mp4" for i in (0, 1, 2, 3, 9)]


def test_postgres_target_is_redacted(pg_dsn):
    with PostgresSink(pg_dsn) as sink:
        assert "postgresql://" in sink.target
    from vscan.output.sql_sinks import _redact

    assert _redact("postgresql://u:secret@h:5/db") == "postgresql://u:***@h:5/db"


def test_conformance_write_many_commits_together_and_resume_rows_stream(target):
    from vscan.output.sink_base import resume_row

    versions = {"bank_sha256": "b" * 64}
    with open_sink(target) as sink:
        sink.write_many([record(i, versions=versions) for i in range(3)])
        sink.write(record(3))
        sink.write_many([])
        rows = list(sink.resume_rows())
    with open_sink(target) as sink:
        assert list(sink.resume_rows()) == rows
        assert sink.records() == [expected(i, versions=versions) for i in range(3)] + [expected(3)]
    assert rows == [resume_row(expected(i, versions=versions)) for i in range(3)] + [resume_row(expected(3))]
    assert rows[0].versions == versions and rows[0].status == "error" and rows[0].error_type == "DecodeError"


def test_parquet_writes_row_groups_as_it_goes(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    monkeypatch.setattr(ParquetSink, "ROW_GROUP", 10)
    out = tmp_path / "r.parquet"
    with ParquetSink(out) as sink:
        sink.write_many([record(i) for i in range(25)])
        # Two full row groups are already in the file being written (no footer yet).
        assert (tmp_path / "r.parquet.tmp").stat().st_size > 0 and not out.exists()
        sink.write_many([record(i) for i in range(25, 35)])
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [10, 10, 10, 5]
    with ParquetSink(out) as sink:  # the next run copies the earlier rows group by group, then appends
        sink.write(record(35))
    with ParquetSink(out) as sink:
        assert sink.records() == [expected(i) for i in range(36)]
    assert not (tmp_path / "r.parquet.tmp").exists() and not (tmp_path / "r.parquet.wal.jsonl").exists()

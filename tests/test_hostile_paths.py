"""Lossless paths (issue 23): names that are not UTF-8, control characters and
NUL, in folders, tars and zips, through the CLI into every sink; resume,
``--state``, report and export read them back. On the old code the first
Latin-1 name ended the scan (UnicodeEncodeError in the resume index, exit 1).

The member separator ``!/`` in real names: a tar inside a folder named
``case.zip!`` (the old code split its member path at ``case.zip`` and
recorded an ArchiveError for a zip that does not exist), a zip member named
``a.tar!/c.mp4``: member paths write a ``!`` before ``/`` twice
(vscan.inputs.containers.member_path), so each path names one thing.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

from vscan.bench import synth
from vscan.bench.hostile import make_hostile, raw_path
from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.decode import EveryFrame
from vscan.inputs.paths import display, path_fields, record_key, record_raw_path
from vscan.output.read import read_records
from vscan.verdict.record import result_schema

VSCAN = [sys.executable, "-m", "vscan.cli"]
NAME_CASES = {"latin-1 file name", "control characters in a file name", "NUL in a tar member name",
              "latin-1 tar member name", "plain member beside them", "control character in a zip member name",
              "a tar in a folder named case.zip!", "a zip member named a.tar!/c.mp4",
              "a file in a folder named wow.zip! (no wow.zip)", "member b.mp4 of x.zip", "a file x.zip!/b.mp4 beside x.zip"}  # fmt: skip


def test_display_is_safe_and_the_bytes_come_back():
    for raw in (b"caf\xe9.mp4", b"a\x00b", b"tab\tx", b"\xc3\xa9t\xc3\xa9.mp4", b"\xff\xfe", b"bell\x07\x9b"):
        path = os.fsdecode(raw)
        fields = path_fields(path)
        shown = fields["path"]
        shown.encode("utf-8")  # storable: no lone surrogates
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown), shown
        assert record_key(fields) == raw and record_raw_path(fields) == path
    assert path_fields("/plain/été.mp4") == {"path": "/plain/été.mp4"}  # valid UTF-8 stays as it is
    assert display(os.fsdecode(b"caf\xe9")) == "caf\\xe9"


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-names")
    clip = synth.make_clip(root / "clip.mp4", seed=5, seconds=1.0, size=(96, 64))
    every = make_hostile(root / "ev", clip, deep_levels=0)
    cases = [c for c in every if c.name in NAME_CASES]
    for other in {c.top for c in every} - {c.top for c in cases}:
        os.remove(os.path.join(os.fsencode(root / "ev"), other))
    bank = root / "other.bank"
    build_bank(bank, [synth.make_clip(root / "other.mp4", seed=6, seconds=1.0, size=(96, 64))],
               hash_media=media_hasher(EveryFrame(), "cpu"))  # fmt: skip
    return root, cases, bank


def _target(kind: str, tmp_path: Path, name: str, pg_database) -> str:
    return pg_database() if kind == "postgres" else str(tmp_path / f"{name}.{kind}")


def _scan(folder: Path, bank: Path, out: str, ray_address: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VSCAN, "scan", str(folder), "--bank", str(bank), "--out", out, "--device", "cpu", "-q",
                           "--fps", "1", "--ray-address", ray_address, *extra],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "sqlite", "postgres"])
def test_hostile_names_get_one_honest_record_each_in_every_sink_and_resume(evidence, tmp_path, ray_address, kind, pg_database):
    root, cases, bank = evidence
    folder = root / "ev"
    out = _target(kind, tmp_path, "r", pg_database)
    state = tmp_path / "state.sqlite"
    first = _scan(folder, bank, out, ray_address, "--state", str(state))
    assert first.returncode == 0, first.stderr
    records = read_records(out)
    by_raw = {record_key(r): r for r in records}
    assert len(records) == len(by_raw) == len(cases)
    for case in cases:
        r = by_raw[raw_path(folder, case)]
        jsonschema.validate(r, result_schema())
        assert r["status"] == case.status, (case.name, r["error"])
        if case.error_type:
            assert r["error"]["type"] == case.error_type and r["error"]["kind"] == "input"
        if r["path"] != os.fsdecode(raw_path(folder, case)):  # shown differently: the raw bytes are kept
            assert base64.b64decode(r["path_bytes"]) == raw_path(folder, case)
    assert by_raw[raw_path(folder, cases[0])]["path"].endswith("caf\\xe9-latin1.mp4")

    # Two scans at once, each its own driver on the session's Ray (independent outputs; the state is only read):
    fresh = _target(kind, tmp_path, "fresh", pg_database)
    with ThreadPoolExecutor(2) as pool:
        resumed = pool.submit(_scan, folder, bank, out, ray_address)  # resume: every file has its record
        stated = pool.submit(_scan, folder, bank, fresh, ray_address, "--state", str(state))  # unchanged content is not decoded again
        again, third = resumed.result(), stated.result()
    assert again.returncode == 0, again.stderr
    assert len(read_records(out)) == len(cases) and len(_all_rows(out)) == len(cases)

    assert third.returncode == 0, third.stderr
    unchanged = {record_key(r): r.get("skipped") for r in read_records(fresh)}
    assert len(unchanged) == len(cases)
    for case in cases:  # refused members were never read: no content to remember
        assert unchanged[raw_path(folder, case)] == ("unchanged" if case.status == "ok" else None), case.name


def _all_rows(target: str) -> list[dict]:
    """Every stored record, not only the last per path."""
    from vscan.output.sinks import open_sink

    with open_sink(target) as sink:
        return sink.records()


def test_report_and_export_read_hostile_names(evidence, tmp_path, ray_address):
    root, cases, bank = evidence
    out = str(tmp_path / "r.jsonl")
    assert _scan(root / "ev", bank, out, ray_address).returncode == 0
    report = subprocess.run([*VSCAN, "report", out, "--out", str(tmp_path / "r.html")], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert "caf\\xe9-latin1.mp4" in (tmp_path / "r.html").read_text(encoding="utf-8")
    for fmt, name in (("csv", "case.csv"), ("vics", "case.json")):
        run = subprocess.run([*VSCAN, "export", out, "--format", fmt, "--out", str(tmp_path / name)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(open(tmp_path / "case.csv", encoding="utf-8")))
    assert len(rows) == len(cases)
    latin = next(r for r in rows if r["path"].endswith("caf\\xe9-latin1.mp4"))
    assert latin["sha1"]  # read back under its raw name (the shown one opens nothing)
    json.loads((tmp_path / "case.json").read_text(encoding="utf-8"))


def test_csv_export_cells_never_run_as_formulas(tmp_path):
    from vscan.output.export import export_results

    record = {"path": "=HYPERLINK(\"http://x\")", "status": "ok", "risk": 0.0, "md5": None, "sha256": None,
              "reasons": ["@SUM(1)"], "matches": []}  # fmt: skip
    export_results([record], "csv", tmp_path / "x.csv")
    row = list(csv.DictReader(open(tmp_path / "x.csv", encoding="utf-8")))[0]
    assert row["path"] == "'=HYPERLINK(\"http://x\")" and row["reasons"] == "'@SUM(1)"

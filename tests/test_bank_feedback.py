"""Bank updates end to end through real ``python -m vscan.cli`` subprocesses:
disable / enable / feedback between real Ray scans (a disabled entry stops
matching in the next scan, the record says it was skipped, the history
keeps who / when / why, the bank's frame rows are untouched), ``vscan bank
lookup`` on a clip's vPDQ lines, and re-imported StopNCII and NCMEC lists
that withdraw, delete and add entries in place.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vscan.bank.formats_stopncii import stopncii_page
from vscan.bench import synth
from vscan.output.read import read_records

VSCAN = [sys.executable, "-m", "vscan.cli"]


def cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", "VSCAN_USER": "reviewer-1"}
    return subprocess.run([*VSCAN, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


def ok(*args) -> str:
    run = cli(*args)
    assert run.returncode == 0, run.stderr
    return run.stdout


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def digest(bank: Path) -> str:
    from vscan.bank.store import Bank

    with Bank(bank) as b:
        return b.info().content_sha256


def frame_rows(bank: Path) -> list:
    with sqlite3.connect(bank) as conn:
        return conn.execute("SELECT rowid, entry_id, frame_number, hash FROM frame_hashes ORDER BY rowid").fetchall()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("feedback")
    synth.make_clip(root / "clips" / "a.mp4", seed=1, seconds=2, size=(96, 64))
    synth.make_clip(root / "clips" / "b.mp4", seed=2, seconds=2, size=(96, 64))
    ok("bank", "build", root / "r.bank", root / "clips" / "a.mp4", root / "clips" / "b.mp4", "--device", "cpu")
    return root


def scan(work: Path, out: str, ray_address: str) -> dict[str, dict]:
    ok("scan", work / "clips", "--bank", work / "r.bank", "--out", work / out, "--ray-address", ray_address, "--device", "cpu", "--quiet")
    return {Path(r["path"]).name: r for r in read_records(work / out)}


def matched(record: dict) -> set[str]:
    return {m["bank_entry_id"] for m in record["matches"] if m["is_match"]}


def test_disable_feedback_enable_between_scans(work, ray_address):
    bank = work / "r.bank"
    first = scan(work, "r1.jsonl", ray_address)
    assert matched(first["a.mp4"]) == {"a"} and matched(first["b.mp4"]) == {"b"}
    assert not first["a.mp4"].get("skipped_disabled")
    rows, before = frame_rows(bank), digest(bank)

    out = jsonl(ok("bank", "disable", bank, "a", "--reason", "benign stock footage"))
    assert out == [{"disabled": ["a"], "already_disabled": []}]
    assert digest(bank) != before  # resume / --state rescan after a change
    second = scan(work, "r2.jsonl", ray_address)
    assert "a" not in {m["bank_entry_id"] for m in second["a.mp4"]["matches"]}
    assert second["a.mp4"]["skipped_disabled"] == ["a"]
    assert matched(second["b.mp4"]) == {"b"} and not second["b.mp4"].get("skipped_disabled")
    assert frame_rows(bank) == rows  # nothing rebuilt: the rows are where they were
    assert second["a.mp4"]["versions"]["bank_sha256"] != first["a.mp4"]["versions"]["bank_sha256"]

    b_path = second["b.mp4"]["path"]
    fb = jsonl(ok("feedback", work / "r2.jsonl", "--bank", bank, "--false-positive", b_path, "--reason", "wrong clip"))
    assert fb == [{"file": b_path, "feedback": "false_positive", "entries": ["b"], "disabled": ["b"]}]
    ok("feedback", work / "r1.jsonl", "--bank", bank, "--confirmed", first["a.mp4"]["path"], "--entry", "a")
    wrong = cli("feedback", work / "r1.jsonl", "--bank", bank, "--confirmed", first["a.mp4"]["path"], "--entry", "b")
    assert wrong.returncode == 2 and "did not match" in wrong.stderr
    ok("bank", "enable", bank, "a", "--reason", "re-reviewed", "--who", "lead")

    events = jsonl(ok("bank", "history", bank))
    assert [(e["entry_id"], e["action"], e["who"], e["reason"]) for e in events] == [
        ("a", "disable", "reviewer-1", "benign stock footage"),
        ("b", "false_positive", "reviewer-1", "wrong clip"),
        ("a", "confirmed", "reviewer-1", None),
        ("a", "enable", "lead", "re-reviewed"),
    ]
    assert events[1]["detail"] == {"file": b_path} and all(e["at"].endswith("+00:00") for e in events)
    assert [e["action"] for e in jsonl(ok("bank", "history", bank, "a"))] == ["disable", "confirmed", "enable"]

    # The same bank, looked up from outside a scan: a's frames match a (enabled again), never b (disabled).
    (work / "a.vpdq").write_text(ok("hash", work / "clips" / "a.mp4", "--device", "cpu"))
    results = jsonl(ok("bank", "lookup", bank, "--hashes", work / "a.vpdq", "--dihedral"))
    assert len(results) == len((work / "a.vpdq").read_text().splitlines()) > 10
    assert [r["line"] for r in results] == list(range(1, len(results) + 1))
    assert all({m["entry"] for m in r["matches"]} == {"a"} for r in results)
    best = [r["matches"][0] for r in results]
    # `vscan hash` prepares frames as the reference vPDQ does (full size); the bank's rows are the frames
    # as a scan prepares them (vscan.frames.prepare), a few bits away.
    assert all(m["distance"] <= 16 and m["variant"] == "original" for m in best[:3])
    assert (work / "r.bank.vidx" / "index.json").is_file()


def _pdq(seed: int) -> str:
    return np.random.default_rng(seed).integers(0, 256, 32, dtype=np.uint8).tobytes().hex()


def test_reimported_lists_withdraw_delete_and_add_in_place(tmp_path):
    h = [_pdq(i) for i in range(5)]
    (tmp_path / "day1.json").write_text(json.dumps(stopncii_page([("ImagePDQ", x, "Active") for x in h[:3]] + [("VideoMD5", "a" * 32, "Active")])))
    ok("bank", "build", tmp_path / "s.bank", tmp_path / "day1.json")
    (tmp_path / "q.txt").write_text("\n".join(h) + "\n")
    ok("bank", "lookup", tmp_path / "s.bank", "--hashes", tmp_path / "q.txt")  # builds the index
    built = (tmp_path / "s.bank.vidx" / "ids.npy").stat().st_mtime_ns
    before = digest(tmp_path / "s.bank")
    day2 = [("ImagePDQ", h[0], "Withdrawn"), ("ImagePDQ", h[1], "Active"), ("ImagePDQ", h[3], "Active")]
    (tmp_path / "day2.json").write_text(json.dumps(stopncii_page(day2)))
    summary = jsonl(ok("bank", "import", tmp_path / "s.bank", tmp_path / "day2.json"))
    assert summary == [{"added": 1, "already_in_bank": 1, "withdrawn": 1, "relisted": 0}]
    assert digest(tmp_path / "s.bank") != before
    hits = [{m["entry"] for m in r["matches"]} for r in jsonl(ok("bank", "lookup", tmp_path / "s.bank", "--hashes", tmp_path / "q.txt"))]
    assert hits == [set(), {f"stopncii:{h[1]}"}, {f"stopncii:{h[2]}"}, {f"stopncii:{h[3]}"}, set()]
    assert (tmp_path / "s.bank.vidx" / "ids.npy").stat().st_mtime_ns == built  # the new entry is in the delta
    events = jsonl(ok("bank", "history", tmp_path / "s.bank"))
    assert [(e["entry_id"], e["action"], e["who"]) for e in events] == [(f"stopncii:{h[0]}", "withdrawn", "import")]
    assert "day2.json" in events[0]["reason"]
    (tmp_path / "day3.json").write_text(json.dumps(stopncii_page([("ImagePDQ", h[0], "Active")])))
    assert jsonl(ok("bank", "import", tmp_path / "s.bank", tmp_path / "day3.json"))[0]["relisted"] == 1

    ns = "https://hashsharing.ncmec.org/hashsharing/v2"
    page = lambda body: f'<?xml version="1.0"?>\n<queryResult xmlns="{ns}">\n<images>{body}</images>\n</queryResult>\n'  # noqa: E731
    (tmp_path / "n1.xml").write_text(page("".join(f"<image><id>{i}</id><fingerprints><pdq>{h[i]}</pdq></fingerprints></image>" for i in (0, 1))))
    ok("bank", "build", tmp_path / "n.bank", tmp_path / "n1.xml")
    (tmp_path / "n2.xml").write_text(page(f"<deletedImage><id>1</id></deletedImage><image><id>4</id><fingerprints><pdq>{h[4]}</pdq></fingerprints></image>"))
    assert jsonl(ok("bank", "import", tmp_path / "n.bank", tmp_path / "n2.xml"))[0] == {"added": 1, "already_in_bank": 0, "withdrawn": 1, "relisted": 0}
    hits = [{m["entry"] for m in r["matches"]} for r in jsonl(ok("bank", "lookup", tmp_path / "n.bank", "--hashes", tmp_path / "q.txt"))]
    assert hits == [{"ncmec:image:0"}, set(), set(), set(), {"ncmec:image:4"}]
    bad = cli("bank", "disable", tmp_path / "n.bank", "ncmec:image:77")
    assert bad.returncode == 2 and "No such bank entry" in bad.stderr


def test_bank_build_and_compact_leave_the_scan_index_ready(tmp_path):
    """`bank build` writes the index and scan arrays a scan opens; rows imported
    later are a delta until `bank compact`, which folds them in and refreshes the arrays."""
    from vscan.bank.disk_index import SplitIndex
    from vscan.bank.lookup import index_path
    from vscan.bank.mapped_build import scan_arrays_fresh

    rng = np.random.default_rng(5)
    first, later = tmp_path / "first.pdq.txt", tmp_path / "later.pdq.txt"
    first.write_text("".join(bytes(h).hex() + "\n" for h in rng.integers(0, 256, (40, 32), np.uint8)))
    later.write_text("".join(bytes(h).hex() + "\n" for h in rng.integers(0, 256, (7, 32), np.uint8)))
    bank = tmp_path / "bank.db"
    ok("bank", "build", bank, first)
    index = SplitIndex.open(index_path(bank))
    assert len(index) == 40 and scan_arrays_fresh(index)
    ok("bank", "import", bank, later)
    ok("bank", "compact", bank)
    index = SplitIndex.open(index_path(bank))
    assert len(index) == 47 and scan_arrays_fresh(index)

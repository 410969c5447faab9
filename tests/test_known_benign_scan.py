"""Known-benign lists in a real scan (``--ignore``), and SHA-1-only bank
entries matching by the scan's own SHA-1: listed files are digested and
never decoded, their records say which list knew them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

from test_known_benign import _digests, _rds
from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.bench import synth
from vscan.decode import EveryFrame
from vscan.verdict.record import result_schema


def test_listed_files_are_never_decoded_and_sha1_entries_match(tmp_path, ray_address):
    evidence = tmp_path / "evidence"
    clips = [synth.make_clip(evidence / f"c{i}.mp4", seed=60 + i, seconds=1.0, size=(96, 64)) for i in range(4)]
    d = [_digests(c) for c in clips]
    nsrl = tmp_path / "RDS_2025.03.1_modern_minimal.db"
    _rds(nsrl, [(d[0]["sha256"], d[0]["sha1"], d[0]["md5"], "c0.mp4", d[0]["size"])], version="2025.03.1")
    plain = tmp_path / "house.txt"
    plain.write_text(f"# version: 3\n{d[1]['sha1'].lower()}  c1.mp4\n")
    # A bank whose only link to c2 is its SHA-1 (as a VICS or NCMEC list carries it).
    sha1_list = tmp_path / "reported.sha1"
    sha1_list.write_text(d[2]["sha1"].lower() + "\n")
    other = synth.make_clip(tmp_path / "other.mp4", seed=70, seconds=1.0, size=(96, 64))
    bank = tmp_path / "reported.bank"
    build_bank(bank, [sha1_list, other], label="reported", hash_media=media_hasher(EveryFrame(), "cpu"))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (nsrl, plain)}

    out = tmp_path / "r.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "vscan.cli", "scan", str(evidence), "--bank", str(bank), "--out", str(out), "--device", "cpu",
         "--quiet", "--ray-address", ray_address, "--fps", "1", "--ignore", str(nsrl), "--ignore", str(plain)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(records) == ["c0.mp4", "c1.mp4", "c2.mp4", "c3.mp4"]
    for r in records.values():
        jsonschema.validate(r, result_schema())

    nsrl_hit, plain_hit = records["c0.mp4"], records["c1.mp4"]
    assert nsrl_hit["known_benign"] == {"list": "NSRL RDSv3", "version": "2025.03.1", "digest": "sha256"}
    assert plain_hit["known_benign"] == {"list": "house.txt", "version": "3", "digest": "sha1"}
    for r in (nsrl_hit, plain_hit):
        assert r["skipped"] == "known-benign" and r["status"] == "ok" and r["risk"] == 0.0
        assert r["frames_decoded"] == 0 and r["media"] is None and "decode" not in r["timings"]
        assert r["reasons"][0].startswith("known-benign")

    matched = records["c2.mp4"]
    assert matched["sha1"] == d[2]["sha1"].lower() and matched["frames_decoded"] > 0
    assert [(m["kind"], m["algorithm"], m["is_match"]) for m in matched["matches"]] == [("exact", "sha1", True)]
    assert records["c3.mp4"]["matches"] == [] and "known_benign" not in records["c3.mp4"]
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (nsrl, plain)} == before  # lists opened read-only

    missing = subprocess.run(
        [sys.executable, "-m", "vscan.cli", "scan", str(evidence), "--bank", str(bank), "--out", str(tmp_path / "x.jsonl"),
         "--device", "cpu", "--quiet", "--ignore", str(tmp_path / "nope.db")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 2 and "known-benign list not found" in missing.stderr
    assert not (tmp_path / "x.jsonl").exists()

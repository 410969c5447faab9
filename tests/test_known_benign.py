"""Known-benign lists: an NSRL RDSv3-layout SQLite built here and plain
MD5/SHA-1/SHA-256 lists, looked up by the digests of generated clips."""

from __future__ import annotations

import hashlib
import os
import sqlite3

import pytest

from vscan.bench import synth
from vscan.inputs.known_benign import KnownBenignError, load_list


def _rds(path, rows, version="2024.12.1"):
    """A small SQLite with RDSv3's FILE, PKG and VERSION layouts."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE FILE (sha256 TEXT, sha1 TEXT, md5 TEXT, crc32 TEXT, file_name TEXT, file_size INTEGER, package_id INTEGER)")
    db.execute("CREATE TABLE PKG (package_id INTEGER, name TEXT, version TEXT, operating_system_id INTEGER, manufacturer_id INTEGER, language TEXT, application_type TEXT)")
    db.execute("CREATE TABLE VERSION (version TEXT, build_set TEXT, build_date TEXT, release_date TEXT, description TEXT)")
    db.execute("INSERT INTO VERSION VALUES (?, 'Modern', '2024-12-01', '2024-12-02', 'test')", (version,))
    db.execute("INSERT INTO PKG VALUES (1, 'Demo', '1.0', 1, 1, 'English', 'Video')")
    db.executemany("INSERT INTO FILE VALUES (?, ?, ?, '00000000', ?, ?, 1)", rows)
    db.commit()
    db.close()


def _digests(path):
    data = path.read_bytes()
    return {k: getattr(hashlib, k)(data).hexdigest().upper() for k in ("sha256", "sha1", "md5")} | {"size": len(data)}


def test_nsrl_and_plain_lists(tmp_path):
    clips = [synth.make_clip(tmp_path / f"c{i}.mp4", seed=40 + i, seconds=1, size=(64, 48)) for i in range(3)]
    d = [_digests(c) for c in clips]
    noise = [(os.urandom(32).hex().upper(), os.urandom(20).hex().upper(), os.urandom(16).hex().upper(), f"f{i}.dll", 10) for i in range(500)]
    nsrl = tmp_path / "RDS_2024.12.1_modern_minimal.db"
    _rds(nsrl, noise + [(d[0]["sha256"], d[0]["sha1"], d[0]["md5"], "c0.mp4", d[0]["size"])])
    before = (hashlib.sha256(nsrl.read_bytes()).hexdigest(), nsrl.stat().st_mtime_ns)

    rds = load_list(nsrl)
    assert (rds.name, rds.version, len(rds)) == ("NSRL RDSv3", "2024.12.1", 3 * 501)
    assert rds.lookup(sha256=d[0]["sha256"].lower()) == {"list": "NSRL RDSv3", "version": "2024.12.1", "digest": "sha256"}
    assert rds.lookup(md5=d[0]["md5"].lower())["digest"] == "md5"
    assert rds.lookup(sha256=d[1]["sha256"].lower(), md5=d[1]["md5"].lower()) is None
    assert rds.contains("sha256", [d[2]["sha256"].lower(), d[0]["sha256"].lower()]).tolist() == [False, True]
    assert (hashlib.sha256(nsrl.read_bytes()).hexdigest(), nsrl.stat().st_mtime_ns) == before  # opened read-only

    plain = tmp_path / "house.txt"
    plain.write_text(f"# version: 7\n\n{d[1]['md5'].lower()}  c1.mp4\n{d[2]['sha1']},c2.mp4\n" + "".join(f"{n[2]}\n" for n in noise))
    lst = load_list(plain)
    assert (lst.name, lst.version) == ("house.txt", "7")
    assert lst.lookup(md5=d[1]["md5"].lower())["digest"] == "md5"
    assert lst.lookup(sha1=d[2]["sha1"].lower())["digest"] == "sha1"
    assert lst.lookup(sha256=d[0]["sha256"].lower(), md5=d[0]["md5"].lower()) is None

    bad = tmp_path / "bad.txt"
    bad.write_text(f"{d[1]['md5']}\nnot-a-digest\n")
    with pytest.raises(KnownBenignError, match="line 2"):
        load_list(bad)
    bad.write_text(f"{d[1]['md5']}\n{'zz' * 16}\n")
    with pytest.raises(KnownBenignError, match="z" * 32):
        load_list(bad)
    with pytest.raises(KnownBenignError, match="cannot read"):
        load_list(tmp_path / "missing.db")

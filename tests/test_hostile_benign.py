"""A known-benign list never hides a reported file (issue 23), through the CLI with a real bank.

A list that is wrong, or poisoned by whoever wants a file skipped, may hold
the digest of a file the bank reports. The old code looked the lists up
first, in the decode task, and gave such a file a ``known-benign`` record
without decoding or matching it. Now a file the bank knows by any of its
digests (the list may hold its MD5 while the bank holds its SHA-256, or its
SHA-1 alone) is decoded and matched; a file only the list knows is still
skipped. The lists count in the versions stamp by content only: the same
list at another path resumes with no new record (the old stamp held the
paths, so every file was scanned again).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from test_known_benign import _digests
from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.bench import synth
from vscan.decode import EveryFrame


def _scan(evidence: Path, bank: Path, out: Path, ray_address: str, *lists: Path) -> subprocess.CompletedProcess:
    ignore = [a for p in lists for a in ("--ignore", str(p))]
    return subprocess.run([sys.executable, "-m", "vscan.cli", "scan", str(evidence), "--bank", str(bank), "--out", str(out),
                           "--device", "cpu", "--quiet", "--ray-address", ray_address, "--fps", "1", *ignore],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_a_reported_file_on_a_benign_list_is_matched_not_skipped(tmp_path, ray_address):
    evidence = tmp_path / "evidence"
    reported = synth.make_clip(evidence / "reported.mp4", seed=81, seconds=2.0, size=(128, 96))
    by_sha1 = synth.make_clip(evidence / "by-sha1.mp4", seed=82, seconds=1.0, size=(96, 64))
    benign = synth.make_clip(evidence / "benign.mp4", seed=83, seconds=1.0, size=(96, 64))
    d = {p.name: _digests(p) for p in (reported, by_sha1, benign)}
    sha1_list = tmp_path / "reported.sha1"
    sha1_list.write_text(d["by-sha1.mp4"]["sha1"].lower() + "\n")  # the bank's only link to by-sha1.mp4
    bank = tmp_path / "reported.bank"
    build_bank(bank, [reported, sha1_list], label="reported",
               hash_media=media_hasher(EveryFrame(), "cpu"))  # fmt: skip
    poisoned = tmp_path / "lists" / "house.txt"
    poisoned.parent.mkdir()
    poisoned.write_text("# version: 7\n" + "".join(f"{v}  {k}\n" for k, v in (
        ("reported.mp4", d["reported.mp4"]["md5"]), ("by-sha1.mp4", d["by-sha1.mp4"]["sha256"]),
        ("benign.mp4", d["benign.mp4"]["md5"]))))  # fmt: skip

    out = tmp_path / "r.jsonl"
    run = _scan(evidence, bank, out, ray_address, poisoned)
    assert run.returncode == 0, run.stderr
    records = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(records) == ["benign.mp4", "by-sha1.mp4", "reported.mp4"]

    for name in ("reported.mp4", "by-sha1.mp4"):  # on the list, and in the bank: decoded and matched
        r = records[name]
        assert "known_benign" not in r and r.get("skipped") != "known-benign", (name, r.get("known_benign"))
        assert r["frames_decoded"] > 0 and r["risk"] > 0.5, (name, r["reasons"])
        assert any(m["kind"] == "exact" and m["is_match"] for m in r["matches"]), (name, r["matches"])
    assert any(m["kind"] == "perceptual" and m["is_match"] for m in records["reported.mp4"]["matches"])
    assert records["benign.mp4"]["known_benign"] == {"list": "house.txt", "version": "7", "digest": "md5"}
    assert records["benign.mp4"]["frames_decoded"] == 0

    # The same list elsewhere (copied, moved, mounted at another path): the same versions, nothing to scan again.
    moved = shutil.copy(poisoned, tmp_path / "elsewhere.txt")
    again = _scan(evidence, bank, out, ray_address, Path(moved))
    assert again.returncode == 0, again.stderr
    assert len(out.read_text().splitlines()) == 3, "the list's path, not its content, made files be scanned again"
    # The list's content changed: its records are not reused.
    Path(moved).write_text(poisoned.read_text() + "# one more line\n" + "0" * 32 + "\n")
    changed = _scan(evidence, bank, out, ray_address, Path(moved))
    assert changed.returncode == 0, changed.stderr
    assert len(out.read_text().splitlines()) == 6


def test_the_versions_stamp_holds_the_lists_by_content_not_by_path(tmp_path):
    from dataclasses import replace

    from vscan.config import ScanConfig
    from vscan.output.audit import scan_versions

    one, two = tmp_path / "a" / "list.txt", tmp_path / "b" / "other-name.txt"
    for p in (one, two):
        p.parent.mkdir()
        p.write_text("d41d8cd98f00b204e9800998ecf8427e\n")
    stamp = lambda *lists: scan_versions(replace(ScanConfig(), matching=replace(ScanConfig().matching, ignore=tuple(map(str, lists)))), None, {})  # noqa: E731
    assert stamp(one) == stamp(two)  # the same list at another path
    assert stamp() == scan_versions(ScanConfig(), None, {})  # no list: the stamp every earlier run wrote
    assert stamp(one)["config_sha256"] == stamp()["config_sha256"] and stamp(one) != stamp()
    two.write_text("0" * 32 + "\n")
    assert stamp(one) != stamp(two)  # content

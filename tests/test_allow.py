"""vscan scan --allow BANK: a file that matches an allow entry has its bank
positives suppressed and says so (CLI, real Ray pipeline)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vscan.bench import synth
from vscan.bank.store import build_bank
from vscan.decode import EveryFrame
from vscan.hashing.media import hash_media
from vscan.hashing.pdq import PDQHasher

VSCAN = [sys.executable, "-m", "vscan.cli"]


def _hash_file(path):
    result = hash_media(path, EveryFrame(), hasher=PDQHasher(device="cpu"), max_side=512)
    return result.frames, result.metadata.duration_seconds


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("allow")
    reported, cleared, inbox = root / "reported", root / "cleared", root / "inbox"
    synth.make_clip(reported / "a.mp4", seed=11, seconds=6.0, size=(160, 120), gop=25)
    synth.make_clip(reported / "b.mp4", seed=21, seconds=6.0, size=(160, 120), gop=25)
    synth.make_clip(cleared / "b-cleared.mp4", seed=21, seconds=6.0, size=(160, 120), gop=25)  # b, cleared by a reviewer
    synth.make_clip(inbox / "copy-a.mp4", seed=11, seconds=6.0, size=(160, 120), gop=25, crf=34)
    synth.make_clip(inbox / "copy-b.mp4", seed=21, seconds=6.0, size=(160, 120), gop=25, crf=34)
    synth.make_clip(inbox / "other.mp4", seed=44, seconds=4.0, size=(160, 120))
    build_bank(root / "reported.bank", [reported], hash_media=_hash_file)
    build_bank(root / "allow.bank", [cleared], hash_media=_hash_file)
    return root


def _scan(root, out, ray_address, *extra):
    run = subprocess.run([*VSCAN, "scan", str(root / "inbox"), "--bank", str(root / "reported.bank"), "--out", str(out),
                          "--device", "cpu", "-q", "--fps", "1", "--ray-address", ray_address, *extra],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return {r["path"].rsplit("/", 1)[1]: r for r in map(json.loads, out.read_text().splitlines())}


@pytest.fixture(scope="module")
def scans(corpus, ray_address, tmp_path_factory):
    """(records without --allow, records with it, the hash store the --allow scan kept): one scan each, shared by the
    tests below (the store is what ``vscan rematch`` reads)."""
    root = tmp_path_factory.mktemp("allow-scans")
    plain = _scan(corpus, root / "plain.jsonl", ray_address)
    allowed = _scan(corpus, root / "allowed.jsonl", ray_address, "--allow", str(corpus / "allow.bank"), "--hash-store", str(root / "store"))
    return plain, allowed, root / "store"


def test_allow_entry_suppresses_the_positive_and_says_so(scans):
    plain, allowed, _ = scans
    assert any(m["is_match"] and m["bank_entry_id"] == "b" for m in plain["copy-b.mp4"]["matches"])  # without --allow: a hit
    b = allowed["copy-b.mp4"]
    assert b["risk"] == 0.0 and not any(m["is_match"] for m in b["matches"])
    (match,) = [m for m in b["matches"] if m["bank_entry_id"] == "b"]
    assert match["suppressed_by"] == {"bank": "allow", "bank_entry_id": "b-cleared"}
    assert b["reasons"][0].startswith("allowed: matches allow entry b-cleared (allow)")
    assert b["allowed"][0]["bank_entry_id"] == "b-cleared" and b["allowed"][0]["kind"] == "perceptual"
    # Files the allow bank does not match keep their verdicts.
    assert allowed["copy-a.mp4"]["risk"] == plain["copy-a.mp4"]["risk"] >= 0.7
    assert allowed["other.mp4"]["risk"] == plain["other.mp4"]["risk"] and "allowed" not in allowed["other.mp4"]
    assert all("_frame_hashes" not in r for r in allowed.values())
    assert allowed["copy-a.mp4"]["versions"]["config_sha256"] != plain["copy-a.mp4"]["versions"]["config_sha256"]  # resume rescans


def test_a_missing_allow_bank_is_a_usage_error(corpus, tmp_path):
    run = subprocess.run([*VSCAN, "scan", str(corpus / "inbox"), "--bank", str(corpus / "reported.bank"), "--out", str(tmp_path / "r.jsonl"),
                          "-q", "--allow", str(tmp_path / "missing.bank")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 2 and "allow bank not found" in run.stderr


def test_an_entry_matching_many_files_is_flagged_in_the_manifest(corpus, ray_address, tmp_path):
    inbox = tmp_path / "inbox"
    for i, crf in enumerate((30, 33, 36)):
        synth.make_clip(inbox / f"a-{i}.mp4", seed=11, seconds=6.0, size=(160, 120), gop=25, crf=crf)
    synth.make_clip(inbox / "b.mp4", seed=21, seconds=6.0, size=(160, 120), gop=25, crf=34)
    out = tmp_path / "r.jsonl"
    run = subprocess.run([*VSCAN, "scan", str(inbox), "--bank", str(corpus / "reported.bank"), "--out", str(out), "--device", "cpu",
                          "-q", "--fps", "1", "--ray-address", ray_address], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    a_hits = sum(any(m["is_match"] and m["bank_entry_id"] == "a" for m in r["matches"]) for r in records)
    manifest = json.loads((tmp_path / "r.jsonl.manifest.json").read_text())
    (last,) = manifest["runs"][-1:]
    assert a_hits == 3
    assert last["match_floods"] == [{"bank_entry_id": "a", "label": None, "files": 3, "share": 0.75}]  # b: one file, no flood

    # The HTML report lists the flood, and says so beside each file that matched the flooded entry.
    report = subprocess.run([*VSCAN, "report", str(out), "-o", str(tmp_path / "report.html")], capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report.html").read_text()
    section = page.split('<section id="floods">', 1)[1].split("</section>", 1)[0]
    assert "<td>a</td>" in section and "<td>3</td>" in section and "75.0%" in section and last["run_id"] in section
    assert page.count("<li class='flood'>a is a match flood: it matched 3 files (75.0%)") == 3


def test_rematch_applies_the_runs_allow_banks(corpus, scans, tmp_path):
    store = scans[2]  # the --allow scan's
    run = subprocess.run([*VSCAN, "rematch", str(store), "--bank", str(corpus / "reported.bank"), "--out", str(tmp_path / "re.jsonl")],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    again = {r["path"].rsplit("/", 1)[1]: r for r in map(json.loads, (tmp_path / "re.jsonl").read_text().splitlines())}
    assert again["copy-b.mp4"]["risk"] == 0.0 and again["copy-b.mp4"]["allowed"][0]["bank_entry_id"] == "b-cleared"
    assert again["copy-a.mp4"]["risk"] >= 0.7 and "allowed" not in again["copy-a.mp4"]

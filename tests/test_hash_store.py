"""Hash once, re-match forever: vscan scan --hash-store, then vscan rematch
against another bank, compared with a fresh scan against that bank (CLI, real Ray)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from vscan.bench import synth
from vscan.bank.store import build_bank
from vscan.decode import EveryFrame
from vscan.hashing.media import hash_media
from vscan.hashing.pdq import PDQHasher

VSCAN = [sys.executable, "-m", "vscan.cli"]


class _EveryFrame(dict):
    """``hash_media`` for ``build_bank``: every frame, path -> (frames, duration) kept, so one model hashes each source
    once for both banks."""

    model: PDQHasher | None = None

    def __call__(self, path):
        if path not in self:
            self.model = self.model or PDQHasher(device="cpu")
            result = hash_media(path, EveryFrame(), hasher=self.model, max_side=512)
            self[path] = (result.frames, result.metadata.duration_seconds)
        return self[path]


def _bank(out: Path, *sources: Path, hashed: _EveryFrame) -> Path:
    build_bank(out, list(sources), hash_media=hashed)
    return out


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Reported clips a (in the old bank) and b (only in the new one), their
    re-encoded copies and unrelated clips in an archive; a corrupt file."""
    root = tmp_path_factory.mktemp("hs")
    reported, inbox = root / "reported", root / "inbox"
    synth.make_clip(reported / "a.mp4", seed=11, seconds=6.0, size=(160, 120), gop=25)
    synth.make_clip(reported / "b.mp4", seed=12, seconds=24.0, size=(160, 120), gop=250)  # keyframes 10 s apart: a sparse first pass
    synth.make_clip(inbox / "copy-a.mp4", seed=11, seconds=6.0, size=(160, 120), gop=25, crf=34)
    synth.make_clip(inbox / "copy-b.mp4", seed=12, seconds=24.0, size=(160, 120), gop=250, crf=34)
    for i in range(3):
        synth.make_clip(inbox / f"other-{i}.mp4", seed=40 + i, seconds=4.0, size=(160, 120))
    synth.make_corrupt(inbox / "broken.mp4", "random")
    hashed = _EveryFrame()
    old = _bank(root / "old.bank", reported / "a.mp4", hashed=hashed)
    new = _bank(root / "new.bank", reported / "a.mp4", reported / "b.mp4", hashed=hashed)
    return root, inbox, old, new


def _run(*args: str) -> subprocess.CompletedProcess:
    run = subprocess.run([*VSCAN, *args], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return run


def _records(path: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in map(json.loads, path.read_text().splitlines())}


def _verdict(record: dict) -> tuple:
    return (record["status"], record["risk"], sorted((m["bank_entry_id"], m["is_match"], m["kind"]) for m in record["matches"]))


@pytest.mark.parametrize("sampling", [["--fps", "1"], []], ids=["fps1", "adaptive"])
def test_rematch_gives_a_fresh_scans_records_or_lists_the_file_for_rescan(archive, ray_address, tmp_path, sampling):
    root, inbox, old, new = archive
    store = tmp_path / "store"
    common = ["--device", "cpu", "-q", "--ray-address", ray_address, *sampling]
    _run("scan", str(inbox), "--bank", str(old), "--out", str(tmp_path / "old.jsonl"), "--hash-store", str(store), *common)
    _run("scan", str(inbox), "--bank", str(new), "--out", str(tmp_path / "fresh.jsonl"), *common)
    first = _records(tmp_path / "old.jsonl")
    assert all("_frame_hashes" not in r for r in first.values())

    # The store: Parquet partitioned by date and run, every sampled frame of every decoded file.
    frames = ds.dataset(store / "frames", format="parquet", partitioning="hive").to_table()
    plain = frames.filter(ds.field("set") == "frames")
    for name, record in first.items():
        rows = plain.filter(ds.field("path") == record["path"]).num_rows
        assert rows == (record["frames_sampled"] if record["status"] == "ok" else 0), name
    assert set(frames.column_names) >= {"path", "sha256", "frame_number", "timestamp_seconds", "quality", "pdq", "date", "run"}

    rescan = tmp_path / "rescan.jsonl"
    run = _run("rematch", str(store), "--bank", str(new), "--out", str(tmp_path / "re.jsonl"), "--rescan-list", str(rescan))
    summary = json.loads(run.stdout)
    again, fresh = _records(tmp_path / "re.jsonl"), _records(tmp_path / "fresh.jsonl")
    listed = {Path(r["path"]).name: r["reason"] for r in map(json.loads, rescan.read_text().splitlines())}
    assert listed.get("broken.mp4") == "not-stored"  # its scan failed: nothing to re-match
    assert set(again) | set(listed) == set(fresh)
    assert not set(again) & set(listed)
    for name, record in again.items():
        assert record["rematched"]["hash_store"] == str(store)
        assert record["versions"] == fresh[name]["versions"]  # resume and --state see a scan's record
        assert _verdict(record) == _verdict(fresh[name]), name
    # The newly reported clip is found in the store (or, when adaptive sampling's
    # first pass was too sparse to decide, listed for a re-scan, never guessed).
    if sampling:
        assert not listed.keys() - {"broken.mp4"}
        assert any(m["is_match"] and m["bank_entry_id"] for m in again["copy-b.mp4"]["matches"])
        assert again["copy-b.mp4"]["risk"] > first["copy-b.mp4"]["risk"]
    else:
        assert "copy-b.mp4" in again or listed["copy-b.mp4"] == "sparse"
    assert summary["files"] == len(again)

    # Started again over the same --out: resumes (nothing left to write).
    run = _run("rematch", str(store), "--bank", str(new), "--out", str(tmp_path / "re.jsonl"))
    assert json.loads(run.stdout)["skipped_resumed"] == len(again)
    assert len((tmp_path / "re.jsonl").read_text().splitlines()) == len(again)


def test_rematch_refuses_a_folder_that_is_not_a_store(archive, tmp_path):
    _, _, _, new = archive
    (tmp_path / "empty").mkdir()
    run = subprocess.run([*VSCAN, "rematch", str(tmp_path / "empty"), "--bank", str(new), "--out", str(tmp_path / "x.jsonl")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode != 0 and "not a hash store" in run.stderr

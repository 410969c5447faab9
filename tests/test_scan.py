"""End-to-end scans through the real Ray pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from vscan.bench import synth
from vscan.bank.store import Bank, build_bank
from vscan.decode import EveryFrame, FixedRate
from vscan.hashing.pdq import PDQHasher
from vscan.hashing.media import hash_media
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.runtime.decode_task import decode_for_scan
from vscan.inputs.discover import discover
from vscan.runtime.driver import run_scan
from vscan.output.sinks import JsonlSink
from vscan.verdict.record import result_schema

SCHEMA = result_schema()


def hash_file_for_bank(path):
    result = hash_media(path, EveryFrame(), hasher=PDQHasher(device="cpu"), max_side=512)
    return result.frames, result.metadata.duration_seconds


def read_records(path: Path) -> list[dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        jsonschema.validate(record, SCHEMA)
    return records


def by_name(records):
    return {Path(r["path"]).name: r for r in records}


def test_real_samples_match_as_upstream_says(vpdq_dir, tmp_path, ray_local):
    bank = tmp_path / "bank.db"
    build_bank(bank, [vpdq_dir / "chair-orig-22-sd-bar.mp4"], label="reported", hash_media=hash_file_for_bank)
    out = tmp_path / "results.jsonl"
    seen_while_running = []

    def on_record(record):
        # Durable before reported: when the n-th record reaches the caller the
        # sink holds at least n records (records of one group commit are
        # written together, then reported one by one).
        seen_while_running.append(len(out.read_text().splitlines()))

    with JsonlSink(out) as sink:
        summary = run_scan([vpdq_dir], sink=sink, bank_path=bank, config=ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu")), on_record=on_record)
    records = by_name(read_records(out))
    assert len(seen_while_running) == len(records)
    assert all(on_disk >= n for n, on_disk in enumerate(seen_while_running, 1)), seen_while_running
    assert seen_while_running[-1] == len(records)
    assert summary.files == len(records) == 9 and summary.errors == 0
    for name in ["chair-19-sd-bar.mp4", "chair-20-sd-bar.mp4", "chair-22-with-small-logo-bar.mp4"]:
        record = records[name]
        perceptual = [m for m in record["matches"] if m["kind"] == "perceptual" and m["is_match"]]
        assert perceptual and perceptual[0]["bank_entry_id"] == "chair-orig-22-sd-bar", name
        assert perceptual[0]["query_pct"] >= 80 and perceptual[0]["matched_seconds"] > 10
        assert record["risk"] >= 0.7 and record["reasons"]
    original = records["chair-orig-22-sd-bar.mp4"]
    assert original["risk"] == 1.0 and original["matches"][0]["kind"] == "exact"
    for name in ["doorknob-hd-no-bar.mp4", "pattern-hd-no-bar.mp4", "pattern-sd-grey-bar.mp4", "pattern-sd-with-small-logo-bar.mp4"]:
        assert not any(m["is_match"] for m in records[name]["matches"]), name
        assert records[name]["risk"] < 0.5


def test_generated_archive_with_errors(tmp_path, ray_local):
    src = synth.make_clip(tmp_path / "src" / "source.mp4", seed=1, seconds=4)
    archive = tmp_path / "archive"
    archive.mkdir()
    synth.edit_clip(src, archive / "reencoded.mp4", "reencode")
    synth.edit_clip(src, archive / "small.mp4", "downscale")
    synth.make_clip(archive / "unrelated.mp4", seed=99, seconds=4)
    synth.make_corrupt(archive / "broken.mp4", "random")
    synth.make_corrupt(archive / "empty.mp4", "empty")
    (archive / "notes.txt").write_text("not media")  # skipped: not a media suffix
    bank = tmp_path / "bank.db"
    build_bank(bank, [src], hash_media=hash_file_for_bank)
    out = tmp_path / "r.jsonl"
    missing = tmp_path / "does-not-exist.mp4"
    with JsonlSink(out) as sink:
        summary = run_scan([archive, missing], sink=sink, bank_path=bank, config=ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu")))
    records = by_name(read_records(out))
    assert set(records) == {"reencoded.mp4", "small.mp4", "unrelated.mp4", "broken.mp4", "empty.mp4", "does-not-exist.mp4"}
    assert summary.errors == 3
    for name in ["broken.mp4", "empty.mp4", "does-not-exist.mp4"]:
        assert records[name]["status"] == "error" and records[name]["error"]["type"], name
    assert records["does-not-exist.mp4"]["error"]["type"] == "FileAccessError"
    for name in ["reencoded.mp4", "small.mp4"]:
        assert any(m["is_match"] for m in records[name]["matches"]), name
    assert not any(m["is_match"] for m in records["unrelated.mp4"]["matches"])


def test_decode_for_scan_returns_uniform_small_frames(tmp_path):
    clip = synth.make_clip(tmp_path / "c.mp4", seed=2, seconds=3, size=(320, 180))
    summary, payload = decode_for_scan(str(clip), ScanConfig(sampling=Sampling(policy=FixedRate(2.0), frame_size=64)))
    assert summary["error"] is None and summary["frames_sampled"] == 6
    assert payload["frames"].shape == (6, 64, 64, 3)
    assert payload["timestamps"].tolist() == pytest.approx([0, 0.5, 1.0, 1.5, 2.0, 2.5], abs=0.05)
    assert len(summary["sha256"]) == 64


def test_discover_streams_sorted_media(tmp_path):
    for name in ["b.mp4", "a.MP4", "sub/c.png", "skip.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    names = [os.path.relpath(p, tmp_path) for p in discover([tmp_path])]
    assert names == ["a.MP4", "b.mp4", os.path.join("sub", "c.png")]
    assert len(list(discover([tmp_path], all_files=True))) == 4


def test_cli_scan_exit_zero_with_errors_and_bank_determinism(tmp_path):
    src = synth.make_clip(tmp_path / "src.mp4", seed=5, seconds=3)
    synth.make_corrupt(tmp_path / "bad.mp4", "text")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    vscan = [sys.executable, "-m", "vscan.cli"]
    for name in ["a.bank", "b.bank"]:
        subprocess.run([*vscan, "bank", "build", str(tmp_path / name), str(src), "--device", "cpu"], check=True, env=env, capture_output=True)
    with Bank(tmp_path / "a.bank") as a, Bank(tmp_path / "b.bank") as b:
        assert a.info().content_sha256 == b.info().content_sha256
    out = tmp_path / "r.jsonl"
    run = subprocess.run(
        [*vscan, "scan", str(src), str(tmp_path / "bad.mp4"), "--bank", str(tmp_path / "a.bank"), "--out", str(out), "--device", "cpu"],
        env=env, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "files" in run.stdout and "matched" in run.stdout  # the summary table
    records = by_name(read_records(out))
    assert records["src.mp4"]["risk"] == 1.0
    assert records["bad.mp4"]["status"] == "error"

"""Resume after SIGKILL, nightly skip by content, and the audit trail, on real Ray."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vscan.bench import synth
from vscan.bank.store import build_bank
from vscan.decode import EveryFrame, FixedRate
from vscan.hashing.pdq import PDQHasher
from vscan.hashing.media import hash_media
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.runtime.driver import run_scan
from vscan.output.sinks import JsonlSink, open_sink

CONFIG = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("evidence")
    for i in range(10):
        synth.make_clip(root / f"sub{i % 2}" / f"clip{i:02d}.mp4", seed=i, seconds=1.0, size=(96, 64))
    synth.write_image(root / "still.png", seed=3, size=(64, 48))
    synth.make_corrupt(root / "broken.mp4", "random")
    synth.make_corrupt(root / "empty.mp4", "empty")
    return root


def bank_of(src: Path, out: Path) -> Path:
    def hash_file(path):
        result = hash_media(path, EveryFrame(), hasher=PDQHasher(device="cpu"), max_side=512)
        return result.frames, result.metadata.duration_seconds

    build_bank(out, [src], hash_media=hash_file)
    return out


def inputs_of(root: Path) -> set[str]:
    from vscan.inputs.discover import discover

    return set(discover([root]))


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def test_kill_minus_9_at_random_times_then_resume_gives_one_record_per_file(clips, ray_address, tmp_path):
    seed = int(os.environ.get("VSCAN_KILL_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    out = tmp_path / "results.jsonl"
    bank = bank_of(clips / "sub0" / "clip00.mp4", tmp_path / "a.bank")  # vscan scan refuses to check nothing
    command = [sys.executable, "-m", "vscan.cli", "scan", str(clips), "--out", str(out), "--device", "cpu",
               "--quiet", "--ray-address", ray_address, "--fps", "25", "--bank", str(bank)]  # fmt: skip
    kills, kill_points, t0 = 0, [], time.monotonic()
    manifest = tmp_path / "results.jsonl.manifest.json"

    def runs_started() -> int:
        return len(json.loads(manifest.read_text())["runs"]) if manifest.exists() else 0

    for round_ in range(4):
        # Kill at a random moment after the run has started (its manifest is
        # stored): after 0-2 new records plus 0-1.5 s, i.e. while it connects,
        # decodes, hashes, or writes records (they come in bursts per batch).
        want, delay = rng.randint(0, 2), rng.uniform(0.0, 1.5)
        lines_before = len(out.read_bytes().splitlines()) if out.exists() else 0
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while proc.poll() is None and runs_started() <= round_ and time.monotonic() < deadline:
            time.sleep(0.02)
        while proc.poll() is None and time.monotonic() < deadline:
            if (len(out.read_bytes().splitlines()) if out.exists() else 0) >= lines_before + want:
                break
            time.sleep(0.02)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
            kill_points.append(len(out.read_bytes().splitlines()) if out.exists() else 0)
        proc.wait()
    final = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    elapsed = time.monotonic() - t0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    paths = [r["path"] for r in records]
    assert sorted(paths) == sorted(inputs_of(clips)), f"seed {seed}: lost or duplicated records after {kills} kills"
    assert kills >= 1, f"seed {seed}: no run was killed"
    with JsonlSink(out) as sink:
        runs = sink.manifests()
    assert runs[-1]["status"] == "completed"
    # Killed runs stay visible as "running"; a kill that lands after a run has
    # completed (while the process exits) leaves that run "completed".
    assert len(runs) == 5 and [r["status"] for r in runs].count("running") <= kills
    assert all(r["ended"] is None for r in runs if r["status"] == "running")
    print(f"kill seed {seed}: {kills} kills survived (records on disk at each: {kill_points}), {len(records)} records, {elapsed:.1f} s")


def test_resume_skips_recorded_paths_and_rescans_when_the_bank_changes(clips, ray_address, tmp_path):
    out = tmp_path / "r.sqlite"
    bank_a = bank_of(clips / "sub0" / "clip00.mp4", tmp_path / "a.bank")
    bank_b = bank_of(clips / "sub1" / "clip01.mp4", tmp_path / "b.bank")
    with open_sink(out) as sink:
        first = run_scan([clips], sink=sink, bank_path=bank_a, config=CONFIG)
    with open_sink(out) as sink:
        again = run_scan([clips], sink=sink, bank_path=bank_a, config=CONFIG)
        assert len(sink.records()) == first.files == len(inputs_of(clips))
    assert again.files == 0
    with open_sink(out) as sink:
        changed = run_scan([clips], sink=sink, bank_path=bank_b, config=CONFIG)
        records = sink.records()
        runs = sink.manifests()
    assert changed.files == first.files and len(records) == 2 * first.files
    assert {r["versions"]["bank_sha256"] for r in records} == {runs[0]["bank"]["content_sha256"], runs[2]["bank"]["content_sha256"]}
    assert [r["counts"]["skipped_already_recorded"] for r in runs] == [0, first.files, 0]


def test_state_skips_unchanged_content_and_rescans_new_versions(clips, ray_address, tmp_path):
    evidence = tmp_path / "night"
    shutil.copytree(clips, evidence)
    state = tmp_path / "state.sqlite"
    bank = bank_of(clips / "sub0" / "clip00.mp4", tmp_path / "a.bank")
    with JsonlSink(tmp_path / "night1.jsonl") as sink:
        run_scan([evidence], sink=sink, bank_path=bank, config=CONFIG, state_path=state)
    # Next night: one file renamed (same content), one new, one modified.
    (evidence / "sub0" / "clip00.mp4").rename(evidence / "renamed.mp4")
    synth.make_clip(evidence / "new.mp4", seed=77, seconds=1.0, size=(96, 64))
    synth.make_clip(evidence / "sub1" / "clip01.mp4", seed=78, seconds=1.0, size=(96, 64))
    with JsonlSink(tmp_path / "night2.jsonl") as sink:
        run_scan([evidence], sink=sink, bank_path=bank, config=CONFIG, state_path=state)
        night2 = {Path(r["path"]).name: r for r in sink.records()}
    assert set(night2) == {Path(p).name for p in inputs_of(evidence)}
    rescanned = {name for name, r in night2.items() if "skipped" not in r}
    # The empty file has no digest, so it is always tried again.
    assert rescanned == {"new.mp4", "clip01.mp4", "empty.mp4"}
    renamed = night2["renamed.mp4"]
    assert renamed["skipped"] == "unchanged" and renamed["previous_scan"]
    assert renamed["risk"] == 1.0 and renamed["matches"][0]["kind"] == "exact"  # the previous result, copied
    assert night2["broken.mp4"]["status"] == "error" and night2["broken.mp4"]["skipped"] == "unchanged"
    # A new model/config version: everything is scanned again.
    with JsonlSink(tmp_path / "night3.jsonl") as sink:
        run_scan([evidence], sink=sink, bank_path=bank, config=ScanConfig(sampling=Sampling(policy=FixedRate(2.0)), runtime=Runtime(device="cpu")), state_path=state)
        assert not any("skipped" in r for r in sink.records())


def test_manifest_and_evidence_untouched(clips, ray_address, tmp_path):
    before = snapshot(clips)
    out = tmp_path / "r.jsonl"
    bank = bank_of(clips / "sub0" / "clip00.mp4", tmp_path / "a.bank")
    with JsonlSink(out) as sink:
        summary = run_scan([clips], sink=sink, bank_path=bank, config=CONFIG)
    assert snapshot(clips) == before  # bytes and mtimes
    manifest = json.loads((tmp_path / "r.jsonl.manifest.json").read_text())["runs"][-1]
    assert manifest["status"] == "completed" and manifest["ended"] >= manifest["started"]
    assert manifest["vscan_version"] and manifest["host"]["hostname"]
    assert manifest["config"]["sampling"]["policy"] == "fps" and manifest["config"]["runtime"]["device"] == "cpu"
    assert len(manifest["bank"]["content_sha256"]) == 64 and len(manifest["bank"]["file_sha256"]) == 64
    assert manifest["models"]["pdq/pdq.onnx"] == PDQHasher(device="cpu").manifest.sha256
    assert manifest["counts"]["files"] == summary.files == len(inputs_of(clips))
    assert manifest["counts"]["ok"] == summary.ok and manifest["counts"]["errors"] == summary.errors == 2


def test_the_resume_index_leaves_no_file_behind_however_the_process_ends(tmp_path, monkeypatch):
    """The index of what a run may skip holds the output's paths. A Ctrl-C leaves by os._exit (no clean-up code runs):
    a named folder in the temp folder (the old code's vscan-resume-*) was left there, one per interrupted run. SQLite's
    own temporary database has no name in the temp folder while it is open, so an exit at any moment leaves nothing."""
    import tempfile
    from types import SimpleNamespace

    from vscan.output.resume import _ResumeIndex

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setenv("SQLITE_TMPDIR", str(temp))
    versions = {"config_sha256": "c"}
    rows = [SimpleNamespace(versions=versions, path=f"/evidence/{i}.mp4", key=f"/evidence/{i}.mp4".encode(),
                            status="error" if i % 3 == 0 else "ok", error_type="TimeoutError" if i % 3 == 0 else None,
                            error_kind="transient" if i % 3 == 0 else None) for i in range(20_000)]  # fmt: skip
    index = _ResumeIndex(iter(rows), versions)
    try:
        assert os.listdir(temp) == []  # while open: nothing an os._exit could leave
        assert index.get("/evidence/1.mp4") == (0, 0) and index.get("/evidence/3.mp4") == (1, 1)
        assert index.get("/evidence/missing.mp4") is None
    finally:
        index.close()
    assert os.listdir(temp) == []

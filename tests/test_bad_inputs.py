"""Bad input never ends a sweep: malformed files, crashing and hanging decoders.

Crashes and hangs are real: a watcher thread finds the Ray worker process
that has the target file open (/proc/<pid>/fd) and sends it SIGSEGV (what a
decord abort looks like from outside) or SIGSTOP (a decoder stuck forever).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from vscan.bench.bad_inputs import TYPED_INPUT_ERRORS, make_bad_inputs, unreadable_for_root
from vscan.bench import synth
from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.decode import EveryFrame
from vscan.decode import FixedRate
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.runtime.driver import run_scan
from vscan.output.sinks import JsonlSink
from vscan.verdict.record import result_schema

SCHEMA = result_schema()


def test_generator_makes_at_least_50_cases(tmp_path):
    cases = make_bad_inputs(tmp_path / "bad")
    assert len(cases) >= 50 and len({c.name for c in cases}) == len(cases)
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == sorted(c.name for c in cases)


def test_every_bad_input_gets_one_typed_record_and_the_scan_exits_0(tmp_path, ray_address):
    cases = make_bad_inputs(tmp_path / "bad")
    good = synth.make_clip(tmp_path / "bad" / "zz-good.mp4", seed=5, seconds=1.0, size=(96, 64))
    out = tmp_path / "r.jsonl"
    bank = tmp_path / "other.bank"  # vscan scan refuses to check nothing (no --bank, no --model)
    build_bank(bank, [synth.make_clip(tmp_path / "other.mp4", seed=6, seconds=1.0, size=(96, 64))],
               hash_media=media_hasher(EveryFrame(), "cpu"))  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "vscan.cli", "scan", str(tmp_path / "bad"), "--out", str(out), "--device", "cpu",
         "--quiet", "--ray-address", ray_address, "--timeout-seconds", "60", "--fps", "1", "--bank", str(bank)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    for r in records:
        jsonschema.validate(r, SCHEMA)
    by_name = {Path(r["path"]).name: r for r in records}
    # Each real file once: a symlink to a folder already walked (linked-folder.mov
    # -> folder.mp4) is the same real path, so it shares folder.mp4's one record.
    real = {c.name: os.path.realpath(tmp_path / "bad" / c.name) for c in cases}  # loops stay unresolved, no error
    same_real = {c.name for c in cases if any(real[o.name] == real[c.name] for o in cases if o.name < c.name)}
    assert same_real == {"linked-folder.mov"}
    cases = [c for c in cases if c.name not in same_real]
    assert len(records) == len(by_name) == len(cases) + 1  # one each, none twice
    assert by_name[good.name]["status"] == "ok" and by_name[good.name]["frames_sampled"] == 1
    escaped = []
    for case in cases:
        r = by_name[case.name]
        if r["status"] == "error":
            if r["error"]["type"] not in case.error_types or r["error"]["type"] not in TYPED_INPUT_ERRORS:
                escaped.append((case.name, r["error"]))
        elif case.expect == "error":
            escaped.append((case.name, "ok"))
        else:
            assert r["frames_sampled"] >= 1 and r["media"]["width"] > 0, case.name
    assert not escaped, escaped
    errors = sum(by_name[c.name]["status"] == "error" for c in cases)
    assert errors >= 40, f"only {errors} of {len(cases)} bad inputs were errors"  # per-case expectations are checked above


def test_mode_000_file(tmp_path):
    cases = {c.name: c for c in make_bad_inputs(tmp_path / "bad")}
    from vscan.errors import FileAccessError
    from vscan.decode import check_readable

    path = tmp_path / "bad" / "mode-000.mp4"
    assert cases["mode-000.mp4"].expect == "error"
    if unreadable_for_root():
        pytest.skip("running as root: mode 000 does not stop root from reading (the scan test still gives it an error record)")
    with pytest.raises(FileAccessError):
        check_readable(path)


# ---------------------------------------------------------------------------
# crashing and hanging decoders
# ---------------------------------------------------------------------------


def _workers_holding(target: Path) -> list[int]:
    target = str(target.resolve())
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::"):
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    pids.append(int(pid))
                    break
        except OSError:
            continue
    return pids


class Saboteur(threading.Thread):
    """Sends ``sig`` to any Ray worker that opens ``target`` (at most ``times`` times)."""

    def __init__(self, target: Path, sig: int, times: int) -> None:
        super().__init__(daemon=True)
        self.target, self.sig, self.times = target, sig, times
        self.hits: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and len(self.hits) < self.times:
            for pid in _workers_holding(self.target):
                if pid not in self.hits:
                    os.kill(pid, self.sig)
                    self.hits.append(pid)
            time.sleep(0.005)


@pytest.fixture(scope="module")
def crash_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    victim = synth.make_clip(root / "victim.mp4", seed=11, seconds=12.0, size=(160, 120))
    others = [synth.make_clip(root / f"other{i}.mp4", seed=20 + i, seconds=1.0, size=(96, 64)) for i in range(3)]
    synth.make_corrupt(root / "broken.mp4", "random")
    return root, victim, others


def _scan_with(saboteur: Saboteur, root: Path, out: Path, **config) -> dict[str, dict]:
    saboteur.start()
    try:
        with JsonlSink(out) as sink:
            # One file per decode task: these tests follow one file's retries
            # (small-file groups split first: tests/test_throughput.py).
            run_scan([root], sink=sink, config=ScanConfig(sampling=Sampling(policy=EveryFrame()), runtime=Runtime(device="cpu", small_file_group=1, **config)))
    finally:
        saboteur.stop.set()
        saboteur.join()
    with JsonlSink(out) as sink:
        return {Path(r["path"]).name: r for r in sink.records()}


@pytest.mark.parametrize("crashes", [1, 2])
def test_a_crashing_decoder_takes_no_other_file_down(crash_set, ray_address, tmp_path, crashes):
    root, victim, others = crash_set
    saboteur = Saboteur(victim, signal.SIGSEGV, times=crashes)
    records = _scan_with(saboteur, root, tmp_path / "r.jsonl")
    assert len(saboteur.hits) == crashes, "the victim's decode was never caught running"
    assert set(records) == {"victim.mp4", "broken.mp4", *(p.name for p in others)}
    for p in others:
        assert records[p.name]["status"] == "ok" and records[p.name]["frames_sampled"] == 25
    assert records["broken.mp4"]["error"]["type"] == "UnsupportedMediaError"
    victim_record = records["victim.mp4"]
    if crashes == 1:  # decord's process died: one retry with PyAV, which succeeds
        assert victim_record["status"] == "ok" and victim_record["media"]["decoder"] == "pyav"
        assert victim_record["frames_sampled"] == 300
    else:  # the retry died too
        assert victim_record["status"] == "error" and victim_record["error"]["type"] == "DecoderCrashError"


def test_a_hanging_decoder_is_stopped_by_the_per_file_timeout(crash_set, ray_address, tmp_path):
    root, victim, others = crash_set
    saboteur = Saboteur(victim, signal.SIGSTOP, times=1)
    t0 = time.monotonic()
    records = _scan_with(saboteur, root, tmp_path / "r.jsonl", file_timeout_seconds=8.0)
    assert saboteur.hits and time.monotonic() - t0 < 60
    assert records["victim.mp4"]["status"] == "error" and records["victim.mp4"]["error"]["type"] == "DecodeTimeoutError"
    for p in others:
        assert records[p.name]["status"] == "ok", records[p.name]  # what went wrong, when it does
    for pid in saboteur.hits:  # the stopped worker was killed, not left behind
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                break
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_a_tiny_timeout_on_a_longer_clip(crash_set, ray_address, tmp_path):
    root, victim, others = crash_set
    # Warm the workers first: the limit is meant for decoding, not for imports.
    with JsonlSink(tmp_path / "warm.jsonl") as sink:
        run_scan(others, sink=sink, config=ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu")))
    with JsonlSink(tmp_path / "r.jsonl") as sink:
        run_scan([victim, others[0]], sink=sink, config=ScanConfig(sampling=Sampling(policy=EveryFrame()), runtime=Runtime(device="cpu", file_timeout_seconds=0.05)))
        records = {Path(r["path"]).name: r for r in sink.records()}
    assert records["victim.mp4"]["error"]["type"] == "DecodeTimeoutError"
    assert set(records) == {"victim.mp4", others[0].name}

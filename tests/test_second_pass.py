"""Adaptive sampling's second pass fails: the file finishes on its first pass.

Real failures of the second pass's decode worker: SIGKILL (a crashed
decoder) and SIGSTOP (a frozen one, ended by the driver's backstop at the
per-file limit). The clip is long and dense enough that the first pass
(keyframes) is short and the second (every frame, the whole file) long: a
watcher thread signals the Ray worker that has held the file open for a
while, which is the second pass's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import Adaptive, FixedRate
from vscan.output.sinks import JsonlSink
from vscan.runtime.driver import run_scan
from vscan.verdict.record import result_schema

#: A synthetic test pattern (ffmpeg's testsrc2): 40 s at 50 fps, a keyframe a second.
_PATTERN = ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=50:duration=40", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p"]


def _ff(*args) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True, timeout=120)


@pytest.fixture(scope="module")
def banked_clip(tmp_path_factory):
    """(victim, bank): the victim is a re-encode (other digest) of the banked clip."""
    root = tmp_path_factory.mktemp("second_pass")
    _ff(*_PATTERN, "-crf", "18", root / "banked.mp4")
    _ff(*_PATTERN, "-crf", "30", root / "victim.mp4")
    bank = root / "bank.db"
    build_bank(bank, [root / "banked.mp4"], hash_media=media_hasher(FixedRate(1.0), "cpu"))
    return root / "victim.mp4", bank


class HoldSignaller(threading.Thread):
    """Sends ``sig`` once to the Ray worker whose process title is ``title`` (Ray's ``ray::<task name>``: the
    second pass's decode task, not the first's, however long a loaded machine makes the first pass) and that has
    held ``target`` open for ``hold`` seconds."""

    def __init__(self, target: Path, sig: int, hold: float = 1.5, title: bytes = b"ray::vscan-decode-second-pass") -> None:
        super().__init__(daemon=True)
        self.target, self.sig, self.hold, self.title = str(target.resolve()), sig, hold, title
        self.hits: list[int] = []
        self.stop = threading.Event()

    def _holders(self) -> set[int]:
        pids = set()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(self.title):
                    continue
                if any(os.readlink(f"/proc/{pid}/fd/{fd}") == self.target for fd in os.listdir(f"/proc/{pid}/fd")):
                    pids.add(int(pid))
            except OSError:
                continue
        return pids

    def run(self) -> None:
        since: dict[int, float] = {}
        while not self.stop.is_set() and not self.hits:
            now, holders = time.monotonic(), self._holders()
            since = {pid: since.get(pid, now) for pid in holders}
            for pid, t0 in since.items():
                if now - t0 >= self.hold:
                    os.kill(pid, self.sig)
                    self.hits.append(pid)
            time.sleep(0.01)


def _frame_payloads_held() -> int:
    """Objects the driver still references that are a file's frames."""
    import ray

    held = 0
    for object_id in ray._private.worker.global_worker.core_worker.get_all_reference_counts():
        try:
            value = ray.get(ray.ObjectRef(bytes.fromhex(object_id.decode())), timeout=1)
        except Exception:  # noqa: BLE001 - a failed task's result, or not ready: not frames
            continue
        held += isinstance(getattr(value, "frames", None), np.ndarray)  # a DecodedFile (vscan.runtime.payload)
    return held


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "frozen"])
def test_a_failed_second_pass_finishes_on_the_first(banked_clip, ray_local, tmp_path, sig):
    victim, bank = banked_clip
    # second pass: every frame, the whole file (confirm_frames=None: dense even though the first pass decides)
    policy = Adaptive(dense_fps=50.0, window_seconds=40.0, max_frames=4000, confirm_frames=None)
    # frozen: the driver's backstop ends it after 1.5 x 8 + 10 s. The limit also bounds the first pass (its own task):
    # at 4 s, a loaded machine (load 20 on 2 cores; two pytest-xdist workers) timed out the first pass's 40 keyframes
    # of 720p, and the file never reached a second pass to freeze.
    timeout = 8.0 if sig == signal.SIGSTOP else 120.0
    config = ScanConfig(sampling=Sampling(policy=policy, decoder="pyav"), runtime=Runtime(device="cpu", file_timeout_seconds=timeout))
    held_at_record = []
    signaller = HoldSignaller(victim, sig)
    signaller.start()
    out = tmp_path / "r.jsonl"
    t0 = time.monotonic()
    try:
        with JsonlSink(out) as sink:
            summary = run_scan([victim], sink=sink, bank_path=bank, config=config, on_record=lambda r: held_at_record.append(_frame_payloads_held()))
    finally:
        signaller.stop.set()
        signaller.join()
    assert signaller.hits, "the second pass was never caught running"
    (record,) = map(json.loads, out.read_text().splitlines())
    jsonschema.validate(record, result_schema())
    second = record["second_pass"]
    assert second["status"] == "failed" and "Windows" in second["sampling"]
    assert second["error"]["type"] == ("DecodeTimeoutError" if sig == signal.SIGSTOP else "DecoderCrashError"), second
    # The first pass's result stands: its keyframes, its match, nothing counted twice.
    assert record["status"] == "ok" and record["error"] is None and summary.errors == 0
    assert record["sampling"].startswith("Adaptive") and "Windows" not in record["sampling"]
    assert record["frames_sampled"] == 40 and record["frames_decoded"] >= 40
    (match,) = [m for m in record["matches"] if m["is_match"]]
    assert match["kind"] == "perceptual" and match["matched_seconds"] >= 30 and record["risk"] >= 0.7
    assert held_at_record == [0]  # no frames of either pass left in the object store by the driver
    if sig == signal.SIGSTOP:
        assert time.monotonic() - t0 < 60


def test_a_second_pass_that_stalled_is_decoded_once_more_on_both_paths():
    """A second pass that failed for the run's circumstances (kind transient: a stalled decoder on a loaded machine;
    stop 42 saw an AugLy loop copy and a speed copy lose their match that way at load 26) is decoded once more before
    the file finishes on its first pass; an input error, or a second failure, finishes it as before. The Ray stages
    and the embedded path take the same decision (vscan.runtime.outcome.second_pass_again)."""
    from types import SimpleNamespace

    from vscan.runtime.embedded import _decoded
    from vscan.runtime.outcome import Task, second_pass_again
    from vscan.runtime.payload import FileSummary
    from vscan.runtime.stages import DecodeStage

    stall = {"type": "DecodeTimeoutError", "message": "pyav decoder delivered no frame for 8 s", "kind": "transient"}
    broken = {"type": "DecodeError", "message": "invalid data", "kind": "input"}
    assert not second_pass_again(Task(key=0, path="/in/a.mp4", attempt_decoder="pyav", submitted=0.0), stall)  # a first pass

    def refining() -> Task:
        return Task(key=1, path="/in/a.mp4", attempt_decoder="pyav", submitted=0.0, first_pass=FileSummary(path="/in/a.mp4"),
                    first_result=SimpleNamespace(matches=[]), policy="second pass")  # fmt: skip

    def ray_path(task: Task, error: dict) -> str:
        again, failed = [], []
        stage = SimpleNamespace(resubmit_alone=again.append, outcomes=SimpleNamespace(decode_failed=lambda t, e: failed.append(e)))
        DecodeStage.decoded(stage, task, FileSummary(path=task.path, error=error))
        return "again" if again == [task] and not failed else "finished" if failed == [error] and not again else "?"

    def embedded_path(task: Task, error: dict) -> str:
        again, failed = [], []
        admit = SimpleNamespace(again=again.append)
        outcomes = SimpleNamespace(decode_failed=lambda t, e: failed.append(e))
        _decoded(task, (None, FileSummary(path=task.path, error=error), None), admit, None, {}, outcomes, None, None, "")
        return "again" if again == [task] and not failed else "finished" if failed == [error] and not again else "?"

    for path in (ray_path, embedded_path):
        task = refining()
        assert [path(task, stall), path(task, stall)] == ["again", "finished"], path.__name__
        assert task.first_pass is None or task.policy == "second pass"  # finished: let go; again: its pass kept
        assert path(refining(), broken) == "finished", path.__name__

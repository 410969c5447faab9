"""A real 2-node Ray cluster on loopback: `ray start --head` plus a second
raylet (`ray start --address`), each with one CPU, token authentication, a
private temp dir. `vscan scan --ray-address` decodes on both nodes, and the
worker raylet is killed with SIGKILL mid-scan: every input still gets
exactly one ok record, none an infrastructure error.

Every process the fixture starts runs in its own session (process group)
and is killed by that id in the finalizer, with any process still holding
the private temp dir, which is then removed (its ray_current_cluster too):
nothing is left for a later local ray.init to join, even when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from vscan.bench import synth
from vscan import Bank

VSCAN = [sys.executable, "-m", "vscan.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _holders(temp_dir: str) -> list[int]:
    """PIDs of processes whose command line or open files are under temp_dir
    (Ray's agents rename themselves, so the command line alone misses some)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if temp_dir in Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry))
                continue
            for fd in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{fd}").startswith(temp_dir):
                    pids.append(int(entry))
                    break
        except OSError:
            continue
    return pids


class Cluster:
    """The processes of one loopback cluster; ``stop`` ends exactly those."""

    def __init__(self) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="vsr", dir="/tmp")  # short: Ray's socket paths have a length limit
        self.port = _free_port()
        token = secrets.token_hex(16)
        self.env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        self.env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0")
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []

    def _ray_start(self, *args: str) -> subprocess.Popen:
        log = open(Path(self.temp_dir) / f"ray-start-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(["ray", "start", "--num-cpus", "1", "--block", "--disable-usage-stats", *args],
                                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        self._ray_start("--head", "--port", str(self.port), "--temp-dir", self.temp_dir, "--include-dashboard", "false")
        self._wait_nodes(1)
        self.worker = self._ray_start("--address", self.address)
        self._wait_nodes(2)

    def _wait_nodes(self, n: int, timeout: float = 90.0) -> None:
        code = ("import ray,sys,time\nray.init(address=sys.argv[1], log_to_driver=False)\n"
                "end = time.time() + float(sys.argv[3])\n"
                "while sum(x['Alive'] for x in ray.nodes()) < int(sys.argv[2]) and time.time() < end: time.sleep(0.3)\n"
                "sys.exit(sum(x['Alive'] for x in ray.nodes()) < int(sys.argv[2]))\n")  # fmt: skip
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(p.poll() is not None for p in self.procs):
                pytest.fail(f"ray start exited: {self.logs()}")
            if subprocess.run([sys.executable, "-c", code, self.address, str(n), "30"], env=self.env,
                              capture_output=True, timeout=60).returncode == 0:  # fmt: skip
                return
            time.sleep(0.5)
        pytest.fail(f"the cluster did not reach {n} nodes: {self.logs()}")

    def worker_raylet(self) -> int:
        """PID of the second node's raylet (a child of its `ray start --block`)."""
        for entry in os.listdir("/proc"):
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                exe = os.path.basename(os.readlink(f"/proc/{entry}/exe"))
            except (OSError, ValueError):
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.worker.pid and exe == "raylet":
                return int(entry)
        raise AssertionError("the worker node's raylet is not running")

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in Path(self.temp_dir).glob("ray-start-*.log"))

    def stop(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: exactly what it started
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)
        for _ in range(5):
            left = _holders(self.temp_dir)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.3)
        shutil.rmtree(self.temp_dir, ignore_errors=True)  # with its ray_current_cluster


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Sixteen small clips (two of them edits of a banked clip), and the bank:
    enough work that the scan is still running when the worker node goes."""
    root = tmp_path_factory.mktemp("corpus")
    src = synth.make_clip(root / "reported.mp4", seed=5, seconds=6, size=(160, 120))
    clips = root / "in"
    files = [synth.edit_clip(src, clips / "reencoded.mp4", "reencode"), synth.edit_clip(src, clips / "mirrored.mp4", "hflip")]
    files += [synth.make_clip(clips / f"clip{i:02d}.mp4", seed=100 + i, seconds=8, size=(160, 120)) for i in range(14)]
    bank = root / "bank.db"
    Bank.build(bank, [src], label="reported")
    return clips, files, bank


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []


def test_two_nodes_decode_and_a_killed_worker_raylet_loses_nothing(cluster, corpus, tmp_path):
    clips, files, bank = corpus
    out = tmp_path / "r.jsonl"
    cmd = [*VSCAN, "scan", str(clips), "--bank", str(bank), "--out", str(out), "--ray-address", cluster.address,
           "--every-frame", "--device", "cpu", "--quiet"]  # fmt: skip
    scan = subprocess.Popen(cmd, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed_at = None
    try:
        deadline = time.monotonic() + 120
        while scan.poll() is None and time.monotonic() < deadline:
            nodes = {r["ran_on"]["decode_node"] for r in _records(out)}
            if len(nodes) >= 2:  # both nodes have decoded a file: now the worker node goes
                killed_at = len(_records(out))
                os.kill(cluster.worker_raylet(), signal.SIGKILL)
                os.killpg(cluster.worker.pid, signal.SIGKILL)  # and the rest of that node: its workers, its object store
                break
            time.sleep(0.1)
        output, _ = scan.communicate(timeout=180)
    finally:
        if scan.poll() is None:
            scan.kill()
    assert scan.returncode == 0, output
    assert killed_at is not None and killed_at < len(files), f"the worker raylet was not killed mid-scan ({killed_at})"
    records = _records(out)
    assert sorted(r["path"] for r in records) == sorted(str(f) for f in files)  # each input exactly once
    assert [r for r in records if r["status"] != "ok"] == []  # no infrastructure (or any) error record
    assert len({r["ran_on"]["decode_node"] for r in records}) == 2
    assert all(r["ran_on"]["model_node"] and r["ran_on"]["model_actor"] for r in records)
    matched = {Path(r["path"]).name for r in records if any(m["is_match"] for m in r["matches"])}
    assert matched == {"reencoded.mp4", "mirrored.mp4"}
    (run,) = json.loads(Path(f"{out}.manifest.json").read_text())["runs"]
    assert run["status"] == "completed" and len(run["cluster"]["model_actors"]) == 2
    assert {a["model_node"] for a in run["cluster"]["model_actors"]} == {r["ran_on"]["decode_node"] for r in records}


def test_without_an_address_a_scan_starts_its_own_ray_beside_a_cluster(cluster, corpus, tmp_path):
    """RAY_ADDRESS names the running cluster, as after `ray start`: a plain scan
    still starts (and stops) its own local Ray instead of joining it."""
    clips, files, bank = corpus
    out = tmp_path / "r.jsonl"
    env = {**cluster.env, "RAY_ADDRESS": cluster.address}
    run = subprocess.run([*VSCAN, "scan", str(files[0]), "--bank", str(bank), "--out", str(out), "--device", "cpu", "-q"],
                         env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert run.returncode == 0, run.stderr
    (record,) = _records(out)
    (manifest,) = json.loads(Path(f"{out}.manifest.json").read_text())["runs"]
    (node,) = manifest["cluster"]["nodes"]
    assert record["status"] == "ok" and record["ran_on"]["decode_node"] == node["node_id"]
    assert node["cpus"] == (os.cpu_count() or 1)  # not the cluster's 1-CPU nodes


def test_a_wrong_token_stops_the_scan_with_one_message(cluster, corpus, tmp_path):
    clips, files, bank = corpus
    env = {**cluster.env, "RAY_AUTH_TOKEN": "0" * 32}
    out = tmp_path / "r.jsonl"
    run = subprocess.run([*VSCAN, "scan", str(files[0]), "--bank", str(bank), "--out", str(out), "--ray-address",
                          cluster.address, "-q"], env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert run.returncode == 1
    assert "cannot join the Ray cluster" in run.stderr and "RAY_AUTH_TOKEN" in run.stderr, run.stderr
    assert _records(out) == []

"""A real Ray cluster on loopback for tests and benchmarks: ``ray start
--head`` plus ``nodes - 1`` more raylets (``ray start --address``), each
with its own CPUs, token authentication and a private temp dir.

    with LoopbackCluster(nodes=2) as cluster:      # or start() / stop()
        vscan scan ... --ray-address cluster.address   (env: cluster.env)

Every ``ray start --block`` runs in its own session (process group) and
``stop`` kills exactly those groups by id, then any process still holding
the private temp dir, which is then removed (with the ``ray_current_cluster``
file Ray wrote there): nothing is left for a later local ``ray.init`` to
join. Never ``ray stop``: that would end other users' clusters too.
"""

from __future__ import annotations

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

__all__ = ["LoopbackCluster", "ClusterStartError"]


class ClusterStartError(RuntimeError):
    """A raylet exited or the cluster did not reach its node count (with the logs)."""


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


class LoopbackCluster:
    """The processes of one loopback cluster; ``stop`` ends exactly those.

    ``token``: the auth token (a fresh one by default; a process that joins
    several clusters must use one token for all, Ray reads it once)."""

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, token: str | None = None) -> None:
        self.nodes, self.cpus_per_node = nodes, cpus_per_node
        self.temp_dir = tempfile.mkdtemp(prefix="vsr", dir="/tmp")  # short: Ray's socket paths have a length limit
        self.port = _free_port()
        self.token = token or secrets.token_hex(16)
        self.env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        self.env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token, RAY_USAGE_STATS_ENABLED="0")
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "LoopbackCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _ray_start(self, *args: str) -> subprocess.Popen:
        log = open(Path(self.temp_dir) / f"ray-start-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(["ray", "start", "--num-cpus", str(self.cpus_per_node), "--block", "--disable-usage-stats", *args],
                                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        """The head, then the other raylets one by one; returns with all alive."""
        self._ray_start("--head", "--port", str(self.port), "--temp-dir", self.temp_dir, "--include-dashboard", "false")
        self.wait_nodes(1)
        for n in range(2, self.nodes + 1):
            self.add_node()
            self.wait_nodes(n)

    def add_node(self) -> subprocess.Popen:
        """One more raylet joining the head (``ray start --address``)."""
        return self._ray_start("--address", self.address)

    @property
    def worker(self) -> subprocess.Popen:
        """The ``ray start --block`` process of the second node."""
        return self.procs[1]

    def wait_nodes(self, n: int, timeout: float = 90.0) -> None:
        code = ("import ray,sys,time\nray.init(address=sys.argv[1], log_to_driver=False)\n"
                "end = time.time() + float(sys.argv[3])\n"
                "while sum(x['Alive'] for x in ray.nodes()) < int(sys.argv[2]) and time.time() < end: time.sleep(0.3)\n"
                "sys.exit(sum(x['Alive'] for x in ray.nodes()) < int(sys.argv[2]))\n")  # fmt: skip
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(p.poll() is not None for p in self.procs):
                raise ClusterStartError(f"ray start exited: {self.logs()}")
            if subprocess.run([sys.executable, "-c", code, self.address, str(n), "30"], env=self.env,
                              capture_output=True, timeout=60).returncode == 0:  # fmt: skip
                return
            time.sleep(0.5)
        raise ClusterStartError(f"the cluster did not reach {n} nodes: {self.logs()}")

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

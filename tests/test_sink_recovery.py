"""Sinks that survive their server: a real PostgreSQL cluster of the test's
own (initdb on a free port, so the shared test server is never disturbed) is
crashed and restarted while a writer runs and while a real scan on Ray runs;
afterwards every acknowledged record is there exactly once. A run whose sink
is gone for good fails with the sink's error, never the ledger's.

Needs PostgreSQL's server binaries (``/usr/lib/postgresql/*/bin``; .ci/run
installs them); without them these tests skip, and fail under CI=true."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from test_sinks import WRITER, expected, record
from vscan.bench import synth
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import FixedRate
from vscan.output.sinks import PostgresSink, SinkError
from vscan.output.resume import RunLedger
from vscan.runtime.driver import run_scan
from vscan.runtime.summary import ScanSummary
from vscan.verdict.risk import DefaultRiskPolicy


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        message = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; under CI=true the reconnect tests are required")
        pytest.skip(message)
    return Path(found[-1]).parent


class Cluster:
    """A throwaway PostgreSQL cluster on a free local port."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.data = Path(tempfile.mkdtemp(prefix="vscan-pg-reconnect-", dir="/tmp"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        if os.getuid() == 0:
            shutil.chown(self.data, "postgres")
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust")
        self._restarts: list[threading.Timer] = []
        self.start()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "-o",
                 f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1", "start")  # fmt: skip

    def start_after(self, seconds: float) -> None:
        """Start the server again in ``seconds``, from a timer thread (the test goes on meanwhile)."""
        timer = threading.Timer(seconds, self.start)
        self._restarts.append(timer)
        timer.start()

    def restarted(self) -> None:
        """Wait until every restart asked for has run: a loaded machine may read the acknowledgements
        buffered before the crash faster than the timer fires, and a restart that lands after
        ``remove`` would leave a server running on a deleted folder and a port the next cluster takes."""
        for timer in self._restarts:
            timer.join()

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def count(self, sql: str) -> int:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as db:
            return db.execute(sql).fetchone()[0]

    def remove(self) -> None:
        self.restarted()
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already down
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.remove()


def test_writer_survives_a_server_crash_with_every_acknowledged_record_once(cluster):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, cluster.dsn, os.path.dirname(__file__)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    acked, crashed_at = -1, None
    try:
        for line in proc.stdout:
            acked = int(line)
            if crashed_at is None and acked >= 30:
                cluster.stop("immediate")  # a crash: no shutdown checkpoint, clients cut off
                crashed_at = acked
                cluster.start_after(1.5)  # down for a while: the writer backs off
            if crashed_at is not None and acked >= crashed_at + 60:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert crashed_at is not None and acked >= crashed_at + 60, "the writer stopped acknowledging after the crash"
    cluster.restarted()
    with PostgresSink(cluster.dsn) as sink:
        got = sink.records()
    assert len(got) >= acked + 1
    assert got == [expected(i) for i in range(len(got))]  # none lost, none doubled, in order


def test_scan_on_ray_survives_a_server_restart_with_one_record_per_file(cluster, ray_local, tmp_path):
    for i in range(12):
        synth.make_clip(tmp_path / "in" / f"clip{i:02d}.mp4", seed=i, seconds=1.0, size=(96, 64))
    config = ScanConfig(sampling=Sampling(policy=FixedRate(2.0)), runtime=Runtime(device="cpu", small_file_group=1))
    seen = []

    def on_record(rec):
        seen.append(rec["path"])
        if len(seen) == 3:
            cluster.stop("fast")  # mid-scan: records are still being decoded, hashed and written
            cluster.start_after(2.0)

    with PostgresSink(cluster.dsn, reconnect_seconds=60) as sink:
        summary = run_scan([tmp_path / "in"], sink=sink, config=config, on_record=on_record)
        assert sink.reconnects >= 1, "the server restart did not reach the sink"
        paths = [r["path"] for r in sink.records()]
        runs = sink.manifests()
    assert summary.files == 12 and len(seen) == 12
    assert sorted(paths) == sorted(str(p) for p in (tmp_path / "in").glob("*.mp4"))  # exactly one each
    assert cluster.count("SELECT count(*) FROM vscan_records") == 12
    assert runs[-1]["status"] == "completed" and runs[-1]["counts"]["files"] == 12


def test_a_sink_gone_for_good_fails_with_its_own_error_never_the_ledgers(cluster, tmp_path):
    config = ScanConfig(runtime=Runtime(device="cpu"))
    with PostgresSink(cluster.dsn, reconnect_seconds=1.0) as sink:
        ledger = RunLedger.begin(sink, [str(tmp_path)], config=config, bank_path=None, risk_policy=DefaultRiskPolicy())
        cluster.stop("fast")
        with pytest.raises(SinkError, match="unreachable for 1 s"):
            sink.write(record(1))
        first = SinkError("the run's first error")
        ledger.finish(ScanSummary(), error=first)  # does not raise over the first error
        assert any("manifest could not be stored" in n for n in first.__notes__), first.__notes__
        with pytest.raises(SinkError, match="writing the run manifest"):
            ledger.finish(ScanSummary())  # a run that had not failed: the manifest's error is the error

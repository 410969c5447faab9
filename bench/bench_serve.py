"""Load test of ``vscan serve`` on loopback with a real HTTP load generator (wrk).

A bank of N realistic frame hashes (``vscan.bench.realistic_hashes``: runs of
near-duplicate frames of real generated-video hashes) is served by
``vscan serve --workers W``; wrk (Debian: ``apt-get install wrk``) sends
``GET /m/lookup?signal_type=pdq&signal=HEX`` with 1,000 different query hashes
(half near copies of bank rows, half unseen), bounded in time (``--seconds``)
and in requests (``--requests``, a Lua counter stops each thread). Reports
lookups/s, p50/p99 latency, and, same run, the in-process search rate of the
same index without HTTP (the service's overhead) and HMA's published target
(4,000 lookups/s at 10M hashes on one box). Also the CPU milliseconds per
lookup of the server's processes (and of wrk), read from /proc: on a machine
shared with other work they say more than the wall rate. Banks are written in
bulk and cached by ``vscan.bench.serve_bank`` (10M rows in minutes).

    python -m vscan.bench.bench_serve [--rows 1000000 10000000] [--workers 1 2] [--ray-serve 2] [--connections 16] [--seconds 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

HMA_TARGET_PER_S = 4000  # HMA 2.x's stated goal: 4,000 lookups/s against 10M hashes on one machine

LUA = """
local paths = {}
for line in io.lines("%(queries)s") do paths[#paths + 1] = line end
local limit = %(limit)d
local counter = 0
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["X-API-Key"] = "%(key)s"})
end
response = function(status, headers, body)
  counter = counter + 1
  if status ~= 200 then io.stderr:write("status " .. status .. "\\n") end
  if counter >= limit then wrk.thread:stop() end
end
"""


def _bank_sample(path: Path, n: int) -> np.ndarray:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        total = conn.execute("SELECT max(rowid) FROM frame_hashes").fetchone()[0]
        ids = np.random.default_rng(5).integers(1, total + 1, n).tolist()
        rows = [conn.execute("SELECT hash FROM frame_hashes WHERE rowid = ?", (i,)).fetchone()[0] for i in ids]
    finally:
        conn.close()
    return np.frombuffer(b"".join(rows), np.uint8).reshape(-1, 32)


def _children_cpu_s() -> float:
    """CPU seconds of this process's waited-for children (wrk runs to completion, so it is counted)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(base: str, proc: subprocess.Popen, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("vscan serve exited before answering")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("vscan serve did not answer in time")


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(base: str, script: Path, *, threads: int, connections: int, seconds: int) -> dict:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base],
                         capture_output=True, text=True, timeout=seconds + 60)  # fmt: skip
    text = out.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    lat = {p: _ms(re.search(rf"\s{p}%\s+(\S+)", text).group(1)) for p in ("50", "99")}
    total = int(re.search(r"(\d+) requests in", text).group(1))
    non_200 = len([line for line in out.stderr.splitlines() if line.startswith("status")])
    return {"lookups_per_s": round(rate, 1), "p50_ms": round(lat["50"], 2), "p99_ms": round(lat["99"], 2), "requests": total,
            "non_200": non_200}  # fmt: skip


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its live descendants (Linux /proc):
    the server's cost per lookup on a machine shared with other work, where wall rates mislead."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        kids = [p for p, pp in parents.items() if pp in frontier and p not in tree]
        tree.update(kids)
        frontier = kids
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in tree:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def in_process_rate(bank: Path, queries: np.ndarray, radius: int = 31, batch: int = 16) -> dict:
    """Lookups/s (and CPU ms per lookup) of the same index and metadata reads, one hash at a
    time, without HTTP, then ``batch`` at a time (the service batches concurrent lookups,
    vscan.serve.batcher); and the seconds to open the bank (building BANK.vidx when missing)."""
    from vscan.serve.bank_state import BankState

    t0 = time.perf_counter()
    state = BankState.open(bank)
    open_s = time.perf_counter() - t0
    for q in queries[:100]:
        state.search(q[None], radius)
    t0, cpu0 = time.perf_counter(), time.process_time()
    for q in queries:
        state.search(q[None], radius)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    t0 = time.perf_counter()
    for i in range(0, len(queries), batch):  # as the service's batcher searches concurrent requests
        state.search(queries[i : i + batch], radius)
    batched = time.perf_counter() - t0
    return {"in_process_lookups_per_s": round(len(queries) / wall, 1),
            "in_process_cpu_ms_per_lookup": round(1e3 * cpu / len(queries), 3),
            f"in_process_batch{batch}_lookups_per_s": round(len(queries) / batched, 1), "bank_open_s": round(open_s, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--ray-serve", type=int, nargs="*", default=[], metavar="REPLICAS",
                    help="also serve on Ray Serve (vscan serve --ray-serve, a local Ray) with these replica counts")  # fmt: skip
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--requests", type=int, default=200_000, help="at most this many requests per wrk thread")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "vscan-bench-serve")
    ap.add_argument("--bank-cache", type=Path, default=None, help="where banks are cached (default: ~/.cache/vscan/bench-serve)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    from vscan.bench.realistic_hashes import make_queries
    from vscan.bench.serve_bank import bank_rows

    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in args.rows:
        bank, unseen, build_s = bank_rows(rows, work=args.bank_cache)
        queries = make_queries(_bank_sample(bank, 2000), unseen, 1000)
        qfile = args.work / f"queries-{rows}.txt"
        qfile.write_text("".join(f"/m/lookup?signal_type=pdq&signal={q.tobytes().hex()}\n" for q in queries))
        key = "bench"
        script = args.work / f"lookup-{rows}.lua"
        script.write_text(LUA % {"queries": qfile, "limit": args.requests, "key": key})
        direct = in_process_rate(bank, queries, batch=args.connections)
        for mode, workers in [("uvicorn", w) for w in args.workers] + [("ray-serve", r) for r in args.ray_serve]:
            port = _free_port()
            env = {**os.environ, "VSCAN_API_KEYS": key}
            t1 = time.perf_counter()
            how = ["--workers", str(workers)] if mode == "uvicorn" else ["--ray-serve", "--replicas", str(workers)]
            proc = subprocess.Popen([sys.executable, "-m", "vscan.cli", "serve", "--bank", str(bank), "--port", str(port), *how],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            try:
                base = f"http://127.0.0.1:{port}"
                _wait(base, proc)
                ready_s = time.perf_counter() - t1
                run_wrk(base, script, threads=args.threads, connections=args.connections, seconds=3)  # warm the page cache
                server_cpu0, wrk_cpu0 = _tree_cpu_s(proc.pid), _children_cpu_s()
                measured = run_wrk(base, script, threads=args.threads, connections=args.connections, seconds=args.seconds)
                server_cpu, wrk_cpu = _tree_cpu_s(proc.pid) - server_cpu0, _children_cpu_s() - wrk_cpu0
            finally:
                proc.terminate()  # SIGTERM: --ray-serve deletes its application and stops the Ray it started
                proc.wait(timeout=120)
            row = {"rows": rows, "mode": mode, "workers": workers, "connections": args.connections, **measured,
                   "loadavg_1m": round(os.getloadavg()[0], 1),
                   "server_cpu_ms_per_lookup": round(1e3 * server_cpu / max(measured["requests"], 1), 3),
                   "wrk_cpu_ms_per_lookup": round(1e3 * wrk_cpu / max(measured["requests"], 1), 3), **direct,
                   "http_over_in_process": round(measured["lookups_per_s"] / direct["in_process_lookups_per_s"], 3),
                   "vs_hma_target_4000": round(measured["lookups_per_s"] / HMA_TARGET_PER_S, 3),
                   "bank_build_s": round(build_s, 1), "service_ready_s": round(ready_s, 1)}  # fmt: skip
            print(json.dumps(row))
            results.append(row)
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    report = {"results": results, "loadavg": load, "cpus": os.cpu_count()}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

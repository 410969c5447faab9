"""Load test of ``vscan serve`` on loopback with a real HTTP load generator (wrk).

A bank of N realistic frame hashes (``vscan.bench.realistic_hashes``: runs of
near-duplicate frames of real generated-video hashes) is served by
``vscan serve --workers W``; wrk (Debian: ``apt-get install wrk``) sends
``GET /m/lookup?signal_type=pdq&signal=HEX`` with 1,000 different query hashes
(half near copies of bank rows, half unseen), bounded in time (``--seconds``)
and in requests (``--requests``, a Lua counter stops each thread). Reports
lookups/s, p50/p99 latency, and, same run, the in-process search rate of the
same index without HTTP (the service's overhead) and HMA's published target
(4,000 lookups/s at 10M hashes on one box).

    python -m vscan.bench.bench_serve [--rows 1000000] [--workers 1 2] [--ray-serve 2] [--connections 16] [--seconds 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

HMA_TARGET_PER_S = 4000  # HMA 2.x's stated goal: 4,000 lookups/s against 10M hashes on one machine
ROWS_PER_ENTRY = 120

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


def make_bank(path: Path, rows: int, work: Path) -> tuple[Path, np.ndarray]:
    """A bank of ``rows`` realistic hashes (cached), and unseen real hashes for queries."""
    from vscan.bank.schema import FORMAT_VERSION, SCHEMA
    from vscan.bench.realistic_hashes import expand_bank, real_frame_hashes

    variants, _ = real_frame_hashes(cache=work / "real_hashes.npz")
    clips = variants[:, :, 0]
    unseen = real_frame_hashes(num_clips=20, seed0=1000, cache=work / "unseen_hashes.npz")[0][:, :, 0].reshape(-1, 32)
    if path.is_file():
        return path, unseen
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    conn.executescript(SCHEMA)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    step = 1 << 20
    for start in range(0, rows, step):
        n = min(step, rows - start)
        hashes = expand_bank(clips, n, seed=start + 1)
        first, last = start // ROWS_PER_ENTRY, (start + n - 1) // ROWS_PER_ENTRY
        conn.executemany("INSERT OR IGNORE INTO entries VALUES (?, 'reported', 'gen', 'pdq_list', NULL, 'video', ?, ?)",
                         ((f"gen:{e:08d}", ROWS_PER_ENTRY / 12.0, ROWS_PER_ENTRY) for e in range(first, last + 1)))  # fmt: skip
        conn.executemany("INSERT OR IGNORE INTO frame_hashes VALUES (?, ?, ?, ?, ?)",
                         ((f"gen:{(start + i) // ROWS_PER_ENTRY:08d}", (start + i) % ROWS_PER_ENTRY,
                           ((start + i) % ROWS_PER_ENTRY) / 12.0, 90, hashes[i].tobytes()) for i in range(n)))  # fmt: skip
        conn.commit()
    meta = {"format_version": str(FORMAT_VERSION), "created_by": "vscan.bench.bench_serve", "hash_algorithm": "pdq",
            "skipped_inputs": "[]", "content_digest": f"bench-serve-{rows}"}  # fmt: skip
    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(meta.items()))
    conn.commit()
    conn.close()
    os.replace(tmp, path)
    return path, unseen


def _bank_sample(path: Path, n: int) -> np.ndarray:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        total = conn.execute("SELECT max(rowid) FROM frame_hashes").fetchone()[0]
        ids = np.random.default_rng(5).integers(1, total + 1, n).tolist()
        rows = [conn.execute("SELECT hash FROM frame_hashes WHERE rowid = ?", (i,)).fetchone()[0] for i in ids]
    finally:
        conn.close()
    return np.frombuffer(b"".join(rows), np.uint8).reshape(-1, 32)


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


def in_process_rate(bank: Path, queries: np.ndarray, radius: int = 31) -> float:
    """Lookups/s of the same index and metadata reads, one hash at a time, without HTTP."""
    from vscan.serve.bank_state import BankState

    state = BankState.open(bank)
    for q in queries[:100]:
        state.search(q[None], radius)
    t0 = time.perf_counter()
    for q in queries:
        state.search(q[None], radius)
    return len(queries) / (time.perf_counter() - t0)


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
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    from vscan.bench.realistic_hashes import make_queries

    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in args.rows:
        t0 = time.perf_counter()
        bank, unseen = make_bank(args.work / f"bank-{rows}.bank", rows, args.work)
        build_s = time.perf_counter() - t0
        queries = make_queries(_bank_sample(bank, 2000), unseen, 1000)
        qfile = args.work / f"queries-{rows}.txt"
        qfile.write_text("".join(f"/m/lookup?signal_type=pdq&signal={q.tobytes().hex()}\n" for q in queries))
        key = "bench"
        script = args.work / f"lookup-{rows}.lua"
        script.write_text(LUA % {"queries": qfile, "limit": args.requests, "key": key})
        direct = in_process_rate(bank, queries)
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
                measured = run_wrk(base, script, threads=args.threads, connections=args.connections, seconds=args.seconds)
            finally:
                proc.terminate()  # SIGTERM: --ray-serve deletes its application and stops the Ray it started
                proc.wait(timeout=120)
            row = {"rows": rows, "mode": mode, "workers": workers, "connections": args.connections, **measured,
                   "loadavg_1m": round(os.getloadavg()[0], 1),
                   "in_process_lookups_per_s": round(direct, 1), "http_over_in_process": round(measured["lookups_per_s"] / direct, 3),
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

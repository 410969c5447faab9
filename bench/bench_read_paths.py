"""A bank's three read paths, this code against a baseline in the same run (issue #24 item 3).

    python -m vscan.bench.bench_read_paths --bank B.bank --baseline /tmp/base-pkg [--rounds 2]

``--baseline``: a folder holding another vscan package (``vscan/``), imported in
its own processes through PYTHONPATH. The bank is copied once per side (each
side builds its own ``BANK.vidx``: their scan arrays differ) and every run
is a fresh process, old and new alternating, ``--rounds`` times:

- ``prepare``: building the index and what a scan opens beside it (first round: from nothing);
- ``vscan bank lookup``: ``BankLookup`` opened, 2,000 hashes looked up at radius 31
  (1,000 bank rows with 4 bits flipped, 1,000 random), best of 5;
- ``vscan serve``: ``BankState.search`` of the same hashes, best of 5;
- a scan's bank: ``MappedBank`` opened, 40 robust files matched (30 copies of
  8 frames of a bank entry, from a random start, with 4 bits flipped, 10 random), then the same 40 again
  (the rows of the entries narrowed to are then cached);
- the process's peak RSS (VmHWM) and, at the end, its private (RssAnon) and
  file-backed (RssFile: memory-mapped index and row table, shared page cache) memory.

The answers of both sides are compared (a digest of every lookup hit, service
hit and match, labels included).

``--delta-rows N``: the bank's last N frame rows (and the entries that only they
hold) are taken out, each side builds its index over the rest, and they are put
back (a new generation): the rows a bank gained by import after its index was
built, which every open reads from the bank (the delta).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key + ":"))


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _queries(bank: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """(hashes uint8 [2000, 32], 40 files' frame hashes): the same on both sides (seeded, by rowid)."""
    rng = np.random.default_rng(24)
    conn = sqlite3.connect(f"file:{bank}?mode=ro", uri=True)
    n = conn.execute("SELECT max(rowid) FROM frame_hashes").fetchone()[0]
    rowids = sorted(set(rng.integers(1, n + 1, 1000).tolist()))
    rows = [h for (h,) in conn.execute(f"SELECT hash FROM frame_hashes WHERE rowid IN ({','.join(map(str, rowids))}) ORDER BY rowid")]
    known = np.frombuffer(b"".join(rows), np.uint8).reshape(-1, 32)

    def flip(hashes: np.ndarray, bits: int) -> np.ndarray:
        out = hashes.copy()
        for row in out:
            for b in rng.choice(256, bits, replace=False):
                row[b // 8] ^= np.uint8(1 << (b % 8))
        return out

    hashes = np.concatenate([flip(known, 4), rng.integers(0, 256, (1000, 32), dtype=np.uint8)])
    entries = conn.execute("SELECT entry_id, num_frames FROM entries WHERE num_frames >= 8 ORDER BY rowid").fetchall()
    files = []
    for e in rng.integers(0, len(entries), 30).tolist():  # 8 frames of an entry, from a random start
        entry_id, n = entries[e]
        own = [h for (h,) in conn.execute("SELECT hash FROM frame_hashes WHERE entry_id = ? ORDER BY frame_number LIMIT 8 OFFSET ?",
                                          (entry_id, int(rng.integers(0, n - 7))))]  # fmt: skip
        files.append(flip(np.frombuffer(b"".join(own), np.uint8).reshape(-1, 32), 4))
    files += [rng.integers(0, 256, (8, 32), dtype=np.uint8) for _ in range(10)]
    conn.close()
    return hashes, files


def _best(fn, times: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(times):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def child(bank: str) -> dict:
    """One side, in this process (whichever vscan PYTHONPATH gives)."""
    from vscan.bank.hash_input import dihedral_variants
    from vscan.bank.lookup import BankLookup
    from vscan.bank.mapped import MappedBank, prepare
    from vscan.bank.matcher import Matcher
    from vscan.bank.query import FileQuery, QueryVersion
    from vscan.hashing.vpdq import FrameHashes
    from vscan.serve.bank_state import BankState

    hashes, files = _queries(bank)
    out: dict = {}
    t = time.perf_counter()
    prepare(bank)
    out["prepare_s"] = time.perf_counter() - t
    t = time.perf_counter()
    lookup = BankLookup.open(bank)
    out["lookup_open_s"] = time.perf_counter() - t
    out["lookup_s"], found = _best(lambda: lookup.lookup(hashes, 31), 5)
    out["lookup_digest"] = _digest(found)
    out["lookup_hits"] = sum(len(item["matches"]) for item in found)
    lookup.close()
    state = BankState.open(bank)
    out["serve_s"], served = _best(lambda: state.search(hashes, 31), 5)
    out["serve_digest"] = _digest(served)
    t = time.perf_counter()
    mapped = MappedBank.open(bank)
    out["mapped_open_s"] = time.perf_counter() - t
    matcher = Matcher(mapped)
    queries = []
    for f in files:
        m = len(f)
        fh = FrameHashes(np.arange(m, dtype=np.int64) * 3, np.arange(m) * 0.25, np.full(m, 90, np.int32), f)
        queries.append(FileQuery((QueryVersion("frames", fh, dihedral_variants(f)),), {}, m * 0.25))
    results = []
    for key in ("match_first_s", "match_again_s"):
        t = time.perf_counter()
        results = [matcher.match(q) for q in queries]
        out[key] = time.perf_counter() - t
    out["matches"] = sum(m.is_match for r in results for m in r)
    out["match_digest"] = _digest([[dataclasses.asdict(m) for m in r] for r in results])
    out["peak_rss_mb"] = _status_mb("VmHWM")
    out["anon_mb"], out["file_mb"] = _status_mb("RssAnon"), _status_mb("RssFile")  # private; mapped files (shared page cache)
    return out


def _with_delta(bank: Path, rows: int, pythonpath: str | None) -> None:
    """The index of ``bank`` built (by the side's code) without its last ``rows`` frame rows, then those put back."""
    conn = sqlite3.connect(bank)
    with conn:
        cut = conn.execute("SELECT max(rowid) FROM frame_hashes").fetchone()[0] - rows
        conn.execute("CREATE TABLE held_rows AS SELECT * FROM frame_hashes WHERE rowid > ? ORDER BY rowid", (cut,))
        conn.execute("CREATE TABLE held_entries AS SELECT * FROM entries WHERE entry_id NOT IN "
                     "(SELECT entry_id FROM frame_hashes WHERE rowid <= ?) ORDER BY rowid", (cut,))  # fmt: skip
        conn.execute("DELETE FROM frame_hashes WHERE rowid > ?", (cut,))
        conn.execute("DELETE FROM entries WHERE entry_id IN (SELECT entry_id FROM held_entries)")
    _run(bank, pythonpath, "--prepare-only")
    with conn:  # back in rowid order (the same rowids), a new generation of the same lineage
        conn.execute("INSERT INTO entries SELECT * FROM held_entries")
        conn.execute("INSERT INTO frame_hashes SELECT * FROM held_rows")
        conn.execute("DROP TABLE held_rows")
        conn.execute("DROP TABLE held_entries")
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('content_digest', ?)", (f"with-delta-{rows}",))
    conn.execute("VACUUM")
    conn.close()


def _run(bank: Path, pythonpath: str | None, flag: str = "--child") -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    # this file by its path: its imports of vscan are the side's (PYTHONPATH), the harness is the same
    run = subprocess.run([sys.executable, __file__, flag, str(bank)], env=env, capture_output=True, text=True, cwd="/tmp")
    if run.returncode:
        raise SystemExit(run.stderr[-3000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bank", help="the bank to read (copied per side)")
    parser.add_argument("--baseline", help="a folder holding the baseline's vscan package")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/vscan-bench-read-paths")
    parser.add_argument("--rebuild", action="store_true", help="remove BANK.vidx before every run: prepare builds it every round")
    parser.add_argument("--delta-rows", type=int, default=0, help="rows added after the index was built (module docstring)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--prepare-only", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return
    if args.prepare_only:
        from vscan.bank.mapped import prepare

        prepare(args.prepare_only)
        print("{}")
        return
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    sides = {"new": None, **({"old": args.baseline} if args.baseline else {})}
    banks = {}
    for side in sides:
        banks[side] = work / f"{side}.bank"
        shutil.rmtree(f"{banks[side]}.vidx", ignore_errors=True)
        shutil.copyfile(args.bank, banks[side])
        if args.delta_rows:
            _with_delta(banks[side], args.delta_rows, sides[side])
    keys = ("prepare_s", "lookup_open_s", "lookup_s", "serve_s", "mapped_open_s", "match_first_s", "match_again_s", "peak_rss_mb", "anon_mb", "file_mb")
    rows: dict[str, list[dict]] = {side: [] for side in sides}
    print(f"{'round':>5} {'side':<4} " + " ".join(f"{k:>14}" for k in keys) + "  digests (lookup serve match)", flush=True)
    for r in range(args.rounds):
        for side in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            if args.rebuild:
                shutil.rmtree(f"{banks[side]}.vidx", ignore_errors=True)
            res = _run(banks[side], sides[side])
            rows[side].append(res)
            print(f"{r:>5} {side:<4} " + " ".join(f"{res[k]:>14.3f}" for k in keys) +
                  f"  {res['lookup_digest']} {res['serve_digest']} {res['match_digest']} hits={res['lookup_hits']} matches={res['matches']}",
                  flush=True)  # fmt: skip
    if "old" in rows:
        for k in keys:
            if k == "prepare_s" and not args.rebuild:  # the first round builds everything, later ones find it built
                for name, pick in (("prepare_s, first (builds)", slice(0, 1)), ("prepare_s, later", slice(1, None))):
                    if rows["new"][pick]:
                        new, old = (min(x[k] for x in rows[s][pick]) for s in ("new", "old"))
                        print(f"# {name}: new/old {new / old:.2f}x ({new:.3f} / {old:.3f})")
                continue
            new, old = (min(x[k] for x in rows[s]) for s in ("new", "old"))
            print(f"# {k}: new/old {new / old:.2f}x ({new:.3f} / {old:.3f}, best of {args.rounds} rounds)")
        same = all(rows["new"][0][d] == rows["old"][0][d] for d in ("lookup_digest", "serve_digest", "match_digest"))
        print(f"# answers identical (lookup, serve, match): {same}")


if __name__ == "__main__":
    main()

"""Large banks for the service load test, written in bulk (10M rows in minutes).

The rows are what ``vscan.bench.realistic_hashes`` makes (runs of
near-duplicate real frame hashes); the file is what ``vscan.bank.writer``
would write for them: vscan's schema (``vscan.bank.schema.SCHEMA``), rows in
key order (so rowid order is key order, as after the writer's VACUUM),
``meta`` with format_version, created_by, hash_algorithm, skipped_inputs,
``content_digest`` from the writer's own ``full_content_sha256`` and
``lineage`` equal to it. Only the path to it differs: no per-file hashing, no
resume state, one ``executemany`` per million rows into a journal-less file,
renamed into place when complete. Each bank "video" is an entry of
``ROWS_PER_ENTRY`` frames at 12 fps.

Banks are cached under ``~/.cache/vscan/bench-serve/`` (``VSCAN_BENCH_CACHE``
overrides), keyed on the row count and ``LAYOUT`` (bump it when the rows change).

    python -m vscan.bench.serve_bank --rows 10000000     # prints the path and the seconds it took
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from pathlib import Path

import numpy as np

__all__ = ["cache_dir", "bank_rows", "ROWS_PER_ENTRY", "LAYOUT"]

ROWS_PER_ENTRY = 120  # a 10-second video at 12 fps
FPS = 12.0
LAYOUT = 2  # bump when the rows written change: old cached banks are then not reused
CHUNK_ROWS = 1 << 20


def cache_dir() -> Path:
    root = os.environ.get("VSCAN_BENCH_CACHE") or Path.home() / ".cache" / "vscan"
    return Path(root) / "bench-serve"


def real_hashes(work: Path) -> tuple[np.ndarray, np.ndarray]:
    """(bank clips uint8 [C, F, 32], unseen real frame hashes uint8 [n, 32]), cached in ``work``."""
    from vscan.bench.realistic_hashes import real_frame_hashes

    work.mkdir(parents=True, exist_ok=True)
    clips = real_frame_hashes(cache=work / "real_hashes.npz")[0][:, :, 0]
    unseen = real_frame_hashes(num_clips=20, seed0=1000, cache=work / "unseen_hashes.npz")[0][:, :, 0].reshape(-1, 32)
    return clips, unseen


def _entry_id(e: int) -> str:
    return f"gen:{e:09d}"  # zero-padded: text order is numeric order, so rows go in key order


def _entry_rows(first_row: int, n: int, total: int) -> list[tuple]:
    """entries rows for the entries starting in rows [first_row, first_row + n)."""
    first = -(-first_row // ROWS_PER_ENTRY)
    last = (first_row + n - 1) // ROWS_PER_ENTRY
    out = []
    for e in range(first, last + 1):
        frames = min(ROWS_PER_ENTRY, total - e * ROWS_PER_ENTRY)
        out.append((_entry_id(e), "reported", "bench_serve.txt", "vpdq_txt", str(e + 1), "video", frames / FPS, frames))
    return out


def _frame_rows(first_row: int, hashes: np.ndarray):
    for i, h in enumerate(hashes):
        row = first_row + i
        frame = row % ROWS_PER_ENTRY
        yield _entry_id(row // ROWS_PER_ENTRY), frame, frame / FPS, 90, h.tobytes()


def write_bank(path: Path, rows: int, clips: np.ndarray, *, seed: int = 1) -> Path:
    """Writes a bank of ``rows`` realistic frame hashes at ``path`` (atomically)."""
    from vscan.bank.digest import full_content_sha256
    from vscan.bank.schema import FORMAT_VERSION, SCHEMA
    from vscan.bench.realistic_hashes import expand_bank

    tmp = path.with_name(path.name + ".partial")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("PRAGMA journal_mode = OFF")  # a crash leaves only the .partial file, never a bank
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: the primary-key index stays in memory
        conn.executescript(SCHEMA)
        for start in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - start)
            hashes = expand_bank(clips, n, seed=seed + start)
            with conn:
                conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _entry_rows(start, n, rows))
                conn.executemany("INSERT INTO frame_hashes VALUES (?, ?, ?, ?, ?)", _frame_rows(start, hashes))
        meta = {"format_version": str(FORMAT_VERSION), "created_by": "vscan.bench.serve_bank",
                "hash_algorithm": "pdq", "skipped_inputs": json.dumps([])}  # fmt: skip
        meta["content_digest"] = full_content_sha256(conn)  # the writer's own checksum, over the rows as stored
        meta["lineage"] = meta["content_digest"]
        with conn:
            conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
    finally:
        conn.close()
    os.replace(tmp, path)
    return path


def bank_rows(rows: int, *, work: Path | None = None) -> tuple[Path, np.ndarray, float]:
    """(cached bank of ``rows`` rows, unseen real hashes for queries, seconds spent writing it; 0 when cached)."""
    work = work or cache_dir()
    clips, unseen = real_hashes(work)
    path = work / f"bank-{rows}-v{LAYOUT}.bank"
    if path.is_file():
        return path, unseen, 0.0
    t0 = time.perf_counter()
    write_bank(path, rows, clips)
    return path, unseen, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--work", type=Path, default=None, help="cache folder (default: ~/.cache/vscan/bench-serve)")
    args = ap.parse_args(argv)
    for rows in args.rows:
        cpu0 = time.process_time()
        path, _, seconds = bank_rows(rows, work=args.work)
        print(json.dumps({"rows": rows, "bank": str(path), "write_s": round(seconds, 1),
                          "cpu_s": round(time.process_time() - cpu0, 1), "bytes": path.stat().st_size}))  # fmt: skip


if __name__ == "__main__":
    main()

"""The service bench's bulk-written bank is a valid vscan bank: info, checksum, lookups."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import numpy as np

from vscan.bank.digest import full_content_sha256
from vscan.bench.serve_bank import ROWS_PER_ENTRY, write_bank


def test_bulk_bank_reads_as_a_bank_and_its_rows_are_found(tmp_path):
    clips = np.random.default_rng(3).integers(0, 256, (4, 48, 32), dtype=np.uint8)
    rows = 2 * ROWS_PER_ENTRY + 7  # a short last entry
    bank = write_bank(tmp_path / "b.bank", rows, clips)

    info = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "info", str(bank)], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "num_frame_hashes               %d" % rows in info.stdout
    assert "num_entries                    3" in info.stdout

    conn = sqlite3.connect(f"file:{bank}?mode=ro", uri=True)
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["content_digest"] == full_content_sha256(conn) == meta["lineage"]
    assert conn.execute("SELECT num_frames FROM entries ORDER BY entry_id DESC LIMIT 1").fetchone()[0] == 7
    # rowid order is key order, as the writer's VACUUM leaves it
    keys = [r[0] for r in conn.execute("SELECT entry_id || ':' || printf('%05d', frame_number) FROM frame_hashes ORDER BY rowid")]
    assert keys == sorted(keys)
    entry, frame, blob = conn.execute("SELECT entry_id, frame_number, hash FROM frame_hashes WHERE rowid = 200").fetchone()
    conn.close()

    queries = tmp_path / "q.txt"
    queries.write_text(blob.hex() + "\n")
    out = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "lookup", str(bank), "--hashes", str(queries), "--radius", "0"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout.splitlines()[0])
    assert any(str(v) == entry for v in _values(hits)), hits
    assert frame == 200 - 1 - ROWS_PER_ENTRY  # rowids start at 1


def _values(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _values(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _values(v)
    else:
        yield obj

"""One bank snapshot: a bank rebuilt at the same path is matched against its new
content (the index and scan arrays beside it record the lineage and generation they
were built from), and a scan's actors all read the bank as it was when the scan
started (rows, enabled state, generation), also after in-place changes; a bank
rebuilt under a running scan is refused rather than mixed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vscan.bank.append import append_to_bank
from vscan.bank.lookup import index_path
from vscan.bank.mapped import MappedBank, bank_snapshot, prepare
from vscan.bank.store import Bank
from vscan.bank.updates import disable_entries
from vscan.bench import synth
from vscan.errors import BankError
from vscan.output.read import read_records

VSCAN = [sys.executable, "-m", "vscan.cli"]


def cli(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*VSCAN, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


def ok(*args) -> str:
    run = cli(*args)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _matched(out: Path) -> dict[str, set[str]]:
    return {Path(r["path"]).name: {m["bank_entry_id"] for m in r["matches"] if m["is_match"]} for r in read_records(out)}


def test_a_bank_rebuilt_at_the_same_path_is_matched_against_its_new_content(tmp_path, ray_address):
    old, new, query = tmp_path / "old", tmp_path / "new", tmp_path / "query"
    for folder, b_seed in ((old, 2), (new, 7)):
        synth.make_clip(folder / "a.mp4", seed=1, seconds=1.6, size=(96, 64))
        synth.make_clip(folder / "b.mp4", seed=b_seed, seconds=1.6, size=(96, 64))  # same frame count, other content
        synth.make_clip(folder / "c.mp4", seed=3, seconds=1.6, size=(96, 64))
    query.mkdir()
    (query / "b-new.mp4").write_bytes((new / "b.mp4").read_bytes())
    bank = tmp_path / "r.bank"
    ok("bank", "build", bank, old, "--device", "cpu", "--fps", "10")
    ok("scan", query, "--bank", bank, "--out", tmp_path / "1.jsonl", "--ray-address", ray_address, "--device", "cpu", "--quiet")
    assert _matched(tmp_path / "1.jsonl") == {"b-new.mp4": set()}
    assert index_path(bank).is_dir()  # the scan built the index beside the bank
    # The same bank path, rebuilt with b's content changed (the first and last rows and the row count unchanged).
    bank.unlink()
    ok("bank", "build", bank, new, "--device", "cpu", "--fps", "10")
    ok("scan", query, "--bank", bank, "--out", tmp_path / "2.jsonl", "--ray-address", ray_address, "--device", "cpu", "--quiet")
    assert _matched(tmp_path / "2.jsonl") == {"b-new.mp4": {"b"}}


H = ["f" * 64, "0f" * 32, "3c" * 32]


def _list(path: Path, hexes: list[str]) -> Path:
    path.write_text("".join(f"{i},100,{h},{i / 25:.3f}\n" for i, h in enumerate(hexes)))
    return path


def test_actors_opened_later_read_the_scans_snapshot_and_a_rebuilt_bank_is_refused(tmp_path):
    from vscan.bank.store import build_bank

    bank = tmp_path / "r.bank"
    build_bank(bank, [_list(tmp_path / "one.txt", H[:2])])
    identity = prepare(bank)
    snap = bank_snapshot(bank)
    with Bank(bank) as b:
        assert snap["generation"] == b.generation and snap["lineage"] == b.lineage
    # The bank changes in place while the scan runs: an entry added, one disabled.
    append_to_bank(bank, [_list(tmp_path / "two.txt", H[2:])])
    disable_entries(bank, ["one"], reason="test")
    q = np.frombuffer(bytes.fromhex(H[0] + H[2]), np.uint8).reshape(2, 32)
    late = MappedBank.open(bank, identity=identity, snapshot=snap)  # an actor restarted mid-scan
    index = late.narrow([q], 0, 0)
    assert index.entry_ids == ["one"] and index.disabled is None and late.generation == snap["generation"]
    now = MappedBank.open(bank, identity=identity)  # a new scan: the bank as it is now
    index = now.narrow([q], 0, 0)
    assert index.entry_ids == ["two"] and index.disabled.entry_ids == ["one"] and now.generation != snap["generation"]
    # Rebuilt at the same path: the index beside it is rebuilt, and the running scan's snapshot refused.
    bank.unlink()
    build_bank(bank, [_list(tmp_path / "one.txt", H[1:])])
    fresh = prepare(bank)
    with pytest.raises(BankError, match="rebuilt since the scan started"):
        MappedBank.open(bank, snapshot=snap)
    with Bank(bank) as b:
        assert fresh["lineage"] == b.lineage and fresh["generation"] == b.generation != snap["generation"]
    assert MappedBank.open(bank, identity=fresh).narrow([q[:1]], 0, 0).entry_ids == []


def test_a_scan_refuses_a_bank_changed_after_its_records_were_stamped(tmp_path, ray_local):
    from vscan.bank.store import build_bank
    from vscan.config import ScanConfig
    from vscan.runtime.bank_share import MappedBankRef, share_bank

    bank = tmp_path / "r.bank"
    build_bank(bank, [_list(tmp_path / "one.txt", H[:2])])
    with Bank(bank) as b:
        stamped = b.generation  # what the run's records say (versions.bank_sha256), read at its start
    ref = share_bank(bank, ScanConfig(), [], generation=stamped)
    assert isinstance(ref, MappedBankRef) and ref.snapshot["generation"] == stamped
    disable_entries(bank, ["one"], reason="changed while the scan started")
    with pytest.raises(BankError, match="changed while the scan started"):
        share_bank(bank, ScanConfig(), [], generation=stamped)

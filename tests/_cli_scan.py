"""A whole scan through the CLI (the real Ray pipeline, in a subprocess), as the
re-framed-copy tests run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

VSCAN = [sys.executable, "-m", "vscan.cli"]


def scan_records(inbox: Path, bank: Path, out: Path, *options: str) -> dict[str, dict]:
    """Scan ``inbox`` against ``bank`` on the CPU with the defaults plus ``options``: records by file name."""
    run = subprocess.run([*VSCAN, "scan", str(inbox), "--bank", str(bank), "--out", str(out), "--device", "cpu", "-q", *options],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}

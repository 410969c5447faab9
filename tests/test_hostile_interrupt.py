"""Ctrl-C at several moments of start-up (issue 23): while the command checks
inputs and bank, while it starts its own Ray, while the model stage starts.
As in a terminal, SIGINT goes to the whole process group (Ray's processes
included). Every time: exit 130, the "Interrupted: N records ... saved"
line, and a manifest that says interrupted when the run had begun. The old
code died of the signal (-2, a traceback) when Ctrl-C came while the scan
was set up, and the issue saw 139 (a segfault while Ray shut down).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from vscan.bench import synth
from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.decode import EveryFrame


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt")
    for i in range(4):
        synth.make_clip(root / "in" / f"c{i}.mp4", seed=i, seconds=1.0, size=(96, 64))
    bank = root / "b.bank"
    build_bank(bank, [synth.make_clip(root / "other.mp4", seed=9, seconds=1.0, size=(96, 64))],
               hash_media=media_hasher(EveryFrame(), "cpu"))  # fmt: skip
    return root, bank


@pytest.mark.parametrize("after_seconds", [1.5, 3.0, 6.0])
def test_ctrl_c_during_start_up_exits_130_with_the_saved_count(inputs, tmp_path, after_seconds):
    root, bank = inputs
    out = tmp_path / "r.jsonl"
    command = [sys.executable, "-m", "vscan.cli", "scan", str(root / "in"), "--bank", str(bank), "--out", str(out),
               "--device", "cpu", "--fps", "1", "-q"]  # its own local Ray: start-up included  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    time.sleep(after_seconds)
    if proc.poll() is not None:
        pytest.skip(f"the scan ended within {after_seconds} s")
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert "Interrupted: " in err and "Run the same command again to resume" in err, err
    said = int(err.split("Interrupted: ")[1].split()[0])
    saved = out.read_text().count("\n") if out.exists() else 0
    assert said <= saved
    manifest = out.with_name(out.name + ".manifest.json")
    if manifest.exists():  # the run had begun
        assert json.loads(manifest.read_text())["runs"][-1]["status"] == "interrupted"

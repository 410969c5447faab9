"""Ctrl-C at several moments of start-up (issue 23): while the command checks
inputs and bank, while it starts its own Ray, while the model stage starts.
As in a terminal, SIGINT goes to the whole process group (Ray's processes
included). Every time: exit 130, the "Interrupted: N records ... saved"
line, and a manifest that says interrupted when the run had begun. The old
code died of the signal (-2, a traceback) when Ctrl-C came while the scan
was set up, and the issue saw 139 (a segfault while Ray shut down).

The first second, while the command's modules load, is hit exactly: a
``sitecustomize`` on the child's PYTHONPATH pauses the import of one chosen
module, says so in a file, and the test sends SIGINT then. The old code
(``import vscan`` loaded numpy, the config and the API before the command's
handler) died of the signal at numpy, vscan.config and vscan.api.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


@pytest.mark.parametrize("after_seconds", [1.5, 3.0, 6.0, 9.0, 12.0])  # 12 s: the model stage starting here (once -11 after the message)
def test_ctrl_c_during_start_up_exits_130_with_the_saved_count(inputs, tmp_path, after_seconds):
    root, bank = inputs
    out = tmp_path / "r.jsonl"
    on_ray = tmp_path / "ray.toml"  # 4 files would run without Ray (vscan.runtime.embedded; its Ctrl-C: tests/test_embedded.py)
    on_ray.write_text("[runtime]\nembedded_max_files = 0\n")
    command = [sys.executable, "-m", "vscan.cli", "scan", str(root / "in"), "--bank", str(bank), "--out", str(out),
               "--device", "cpu", "--fps", "1", "-q", "--config", str(on_ray)]  # its own local Ray: start-up included  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:  # a scan that ends before the moment is a skip as soon as it ends (quiet machines pass 9 and 12 s)
        proc.wait(timeout=after_seconds)
        pytest.skip(f"the scan ended within {after_seconds} s")
    except subprocess.TimeoutExpired:
        pass
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
    _, err = proc.communicate(timeout=180)
    manifest = out.with_name(out.name + ".manifest.json")
    if proc.returncode == 0:  # Ctrl-C after the run completed (every record saved): ignored, the scan ends as completed
        assert json.loads(manifest.read_text())["runs"][-1]["status"] == "completed"
        assert out.read_text().count("\n") == 4, err
        return
    assert proc.returncode == 130, err
    assert "Interrupted: " in err and "Run the same command again to resume" in err, err
    said = int(err.split("Interrupted: ")[1].split()[0])
    saved = out.read_text().count("\n") if out.exists() else 0
    assert said <= saved
    if manifest.exists():  # the run had begun; a Ctrl-C between the manifest's "completed" and the exit: every record saved
        status = json.loads(manifest.read_text())["runs"][-1]["status"]
        assert status == "interrupted" or (status == "completed" and saved == 4), (status, saved, err)


#: The child's sitecustomize: the import of $VSCAN_TEST_PAUSE_AT stops for a minute, after writing $VSCAN_TEST_PAUSED.
_PAUSE_AT_IMPORT = """
import os, sys, time

class _PauseAt:
    def find_spec(self, name, path=None, target=None):
        if name == os.environ.get("VSCAN_TEST_PAUSE_AT"):
            sys.meta_path.remove(self)
            open(os.environ["VSCAN_TEST_PAUSED"], "w").close()
            time.sleep(60)
        return None

sys.meta_path.insert(0, _PauseAt())
"""


def _entry_points() -> list[list[str]]:
    script = Path(sys.executable).parent / "vscan"  # the console script pip wrote (vscan.cli.main:main)
    return [[sys.executable, "-m", "vscan.cli"]] + ([[str(script)]] if script.exists() else [])


@pytest.mark.parametrize("entry", range(len(_entry_points())), ids=lambda i: ["python -m vscan.cli", "vscan"][i])
@pytest.mark.parametrize("module", ["numpy", "typer", "vscan.config", "vscan.api", "vscan.runtime.driver"])
def test_ctrl_c_while_the_command_loads_exits_130(inputs, tmp_path, module, entry):
    root, bank = inputs
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(_PAUSE_AT_IMPORT)
    paused = tmp_path / "paused"
    env = {**os.environ, "VSCAN_TEST_PAUSE_AT": module, "VSCAN_TEST_PAUSED": str(paused),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path / "site"), os.environ.get("PYTHONPATH")]))}  # fmt: skip
    out = tmp_path / "r.jsonl"
    command = [*_entry_points()[entry], "scan", str(root / "in"), "--bank", str(bank), "--out", str(out),
               "--device", "cpu", "--fps", "1", "-q"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 120
    while not paused.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert paused.exists(), f"{module} was never imported: {proc.communicate(timeout=60)}"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert err.count("Interrupted: ") == 1 and "Run the same command again to resume" in err, err
    assert int(err.split("Interrupted: ")[1].split()[0]) == 0
    assert not out.exists() or out.read_text() == ""

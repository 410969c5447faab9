"""Ctrl-C on ``vscan scan`` (a real SIGINT to a real process on a real Ray):
it says how many records are saved and that the same command resumes, exits
130, its run manifest says ``interrupted``, and the same command then ends
with exactly one record per file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from vscan.bench import synth


#: Clips scanned: enough that a quiet machine cannot write them all between the first records and the Ctrl-C (48 were
#: once all written in that gap, in a clean-clone CI at load ~1: the test then interrupted nothing).
_CLIPS = 96


def test_ctrl_c_says_what_is_saved_and_the_same_command_resumes(tmp_path, ray_address):
    for i in range(_CLIPS):
        synth.make_clip(tmp_path / "in" / f"clip{i:02d}.mp4", seed=i, seconds=1.0, size=(96, 64))
    out = tmp_path / "r.jsonl"
    model = tmp_path / "model"
    from _onnx_models import colour_classifier  # a scan must check something: a detector

    manifest = colour_classifier(model)
    command = [sys.executable, "-m", "vscan.cli", "scan", str(tmp_path / "in"), "--out", str(out), "--device", "cpu",
               "--ray-address", ray_address, "--fps", "4", "--model", str(manifest), "--quiet"]  # fmt: skip
    # Ctrl-C as in a terminal: a suite started in the background by a non-interactive shell (`cmd &`) has SIGINT
    # ignored, which children inherit and Python then never turns into KeyboardInterrupt.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the scan ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    saved = out.read_text().count("\n")
    assert proc.returncode == 130, err
    assert saved < _CLIPS, "every file was done before the interrupt"
    assert "Interrupted:" in err and "Run the same command again to resume" in err, err
    said = int(err.split("Interrupted: ")[1].split()[0])
    # Records handed out are durable; the last group written may be on disk, not yet handed out (2 lines were
    # on disk when Ctrl-C came: a loaded machine has handed out 1 of them).
    assert 1 <= said <= saved
    runs = json.loads((tmp_path / "r.jsonl.manifest.json").read_text())["runs"]
    assert runs[-1]["status"] == "interrupted" and runs[-1]["ended"]
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    paths = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    assert sorted(paths) == sorted(str(p) for p in (tmp_path / "in").glob("*.mp4"))

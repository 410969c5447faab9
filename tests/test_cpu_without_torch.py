"""The CPU path runs without torch (``pip install 'vscan[cpu]'`` does not
install it): a scan with a bank and detector models through real Ray and the
``vscan hash`` / ``vscan bank build`` commands, each in a subprocess where
torch cannot be imported (tests/_no_torch.py). ``vscan demo`` and the rest of
the README's walk-through run under the same block in tests/test_readme.py.

Ray's workers inherit the driver's environment, so the block reaches them too;
the tests check that it was in force in the driver and in Ray's workers. With
torch refused at import, no process can have imported it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import _onnx_models as tm
from _no_torch import logs, no_torch_env
import vscan
from vscan.bench import synth
from vscan.decode import FixedRate

SCAN = '''
import json, sys
from pathlib import Path

import vscan
from vscan.bank.hashers import media_hasher
from vscan.bank import build_bank
from vscan.config import Models, Runtime, Sampling, ScanConfig
from vscan.decode import EveryFrame, FixedRate
from vscan.output.sinks import JsonlSink
from vscan.runtime.driver import run_scan

args = json.loads(sys.argv[1])
bank = Path(args["bank"])
build_bank(bank, [args["source"]], hash_media=media_hasher(EveryFrame(), device="cpu"))
config = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), models=Models(detectors=tuple(args["detectors"])),
                    runtime=Runtime(device="cpu", embedded_max_files=0))  # on Ray: the block must hold in its workers too
with JsonlSink(args["out"]) as sink:
    summary = run_scan([args["archive"]], sink=sink, bank_path=bank, config=config)
assert "torch" not in sys.modules
print(json.dumps({"errors": summary.errors, "files": summary.files}))
'''


@pytest.fixture()
def no_torch(tmp_path) -> tuple[dict[str, str], Path]:
    """(environment with torch refused, folder of the blocker's per-process logs)."""
    return no_torch_env(tmp_path)


def _run(cmd: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd[:4]} exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def test_the_block_refuses_torch(no_torch):
    env, log = no_torch
    out = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "refused: vscan's CPU path runs without torch" in out.stderr
    _run([sys.executable, "-c", "import numpy, onnxruntime, vscan.runtime.driver, vscan.bank.match, vscan.detect.adapters"], env)
    (lines,) = [v for v in logs(log).values() if "refused torch from __main__" in v]
    assert lines[0].startswith("loaded ")


def _square_clip(path: Path) -> Path:
    """4 s at 5 fps, 320x160: black, a white square at (200, 40)-(240, 80) from 2 s on."""
    frame = np.zeros((160, 320, 3), np.uint8)
    square = frame.copy()
    square[40:80, 200:240] = 255
    return synth._encode(path, [square if i >= 10 else frame for i in range(20)], fps=5, codec="libx264", gop=5, crf=12, bitrate=None)


def test_scan_with_bank_and_detectors_without_torch(tmp_path, no_torch):
    """Two generated clips (one banked, re-uploaded letterboxed; one unrelated)
    and a detector clip, scanned on CPU through Ray with torch refused
    everywhere: the re-upload matches through border removal, the unrelated
    clip does not, the detector finds its square."""
    env, log = no_torch
    src = synth.make_clip(tmp_path / "src" / "source.mp4", seed=11, seconds=4)
    archive = tmp_path / "archive"
    synth.edit_clip(src, archive / "letterboxed.mp4", "pad", mode="letterbox", fraction=0.12)
    synth.make_clip(archive / "unrelated.mp4", seed=12, seconds=4)
    _square_clip(archive / "square.mp4")
    models = [str(tm.square_detector(tmp_path / "models" / "square")), str(tm.colour_classifier(tmp_path / "models" / "colour"))]
    args = {"bank": str(tmp_path / "bank.db"), "source": str(src), "archive": str(archive), "out": str(tmp_path / "r.jsonl"),
            "detectors": models}  # fmt: skip
    script = tmp_path / "scan.py"
    script.write_text(SCAN)
    out = _run([sys.executable, str(script), json.dumps(args)], env, timeout=420)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"errors": 0, "files": 3}

    records = {Path(r["path"]).name: r for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines()) if "path" in r}
    assert set(records) == {"letterboxed.mp4", "unrelated.mp4", "square.mp4"}
    [boxed] = [m for m in records["letterboxed.mp4"]["matches"] if m["is_match"]]
    assert boxed["bank_entry_id"] and any(p.endswith("box-removed") for p in boxed["path"]), boxed
    assert records["letterboxed.mp4"]["risk"] >= 0.7
    for name in ("unrelated.mp4", "square.mp4"):
        assert not any(m["is_match"] for m in records[name]["matches"]), name
    square = {(d["model"], d["label"]): d for d in records["square.mp4"]["detections"]}[("square", "square")]
    assert square["frames"] == 4 and square["frames_above"] == 2 and square["max_score"] == 1.0
    np.testing.assert_allclose(square["strongest"][0]["box"], [200, 40, 240, 80], atol=6)

    # The block was in force in the driver and in Ray's worker processes.
    per_process = logs(log)
    loaded = [lines[0] for lines in per_process.values() if lines and lines[0].startswith("loaded ")]
    assert any(str(script) in line for line in loaded), loaded
    assert any("default_worker.py" in line for line in loaded), loaded
    refused = sorted({line for lines in per_process.values() for line in lines if line.startswith("refused")})
    print("\nimports of torch refused:", refused or "none")


def test_cli_hash_and_bank_build_without_torch(tmp_path, no_torch):
    """``vscan hash`` without torch prints the hashes a normal process computes, bit for bit."""
    env, _ = no_torch
    clip = synth.make_clip(tmp_path / "c.mp4", seed=3, seconds=2, size=(320, 180))
    cli = [sys.executable, "-m", "vscan.cli"]
    out = _run([*cli, "hash", str(clip), "--fps", "5", "--device", "cpu"], env)
    lines = [line.split(",") for line in out.stdout.strip().splitlines()]
    expected = vscan.hash_file(clip, policy=FixedRate(5.0), device="cpu")  # this process may import torch
    assert len(lines) == len(expected.hashes) >= 8
    assert [hexed for _, _, hexed, _ in lines] == list(expected.hex())
    assert [int(q) for _, q, _, _ in lines] == expected.qualities.tolist()
    bank = tmp_path / "b.db"
    _run([*cli, "bank", "build", str(bank), str(clip), "--label", "x", "--fps", "5", "--device", "cpu"], env)
    assert bank.stat().st_size > 0

"""The model-actor pool on a real Ray: a killed actor loses and duplicates
nothing and writes no ModelError record; a Ray that reports a GPU to a CPU
install scans on CPU with device auto, and stops before any record, with
one message, when CUDA is demanded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import vscan
from vscan.bench import synth
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import EveryFrame


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _model_actor_pids() -> list[int]:
    """This test process's model actors (its own Ray's workers, nobody else's)."""
    pids = []
    for pid in _descendants(os.getpid()):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::_ModelActor"):
                pids.append(pid)
        except OSError:
            continue
    return pids


def test_a_killed_model_actor_loses_and_duplicates_nothing(tmp_path, ray_local):
    clips = [synth.make_clip(tmp_path / "in" / f"c{i}.mp4", seed=200 + i, seconds=4, size=(160, 120)) for i in range(8)]
    out = tmp_path / "r.jsonl"
    config = ScanConfig(sampling=Sampling(policy=EveryFrame()), runtime=Runtime(device="cpu"))
    bank = tmp_path / "bank.db"
    vscan.Bank.build(bank, [clips[0]], label="reported")
    run = vscan.scan_iter([tmp_path / "in"], bank=bank, out=out, config=config)
    killed = []
    for record in run:
        if not killed:
            (pid,) = _model_actor_pids()
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["path"] for r in records) == sorted(str(c) for c in clips)
    assert [r for r in records if r["status"] != "ok"] == []
    assert not os.path.exists(f"/proc/{killed[0]}")
    assert run.summary.infra_retries >= 1  # the killed actor had work: it went again, not to a record
    matched = [Path(r["path"]).name for r in records if any(m["is_match"] for m in r["matches"])]
    assert matched == ["c0.mp4"]


FAKE_GPU = textwrap.dedent(
    """
    import json, sys, ray, vscan
    from vscan.config import Runtime, ScanConfig
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    clip, bank, out_auto, out_cuda = sys.argv[1:]
    summary = vscan.scan([clip], bank=bank, out=out_auto, config=ScanConfig(runtime=Runtime(device="auto")))
    try:
        vscan.scan([clip], bank=bank, out=out_cuda, config=ScanConfig(runtime=Runtime(device="cuda")))
    except vscan.ModelError as exc:
        print("REFUSED", exc)
    """
)


def test_a_cpu_install_on_a_ray_that_reports_a_gpu(tmp_path):
    import onnxruntime

    assert "CUDAExecutionProvider" not in onnxruntime.get_available_providers()  # the cpu extra
    clip = synth.make_clip(tmp_path / "c.mp4", seed=9, seconds=3, size=(128, 96))
    bank = tmp_path / "bank.db"
    vscan.Bank.build(bank, [clip], label="reported")
    auto, cuda = tmp_path / "auto.jsonl", tmp_path / "cuda.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run = subprocess.run([sys.executable, "-c", FAKE_GPU, str(clip), str(bank), str(auto), str(cuda)], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    # device auto: the GPU actor runs, on CPU, and the scan is complete.
    (record,) = [json.loads(line) for line in auto.read_text().splitlines()]
    assert record["status"] == "ok" and any(m["is_match"] for m in record["matches"])
    (manifest,) = json.loads(Path(f"{auto}.manifest.json").read_text())["runs"]
    (actor,) = manifest["cluster"]["model_actors"]
    assert actor["num_gpus"] == 1 and actor["provider"] == "onnx:CPUExecutionProvider"
    # device cuda: one message, what to install, and no record at all.
    refused = [line for line in run.stdout.splitlines() if line.startswith("REFUSED")]
    assert len(refused) == 1 and "CUDAExecutionProvider" in refused[0] and "vscan[gpu]" in refused[0], run.stdout
    assert not cuda.exists() or cuda.read_text().strip() == ""

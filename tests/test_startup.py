"""Start-up of a scan (issue 28 item 4): a private local Ray without the
processes a scan never uses, a run with nothing to decode that never loads
the model stage's code, and a progress bar that says how far start-up got.
(The seconds themselves are measured in bench/bench_startup.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import vscan
from vscan.bench import synth
from vscan.config import Runtime, ScanConfig

_RAY_PROCESSES = textwrap.dedent(
    """
    import json, os
    from pathlib import Path
    import ray
    from ray._private import parameter, services
    from vscan.runtime.ray_start import start_ray

    params, api_server = parameter.RayParams, services.start_api_server
    assert start_ray(None)
    restored = parameter.RayParams is params and services.start_api_server is api_server

    @ray.remote
    def worker_pid():
        return os.getpid()

    ran = ray.get(worker_pid.remote()) != os.getpid()
    children = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    todo, lines = [os.getpid()], []
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            try:
                lines.append(Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    ray.shutdown()
    print(json.dumps({"ran": ran, "restored": restored, "processes": lines}))
    """
)


def test_a_private_local_ray_starts_without_the_processes_a_scan_never_uses():
    run = subprocess.run([sys.executable, "-c", _RAY_PROCESSES], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["ran"] and out["restored"]  # tasks run, and Ray's own modules are as they were
    started = " ".join(out["processes"])
    assert "raylet" in started and "gcs_server" in started
    # no autoscaler monitor, no log monitor (log_to_driver is off), no dashboard process
    for unused in ("autoscaler/_private/monitor.py", "log_monitor.py", "dashboard/dashboard.py"):
        assert unused not in started, unused


def test_a_resume_with_nothing_to_decode_never_loads_the_model_stage(tmp_path):
    """The no-op resume (vscan.runtime.preflight) imports neither Ray, nor the
    decoders, nor the model stage (numba, onnxruntime): seconds of start-up for nothing."""
    clip = synth.make_clip(tmp_path / "in" / "a.mp4", seed=31, seconds=2, size=(160, 120))
    bank = tmp_path / "bank.db"
    vscan.Bank.build(bank, [clip], label="reported")
    out = tmp_path / "r.jsonl"
    config = ScanConfig(runtime=Runtime(device="cpu"))
    vscan.scan([tmp_path / "in"], bank=bank, out=out, config=config)  # the first run records the file
    code = textwrap.dedent(
        f"""
        import sys, vscan
        from vscan.config import Runtime, ScanConfig
        summary = vscan.scan([{str(tmp_path / "in")!r}], bank={str(bank)!r}, out={str(out)!r}, config=ScanConfig(runtime=Runtime(device="cpu")))
        loaded = [m for m in ("ray", "numba", "onnxruntime", "vscan.runtime.model_actor", "vscan.runtime.decode_task") if m in sys.modules]
        print(summary.scanned, summary.skipped, ",".join(loaded) or "-")
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0", "1", "-"]


def test_the_bar_says_when_the_models_load_and_when_they_have_loaded(ray_local):
    import ray

    from vscan.cli.progress import WAITING_FOR_FILES, WAITING_FOR_MODELS, waiting_for
    from vscan.runtime.model_pool import ModelPool
    from vscan.runtime.ray_start import cluster_nodes, startup_phase

    assert ray.is_initialized()
    pool = ModelPool(ScanConfig(runtime=Runtime(device="cpu")), None, cluster_nodes())
    try:
        assert waiting_for() == WAITING_FOR_MODELS
        while not pool.started(timeout=1.0):
            pass
        assert waiting_for() == WAITING_FOR_FILES
    finally:
        pool.close()
    assert startup_phase() is None  # the next scan in this process starts from the beginning


def test_opening_a_banks_index_leaves_numba_to_the_first_search(tmp_path):
    """The driver checks the bank's index before the model stage starts: no numba
    import there (0.3-0.8 s of it on this machine); the first search loads it."""
    clip = synth.make_clip(tmp_path / "ref" / "k.mp4", seed=41, seconds=2, size=(160, 120))
    bank = tmp_path / "bank.db"
    vscan.Bank.build(bank, [clip], label="reported")
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from vscan.bank.mapped import MappedBank, prepare
        identity = prepare({str(bank)!r})
        index = MappedBank.open({str(bank)!r}, identity=identity)
        before = "numba" in sys.modules
        from vscan.bank import disk_index, lookup
        split = disk_index.SplitIndex.open(lookup.index_path({str(bank)!r}))
        rows = np.asarray(split.hashes[:3])
        q, row, d = split.search(rows, radius=31)
        print(before, "numba" in sys.modules, all(((q == i) & (row == i) & (d == 0)).any() for i in range(3)))
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "True", "True"]


def test_the_banks_index_is_prepared_while_ray_starts(tmp_path, ray_local, monkeypatch):
    """The driver's bank preparation (index checked or built, snapshot) runs in a
    thread started before Ray, and the scan uses its result: the model actors are
    created as soon as Ray is up."""
    import threading

    from vscan.bank import mapped
    from vscan.output.sinks import JsonlSink
    from vscan.runtime.driver import run_scan

    clip = synth.make_clip(tmp_path / "ref" / "k.mp4", seed=43, seconds=2, size=(160, 120))
    bank = tmp_path / "bank.db"
    vscan.Bank.build(bank, [clip], label="reported")
    threads = []
    real_prepare = mapped.prepare

    def prepare(*args, **kwargs):  # the real preparation, noting the thread it runs in
        threads.append(threading.current_thread().name)
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(mapped, "prepare", prepare)
    with JsonlSink(tmp_path / "r.jsonl") as sink:
        summary = run_scan([clip], sink=sink, bank_path=bank, config=ScanConfig(runtime=Runtime(device="cpu")))
    assert summary.matched == 1
    assert threads == ["vscan-bank-prepare"]  # once, and not in the driver's thread


def test_a_bank_changed_after_its_early_preparation_is_prepared_again(tmp_path):
    from vscan.bank.updates import disable_entries
    from vscan.runtime.bank_share import prepare_early, share_bank

    clips = [synth.make_clip(tmp_path / "ref" / f"k{i}.mp4", seed=50 + i, seconds=2, size=(160, 120)) for i in range(2)]
    bank = tmp_path / "bank.db"
    with vscan.Bank.build(bank, clips, label="reported") as built:
        entry = built.rows("entries")[0][0]  # entry_id
    config = ScanConfig(runtime=Runtime(device="cpu"))
    prepare_early(bank, config, [tmp_path / "in"])
    early = share_bank(bank, config, [], [tmp_path / "in"])
    prepare_early(bank, config, [tmp_path / "in"])
    time.sleep(0.01)
    disable_entries(bank, [entry])  # the bank changes between the early preparation and its use
    late = share_bank(bank, config, [], [tmp_path / "in"])
    assert late.snapshot["generation"] != early.snapshot["generation"]
    assert late.snapshot["disabled"] and not early.snapshot["disabled"]

"""A small scan runs without Ray (vscan.runtime.embedded, issue 28 item 4):
the same records as the Ray path, except timings and ran_on, and a decode
process that crashes hands its files to Ray. (The seconds it saves are
measured in bench/bench_startup.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vscan.bench import synth

#: What differs between two scans of the same files by design: how long each stage took, and where it ran.
_RUN_FIELDS = ("timings", "ran_on")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("embedded")
    synth.make_clip(root / "ref" / "known.mp4", seed=8, seconds=5)
    synth.make_clip(root / "in" / "copy.mp4", seed=8, seconds=5)  # matches: adaptive sampling's second pass runs
    synth.make_clip(root / "in" / "other.mp4", seed=7, seconds=4)
    synth.make_corrupt(root / "in" / "broken.mp4", "truncated")
    synth.write_image(root / "in" / "still.png", seed=3)
    (root / "ray.toml").write_text("[runtime]\nembedded_max_files = 0\n")
    build = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "build", "b.bank", "ref", "--device", "cpu"],
                           cwd=root, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert build.returncode == 0, build.stderr
    return root


@pytest.fixture(scope="module")
def embedded_scan(folder) -> tuple[dict[str, dict], dict]:
    """The folder scanned without Ray (records, manifest run): the records other runs are held to."""
    return _scan(folder, "embedded.jsonl")


@pytest.fixture(scope="module")
def ray_scan(folder) -> tuple[dict[str, dict], dict]:
    """The folder scanned on Ray (``embedded_max_files = 0``): one scan for every test that compares with it."""
    return _scan(folder, "ray.jsonl", "--config", "ray.toml")


def _scan(root: Path, out: str, *extra: str) -> tuple[dict[str, dict], dict]:
    run = subprocess.run([sys.executable, "-m", "vscan.cli", "scan", "in", "--bank", "b.bank", "--out", out, "--device", "cpu",
                          "-q", *extra], cwd=root, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = {json.loads(line)["path"]: json.loads(line) for line in (root / out).read_text().splitlines()}
    return records, _last_run(root / f"{out}.manifest.json")


def _last_run(manifest: Path) -> dict:
    return json.loads(manifest.read_text())["runs"][-1]


def _same_records(a: dict[str, dict], b: dict[str, dict]) -> None:
    assert sorted(a) == sorted(b)
    for path in a:
        mine, theirs = _comparable(a[path]), _comparable(b[path])
        assert mine == theirs, path


def _comparable(record: dict) -> dict:
    """The record but its run fields. A broken file's fallbacks say how each failed, and a
    decoder that is slow to give up on a loaded machine stalls (DecodeStallError) where it
    refused the file on a quiet one: that part of the message depends on the load, either path."""
    out = {k: v for k, v in record.items() if k not in _RUN_FIELDS}
    if out.get("error"):
        out["error"] = {**out["error"], "message": out["error"]["message"].split(" (fallbacks failed too")[0]}
    return out


def test_a_small_scan_runs_without_ray_and_writes_the_records_ray_writes(embedded_scan, ray_scan):
    (embedded, manifest), (on_ray, ray_manifest) = embedded_scan, ray_scan
    _same_records(embedded, on_ray)
    statuses = {Path(p).name: r["status"] for p, r in embedded.items()}
    assert statuses == {"copy.mp4": "ok", "other.mp4": "ok", "broken.mp4": "error", "still.png": "ok"}
    copy = next(r for p, r in embedded.items() if p.endswith("copy.mp4"))
    assert copy["matches"] and copy.get("second_pass", {}).get("status", "ok") == "ok"
    # No Ray node decoded or hashed anything; the Ray path's records name its nodes.
    assert all(r["ran_on"] == {"decode_node": None, "model_node": None, "model_actor": None} for r in embedded.values())
    assert all(r["ran_on"]["decode_node"] for p, r in on_ray.items() if not p.endswith("broken.mp4"))
    assert manifest["cluster"]["nodes"] == [] and manifest["cluster"]["model_actors"][0]["in_process"] is True
    assert ray_manifest["cluster"]["nodes"]


def test_more_files_than_the_limit_go_to_ray(folder, monkeypatch):
    # the scan's choice (vscan.runtime.embedded.embedded_files, as the driver asks it): the folder's 4 files against
    # limits around them; that a scan the choice sends to Ray runs there is the Ray scans' check (ray_scan's manifest)
    from dataclasses import replace

    from vscan.config import Runtime, ScanConfig
    from vscan.runtime.embedded import embedded_files

    if "ray" in sys.modules:  # an earlier test's Ray in this process would send the scan to Ray anyway
        monkeypatch.setattr(sys.modules["ray"], "is_initialized", lambda: False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    config = ScanConfig(runtime=Runtime(device="cpu"))
    limit = lambda n: replace(config, runtime=replace(config.runtime, embedded_max_files=n))  # noqa: E731
    assert embedded_files([folder / "in"], limit(3), None) is None  # 4 files > 3: Ray
    assert len(embedded_files([folder / "in"], limit(4), None)) == 4 and embedded_files([folder / "in"], limit(0), None) is None


_CRASH = textwrap.dedent(
    """
    import json, os, signal, sys
    import vscan
    from vscan.config import Runtime, ScanConfig
    from vscan.runtime import embedded

    decode = embedded._DecodeProcess.decode
    def crash_once(self, task, config):
        decode(self, task, config)
        # The decode process dies with a video in hand, as a decoder's abort would end it. (Killed at its first
        # answer instead, a process whose answer was already written, the broken file's error given at once, was
        # not seen to crash.)
        if not getattr(embedded, "crashed", False) and not str(task.path).endswith("broken.mp4"):
            embedded.crashed = True
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
    embedded._DecodeProcess.decode = crash_once
    vscan.scan(["in"], bank="b.bank", out=sys.argv[1], config=ScanConfig(runtime=Runtime(device="cpu")))
    print(json.dumps(embedded.crashed))
    """
)


def test_a_decode_process_that_crashes_hands_its_files_to_ray(folder, ray_scan):
    run = subprocess.run([sys.executable, "-c", _CRASH, "crash.jsonl"], cwd=folder, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) is True
    crashed = {json.loads(line)["path"]: json.loads(line) for line in (folder / "crash.jsonl").read_text().splitlines()}
    _same_records(crashed, ray_scan[0])  # every file once, none recorded as the crash's fault
    manifest = _last_run(folder / "crash.jsonl.manifest.json")
    assert manifest["cluster"]["nodes"]  # the files left went to Ray


_BAR = textwrap.dedent(
    """
    import json, sys, threading, time
    import vscan
    from vscan.cli.progress import waiting_for
    from vscan.config import Runtime, ScanConfig

    seen, first = [], threading.Event()
    def watch():
        while not first.is_set():
            text = waiting_for()
            if not seen or seen[-1] != text:
                seen.append(text)
            time.sleep(0.005)
    threading.Thread(target=watch, daemon=True).start()
    for record in vscan.scan_iter(["in"], bank="b.bank", out=sys.argv[1], config=ScanConfig(runtime=Runtime(device="cpu"))):
        if record.get("status") == "ok":  # a broken file's error record can come before the models load
            first.set()
    print(json.dumps(seen))
    """
)


def test_the_bar_says_a_small_scan_needs_no_ray(folder):
    from vscan.cli.progress import WAITING_FOR_MODELS, WAITING_HERE_FOR_FILES, WAITING_HERE_FOR_MODELS

    run = subprocess.run([sys.executable, "-c", _BAR, "bar.jsonl"], cwd=folder, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert WAITING_HERE_FOR_MODELS in seen and WAITING_HERE_FOR_FILES in seen, seen
    assert WAITING_FOR_MODELS not in seen  # never "Ray up"


def test_a_state_run_without_ray_skips_unchanged_content_as_ray_does(folder):
    import shutil

    for name in ("embedded", "ray"):  # one earlier run over two of the files, its state copied for each path
        (folder / f"st-{name}").mkdir()
    work = folder / "st-in"
    work.mkdir()
    shutil.copy(folder / "in" / "copy.mp4", work / "copy.mp4")
    shutil.copy(folder / "in" / "other.mp4", work / "other.mp4")
    first = subprocess.run([sys.executable, "-m", "vscan.cli", "scan", "st-in", "--bank", "b.bank", "--out", "st-first.jsonl",
                            "--device", "cpu", "-q", "--state", "st.sqlite"], cwd=folder, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert first.returncode == 0, first.stderr
    shutil.copy(folder / "in" / "still.png", work / "still.png")  # new content beside the unchanged files
    runs = {}
    for name, extra in (("embedded", ()), ("ray", ("--config", "ray.toml"))):
        shutil.copy(folder / "st.sqlite", folder / f"st-{name}" / "st.sqlite")
        run = subprocess.run([sys.executable, "-m", "vscan.cli", "scan", "st-in", "--bank", "b.bank", "--out", f"st-{name}.jsonl",
                              "--device", "cpu", "-q", "--state", f"st-{name}/st.sqlite", *extra],
                             cwd=folder, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert run.returncode == 0, run.stderr
        runs[name] = {json.loads(line)["path"]: json.loads(line) for line in (folder / f"st-{name}.jsonl").read_text().splitlines()}
    _same_records(runs["embedded"], runs["ray"])
    skipped = {Path(p).name: r.get("skipped") for p, r in runs["embedded"].items()}
    assert skipped == {"copy.mp4": "unchanged", "other.mp4": "unchanged", "still.png": None}
    assert _last_run(folder / "st-embedded.jsonl.manifest.json")["cluster"]["nodes"] == []


def test_ctrl_c_in_a_scan_without_ray_saves_what_is_done_and_leaves_no_decode_process(folder):
    import os
    import signal
    import time

    many = folder / "many"
    for i in range(12):  # a model call's files are committed together: enough files for several commits
        synth.make_clip(many / f"c{i}.mp4", seed=50 + i, seconds=5)
    out = folder / "ctrl-c.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "vscan.cli", "scan", "many", "--bank", "b.bank", "--out", out.name, "--device", "cpu", "-q"],
                            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 300

    def on_disk() -> int:
        return out.read_text().count("\n") if out.exists() else 0

    # Records are committed in groups, each written then handed out: a second commit on disk means the first was
    # handed out (Ctrl-C right after the first commit may find none handed out yet: under load the run said 0).
    first = 0
    while proc.poll() is None and time.monotonic() < deadline and not (first and on_disk() > first):
        first = first or on_disk()
        time.sleep(0.02)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert proc.poll() is None and children, "the scan ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    saved = out.read_text().count("\n")
    assert saved < 12 and "Interrupted: " in err, err
    said = int(err.split("Interrupted: ")[1].split()[0])  # handed out; one more may be on disk, written as Ctrl-C came
    assert 1 <= said <= saved, err
    time.sleep(0.5)
    assert not [c for c in children if os.path.exists(f"/proc/{c}")]  # the decode processes went with it
    run = _last_run(folder / "ctrl-c.jsonl.manifest.json")
    assert run["status"] == "interrupted" and run["cluster"]["nodes"] == []  # it ran without Ray
    again = subprocess.run([sys.executable, "-m", "vscan.cli", "scan", "many", "--bank", "b.bank", "--out", out.name, "--device", "cpu", "-q"],
                           cwd=folder, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert sorted(json.loads(line)["path"] for line in out.read_text().splitlines()) == sorted(str(p) for p in many.glob("*.mp4"))


def test_a_ray_address_in_the_environment_means_the_cluster(folder, monkeypatch):
    """RAY_ADDRESS is how Ray's docs point a job at a cluster: such a scan uses it, however small."""
    from vscan.config import Runtime, ScanConfig
    from vscan.runtime.embedded import embedded_files

    config = ScanConfig(runtime=Runtime(device="cpu"))
    if "ray" in sys.modules:  # an earlier test's Ray in this process would send the scan to Ray anyway
        monkeypatch.setattr(sys.modules["ray"], "is_initialized", lambda: False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert embedded_files([folder / "in"], config, None)  # small: no Ray
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert embedded_files([folder / "in"], config, None) is None


_NO_TORCH = textwrap.dedent(
    """
    import json, sys
    import vscan
    from vscan.config import Runtime, ScanConfig

    summary = vscan.scan(["in"], bank="b.bank", out=sys.argv[1], config=ScanConfig(runtime=Runtime(device="cpu")))
    print(json.dumps({"torch": "torch" in sys.modules, "matched": summary.matched}))
    """
)


def test_a_cpu_scan_matches_without_importing_torch(folder):
    """Asking torch whether it sees a GPU imports it (1.5-5 s of a small scan's start-up): a model
    stage planned on CPU matches on CPU without asking (vscan.runtime.file_match.match_settings)."""
    run = subprocess.run([sys.executable, "-c", _NO_TORCH, "no-torch.jsonl"], cwd=folder, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen == {"torch": False, "matched": 1}, seen


_SLOW_MODEL = textwrap.dedent(
    """
    import json, sys, time
    import vscan
    from vscan.config import Runtime, ScanConfig
    from vscan.runtime import embedded

    build = embedded._model
    def slow_model(*args, **kwargs):  # a model that loads slowly (a loaded machine): every file is decoded before it answers
        time.sleep(float(sys.argv[2]))
        return build(*args, **kwargs)
    embedded._model = slow_model
    summary = vscan.scan(["in"], bank="b.bank", out=sys.argv[1], config=ScanConfig(runtime=Runtime(device="cpu")))
    print(json.dumps(summary.pipeline))
    """
)


def test_files_decoded_while_the_model_loads_go_to_it_in_one_call(folder, embedded_scan):
    """The model runs on a thread of its own (vscan.runtime.embedded_model): files decoded meanwhile wait
    for it, and its call takes every one waiting, as a Ray model actor's call does; the records are the Ray path's."""
    run = subprocess.run([sys.executable, "-c", _SLOW_MODEL, "slow.jsonl", "4"], cwd=folder, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    pipeline = json.loads(run.stdout.strip().splitlines()[-1])
    assert pipeline["embedded"] is True
    # copy.mp4, other.mp4 and still.png in the first call (broken.mp4 never reaches the model), copy.mp4's second pass in another
    assert pipeline["calls"] < pipeline["files"] and pipeline["max_frames_per_call"] > 0, pipeline
    records = {json.loads(line)["path"]: json.loads(line) for line in (folder / "slow.jsonl").read_text().splitlines()}
    _same_records(records, embedded_scan[0])


_NATIVE = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from threadpoolctl import threadpool_info
    import vscan
    from vscan.config import Runtime, ScanConfig
    from vscan.runtime.model_pool import plan_actors

    def blas():
        return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})

    before, during, children = blas(), None, []
    for record in vscan.scan_iter(["in"], bank="b.bank", out=sys.argv[1], config=ScanConfig(runtime=Runtime(device="cpu"))):
        if during is None:
            during = blas()
            pids = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split()
            children = [dict(v.split("=", 1) for v in open(f"/proc/{p}/environ").read().split("\\0") if "=" in v).get("OPENBLAS_NUM_THREADS") for p in pids]
    threads = plan_actors([{"node_id": None, "cpus": os.cpu_count(), "gpus": 0}], ScanConfig(runtime=Runtime(device="cpu")))[0].threads
    print(json.dumps({"before": before, "during": during, "after": blas(), "threads": threads, "children": children}))
    """
)


def test_a_scan_without_ray_keeps_native_thread_pools_to_its_threads(folder, monkeypatch):
    """OpenBLAS's threads spin between the model's small products: on a busy 2-core machine the 256-clip
    sweep took 3x the CPU with them. Ray's workers get OMP_NUM_THREADS from their CPUs; a scan without Ray
    limits its own process to the model's threads for the scan, and its decode processes to one."""
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    run = subprocess.run([sys.executable, "-c", _NATIVE, "native.jsonl"], cwd=folder, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["during"] == [seen["threads"]] and seen["after"] == seen["before"], seen
    assert seen["children"] and set(seen["children"]) == {"1"}, seen


_CPU = textwrap.dedent(
    """
    import json, resource, sys
    import vscan
    from vscan.config import Runtime, ScanConfig

    def used(who):
        r = resource.getrusage(who)
        return r.ru_utime + r.ru_stime

    own, children = used(resource.RUSAGE_SELF), used(resource.RUSAGE_CHILDREN)
    summary = vscan.scan(["in"], bank="b.bank", out=sys.argv[1], config=ScanConfig(runtime=Runtime(device="cpu")))
    print(json.dumps({**summary.pipeline, "own": used(resource.RUSAGE_SELF) - own, "children": used(resource.RUSAGE_CHILDREN) - children}))
    """
)


def test_a_scan_without_ray_says_where_its_cpu_went(folder):
    """Issue #30: the profile splits the scan's CPU into its decode processes, the model's build and calls
    (this process's model thread) and the rest of this process (the driver), so the archive bench accounts for it."""
    run = subprocess.run([sys.executable, "-c", _CPU, "cpu.jsonl"], cwd=folder, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["decode_processes"] >= 1 and seen["model_build_cpu_seconds"] > 0 and seen["model_calls_cpu_seconds"] > 0, seen
    assert seen["model_build_cpu_seconds"] + seen["model_calls_cpu_seconds"] <= seen["own"], seen
    # read just before each process was ended, idle: all but the clock tick under way (and its exit) of what the OS counted
    assert 0 < seen["decode_processes_cpu_seconds"] <= seen["children"] + 0.02, seen
    assert seen["children"] - seen["decode_processes_cpu_seconds"] < 0.05 * seen["decode_processes"] + 0.1, seen

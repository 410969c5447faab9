"""A real 2-node Ray cluster on loopback: `ray start --head` plus a second
raylet (`ray start --address`), each with one CPU, token authentication, a
private temp dir. `vscan scan --ray-address` decodes on both nodes, and the
worker raylet is killed with SIGKILL mid-scan: every input still gets
exactly one ok record, none an infrastructure error.

The cluster is vscan.bench.loopback's (shared with the capacity benchmark):
every process it starts runs in its own session and is killed by that id,
with any process still holding the private temp dir, which is then removed
(its ray_current_cluster too): nothing is left for a later local ray.init
to join, even when a test fails.
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
from vscan.bench.loopback import LoopbackCluster
from vscan import Bank

VSCAN = [sys.executable, "-m", "vscan.cli"]


@pytest.fixture(scope="module")
def cluster():
    with LoopbackCluster(nodes=2, cpus_per_node=1) as c:
        yield c


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Forty small clips (two of them edits of a banked clip), and the bank:
    enough work that the scan is still running when the worker node, whose
    first worker may take seconds to start on a loaded machine, has decoded
    its first file and goes."""
    root = tmp_path_factory.mktemp("corpus")
    src = synth.make_clip(root / "reported.mp4", seed=5, seconds=6, size=(160, 120))
    clips = root / "in"
    files = [synth.edit_clip(src, clips / "reencoded.mp4", "reencode"), synth.edit_clip(src, clips / "mirrored.mp4", "hflip")]
    # Four encoded clips, each muxed again ten times with its own tag (other bytes, the same frames to decode): the
    # scan's work of 38 clips for the encoding of four.
    sources = [synth.make_clip(root / f"source{i}.mp4", seed=100 + i, seconds=8, size=(160, 120)) for i in range(4)]
    for i in range(38):
        files.append(clips / f"clip{i:02d}.mp4")
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(sources[i % 4]), "-c", "copy",
                        "-metadata", f"comment=clip {i}", str(files[-1])], check=True)  # fmt: skip
    bank = root / "bank.db"
    Bank.build(bank, [src], label="reported")
    return clips, files, bank


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []


def test_two_nodes_decode_and_a_killed_worker_raylet_loses_nothing(cluster, corpus, tmp_path):
    clips, files, bank = corpus
    out = tmp_path / "r.jsonl"
    cmd = [*VSCAN, "scan", str(clips), "--bank", str(bank), "--out", str(out), "--ray-address", cluster.address,
           "--every-frame", "--device", "cpu", "--quiet"]  # fmt: skip
    scan = subprocess.Popen(cmd, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed_at = None
    try:
        deadline = time.monotonic() + 120
        while scan.poll() is None and time.monotonic() < deadline:
            nodes = {r["ran_on"]["decode_node"] for r in _records(out)}
            if len(nodes) >= 2:  # both nodes have decoded a file: now the worker node goes
                killed_at = len(_records(out))
                os.kill(cluster.worker_raylet(), signal.SIGKILL)
                os.killpg(cluster.worker.pid, signal.SIGKILL)  # and the rest of that node: its workers, its object store
                break
            time.sleep(0.1)
        output, _ = scan.communicate(timeout=180)
    finally:
        if scan.poll() is None:
            scan.kill()
    assert scan.returncode == 0, output
    assert killed_at is not None and killed_at < len(files), f"the worker raylet was not killed mid-scan ({killed_at})"
    records = _records(out)
    assert sorted(r["path"] for r in records) == sorted(str(f) for f in files)  # each input exactly once
    assert [r for r in records if r["status"] != "ok"] == []  # no infrastructure (or any) error record
    assert len({r["ran_on"]["decode_node"] for r in records}) == 2
    assert all(r["ran_on"]["model_node"] and r["ran_on"]["model_actor"] for r in records)
    matched = {Path(r["path"]).name for r in records if any(m["is_match"] for m in r["matches"])}
    assert matched == {"reencoded.mp4", "mirrored.mp4"}
    (run,) = json.loads(Path(f"{out}.manifest.json").read_text())["runs"]
    assert run["status"] == "completed" and len(run["cluster"]["model_actors"]) == 2
    # One actor per node at the start; the killed node's actor may have been restarted on the other.
    assert {a["model_node"] for a in run["cluster"]["model_actors"]} <= {r["ran_on"]["decode_node"] for r in records}


def test_without_an_address_a_scan_starts_its_own_ray_beside_a_cluster(cluster, corpus, tmp_path):
    """RAY_ADDRESS names the running cluster, as after `ray start`: a plain scan
    still starts (and stops) its own local Ray instead of joining it."""
    clips, files, bank = corpus
    out = tmp_path / "r.jsonl"
    env = {**cluster.env, "RAY_ADDRESS": cluster.address}
    ray_path = tmp_path / "ray.toml"  # one file would be scanned without Ray at all (vscan.runtime.embedded): this is about the Ray it starts
    ray_path.write_text("[runtime]\nembedded_max_files = 0\n")
    run = subprocess.run([*VSCAN, "scan", str(files[0]), "--bank", str(bank), "--out", str(out), "--device", "cpu", "-q",
                          "--config", str(ray_path)], env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert run.returncode == 0, run.stderr
    (record,) = _records(out)
    (manifest,) = json.loads(Path(f"{out}.manifest.json").read_text())["runs"]
    (node,) = manifest["cluster"]["nodes"]
    assert record["status"] == "ok" and record["ran_on"]["decode_node"] == node["node_id"]
    assert node["cpus"] == (os.cpu_count() or 1)  # not the cluster's 1-CPU nodes


def test_a_wrong_token_stops_the_scan_with_one_message(cluster, corpus, tmp_path):
    clips, files, bank = corpus
    # Ray retries a refused GCS connection about 20 times, a second apart, before giving up (20 s of this test);
    # its own setting for that window, at 2 tries: the refusal and vscan's one message are the same.
    env = {**cluster.env, "RAY_AUTH_TOKEN": "0" * 32, "RAY_gcs_server_port_wait_time_s": "2"}
    out = tmp_path / "r.jsonl"
    run = subprocess.run([*VSCAN, "scan", str(files[0]), "--bank", str(bank), "--out", str(out), "--ray-address",
                          cluster.address, "-q"], env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert run.returncode == 1
    assert "cannot join the Ray cluster" in run.stderr and "RAY_AUTH_TOKEN" in run.stderr, run.stderr
    assert _records(out) == []

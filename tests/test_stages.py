"""The scan's stages on real Ray: the one frame budget (vscan.runtime.scheduler)
and typed payloads crossing the Ray boundaries (vscan.runtime.payload)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from vscan.bench import synth
from vscan.config import Matching, Runtime, Sampling, ScanConfig
from vscan.decode import EveryFrame
from vscan.output.sinks import JsonlSink
from vscan.runtime.driver import CALL_BATCHES, QUEUE_BATCHES, run_scan


def test_frames_waiting_for_the_model_never_pass_the_budget(tmp_path, ray_local):
    # Tiny clips decoded at every frame: decoding a file costs far less than
    # hashing its 50 frames at 256 px, and the model actor takes seconds to
    # start, so decoded frames pile up in front of the model stage unless the
    # scheduler holds decoding back. Up to 8 decode tasks may be in flight.
    clips = [synth.make_clip(tmp_path / "in" / f"c{i}.mp4", seed=i, seconds=2.0, size=(64, 48), scenes=1) for i in range(12)]
    batch = 16
    config = ScanConfig(sampling=Sampling(policy=EveryFrame()), matching=Matching(mode="vpdq"),  # (no border, overlay or region search)
                        runtime=Runtime(device="cpu", batch_frames=batch, decode_inflight=8, small_file_group=1))  # fmt: skip
    out = tmp_path / "r.jsonl"
    with JsonlSink(out) as sink:
        summary = run_scan([tmp_path / "in"], sink=sink, config=config)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 12 and all(r["status"] == "ok" for r in records)
    per_file = {r["frames_sampled"] for r in records}
    assert per_file == {50}, per_file
    budget = QUEUE_BATCHES * batch  # one model actor
    profile = summary.pipeline
    assert profile["model_actors"] == 1
    assert 0 < profile["max_ready_frames"] <= budget, profile
    # Calls of bounded size: files gathered up to CALL_BATCHES batches (one 50-frame file each here).
    assert profile["max_frames_per_call"] <= CALL_BATCHES * batch, profile
    assert profile["model_calls"] == 12


def _payload(n: int) -> dict:
    return {"frames": np.zeros((n, 4, 4, 3), np.uint8), "frame_numbers": np.arange(n, dtype=np.int64),
            "timestamps": np.arange(n, dtype=np.float64)}  # fmt: skip


def test_a_payload_that_breaks_its_row_rules_fails_where_it_is_built():
    from vscan.runtime.payload import DecodedFile, PayloadError

    good = DecodedFile.from_dict({**_payload(3), "unbordered_frames": np.zeros((3, 4, 4, 3), np.uint8), "border_box": np.zeros(4)})
    assert good.unbordered is not None and "unbordered_frames" in good and len(good["frames"]) == 3
    with pytest.raises(PayloadError, match="unbordered frames: 2 rows"):
        DecodedFile.from_dict({**_payload(3), "unbordered_frames": np.zeros((2, 4, 4, 3), np.uint8)})
    with pytest.raises(PayloadError, match="timestamps"):
        DecodedFile.from_dict({**_payload(3), "timestamps": np.zeros(2)})
    with pytest.raises(PayloadError, match="region rows point past"):  # a still's windows naming a sample it does not have
        DecodedFile.from_dict({**_payload(1), "region_hashes": np.zeros((2, 8, 32), np.uint8), "region_quality": np.zeros(2),
                               "region_box": np.zeros((2, 4)), "region_rows": np.array([0, 1])})  # fmt: skip
    with pytest.raises(PayloadError, match="unknown payload keys"):
        DecodedFile.from_dict({**_payload(1), "region_row": np.zeros(1)})


RESTART = textwrap.dedent(
    """
    import sys, ray
    from vscan.config import Models, Runtime, ScanConfig
    from vscan.runtime.decode_task import decode_for_scan
    from vscan.runtime.model_pool import ModelPool
    from vscan.runtime.ray_start import cluster_nodes
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    clip, manifest, model_file = sys.argv[1:]
    # two fake GPUs: two model actors, on the CPU, each with a detector read from its file when the actor starts
    config = ScanConfig(models=Models(detectors=(manifest,)), runtime=Runtime(device="auto"))
    _, payload = decode_for_scan(clip, config)
    frames = len(payload["frames"])
    ref = ray.put(payload)
    pool = ModelPool(config, None, cluster_nodes())
    while not pool.started(timeout=1.0):
        pass
    assert len(pool.actors) == 2
    import os, time
    with open(model_file, "r+b") as f:  # from now on a restarted actor cannot build its model (its file's digest is wrong)
        f.write(b"not a model")
    call = pool.submit([(0, None, None, 1)], [ref], frames)  # to actor 0 (all idle: the first)
    ray.kill(pool.actors[0], no_restart=False)  # dies in the call; Ray restarts it
    try:
        ray.get(call)
    except ray.exceptions.RayError as exc:
        print("DIED WITH", type(exc).__name__)
        pool.finished(call, exc)
    time.sleep(3.0)  # past the failed actor's time out of dispatch
    calls = []
    for k in range(4):  # files go on: every call must land on an actor that can take it
        while (call := pool.submit([(k, None, None, 1)], [ref], frames)) is None:
            time.sleep(0.2)
        calls.append(call)
    failed = 0
    for call in calls:
        try:
            ray.get(call)
            pool.finished(call)
        except ray.exceptions.RayError as exc:
            failed += 1
            pool.finished(call, exc)
            print("CALL FAILED", type(exc).__name__, str(exc).splitlines()[-1])
    deadline = time.monotonic() + 60
    while 0 not in pool.retired and time.monotonic() < deadline:
        pool.usable()
        time.sleep(0.5)
    print("FAILED", failed)
    print("RETIRED", pool.retired)
    """
)


def test_an_actor_whose_restart_fails_is_retired_without_being_sent_files(tmp_path):
    import tests._onnx_models as tm

    clip = synth.make_clip(tmp_path / "c.mp4", seed=5, seconds=2, size=(128, 96))
    manifest = tm.colour_classifier(tmp_path / "colour")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run = subprocess.run([sys.executable, "-c", RESTART, str(clip), str(manifest), str(tmp_path / "colour" / "colour.onnx")], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "FAILED 0" in run.stdout, run.stdout  # no file call went to the broken restart
    (retired,) = [line for line in run.stdout.splitlines() if line.startswith("RETIRED")]
    assert "0:" in retired and "could not build its model" in retired, run.stdout


def test_the_budget_reserves_frames_for_decodes_in_flight_and_keeps_slots_busy():
    from vscan.runtime.scheduler import FrameBudget

    budget = FrameBudget(frames=100, call_frames=40, decode_tasks=8, model_calls=2, frame_bytes=3, slots=2, first_estimate=50)
    assert budget.may_decode(0, 0, 0) and budget.may_decode(0, 1, 1)  # nothing waits: every slot takes a file
    assert not budget.may_decode(0, 2, 2)  # two files reserved at 50 each fill the budget
    budget.landed(10)
    budget.landed(30)
    assert budget.per_file == 20  # what files brought on average
    assert budget.may_decode(40, 2, 2)  # 40 waiting + 3 x 20 reserved = 100
    assert not budget.may_decode(41, 2, 2)
    assert not budget.may_decode(0, 1, 8)  # decode tasks in flight: at most 8
    big = FrameBudget(frames=100, call_frames=40, decode_tasks=8, model_calls=2, frame_bytes=3, slots=2, first_estimate=50)
    big.landed(500)  # files bigger than the whole budget: one per slot while nothing waits, none while one waits
    assert big.may_decode(0, 1, 1) and not big.may_decode(500, 0, 0)
    assert budget.describe()["frame_budget_bytes"] == 300


def test_a_model_call_waiting_on_a_node_that_went_is_given_up_and_its_files_decoded_again(ray_local, monkeypatch):
    """Ray may neither answer nor fail a call whose frames were decoded on a node that died (or
    whose actor is restarting): past NODE_LOSS_GRACE the model stage gives it up, frees its load
    and sends its files to be decoded again, a node fault (not the file's); calls that touch no
    lost node, or lost it only just now, wait on."""
    import time

    import ray

    import vscan.runtime.faults as faults_mod
    from vscan.runtime.faults import InfraFaults
    from vscan.runtime.outcome import Outcomes, Task
    from vscan.runtime.payload import FileSummary
    from vscan.runtime.stages import ModelStage
    from vscan.runtime.summary import ScanSummary
    from vscan.verdict.risk import DefaultRiskPolicy

    @ray.remote(num_cpus=0)
    class Stuck:  # a call that never comes back, as one blocked on frames that went with their node
        def run(self) -> None:
            time.sleep(3600)

    stuck = Stuck.remote()
    records, decoded_again = [], []
    outcomes = Outcomes(records.append, policy_text="", risk_policy=DefaultRiskPolicy(), timeout_seconds=60)
    here = ray.get_runtime_context().get_node_id()

    class Pool:  # where calls run, and what giving one up frees (the real pool's bookkeeping is ModelPool's)
        def __init__(self) -> None:
            self.abandoned: list = []

        def node_of(self, ref):
            return here

        def abandon(self, ref) -> None:
            self.abandoned.append(ref)
            ray.cancel(ref)

    pool = Pool()
    stage = ModelStage(pool=pool, outcomes=outcomes, queues=None, batch_frames=4, refine=lambda task: None)
    stage.faults = InfraFaults(outcomes, ScanSummary(), to_model=stage.enqueue, resubmit_alone=decoded_again.append,
                               file_timeout_seconds=60, dead_nodes=set())  # fmt: skip
    monkeypatch.setattr(faults_mod, "NODE_POLL_SECONDS", 3600.0)  # no second look at the (live) local cluster
    stage.faults._polled = time.monotonic()

    def call(key: int, node: str, actor_node: str = here) -> Task:
        task = Task(key=key, path=f"/in/{key}.mp4", attempt_decoder="pyav", submitted=time.monotonic(),
                    summary=FileSummary(path=f"/in/{key}.mp4", node=node))  # fmt: skip
        ref = stuck.run.remote()
        stage.calls[ref], stage.sent[ref] = [task], (time.monotonic() - 100, actor_node)
        return task

    gone, recent = "f" * 56, "e" * 56  # nodes that died: long enough ago, and just now
    lost_files, recent_files, live_files = call(1, gone), call(2, recent), call(3, here)
    lost_actor = call(4, here, actor_node=gone)  # sent to an actor on the node that went (restarted elsewhere since)
    stage.faults.lost_at.update({gone: time.monotonic() - faults_mod.NODE_LOSS_GRACE - 1, recent: time.monotonic()})
    stage.reap_lost()
    assert decoded_again == [lost_files, lost_actor] and len(pool.abandoned) == 2
    assert lost_files.node_faults == 1 and lost_files.infra_failures == 0 and lost_files.summary is None
    assert sorted(t.key for batch in stage.calls.values() for t in batch) == [recent_files.key, live_files.key]
    assert records == []  # no record: the file is not at fault
    ray.kill(stuck)


WEDGED = textwrap.dedent(
    """
    import sys, time, ray
    from vscan.config import Runtime, ScanConfig
    from vscan.runtime.decode_task import decode_for_scan
    from vscan.runtime.model_pool import ModelPool
    from vscan.runtime.ray_start import cluster_nodes
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = ScanConfig(runtime=Runtime(device="cpu"))
    _, payload = decode_for_scan(sys.argv[1], config)
    frames, ref = len(payload["frames"]), ray.put(payload)
    pool = ModelPool(config, None, cluster_nodes())
    while not pool.started(timeout=1.0):
        pass
    assert len(pool.actors) == 1
    never = ray.remote(num_cpus=0)(lambda: time.sleep(3600)).remote()  # frames that never come, as ones lost with their node
    before = pool.submit([(9, None, None, 1)], [ref], frames)  # sent before it: answered after it was sent
    stuck = pool.submit([(0, None, None, 1)], [never], frames)
    behind = pool.submit([(1, None, None, 1)], [ref], frames)  # queued behind it on the same actor
    ray.get(before, timeout=120)
    pool.finished(before)
    done, _ = ray.wait([behind], timeout=3)  # an idle actor answers one in ~0.1 s
    print("BEHIND BEFORE", bool(done))
    pool.abandon(stuck)  # the actor answered no call sent after it: restarted, so the call behind fails and goes elsewhere
    try:
        ray.get(behind, timeout=120)
        print("BEHIND ANSWERED")
    except ray.exceptions.RayActorError as exc:
        print("BEHIND FAILED", type(exc).__name__)
        pool.finished(behind, exc)
    deadline = time.monotonic() + 120
    while (call := pool.submit([(2, None, None, 1)], [ref], frames)) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    answered = ray.get(call, timeout=120)
    pool.finished(call)
    print("AFTER", len(answered), pool.load, pool.retired)
    """
)


def test_an_actor_wedged_behind_a_given_up_call_is_restarted_and_takes_files_again(tmp_path):
    """Ray runs an actor's calls in order: one blocked on frames lost with their node blocks every
    call behind it. Giving it up restarts the actor (it answered nothing since), so those calls
    fail at once (and go elsewhere) and the restarted actor takes files again."""
    clip = synth.make_clip(tmp_path / "c.mp4", seed=5, seconds=2, size=(128, 96))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run = subprocess.run([sys.executable, "-c", WEDGED, str(clip)], env=env, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "BEHIND BEFORE False" in run.stdout, run.stdout  # wedged
    assert "BEHIND FAILED" in run.stdout, run.stdout  # released by the restart, not left waiting
    assert "AFTER 1 [0] {}" in run.stdout, run.stdout  # the restart answers, takes a call, and holds no load

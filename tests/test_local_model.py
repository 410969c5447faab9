"""The model stage in the scanning process while the model actor starts (vscan.runtime.local_model,
issue #30): the pool sends its calls there until an actor answers, with the actor's results, then
only to the actors; a call the local model fails goes to an actor."""

from __future__ import annotations

import time

from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.bench import synth
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import FixedRate
from vscan.runtime.decode_task import decode_for_scan
from vscan.runtime.local_model import LocalModel, local_model_wanted
from vscan.runtime.model_actor import ModelWorker


def _plan(config: ScanConfig):
    from vscan.runtime.model_pool import plan_actors

    return plan_actors([{"node_id": None, "cpus": 2, "gpus": 0}], config)[0]


def _comparable(result) -> list:
    return [(m.bank_entry_id, m.is_match, m.matched_seconds) for m in result.matches]


def test_calls_go_to_the_local_model_until_an_actor_answers(tmp_path, ray_local):
    import ray

    from vscan.runtime.model_pool import ModelPool, put_bank_index
    from vscan.runtime.payload import ModelResult
    from vscan.runtime.ray_start import cluster_nodes

    clip = synth.make_clip(tmp_path / "clip.mp4", seed=11, seconds=3.0, size=(160, 120))
    bank = tmp_path / "bank.db"
    build_bank(bank, [clip], hash_media=media_hasher(FixedRate(1.0), "cpu"))
    config = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu"))
    _, payload = decode_for_scan(str(clip), config)
    expected = ModelWorker(config, bank).run([(0, None, None, 1)], payload)[0]

    local = LocalModel.start(config, bank, [str(clip)], None, _plan(config))
    deadline = time.monotonic() + 120
    while not local.ready and not local.failed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert local.ready, local.error
    nodes = cluster_nodes()
    pool = ModelPool(config, put_bank_index(bank, config, nodes), nodes, local=local)
    try:
        ref = pool.submit([(0, None, None, 1)], [ray.put(payload)], len(payload.frames))
        assert ref is not None and pool.answering() and not pool.answered()  # answered here, the actor still starting
        (result,) = [ModelResult.of(r) for r in ray.get(ref)]
        pool.finished(ref)
        assert result.ran_on == {"model_node": None, "model_actor": None} and _comparable(result) == _comparable(expected)
        assert any(m.is_match for m in result.matches)
        assert pool.cluster()[-1]["in_process"] and pool.stats()["calls"] == 1
        while not pool.started(timeout=1.0):
            pass
        ref = pool.submit([(0, None, None, 1)], [ray.put(payload)], len(payload.frames))  # an actor answers: to it
        (result,) = [ModelResult.of(r) for r in ray.get(ref)]
        pool.finished(ref)
        assert result.ran_on["model_actor"] is not None and _comparable(result) == _comparable(expected)
        assert pool.local is None and local.worker is None  # let go
    finally:
        pool.close()


def test_wanted_only_for_a_private_local_ray_on_cpu(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cpu = ScanConfig(runtime=Runtime(device="cpu", local_model_at_start=True))
    assert not local_model_wanted(ScanConfig(runtime=Runtime(device="cpu")), None, may_use_a_gpu=False)  # off by default
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    import sys

    ray_up = "ray" in sys.modules and sys.modules["ray"].is_initialized()
    assert local_model_wanted(cpu, None, may_use_a_gpu=False) is not ray_up  # a Ray already running in this process: its actors
    assert not local_model_wanted(cpu, "127.0.0.1:6379", may_use_a_gpu=False)
    assert not local_model_wanted(ScanConfig(runtime=Runtime(device="cuda", local_model_at_start=True)), None, may_use_a_gpu=False)
    assert not local_model_wanted(cpu, None, may_use_a_gpu=True)
    monkeypatch.setattr("os.cpu_count", lambda: 32)
    assert not local_model_wanted(cpu, None, may_use_a_gpu=False)


def test_a_call_the_local_model_fails_goes_to_an_actor(tmp_path, ray_local):
    import ray

    from vscan.runtime.model_pool import ModelPool, put_bank_index
    from vscan.runtime.payload import ModelResult
    from vscan.runtime.ray_start import cluster_nodes

    config = ScanConfig(runtime=Runtime(device="cpu"))
    local = LocalModel.start(config, None, [], None, _plan(config))
    while not local.ready and not local.failed:
        time.sleep(0.05)

    def fails(*_args):
        raise RuntimeError("out of memory")

    local.worker.run = fails
    nodes = cluster_nodes()
    pool = ModelPool(config, put_bank_index(None, config, nodes), nodes, local=local)
    try:
        clip = synth.make_clip(tmp_path / "clip.mp4", seed=12, seconds=2.0, size=(160, 120))
        _, payload = decode_for_scan(str(clip), ScanConfig(sampling=Sampling(policy=FixedRate(1.0))))
        refs = [ray.put(payload)]
        assert pool.submit([(0, None, None, 1)], refs, 2) is None and local.failed  # not the file's fault: tried again
        ref = pool.submit([(0, None, None, 1)], refs, 2)
        assert ModelResult.of(ray.get(ref)[0]).ran_on["model_actor"] is not None and pool.local is None
        pool.finished(ref)
    finally:
        pool.close()

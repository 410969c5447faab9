"""The streaming scan on Ray: :func:`stream_scan` wires the stages and runs them.

    inputs ──paths──▶ DecodeStage: decode tasks (Ray workers: digest, decode,
       (discover; archives:   sample, resize; one file or a group of small
        listing tasks)        ones each; may crash or hang harmlessly)
                 ──FileSummary (driver) + DecodedFile (object store, never the driver)──▶
                      ModelStage: model calls of bounded size on the model
                      actors (vscan.runtime.model_pool: hash, detect, match)
                 ──ModelResult──▶ RecordStage: risk policy, record, sink (group commit)

The stages are in vscan.runtime.stages, the loop and the one budget for
back-pressure (frames waiting for the model stage, decode tasks and model
calls in flight) in vscan.runtime.scheduler, the typed payloads in
vscan.runtime.payload. Every file yields exactly one record, written as
soon as that file is done, and none before a model actor has started (a
model stage that cannot start stops the scan with one ModelError; a slow
node's actor does not hold back the records of the others).

A file's record is made in vscan.runtime.outcome: adaptive sampling's
second pass that fails (decoder error, crash, timeout) ends the file on its
first pass's result, and the record says so (``second_pass``).
Infrastructure faults are retried, never recorded as the file's fault (up to
limits): vscan.runtime.faults says what a Ray failure means for a file.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any, Callable, Iterable, Iterator

from vscan.bank.query_side import scan_config_for_bank
from vscan.config import ScanConfig
from vscan.output.resume import RunLedger
from vscan.output.sinks import Sink
from vscan.inputs.known_benign import load_lists
from vscan.runtime.faults import INFRA_RETRIES, NODE_FAULT_LIMIT, QUARANTINE_DEATHS, InfraFaults
from vscan.runtime.known import start_known_content
from vscan.runtime.listing import ListedInputs
from vscan.runtime.model_pool import ModelPool, prepare_bank_index, put_bank_index
from vscan.runtime.outcome import Outcomes
from vscan.runtime.profile import QueueStats
from vscan.runtime.preflight import records_without_ray, write_records
from vscan.runtime.ray_start import cluster_nodes, dead_node_ids, start_ray
from vscan.runtime.scheduler import CALL_BATCHES, QUEUE_BATCHES, FrameBudget, Scheduler
from vscan.runtime.stages import DecodeStage, ModelStage, RecordStage, model_call
from vscan.runtime.summary import ScanSummary
from vscan.verdict.allow import FloodCounter
from vscan.verdict.risk import DefaultRiskPolicy, RiskPolicy

__all__ = ["run_scan", "stream_scan", "model_call", "CALL_BATCHES", "QUEUE_BATCHES", "INFRA_RETRIES", "NODE_FAULT_LIMIT",
           "QUARANTINE_DEATHS"]  # fmt: skip


def run_scan(
    paths: Iterable[str | os.PathLike],
    *,
    sink: Sink,
    bank_path: str | os.PathLike | None = None,
    config: ScanConfig | None = None,
    ray_address: str | None = None,
    risk_policy: RiskPolicy | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    state_path: str | os.PathLike | None = None,
    hash_store: str | os.PathLike | None = None,
) -> ScanSummary:
    """:func:`stream_scan` run to the end; ``on_record`` sees each record."""
    records = stream_scan(paths, sink=sink, bank_path=bank_path, config=config, ray_address=ray_address,
                          risk_policy=risk_policy, state_path=state_path, hash_store=hash_store)  # fmt: skip
    while True:
        try:
            record = next(records)
        except StopIteration as done:
            return done.value
        if on_record:
            on_record(record)


def stream_scan(
    paths: Iterable[str | os.PathLike],
    *,
    sink: Sink,
    bank_path: str | os.PathLike | None = None,
    config: ScanConfig | None = None,
    ray_address: str | None = None,
    risk_policy: RiskPolicy | None = None,
    state_path: str | os.PathLike | None = None,
    hash_store: str | os.PathLike | None = None,
) -> Iterator[dict[str, Any]]:
    """Scan files and folders; write one record per file to ``sink`` and yield
    it once written (durable); the generator returns the ScanSummary.

    Paths that ``sink`` already holds a record for (same bank, models and
    config) are skipped: a killed scan resumes. ``state_path``: skip unchanged
    content across runs (vscan.output.resume). ``hash_store``: a folder that
    keeps every hashed frame (vscan.output.hash_store). The run's manifest goes to the sink."""
    config = scan_config_for_bank(config or ScanConfig(), bank_path)  # a hash-list bank: sampling.list_frame_size
    risk_policy = risk_policy or DefaultRiskPolicy()
    t_start = time.perf_counter()
    paths = list(paths)
    ledger = RunLedger.begin(sink, paths, config=config, bank_path=bank_path, risk_policy=risk_policy, state_path=state_path)
    config, store, allow = _frame_hash_users(config, ledger, hash_store)
    config = _object_reads(config, bank_path)
    summary, floods = ScanSummary(), FloodCounter()  # floods: entries matching an unusual share of the run's files (manifest)
    run_error: BaseException | None = None
    pool: ModelPool | None = None
    embedded: dict[str, Any] = {}  # the manifest's cluster of a scan run without Ray
    started_ray = False
    try:
        no_decode = None if store is not None else records_without_ray(paths, config, ledger, state_path=state_path)
        if no_decode is not None:  # every input recorded, or unchanged (--state): no Ray, no model stage (vscan.runtime.preflight)
            yield from write_records(no_decode, sink, ledger, summary)
            return summary
        prepare_bank_index(bank_path, config, paths, ledger.versions.get("bank_sha256"))  # in a thread, while Ray starts
        from vscan.runtime.embedded import embedded_files, run_embedded  # (here: a no-op resume never loads it)

        small = embedded_files(paths, config, ray_address)
        if small is not None:  # a few small files: no Ray (vscan.runtime.embedded); a decode process that crashed hands the rest on
            paths = yield from run_embedded(small, paths, config=config, bank_path=bank_path, ledger=ledger, sink=sink, summary=summary,
                                            floods=floods, risk_policy=risk_policy, allow=allow, store=store, manifest_cluster=embedded)  # fmt: skip
            if not paths:
                return summary
        local = _local_model(config, ray_address, bank_path, paths, ledger.versions.get("bank_sha256"))  # built while Ray starts
        started_ray = start_ray(ray_address)
        nodes = cluster_nodes()
        pool = ModelPool(config, put_bank_index(bank_path, config, nodes, paths, ledger.versions.get("bank_sha256")), nodes, local=local)
        scheduler = _stages(paths, config, pool, nodes, sink=sink, ledger=ledger, summary=summary, floods=floods,
                            risk_policy=risk_policy, state_path=state_path, allow=allow, store=store)  # fmt: skip
        yield from scheduler.run()
        summary.pipeline = {**scheduler.queues.report(pool.stats(), actors=len(pool.actors)), **scheduler.budget.describe()}
    except BaseException as exc:
        run_error = exc
        raise
    finally:
        if pool is not None and ledger.manifest is not None:  # (Ray is imported only once the pre-flight needs it: a no-op resume never does)
            import ray

            ledger.manifest["cluster"] = {"nodes": cluster_nodes() if ray.is_initialized() else [], "model_actors": pool.cluster()}
        elif embedded and ledger.manifest is not None:
            ledger.manifest["cluster"] = {"nodes": [], **embedded}
        if pool is not None:
            pool.close()
        if store is not None:
            store.close()
        if ledger.manifest is not None:
            ledger.manifest["match_floods"] = floods.floods()
        summary.wall_seconds = time.perf_counter() - t_start
        ledger.finish(summary, error=run_error)
        if started_ray:
            import ray

            ray.shutdown()
    return summary


def _local_model(config: ScanConfig, ray_address: str | None, bank_path: Any, paths: list, generation: str | None) -> Any:
    """The model built in this process while Ray starts (vscan.runtime.local_model), or None."""
    from vscan.runtime.embedded import may_use_a_gpu
    from vscan.runtime.local_model import LocalModel, local_model_wanted
    from vscan.runtime.model_pool import plan_actors

    if not local_model_wanted(config, ray_address, may_use_a_gpu=may_use_a_gpu(config)):
        return None
    plan = plan_actors([{"node_id": None, "cpus": os.cpu_count() or 1, "gpus": 0}], config)[0]  # this machine's model actor
    return LocalModel.start(config, bank_path, paths, generation, plan)


def _frame_hash_users(config: ScanConfig, ledger: RunLedger, hash_store: Any) -> tuple[ScanConfig, Any, Any]:
    """(config, the hash store, the allow banks): with ``--hash-store`` or
    ``--allow`` the model actors hand each file's frame hashes back."""
    if hash_store is None and not config.matching.allow:
        return config, None, None
    from vscan.output.hash_store import HashStore
    from vscan.verdict.allow import AllowBanks

    config = replace(config, runtime=replace(config.runtime, keep_frame_hashes=True))  # (runtime: not in the versions stamp)
    store = HashStore(hash_store, config=config, versions=ledger.versions) if hash_store is not None else None
    return config, store, AllowBanks(config) if config.matching.allow else None  # --allow (vscan.verdict.allow)


def _object_reads(config: ScanConfig, bank_path: Any) -> ScanConfig:
    """``runtime.object_reads = "auto"`` resolved: objects are read whole, with their digests, when the bank or an
    --allow bank holds digest-only entries (only a content digest matches those); else by ranges (vscan.inputs.ranged)."""
    if config.runtime.object_reads != "auto":
        return config
    from vscan.bank.store import Bank
    from vscan.errors import BankError

    for path in [p for p in (bank_path, *config.matching.allow) if p]:
        try:
            with Bank(path) as bank:
                if bank.has_digest_only_entries:
                    return replace(config, runtime=replace(config.runtime, object_reads="whole"))
        except BankError:
            continue  # the scan proper says what is wrong with it
    return config


def _stages(paths: list, config: ScanConfig, pool: ModelPool, nodes: list[dict[str, Any]], *, sink: Sink, ledger: RunLedger,
            summary: ScanSummary, floods: FloodCounter, risk_policy: RiskPolicy, state_path: Any, allow: Any, store: Any) -> Scheduler:  # fmt: skip
    """The stages of one scan, wired: decode -> model -> records, one budget, one failure policy."""
    import ray

    slots = max(1, int(sum(n["cpus"] for n in nodes) - pool.reserved_cpus))
    budget = FrameBudget.for_scan(config, actors=len(pool.actors), slots=slots)
    queues = QueueStats(slots, budget.model_calls)
    policy_text = config.sampling.policy.describe()
    records = RecordStage(sink=sink, ledger=ledger, summary=summary, floods=floods, queues=queues, pool=pool,
                          keep_frame_hashes=config.runtime.keep_frame_hashes, allow=allow, store=store)  # fmt: skip
    outcomes = Outcomes(records.emit, policy_text=policy_text, risk_policy=risk_policy, timeout_seconds=config.runtime.file_timeout_seconds,
                        min_quality=config.matching.min_quality)  # fmt: skip
    known = start_known_content(state_path, ledger.versions) if state_path else None
    # Known-benign lists (--ignore): loaded once here, one shared copy per node; a file the bank knows by a digest is never benign.
    benign = ray.put(load_lists(config.matching.ignore, ledger.bank_path)) if config.matching.ignore else None
    decode = DecodeStage(config=config, inputs=ListedInputs(paths, config), ledger=ledger, outcomes=outcomes, records=records,
                         queues=queues, slots=slots, known=known, benign=benign, policy_text=policy_text)  # fmt: skip
    model = ModelStage(pool=pool, outcomes=outcomes, queues=queues, batch_frames=config.runtime.batch_frames, refine=decode.resubmit_alone)
    faults = InfraFaults(outcomes, summary, to_model=model.enqueue, resubmit_alone=decode.resubmit_alone,
                         file_timeout_seconds=config.runtime.file_timeout_seconds, dead_nodes=dead_node_ids(nodes))  # fmt: skip

    def to_model(task: Any) -> None:
        if task.first_pass is None:  # what a file brings, for the budget's reservation of decodes in flight
            budget.landed(task.summary.frames_sampled)
        model.enqueue(task)

    decode.to_model, decode.faults, model.faults = to_model, faults, faults
    return Scheduler(decode=decode, model=model, records=records, budget=budget, queues=queues)

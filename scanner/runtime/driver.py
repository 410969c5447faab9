"""The streaming scan pipeline on Ray: the one module that wires the stages.

    discover ──paths──▶ (archives and disk images: listing tasks, vscan.runtime.listing)
             ──paths──▶ decode tasks (Ray workers: decode, sample, resize,
                        digest; one file each, may crash or hang harmlessly)
                 ──uint8 frames [n, S, S, 3] (object store, never the driver)──▶
                        model actors (vscan.runtime.model_pool: one per GPU
                        or per CPU node; each batches frames across files,
                        runs the ONNX models, matches against the bank)
                 ──hashes + matches──▶ driver: risk policy, record, sink

Backpressure: at most ``decode_inflight`` decode tasks and ``model_inflight``
model calls per actor are outstanding, and the driver submits a decode only
when it has room; memory therefore stays bounded whatever the number of files.
Every file yields exactly one record, written as soon as that file is done,
and none before a model actor has started (a model stage that cannot start
stops the scan with one ModelError; a slow node's actor does not hold back
the records of the others).

A file's record is made in vscan.runtime.outcome: adaptive sampling's
second pass that fails (decoder error, crash, timeout) ends the file on its
first pass's result, and the record says so (``second_pass``).

Infrastructure faults are retried, never recorded as the file's fault (up to
limits): vscan.runtime.faults says what a Ray failure means for a file.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import replace
from typing import Any, Callable, Iterable, Iterator

from vscan.config import ScanConfig
from vscan.inputs.discover import Refused, is_small
from vscan.output.resume import RunLedger
from vscan.output.sinks import Sink
from vscan.inputs.known_benign import load_list
from vscan.runtime.faults import INFRA_RETRIES, NODE_FAULT_LIMIT, QUARANTINE_DEATHS, InfraFaults
from vscan.runtime.known import start_known_content
from vscan.runtime.listing import ListedInputs
from vscan.runtime.model_pool import ModelPool, put_bank_index
from vscan.runtime.outcome import Outcomes, Task, let_go, second_pass_decoded
from vscan.runtime.placement import decode_on_node, ran_on
from vscan.runtime.profile import QueueStats
from vscan.runtime.preflight import records_without_ray, write_records
from vscan.runtime.ray_start import cluster_nodes, dead_node_ids, start_ray
from vscan.runtime.summary import ScanSummary
from vscan.verdict.allow import FloodCounter
from vscan.verdict.record import known_benign_record
from vscan.verdict.risk import DefaultRiskPolicy, RiskPolicy

__all__ = ["run_scan", "stream_scan", "model_call", "INFRA_RETRIES", "NODE_FAULT_LIMIT", "QUARANTINE_DEATHS"]

#: Frames of one model call, in batches of ``runtime.batch_frames`` (a file
#: with more frames than that goes alone): calls of bounded size.
CALL_BATCHES = 4
#: Frames decoded and waiting for the model stage, in batches per model
#: actor, before no further decode is started: a bounded queue.
QUEUE_BATCHES = 8


def model_call(ready: list, frames_of: Callable[[Any], int], max_frames: int) -> tuple[list, list]:
    """(the files of the next model call, the rest): files in order up to
    ``max_frames`` frames, at least one."""
    taken = frames = 0
    for task in ready:
        n = frames_of(task)
        if taken and frames + n > max_frames:
            break
        taken, frames = taken + 1, frames + n
    return ready[:taken], ready[taken:]


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
    import ray
    from ray.exceptions import RayError, WorkerCrashedError

    config = config or ScanConfig()
    policy_text = config.sampling.policy.describe()
    risk_policy = risk_policy or DefaultRiskPolicy()
    t_start = time.perf_counter()
    paths = list(paths)
    ledger = RunLedger.begin(sink, paths, config=config, bank_path=bank_path, risk_policy=risk_policy, state_path=state_path)
    store = allow = None
    floods = FloodCounter()  # entries matching an unusual share of the run's files: the manifest's match_floods
    if hash_store is not None or config.matching.allow:  # the model actors hand each file's frame hashes back
        from vscan.output.hash_store import HashStore
        from vscan.verdict.allow import AllowBanks

        config = replace(config, runtime=replace(config.runtime, keep_frame_hashes=True))  # (runtime: not in the versions stamp)
        store = HashStore(hash_store, config=config, versions=ledger.versions) if hash_store is not None else None
        allow = AllowBanks(config) if config.matching.allow else None  # --allow (vscan.verdict.allow)
    summary = ScanSummary()
    run_error: BaseException | None = None
    pool: ModelPool | None = None
    started_ray = False
    try:
        no_decode = None if store is not None else records_without_ray(paths, config, ledger, state_path=state_path)
        if no_decode is not None:  # every input recorded, or unchanged (--state): no Ray, no model stage (vscan.runtime.preflight)
            yield from write_records(no_decode, sink, ledger, summary)
            return summary
        started_ray = start_ray(ray_address)
        nodes = cluster_nodes()
        pool = ModelPool(config, put_bank_index(bank_path, config, nodes, paths, ledger.versions.get("bank_sha256")), nodes)
        slots = max(1, int(sum(n["cpus"] for n in nodes) - pool.reserved_cpus))
        decode_inflight = config.runtime.decode_inflight or slots + 2
        model_inflight = config.runtime.model_inflight * len(pool.actors)
        call_frames = CALL_BATCHES * config.runtime.batch_frames
        queue_frames = QUEUE_BATCHES * config.runtime.batch_frames * len(pool.actors)
        decode_remote = ray.remote(max_retries=0, num_cpus=1)(decode_on_node)  # num_returns per call: 1 + files
        config_ref = ray.put(config)
        known = start_known_content(state_path, ledger.versions) if state_path else None
        # Known-benign lists (--ignore): loaded once here, one shared copy per node.
        benign = ray.put([load_list(p) for p in config.matching.ignore]) if config.matching.ignore else None
        dead_nodes = dead_node_ids(nodes)

        inputs = ListedInputs(paths, config)
        exhausted = False
        next_key = 0
        running: deque[list[Task]] = deque()  # decode tasks, FIFO: the first `slots` are running
        by_meta: dict[Any, list[Task]] = {}  # summaries ref -> the files of that decode task
        small: list[Task] = []  # small files gathering into one decode task
        ready_for_model: list[Task] = []
        model_calls: dict[Any, list[Task]] = {}
        finished: deque[dict[str, Any]] = deque()  # records of finished files, not yet written
        queues = QueueStats(slots, model_inflight)

        def emit(record: dict[str, Any]) -> None:
            finished.append(record)

        def write_finished() -> Iterator[dict[str, Any]]:
            """The finished records to the sink in one commit (group commit),
            then out to the caller: durable before any of them is reported."""
            if not finished or not pool.answering():
                return  # records wait until a model actor has started: the model stage may still refuse to
            batch = [ledger.stamp(r) for r in finished]
            finished.clear()
            if config.runtime.keep_frame_hashes:  # --allow, --hash-store; the hashes never reach the sink
                from vscan.verdict.allow import take_frame_hashes

                take_frame_hashes(batch, allow=allow, store=store)
            t_sink = time.perf_counter()
            sink.write_many(batch)
            queues.sink_seconds += time.perf_counter() - t_sink
            for record in batch:
                ledger.recorded(record)
                summary.add(record)
                floods.add(record)
            yield from batch

        def submit(group: list[Task]) -> None:
            cfg = config_ref
            first = group[0]
            if first.attempt_decoder != config.sampling.decoder or first.policy is not None:  # retries and second passes go alone
                sampling = replace(config.sampling, decoder=first.attempt_decoder, policy=first.policy or config.sampling.policy)
                cfg = ray.put(replace(config, sampling=sampling))
            meta_ref, *payload_refs = decode_remote.options(num_returns=1 + len(group)).remote([t.path for t in group], cfg, known, benign)
            for task, ref in zip(group, payload_refs):
                task.payload_ref, task.group_size = ref, len(group)
            by_meta[meta_ref] = group
            running.append(group)
            queues.decode_tasks += 1
            queues.decode_files += len(group)

        def resubmit_alone(task: Task) -> None:
            task.started, task.submitted = None, time.monotonic()
            submit([task])

        outcomes = Outcomes(emit, policy_text=policy_text, risk_policy=risk_policy, timeout_seconds=config.runtime.file_timeout_seconds,
                            min_quality=config.matching.min_quality)  # fmt: skip

        faults = InfraFaults(outcomes, summary, to_model=lambda task: ready_for_model.append(task), resubmit_alone=resubmit_alone,
                             file_timeout_seconds=config.runtime.file_timeout_seconds, dead_nodes=dead_nodes)  # fmt: skip

        def decoded(task: Task, file_summary: dict[str, Any]) -> None:
            task.summary = file_summary
            if task.summary.get("unchanged"):
                emit({**ledger.unchanged_record(task.summary), "ran_on": ran_on(task.summary)})
                let_go(task)
                return
            if task.summary.get("known_benign"):
                emit({**known_benign_record(task.summary, policy_text), "ran_on": ran_on(task.summary)})
                let_go(task)
                return
            if task.summary.get("error") is not None:
                outcomes.decode_failed(task, task.summary["error"])
                return
            if task.first_pass is not None:
                task.summary = second_pass_decoded(task)
            ready_for_model.append(task)

        while True:
            yield from write_finished()
            listing: list[Any] = []  # the archive listing the next path waits for (vscan.runtime.listing)
            waiting_frames = sum(t.summary["frames_sampled"] for t in ready_for_model)
            while not exhausted and len(by_meta) < decode_inflight and waiting_frames < queue_frames:
                path = inputs.take()
                if path is None:  # none left, or the next archive's listing is still running
                    exhausted, listing = inputs.done, inputs.pending()
                    break
                if next(ledger.filter([path]), None) is None:
                    continue  # resumed: recorded before
                task = Task(next_key, path, config.sampling.decoder, time.monotonic())
                next_key += 1
                if isinstance(path, Refused):  # a folder that cannot be listed, or too deep: its record, nothing to decode
                    outcomes.fail(task, path.error)
                    continue
                # Small files share a task only while every decode slot is taken
                # anyway: grouping must not leave a worker idle (a short scan, the
                # start of a sweep).
                if config.runtime.small_file_group > 1 and len(by_meta) >= slots and is_small(path, config.runtime.small_file_bytes):
                    small.append(task)
                    if len(small) >= config.runtime.small_file_group:
                        submit(small)
                        small = []
                    continue
                submit([task])
            if small and (exhausted or len(by_meta) < slots):
                submit(small)  # the last small files, or idle slots: don't wait for a full group
                small = []
            now = time.monotonic()
            for i, group in enumerate(running):
                if i >= slots:
                    break
                for task in group:
                    task.started = task.started or now

            # Feed the model: at once when it is idle (records stream out, the
            # device never waits), else once a full batch has gathered.
            pending_frames = sum(t.summary["frames_sampled"] for t in ready_for_model)
            queues.sample(min(len(running), slots), len(ready_for_model), pending_frames, len(model_calls))
            draining = exhausted and not by_meta
            if ready_for_model and len(model_calls) < model_inflight and (
                len(model_calls) < len(pool.actors) or pending_frames >= config.runtime.batch_frames or draining or len(ready_for_model) >= 32
            ):
                batch, ready_for_model = model_call(ready_for_model, lambda t: t.summary["frames_sampled"], call_frames)
                files_arg = [(t.key, t.summary["sha256"], t.summary["md5"], 1 + (t.first_payload_ref is not None)) for t in batch]
                # (no local copy of the frames' refs: a finished file's frames must go)
                call = sum(t.summary["frames_sampled"] for t in batch)
                ref = pool.submit(files_arg, [r for t in batch for r in (t.first_payload_ref, t.payload_ref) if r is not None], call)
                if ref is None:  # every actor is left out for a while after a failure
                    ready_for_model = batch + ready_for_model
                else:
                    model_calls[ref] = batch
                    queues.calls.append((len(batch), call))

            if not by_meta and not model_calls and not ready_for_model and exhausted and not small:
                while not pool.started(timeout=1.0):
                    pass
                yield from write_finished()
                break
            waitable = list(by_meta) + list(model_calls) + listing
            if not waitable:
                continue
            done, _ = ray.wait(waitable, num_returns=1, timeout=0.2)
            for ref in done:
                if ref in model_calls:
                    batch = model_calls.pop(ref)
                    try:
                        results = ray.get(ref)
                    except RayError as exc:
                        pool.finished(ref, exc)
                        faults.model_call_failed(batch, exc)
                        continue
                    pool.finished(ref)
                    for task, result in zip(batch, results):
                        if result.get("refine") is not None:
                            task.first_pass, task.first_result, task.policy = task.summary, result, result.pop("refine")
                            task.first_payload_ref = task.payload_ref
                            resubmit_alone(task)
                            continue
                        outcomes.finish_passes(task, result)
                    continue
                if ref not in by_meta:
                    continue  # an archive's listing: inputs.take() picks it up
                group = by_meta.pop(ref)
                running.remove(group)
                try:
                    summaries = ray.get(ref)
                except (WorkerCrashedError, RayError) as exc:
                    faults.decode_failed(group, exc)
                    continue
                for task, file_summary in zip(group, summaries):
                    decoded(task, file_summary)

            # Backstop for the per-file limit, for workers that cannot even run
            # their watchdog (frozen, stopped): kill, record, go on. The driver's
            # start time is an estimate (a queued task may wait for a worker to
            # start), hence the margin.
            now = time.monotonic()
            for meta_ref, group in list(by_meta.items()):
                started = group[0].started
                if started is not None and now - started > config.runtime.file_timeout_seconds * 1.5 * len(group) + 10.0:
                    ray.cancel(meta_ref, force=True)
                    by_meta.pop(meta_ref)
                    running.remove(group)
                    if len(group) > 1:
                        for task in group:
                            resubmit_alone(task)
                    else:
                        outcomes.timed_out(group[0])
        summary.pipeline = queues.report(pool.stats(), actors=len(pool.actors))
    except BaseException as exc:
        run_error = exc
        raise
    finally:
        if pool is not None and ledger.manifest is not None:
            ledger.manifest["cluster"] = {"nodes": cluster_nodes() if ray.is_initialized() else [], "model_actors": pool.cluster()}
        if pool is not None:
            pool.close()
        if store is not None:
            store.close()
        if ledger.manifest is not None:
            ledger.manifest["match_floods"] = floods.floods()
        summary.wall_seconds = time.perf_counter() - t_start
        ledger.finish(summary, error=run_error)
        if started_ray:
            ray.shutdown()
    return summary


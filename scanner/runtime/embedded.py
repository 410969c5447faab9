"""Small scans without Ray: the same stages, in this process and its decode processes.

Starting a private local Ray and its model actor costs seconds (ray.init,
the raylet, the actor's own interpreter), more than a few short files take
to scan. A scan of at most ``runtime.embedded_max_files`` plain files
(together at most ``runtime.embedded_max_bytes``), started without a Ray
address, runs here instead (:func:`embedded_files` decides):

- decoding in decode processes of its own (vscan.runtime.embedded_decode), as
  many as Ray would have decode slots here (at most one per file), admitted
  as the Ray decode stage admits files; each runs the Ray decode task's
  function on its files, so a decoder that aborts or hangs ends that
  process, never the scan;
- the model stage's own ModelWorker (vscan.runtime.model_actor) in this
  process, on a thread of its own (vscan.runtime.embedded_model): built
  while the first files decode, then each call takes every decoded file
  waiting, as a Ray model actor's call does, while this loop goes on reading
  the decode processes; with the threads a model actor on this machine would
  get (vscan.runtime.model_pool.plan_actors);
- each file's record made by vscan.runtime.outcome and written by the
  RecordStage, as on Ray: a record is the Ray path's, except ``timings`` and
  ``ran_on`` (no Ray node or actor: all null).

A decode process that dies before the per-file limit (a crash; on Ray the
file would be retried, with PyAV after ``auto``) hands that file and every
file left to the Ray path (:func:`run_embedded` returns them); one that
died at the limit gives the file the Ray path's timeout record.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from dataclasses import replace
from typing import Any, Callable, Iterator

from vscan.config import ScanConfig
from vscan.errors import ModelError
from vscan.runtime.embedded_model import ModelThread
from vscan.runtime.embedded_procs import _DecodeProcess, _Decoders  # noqa: F401 - (tests reach _DecodeProcess here)
from vscan.runtime.outcome import FileState, Outcomes, Task, let_go, second_pass_again, second_pass_decoded
from vscan.runtime.placement import ran_on
from vscan.runtime.ray_start import set_startup_phase

__all__ = ["embedded_files", "run_embedded", "may_use_a_gpu"]

#: Where an embedded scan's records say the model ran (no Ray node, no actor).
_IN_PROCESS = {"model_node": None, "model_actor": None}


def embedded_files(paths: list, config: ScanConfig, ray_address: str | None) -> list[str] | None:
    """The input files when this scan is small enough to run without Ray
    (module docstring), else None: a Ray address (``--ray-address``, or
    ``RAY_ADDRESS`` in the environment, as Ray's own docs point a job at a
    cluster) or a Ray already running in this process, ``--device cuda`` (or ``auto`` where a GPU build is
    installed: the model stage runs on Ray's GPU actors), object-storage
    inputs, an archive or disk image (its members are listed on Ray), more
    files or bytes than the limits."""
    from vscan.runtime.preflight import HasContainer, has_uri, plain_files

    runtime = config.runtime
    if runtime.embedded_max_files <= 0 or ray_address or os.environ.get("RAY_ADDRESS") or runtime.device == "cuda" or may_use_a_gpu(config):
        return None
    ray = sys.modules.get("ray")
    if ray is not None and getattr(ray, "is_initialized", lambda: False)():
        return None  # the Python API inside a Ray program, the tests: that Ray is used
    if has_uri(paths):
        return None
    files: list[str] = []
    total = 0
    try:
        for path in plain_files(paths, config):
            total += os.path.getsize(path)
            files.append(path)
            if len(files) > runtime.embedded_max_files or total > runtime.embedded_max_bytes:
                return None
    except (HasContainer, OSError):
        return None  # an unreadable input's record comes from the scan proper
    return files


def may_use_a_gpu(config: ScanConfig) -> bool:
    """``--device auto`` with a GPU build installed (the gpu extra's onnxruntime-gpu, or the
    torch hash backend): Ray's plan gives the model stage the node's GPUs, the embedded one none."""
    if config.runtime.device == "cpu":
        return False
    if config.runtime.hash_backend != "onnx":
        return True
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("onnxruntime-gpu")
    except PackageNotFoundError:
        return False
    return True


def _model(config: ScanConfig, plan: Any, bank_path: Any, inputs: list, generation: str | None) -> Any:
    """The model stage's worker, as a model actor on this machine would be built (vscan.runtime.model_pool)."""
    from vscan.runtime.bank_share import share_bank

    bank = share_bank(bank_path, config, [], inputs, generation, local=True)  # (the scan's inputs: prepared early, while the decoders load)
    try:
        from vscan.runtime.model_actor import ModelWorker

        worker = ModelWorker(replace(config, runtime=replace(config.runtime, device=plan.device)), bank, threads=plan.threads)
    except Exception as exc:  # noqa: BLE001 - the scan's start-up failure, worded as on Ray (vscan.runtime.model_pool)
        raise ModelError(f"the model stage could not start: {type(exc).__name__}: {exc}. Check --device and --model; "
                         "a GPU needs the gpu extra (pip install 'vscan[gpu]'), or scan with --device cpu") from exc  # fmt: skip
    return worker


class _Ready:
    """The RecordStage's model stage: here it has started before any record is committed."""

    def answering(self) -> bool:
        return True


def run_embedded(files: list[str], inputs: list, *, config: ScanConfig, bank_path: Any, ledger: Any, sink: Any, summary: Any, floods: Any,
                 risk_policy: Any, allow: Any, store: Any, manifest_cluster: dict) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Scan ``files`` (discovered from the scan's ``inputs``) here (module docstring), yielding
    each record once written; returns the files left for the Ray path (a decode process that crashed)."""
    from vscan.inputs.known_benign import load_lists
    from vscan.runtime.model_pool import plan_actors
    from vscan.runtime.profile import QueueStats
    from vscan.runtime.stages import RecordStage

    tasks, counted = _todo(files, config, ledger)
    if not tasks:
        return []
    policy_text = config.sampling.policy.describe()
    records = RecordStage(sink=sink, ledger=ledger, summary=summary, floods=floods, queues=QueueStats(1, 1), pool=_Ready(),
                          keep_frame_hashes=config.runtime.keep_frame_hashes, allow=allow, store=store)  # fmt: skip
    outcomes = Outcomes(records.emit, policy_text=policy_text, risk_policy=risk_policy,
                        timeout_seconds=config.runtime.file_timeout_seconds, min_quality=config.matching.min_quality)  # fmt: skip
    benign = load_lists(config.matching.ignore, ledger.bank_path) if config.matching.ignore else ()
    set_startup_phase("models here")  # the progress bar: loading the models, no Ray (vscan.cli.progress)
    cpus = os.cpu_count() or 1
    plan = plan_actors([{"node_id": None, "cpus": cpus, "gpus": 0}], config)[0]
    slots = max(1, int(cpus - plan.num_cpus))  # the decode slots Ray would give this node (vscan.runtime.driver)
    decoder = _Decoders(min(len(tasks), slots), ledger.known_sha256() if ledger.state is not None else None, benign)
    batch = config.runtime.batch_frames
    # A call of at most one batch of frames (~10 archive files; Ray's calls take 4): files decoded while the model loaded (40 and
    # more on a loaded machine) then reach their records in several calls, not all after one call of several seconds.
    model = ModelThread(lambda: _model(config, plan, bank_path, inputs, ledger.versions.get("bank_sha256")), call_frames=batch, threads=plan.threads)

    def ready(worker: Any) -> None:
        manifest_cluster["model_actors"] = [{**_IN_PROCESS, "in_process": True, "provider": worker.provider(),
                                             "threads": plan.threads, "num_cpus": 0, "num_gpus": 0}]  # fmt: skip
        set_startup_phase("first files here")

    admit = _Admission(tasks, decoder, config, inflight=config.runtime.decode_inflight or slots + 2, waiting=lambda: model.waiting_frames)
    try:
        admit()  # the first files decode while the model loads, on its thread
        left = yield from _drive(admit, model, ready, config, records, outcomes, policy_text, ledger)
        worker = model.built()
        if "model_actors" not in manifest_cluster:  # no file reached the model
            ready(worker)
    finally:
        model.close()
        decoder.close()
        set_startup_phase(None)
    ledger.retried_transient -= sum(counted[path] for path in left)  # counted again when the Ray path takes them
    summary.pipeline = {"embedded": True, **worker.stats(), **_cpu(model, decoder)}
    return left


def _cpu(model: ModelThread, decoder: _Decoders) -> dict[str, float | int | None]:
    """Where the scan's CPU went (issue #30): the model thread's build and calls, the decode processes (the rest of this
    process, its driver loop, records and unpickling, is this process's CPU less the model thread's)."""
    return {"model_build_cpu_seconds": model.build_cpu_seconds, "model_calls_cpu_seconds": model.calls_cpu_seconds,
            "decode_processes": len(decoder.procs), "decode_processes_cpu_seconds": decoder.cpu_seconds}  # fmt: skip


class _Admission:
    """Files start decoding as on Ray (vscan.runtime.stages.DecodeStage): at most ``inflight``
    in the decode processes, second passes included, each first pass decoding its confirmation
    ahead while the switch says so (vscan.runtime.confirm_ahead.AheadSwitch), told by the model
    stage how first passes went."""

    def __init__(self, tasks: list[Task], decoder: _Decoders, config: ScanConfig, *, inflight: int, waiting: Callable[[], int]) -> None:
        from vscan.runtime.confirm_ahead import AheadSwitch

        self.queued, self.decoder, self.config, self.inflight, self.waiting = deque(tasks), decoder, config, inflight, waiting
        self.ahead = AheadSwitch(config)

    def room(self) -> bool:
        """Whether a file may start decoding beside ``inflight`` decoding: while frames waiting for the model are under
        one call's worth (decoding further ahead gains nothing where the model is the slower stage), and none at all
        before the confirm-ahead switch has its first answers (each first pass decoded before it decides needs a second
        decode and call: with 8 calls' worth, 67 of the archive's 136 files did, as the first call warmed up)."""
        from vscan.runtime.confirm_ahead import AHEAD_MIN_SEEN

        if self.ahead.setting is None and len(self.ahead.recent) < AHEAD_MIN_SEEN:
            return self.waiting() == 0
        return self.waiting() < self.config.runtime.batch_frames

    @property
    def pending(self) -> bool:
        return bool(self.queued) or self.decoder.pending

    def __call__(self) -> None:
        while self.queued and len(self.decoder.remaining()) < self.inflight and self.room():
            task = self.queued.popleft()
            self.decoder.decode(task, self.ahead.ahead_config(self.config) if self.ahead.on else self.config)
            task.move(FileState.DECODING)

    def again(self, task: Task) -> None:
        """A second pass: decoded with the first pass's decoder and the policy's pass, never held back."""
        sampling = replace(self.config.sampling, decoder=task.attempt_decoder, policy=task.policy)
        self.decoder.decode(task, replace(self.config, sampling=sampling))
        task.move(FileState.REFINING)

    def first_pass_back(self, task: Task, result: Any) -> None:
        """As vscan.runtime.stages.ModelStage does: the switch told whether it decided; its confirmation decoded ahead settled."""
        from vscan.decode.adaptive import Confirm
        from vscan.runtime.outcome import ahead_settled

        self.ahead.observe(result.confirmed is not None or isinstance(result.refine, Confirm))
        ahead_settled(task, result.confirmed)

    def left(self) -> list[str]:
        """Every file not recorded yet, for the Ray path."""
        return [t.path for t in (*self.decoder.remaining(), *self.queued)]


def _todo(files: list[str], config: ScanConfig, ledger: Any) -> tuple[list[Task], dict[str, bool]]:
    """The files without a record yet (the ledger counts those it skips), and whether it counted each as a retry."""
    tasks, counted = [], {}
    for path in files:
        before = ledger.retried_transient
        if next(ledger.filter([path]), None) is None:
            continue
        counted[path] = ledger.retried_transient > before
        tasks.append(Task(key=len(tasks), path=path, attempt_decoder=config.sampling.decoder, submitted=time.monotonic()))
    return tasks, counted


def _drive(admit: _Admission, model: ModelThread, ready: Callable[[Any], None], config: ScanConfig, records: Any, outcomes: Outcomes,
           policy_text: str, ledger: Any) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Each decoded file to its record (vscan.runtime.stages.DecodeStage.decoded and ModelStage.landed),
    the model on its thread (vscan.runtime.embedded_model). Returns the files left for the Ray path: where
    a decode process died, every file not recorded once the model's calls in progress have come back."""
    limit = config.runtime.file_timeout_seconds
    firsts: dict[int, Any] = {}  # key -> a first pass's frames, kept for its second
    announced, left = False, None
    while left is None and (admit.pending or model.pending) or left is not None and model.pending:
        ready_now, killed = admit.decoder.wait([model], limit) if left is None else ([model], False)
        if model in ready_now:
            if not announced and model.ready.is_set() and model.worker is not None:
                ready(model.worker)
                announced = True
            for task, result in model.results():
                _landed(task, result, admit, firsts, outcomes, ran_out=left is not None)
                if task.state is FileState.REFINING and left is not None:
                    left.append(task.path)  # its second pass: on Ray, with the file decoded again
            yield from records.commit()
            model.raise_error()  # (the worker did not build, or a call failed: after the files before it)
        for proc in (p for p in ready_now if p is not model):
            task, answer, took = admit.decoder.take(proc, killed)
            if answer is None:
                if took < limit:  # crashed: the Ray path decodes it again (a retry, PyAV after auto)
                    left = [task.path]
                else:
                    outcomes.timed_out(task)  # the decode process's watchdog ended it at the limit
                    left = []
                yield from records.commit()
                break
            _decoded(task, answer, admit, model, firsts, outcomes, records, ledger, policy_text)
        if left is None:
            yield from records.commit()
            admit()
    return [] if left is None else [*left, *admit.left()]


def _decoded(task: Task, answer: tuple, admit: _Admission, model: ModelThread, firsts: dict[int, Any], outcomes: Outcomes,
             records: Any, ledger: Any, policy_text: str) -> None:  # fmt: skip
    """A file back from its decode process: recorded (unchanged, known benign, failed), or to the model."""
    from vscan.verdict.record import known_benign_record

    _, file_summary, payload = answer
    task.summary = file_summary
    task.move(FileState.DECODED)
    facts = file_summary.as_dict()
    if file_summary.unchanged:
        records.emit({**ledger.unchanged_record(facts), "ran_on": ran_on(facts)})
    elif file_summary.known_benign is not None:
        records.emit({**known_benign_record(facts, policy_text), "ran_on": ran_on(facts)})
    elif file_summary.error is not None and second_pass_again(task, file_summary.error):
        admit.again(task)  # decoded once more; its first pass's frames stay in ``firsts``
        return
    elif file_summary.error is not None:
        outcomes.decode_failed(task, file_summary.error)
    else:
        passes = (payload,) if task.first_pass is None else (firsts.pop(task.key), payload)
        if task.first_pass is not None:
            task.summary = second_pass_decoded(task)
        task.move(FileState.AT_MODEL)
        model.submit(task, (task.key, task.summary.sha256, task.summary.md5, len(passes)), passes)
        firsts[task.key] = payload if task.first_pass is None else None  # kept until its result says whether a second pass comes
        return
    let_go(task)
    task.move(FileState.RECORDED)


def _landed(task: Task, result: Any, admit: _Admission, firsts: dict[int, Any], outcomes: Outcomes, *, ran_out: bool) -> None:
    """A file's model result: its record, or its second pass (not started where the scan ran out: ``ran_out``)."""
    payload = firsts.pop(task.key, None)
    if task.first_pass is None:
        admit.first_pass_back(task, result)
    if result.refine is not None:  # adaptive sampling: a second pass, the first pass's frames kept
        task.first_pass, task.first_result, task.policy = task.summary, result, result.refine
        firsts[task.key] = payload
        task.move(FileState.REFINING)
        if not ran_out:
            admit.again(task)
        return
    outcomes.finish_passes(task, result)
    let_go(task)
    task.move(FileState.RECORDED)

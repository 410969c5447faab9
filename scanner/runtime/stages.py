"""The scan's stages, in the order a file goes through them (vscan.runtime.scheduler runs them).

- :class:`DecodeStage`: takes the next input (queued), starts its decode task
  (decoding) and sorts what comes back (decoded): a file to match goes on to
  the model stage; one that needs no model (unchanged, known-benign) or whose
  decode failed goes straight to its record.
- :class:`ModelStage`: gathers decoded files into model calls of bounded
  size (at the model); a file whose sampling asks for a second pass goes
  back to be decoded again (refining), its first pass kept; the rest end in
  their record (vscan.runtime.outcome).
- :class:`RecordStage`: the finished records, stamped and written to the sink
  in one commit, then handed to the caller (recorded).

Every Ray failure goes to vscan.runtime.faults.InfraFaults, which says what it
means for the file (retry, or its record).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace
from typing import Any, Callable, Iterator

from vscan.inputs.discover import Refused, is_small
from vscan.runtime.confirm_ahead import AheadSwitch
from vscan.runtime.metrics import watch
from vscan.runtime.outcome import FileState, Outcomes, Task, ahead_settled, let_go, second_pass_again, second_pass_decoded
from vscan.runtime.payload import ModelResult
from vscan.runtime.placement import decode_on_node, ran_on
from vscan.verdict.record import known_benign_record

__all__ = ["DecodeStage", "ModelStage", "RecordStage", "model_call"]


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


def _frames(task: Task) -> int:
    return task.summary.frames_sampled


def _task_name(first: Task) -> str:
    """Ray's name for a decode task (process title ``ray::<name>``, ``ray list tasks``, the dashboard): which pass
    it decodes, so an operator profiling a scan (and a test signalling one pass's worker) can tell them apart."""
    return "vscan-decode-second-pass" if first.first_pass is not None else "vscan-decode"


class DecodeStage:
    """Inputs in, decode tasks out (at most the budget's), decoded files on to ``to_model``.

    Small files share a decode task only while every decode slot is taken
    anyway: grouping must not leave a worker idle (a short scan, the start of
    a sweep). ``faults`` (set once built) handles a task that raised."""

    def __init__(self, *, config: Any, inputs: Any, ledger: Any, outcomes: Outcomes, records: RecordStage, queues: Any,
                 slots: int, known: Any, benign: Any, policy_text: str) -> None:  # fmt: skip
        import ray

        self.config, self.inputs, self.ledger, self.outcomes, self.records, self.queues = config, inputs, ledger, outcomes, records, queues
        self.slots, self.known, self.benign, self.policy_text = slots, known, benign, policy_text
        self.remote = ray.remote(max_retries=0, num_cpus=1)(decode_on_node)  # num_returns per call: 1 + files
        self.config_ref = ray.put(config)
        self.ahead = AheadSwitch(config)  # first passes decode their confirmation ahead while most decide (vscan.runtime.confirm_ahead)
        self._ahead_ref: Any = None
        self.to_model: Callable[[Task], None] = lambda task: None
        self.faults: Any = None
        self.exhausted = False
        self.next_key = 0
        self.running: deque[list[Task]] = deque()  # decode tasks, FIFO: the first `slots` are running
        self.by_meta: dict[Any, list[Task]] = {}  # summaries ref -> the files of that decode task
        self.small: list[Task] = []  # small files gathering into one decode task
        self.listing: list[Any] = []  # the archive listing the next input waits for (vscan.runtime.listing)

    @property
    def in_flight(self) -> bool:
        return bool(self.by_meta) or bool(self.small)

    @property
    def running_now(self) -> int:
        return min(len(self.running), self.slots)

    def decoding_files(self) -> int:
        return sum(len(group) for group in self.by_meta.values()) + len(self.small)

    def waitable(self) -> list[Any]:
        return list(self.by_meta) + self.listing

    def admit(self, budget: Any, *, waiting_frames: int) -> None:
        """Queued files start decoding while ``budget`` allows (vscan.runtime.scheduler.FrameBudget)."""
        self.listing = []
        while not self.exhausted and budget.may_decode(waiting_frames, self.decoding_files(), len(self.by_meta)):
            path = self.inputs.take()
            if path is None:  # none left, or the next archive's listing is still running
                self.exhausted, self.listing = self.inputs.done, self.inputs.pending()
                break
            if next(self.ledger.filter([path]), None) is not None:  # else resumed: recorded before
                self._queue(path)
        if self.small and (self.exhausted or len(self.by_meta) < self.slots):
            self.submit(self.small)  # the last small files, or idle slots: don't wait for a full group
            self.small = []
        now = time.monotonic()
        for i, group in enumerate(self.running):
            if i >= self.slots:
                break
            for task in group:
                task.started = task.started or now

    def _queue(self, path: Any) -> None:
        runtime = self.config.runtime
        task = Task(self.next_key, path, self.config.sampling.decoder, time.monotonic())
        self.next_key += 1
        if isinstance(path, Refused):  # a folder that cannot be listed, or too deep: its record, nothing to decode
            self.outcomes.fail(task, path.error)
        elif runtime.small_file_group > 1 and len(self.by_meta) >= self.slots and is_small(path, runtime.small_file_bytes):
            self.small.append(task)
            if len(self.small) >= runtime.small_file_group:
                self.submit(self.small)
                self.small = []
        else:
            self.submit([task])

    def submit(self, group: list[Task]) -> None:
        """One decode task for ``group``; retries and second passes go alone, with their own decoder and policy."""
        import ray

        cfg, first = self.config_ref, group[0]
        if first.attempt_decoder != self.config.sampling.decoder or first.policy is not None:
            sampling = replace(self.config.sampling, decoder=first.attempt_decoder, policy=first.policy or self.config.sampling.policy)
            cfg = ray.put(replace(self.config, sampling=sampling))
        elif self.ahead.on:
            self._ahead_ref = self._ahead_ref or ray.put(self.ahead.ahead_config(self.config))
            cfg = self._ahead_ref
        meta_ref, *payload_refs = self.remote.options(num_returns=1 + len(group), name=_task_name(first)).remote([t.path for t in group], cfg, self.known, self.benign)
        for task, ref in zip(group, payload_refs):
            task.payload_ref, task.group_size = ref, len(group)
            task.move(FileState.REFINING if task.first_pass is not None else FileState.DECODING)
        self.by_meta[meta_ref] = group
        self.running.append(group)
        self.queues.decode_tasks += 1
        self.queues.decode_files += len(group)

    def resubmit_alone(self, task: Task) -> None:
        task.started, task.submitted = None, time.monotonic()
        self.submit([task])

    def landed(self, ref: Any) -> None:
        """A decode task came back: each file's summary sorted (an archive's listing: inputs.take() picks it up)."""
        import ray
        from ray.exceptions import RayError

        group = self.by_meta.pop(ref, None)
        if group is None:
            return
        self.running.remove(group)
        try:
            summaries = ray.get(ref)
        except RayError as exc:
            self.faults.decode_failed(group, exc)
            return
        for task, file_summary in zip(group, summaries):
            self.decoded(task, file_summary)

    def decoded(self, task: Task, file_summary: Any) -> None:
        task.summary = file_summary
        task.move(FileState.DECODED)
        if file_summary.unchanged:
            self.records.emit({**self.ledger.unchanged_record(file_summary.as_dict()), "ran_on": ran_on(file_summary.as_dict())})
            let_go(task)
            task.move(FileState.RECORDED)
        elif file_summary.known_benign is not None:
            self.records.emit({**known_benign_record(file_summary.as_dict(), self.policy_text), "ran_on": ran_on(file_summary.as_dict())})
            let_go(task)
            task.move(FileState.RECORDED)
        elif file_summary.error is not None and second_pass_again(task, file_summary.error):
            self.resubmit_alone(task)  # its first pass's frames and result kept
        elif file_summary.error is not None:
            self.outcomes.decode_failed(task, file_summary.error)
        else:
            if task.first_pass is not None:
                task.summary = second_pass_decoded(task)
            self.to_model(task)

    def reap_stuck(self) -> None:
        """Backstop for the per-file limit, for workers that cannot even run
        their watchdog (frozen, stopped): kill, record, go on. The driver's
        start time is an estimate (a queued task may wait for a worker to
        start), hence the margin."""
        import ray

        now, limit = time.monotonic(), self.config.runtime.file_timeout_seconds
        for meta_ref, group in list(self.by_meta.items()):
            started = group[0].started
            if started is not None and now - started > limit * 1.5 * len(group) + 10.0:
                ray.cancel(meta_ref, force=True)
                self.by_meta.pop(meta_ref)
                self.running.remove(group)
                self.faults.stuck(group)


class ModelStage:
    """Decoded files, gathered into model calls on the pool's actors; results
    end in records (``outcomes``) or, for a second pass, go back to decoding
    (``refine``). ``faults`` (set once built) handles a call that raised."""

    def __init__(self, *, pool: Any, outcomes: Outcomes, queues: Any, batch_frames: int, refine: Callable[[Task], None]) -> None:
        self.pool, self.outcomes, self.queues, self.batch_frames, self.refine = pool, outcomes, queues, batch_frames, refine
        self.faults: Any = None
        self.ahead: Any = None  # the decode stage's AheadSwitch (vscan.runtime.confirm_ahead), told how first passes went
        self.ready: list[Task] = []
        self.calls: dict[Any, list[Task]] = {}
        self.sent: dict[Any, tuple[float, str | None]] = {}  # call ref -> when it was sent, and its actor's node then
        self.waiting_frames = 0  # frames of the files in ``ready``

    @property
    def idle(self) -> bool:
        return not self.ready and not self.calls

    def waitable(self) -> list[Any]:
        return list(self.calls)

    def enqueue(self, task: Task) -> None:
        self.ready.append(task)
        self.waiting_frames += _frames(task)

    def wait_started(self) -> None:
        while not self.pool.started(timeout=1.0):
            pass

    def feed(self, budget: Any, *, draining: bool) -> None:
        """Feed the model: at once when it is idle (records stream out, the
        device never waits), else once a full batch has gathered."""
        n_calls = len(self.calls)
        if not self.ready or n_calls >= budget.model_calls:
            return
        if not (n_calls < len(self.pool.actors) or self.waiting_frames >= self.batch_frames or draining or len(self.ready) >= 32):
            return
        batch, self.ready = model_call(self.ready, _frames, budget.call_frames)
        frames = sum(_frames(t) for t in batch)
        self.waiting_frames -= frames
        files = [(t.key, t.summary.sha256, t.summary.md5, 1 + (t.first_payload_ref is not None)) for t in batch]
        # (no local copy of the frames' refs: a finished file's frames must go)
        ref = self.pool.submit(files, [r for t in batch for r in (t.first_payload_ref, t.payload_ref) if r is not None], frames)
        if ref is None:  # every actor is left out for a while after a failure
            self.ready = batch + self.ready
            self.waiting_frames += frames
            return
        self.calls[ref] = batch
        self.sent[ref] = time.monotonic(), self.pool.node_of(ref)
        for task in batch:
            task.move(FileState.AT_MODEL)
        self.queues.calls.append((len(batch), frames))

    def landed(self, ref: Any) -> bool:
        """A model call came back (False: ``ref`` is not one)."""
        import ray
        from ray.exceptions import RayError

        batch = self.calls.pop(ref, None)
        if batch is None:
            return False
        self.sent.pop(ref, None)
        try:
            results = ray.get(ref)
        except RayError as exc:
            self.pool.finished(ref, exc)
            self.faults.model_call_failed(batch, exc)
            return True
        self.pool.finished(ref)
        for task, result in zip(batch, results):
            result = ModelResult.of(result)
            if task.first_pass is None:
                self._first_pass_back(task, result)
            if result.refine is not None:  # adaptive sampling: a second pass, the first pass's frames kept
                task.first_pass, task.first_result, task.policy = task.summary, result, result.refine
                task.first_payload_ref = task.payload_ref
                self.refine(task)
            else:
                self.outcomes.finish_passes(task, result)
        return True

    def reap_lost(self) -> None:
        """Calls that wait on a node that went away (their actor's, or the one their frames were
        decoded on) for NODE_LOSS_GRACE seconds: Ray may neither answer nor fail them (frames lost
        with their node, an actor restarting). Their files are decoded again elsewhere, a node
        fault; should such a call still come back, nothing waits for it. Its actor, where it
        answered no call sent after it, is restarted (ModelPool.abandon)."""
        from vscan.runtime.faults import NODE_LOSS_GRACE, CallAbandoned

        lost = self.faults.lost_nodes() if self.calls and self.faults is not None else None
        if not lost:
            return
        now = time.monotonic()
        for ref, batch in list(self.calls.items()):
            sent, actor_node = self.sent[ref]
            nodes = {actor_node} | {p.node for t in batch for p in (t.summary, t.first_pass) if p is not None}
            gone = [n for n in nodes if n in lost]
            if not gone or now - max(sent, *(lost[n] for n in gone)) < NODE_LOSS_GRACE:
                continue
            del self.calls[ref], self.sent[ref]
            self.pool.abandon(ref)
            exc = CallAbandoned(f"a model call waited {NODE_LOSS_GRACE:g} s on node {gone[0][:12]}, which went away")
            for task in batch:
                self.faults.retry(task, exc, decode_again=True, node_fault=True)

    def _first_pass_back(self, task: Task, result: ModelResult) -> None:
        """A first pass's result: whether it decided (for the switch and the
        profile), and its confirmation decoded ahead, used or not (``ahead_settled``)."""
        from vscan.decode.adaptive import Confirm

        decided = result.confirmed is not None or isinstance(result.refine, Confirm)
        if self.ahead is not None:
            self.ahead.observe(decided)
        self.queues.first_pass(decided, ahead=task.summary.ahead is not None, confirmed=result.confirmed is not None)
        ahead_settled(task, result.confirmed)


class RecordStage:
    """Finished files' records: written to the sink in one commit (group
    commit), then handed out, durable before any of them is reported. None
    is written before a model actor has started: the model stage may still
    refuse to start, and the scan must then end without records."""

    def __init__(self, *, sink: Any, ledger: Any, summary: Any, floods: Any, queues: Any, pool: Any,
                 keep_frame_hashes: bool = False, allow: Any = None, store: Any = None) -> None:  # fmt: skip
        self.sink, self.ledger, self.summary, self.floods, self.queues, self.pool = sink, ledger, summary, floods, queues, pool
        self.keep_frame_hashes, self.allow, self.store = keep_frame_hashes, allow, store
        self.finished: deque[dict[str, Any]] = deque()
        watch(queues)  # --metrics-port reads the stages' busy fractions from this run's profile (vscan.runtime.metrics)

    def emit(self, record: dict[str, Any]) -> None:
        self.finished.append(record)

    def commit(self) -> Iterator[dict[str, Any]]:
        if not self.finished or not self.pool.answering():
            return
        batch = [self.ledger.stamp(r) for r in self.finished]
        self.finished.clear()
        if self.keep_frame_hashes:  # --allow, --hash-store; the hashes never reach the sink
            from vscan.verdict.allow import take_frame_hashes

            take_frame_hashes(batch, allow=self.allow, store=self.store)
        t_sink = time.perf_counter()
        self.sink.write_many(batch)
        self.queues.sink_seconds += time.perf_counter() - t_sink
        for record in batch:
            self.ledger.recorded(record)
            self.summary.add(record)
            self.floods.add(record)
        yield from batch

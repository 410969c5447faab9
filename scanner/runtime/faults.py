"""What a Ray failure means for a file, for the scan driver (vscan.runtime.driver).

Infrastructure faults are retried, never recorded as the file's fault: a
decode task whose node died runs again elsewhere, a model call whose actor
went away goes to another actor (or waits for its restart), and one whose
frames were lost with their node is decoded again. A node that vanished is
not the file's fault however often it happens (up to ``NODE_FAULT_LIMIT``
times for one file, then the scan stops). A model actor that died on a live
node, or a model call that raised, may be the file's doing (frames that
exhaust its memory): retried ``INFRA_RETRIES`` times, then the file gets a
ModelError record, which resume re-runs. A decode task that crashed or hung
on a live node is the file's: a small-file group goes again file by file, a
file past its time limit is timed out, ``auto`` tries PyAV once, else the
file gets a DecoderCrashError record. A decode task the driver had to kill
(past its limit, its watchdog frozen) is handled the same way (``stuck``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from vscan.errors import DecoderCrashError, ModelError, QuarantinedError, error_info
from vscan.runtime.model_pool import describe_ray_error
from vscan.runtime.outcome import Outcomes, Task, let_go
from vscan.runtime.ray_start import dead_node_ids
from vscan.runtime.summary import ScanSummary

__all__ = ["InfraFaults", "CallAbandoned", "INFRA_RETRIES", "NODE_FAULT_LIMIT", "NODE_LOSS_GRACE", "QUARANTINE_DEATHS"]


class CallAbandoned(RuntimeError):
    """A model call given up on: it waited NODE_LOSS_GRACE seconds on a node that went away."""

#: Times one file is sent again after its model actor died on a live node, or its model call raised.
INFRA_RETRIES = 3
#: Times one file is sent again after its node, or its model actor's node, went away.
NODE_FAULT_LIMIT = 20
#: Seconds a model call may go on waiting on a node that went away (its actor's node, or the node
#: its frames were decoded on) before its files are decoded again elsewhere: Ray may neither
#: answer nor fail such a call (its frames gone with their node, its actor restarting).
NODE_LOSS_GRACE = 30.0
#: Seconds between the driver's looks at which nodes are dead.
NODE_POLL_SECONDS = 2.0
#: Nodes that died while decoding one file (the last time alone) before it is
#: quarantined: recorded (QuarantinedError), not sent on to kill more of the cluster.
QUARANTINE_DEATHS = 2


@dataclass
class InfraFaults:
    """The driver's fault handling: ``to_model`` queues a file's frames for
    the model stage again, ``resubmit_alone`` decodes a file again in its own
    task; ``dead_nodes`` are the cluster's dead nodes as last seen."""

    outcomes: Outcomes
    summary: ScanSummary
    to_model: Callable[[Task], None]
    resubmit_alone: Callable[[Task], None]
    file_timeout_seconds: float
    dead_nodes: set[str]
    decode_deaths: dict[int, int] = field(default_factory=dict)  # task key -> nodes that died while decoding it
    lost_at: dict[str, float] = field(default_factory=dict)  # node that died during the scan -> when the driver noticed
    _polled: float = field(default=0.0, repr=False)

    def retry(self, task: Task, exc: BaseException, *, decode_again: bool, node_fault: bool, decoding: bool = False) -> None:
        """Send the file again: its frames (to another actor), or from the
        decode on. A node fault is not taken for the file's, until nodes
        died QUARANTINE_DEATHS times while decoding it (the last time
        alone): then it is quarantined. Other faults are retried
        INFRA_RETRIES times, then a ModelError record."""
        self.summary.infra_retries += 1
        if node_fault and decoding:
            deaths = self.decode_deaths[task.key] = self.decode_deaths.get(task.key, 0) + 1
            if deaths >= QUARANTINE_DEATHS and task.group_size == 1:
                self.decode_deaths.pop(task.key)
                self.outcomes.fail(task, error_info(QuarantinedError(
                    f"{task.path}: quarantined: {deaths} nodes died while decoding it (last: {describe_ray_error(exc)}); "
                    "not sent to another")))  # fmt: skip
                return
        if node_fault:
            task.node_faults += 1
            if task.node_faults > NODE_FAULT_LIMIT:
                raise ModelError(f"{task.path}: its node or model actor went away {task.node_faults} times "
                                 f"(last: {describe_ray_error(exc)}); the cluster is failing, the scan stops "
                                 "(the files without records are scanned when it is started again)")  # fmt: skip
        else:
            task.infra_failures += 1
            if task.infra_failures > INFRA_RETRIES:
                message = f"the model stage failed {task.infra_failures} times on this file, last: {describe_ray_error(exc)}"
                self.outcomes.fail(task, error_info(ModelError(message)))
                return
        if not decode_again:
            self.to_model(task)
        else:
            let_go(task)  # from the first pass on
            task.summary = None
            self.resubmit_alone(task)

    def node_went(self, exc: BaseException, *, or_a_node_died: bool) -> bool:
        """Whether ``exc`` is a node going, not the file's doing: a node-level
        Ray error, or (``or_a_node_died``) any failure while a node newly
        died. Newly dead nodes are noted once."""
        from ray.exceptions import ActorUnavailableError, NodeDiedError, ObjectLostError

        node_error = isinstance(exc, (ActorUnavailableError, NodeDiedError, ObjectLostError))
        if not (node_error or or_a_node_died):
            return False
        now_dead = dead_node_ids()
        went = node_error or bool(now_dead - self.dead_nodes)
        if went:
            self._noted(now_dead)
        return went

    def _noted(self, now_dead: set[str]) -> None:
        now = time.monotonic()
        for node in now_dead - self.dead_nodes:
            self.lost_at.setdefault(node, now)
        self.dead_nodes = now_dead

    def lost_nodes(self) -> dict[str, float]:
        """Nodes that died during the scan, and when the driver noticed (looked up every NODE_POLL_SECONDS)."""
        now = time.monotonic()
        if now - self._polled >= NODE_POLL_SECONDS:
            self._polled = now
            self._noted(dead_node_ids() | self.dead_nodes)
        return self.lost_at

    def model_call_failed(self, batch: list[Task], exc: BaseException) -> None:
        """A model call raised: the actor went away (its batch goes to
        another, or to its restart), or its frames were lost with their node
        (decoded again), or the call raised: retried."""
        from ray.exceptions import RayActorError

        node_fault = self.node_went(exc, or_a_node_died=True)
        for task in batch:
            self.retry(task, exc, decode_again=not isinstance(exc, RayActorError), node_fault=node_fault)

    def stuck(self, group: list[Task]) -> None:
        """A decode task past its time limit that the driver killed: a group
        goes again file by file, a file alone is timed out."""
        if len(group) > 1:
            for task in group:
                self.resubmit_alone(task)
        else:
            self.outcomes.timed_out(group[0])

    def decode_failed(self, group: list[Task], exc: BaseException) -> None:
        """A decode task raised (crashed, hung, cancelled)."""
        from ray.exceptions import TaskCancelledError, WorkerCrashedError

        if self.node_went(exc, or_a_node_died=isinstance(exc, WorkerCrashedError)):
            # The node went, not the file: decode it again elsewhere.
            for task in group:
                self.retry(task, exc, decode_again=True, node_fault=True, decoding=True)
            return
        if len(group) > 1:
            # One file of a small-file group crashed or hung: each goes
            # again in its own task, so only the bad one fails.
            for task in group:
                self.resubmit_alone(task)
            return
        (task,) = group
        if time.monotonic() - (task.started or task.submitted) >= self.file_timeout_seconds:
            # The worker's own watchdog ended it at the limit (see decode_task).
            self.outcomes.timed_out(task)
            return
        if task.attempt_decoder == "auto" and not isinstance(exc, TaskCancelledError):
            # decord can abort the whole process on some streams: one retry with PyAV.
            task.attempt_decoder = "pyav"
            self.resubmit_alone(task)
            return
        self.outcomes.decode_failed(task, error_info(DecoderCrashError(f"decoder process died: {type(exc).__name__}")))

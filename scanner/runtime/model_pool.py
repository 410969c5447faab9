"""The model stage on Ray: a pool of model actors sized from the cluster.

Sizing (:func:`plan_actors`): one actor per GPU when the cluster has GPUs
(``runtime.device`` not ``cpu``); otherwise one actor per node, pinned there
(soft affinity, so a restart may move), with ``max(1, CPUs // 4)``
onnxruntime threads that it reserves as Ray CPUs, so the node's decode slots
and the model's threads never oversubscribe its cores. Nodes with fewer
than 4 CPUs reserve none (one model thread time-shares with decoding:
giving it a whole core would halve a 2-core node's decode slots).

The bank: every actor opens its memory-mapped index from the bank's path
(vscan.bank.mapped, built once by the driver; vscan.runtime.bank_share), so
a node's actors share one copy through the page cache. Where that path
cannot be read (or with ``runtime.bank_in_memory``) the bank is loaded once
by the driver and put into Ray's object store once: each node receives one
copy, and every actor on that node maps it read-only (numpy arrays are
zero-copy), not a private copy per actor.

Dispatch: each call goes to the usable actor with the fewest frames
outstanding. An actor that fails a call is left out of dispatch for a while
(1 s, doubling per failure, at most 30 s), so the driver's retry of the
call's files (see vscan.runtime.driver) goes to another actor, or waits for
this one's restart: a node that vanished leaves its actor "temporarily
unavailable" until Ray declares the node dead, and a retry sent to it in
that time is lost. Calls that fail together (every call in flight when the
actor went) are one failure. An actor that died gets no files until its
restart answers (``ready``); one whose restart could not build its model is
retired without being sent a file. An actor that died more than ``MAX_RESTARTS``
times is retired; with every actor retired, or none usable for
``START_TIMEOUT`` seconds, the scan stops with a ModelError (the files
without a record are scanned when it is started again).
A pool that cannot start (an actor's constructor failed: a missing CUDA
provider, a model that does not load) raises one ModelError before any
record is written.
"""

from __future__ import annotations

import re
import time
from contextlib import suppress
from dataclasses import replace
from typing import Any

from vscan.config import Runtime, ScanConfig
from vscan.errors import ModelError
from vscan.runtime.placement import ActorPlan, plan_actors
from vscan.runtime.ray_start import set_startup_phase

__all__ = ["ActorPlan", "plan_actors", "ModelPool", "describe_ray_error", "put_bank_index", "prepare_bank_index"]

#: Restarts of one model actor before the pool stops using it.
MAX_RESTARTS = 3
#: Seconds the pool may take to place and start its actors, or be without a usable one.
START_TIMEOUT = 300.0
#: Seconds an actor that failed a call is left out of dispatch: the first time, and at most.
SUSPEND_SECONDS = (1.0, 30.0)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def describe_ray_error(exc: BaseException) -> str:
    """One line for a Ray failure: the cause's type and message, without
    Ray's traceback or terminal colours."""
    cause = getattr(exc, "cause", None)
    shown = cause if isinstance(cause, BaseException) else exc
    text = _ANSI.sub("", str(shown)).strip().splitlines()
    return f"{type(shown).__name__}: {text[-1] if text else ''}".strip()


def put_bank_index(bank_path: Any, config: ScanConfig | None = None, nodes: list[dict[str, Any]] | None = None,
                   inputs: list | tuple = (), generation: str | None = None) -> Any:  # fmt: skip
    """What the model actors get for the bank (vscan.runtime.bank_share): its
    memory-mapped index's path, or (``runtime.bank_in_memory``, or a node that
    cannot read that path) the bank loaded once, into Ray's object store (one
    copy per node); None without a bank. ``generation``: the one the records are stamped with."""
    from vscan.runtime.bank_share import share_bank

    return share_bank(bank_path, config or ScanConfig(runtime=Runtime(bank_in_memory=True)), nodes or [], inputs, generation)


def prepare_bank_index(bank_path: Any, config: ScanConfig, inputs: list | tuple = (), generation: str | None = None) -> None:
    """Start what :func:`put_bank_index` does before any Ray call (the bank's
    memory-mapped index checked or built, its snapshot) in a thread, so that it
    runs while Ray starts (vscan.runtime.bank_share.prepare_early)."""
    from vscan.runtime.bank_share import prepare_early

    prepare_early(bank_path, config, inputs, generation)


class ActorBroken(ModelError):
    """A model actor (restarted by Ray) whose model did not build: retired, never sent more files."""


class _ModelActor:
    """One model actor: a ModelWorker plus where it runs. Its constructor
    never raises; a failure to start is reported by ``ready`` as a message."""

    def __init__(self, config: ScanConfig, bank_index: Any, threads: int) -> None:
        import ray

        # Imported here, in the actor: the driver imports this module, and a run with nothing to
        # decode (vscan.runtime.preflight) never loads the model stage's code (numba, onnxruntime).
        from vscan.runtime.model_actor import ModelWorker

        context = ray.get_runtime_context()
        self.where = {"model_node": context.get_node_id(), "model_actor": context.get_actor_id()}
        self.worker: ModelWorker | None = None
        self.error: str | None = None
        try:
            self.worker = ModelWorker(config, bank_index, threads=threads)
        except Exception as exc:  # noqa: BLE001 - reported once, as the scan's start-up failure
            self.error = f"{type(exc).__name__}: {exc}"

    def ready(self) -> dict[str, Any]:
        return {**self.where, "error": self.error, "provider": self.worker.provider() if self.worker else None}

    def run(self, files: list, *payloads: Any) -> list[dict[str, Any]]:
        if self.worker is None:  # a restart whose model did not build: the pool retires it (ActorBroken)
            raise ActorBroken(f"model actor {self.where['model_actor']} could not build its model: {self.error}")
        results = self.worker.run(files, *payloads)
        for result in results:
            result["ran_on"] = self.where
        return results

    def stats(self) -> dict[str, float]:
        return self.worker.stats() if self.worker else {}


class ModelPool:
    """The model actors of one scan, least-loaded dispatch, and start-up checks."""

    def __init__(self, config: ScanConfig, bank_index_ref: Any, nodes: list[dict[str, Any]], local: Any = None) -> None:
        """``local``: a vscan.runtime.local_model.LocalModel, which takes the calls until an actor answers."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.plans = plan_actors(nodes, config)
        self.local = local
        self.local_calls = 0  # calls the local model answered, and its work (stats)
        self.local_stats: dict[str, float] = {}
        set_startup_phase("models")  # what the progress bar says until an actor answers (vscan.cli.progress)
        self._bank_index_ref = bank_index_ref  # held: a restarted actor reads it again
        remote = ray.remote(_ModelActor)
        self.actors = []
        for plan in self.plans:
            strategy = NodeAffinitySchedulingStrategy(plan.node_id, soft=True) if plan.node_id else "DEFAULT"
            actor_config = replace(config, runtime=replace(config.runtime, device=plan.device))
            options = dict(num_cpus=plan.num_cpus, num_gpus=plan.num_gpus, max_restarts=MAX_RESTARTS,
                           max_task_retries=0, scheduling_strategy=strategy)  # fmt: skip
            self.actors.append(remote.options(**options).remote(actor_config, bank_index_ref, plan.threads))
        self.load = [0] * len(self.actors)  # frames outstanding per actor
        self.answered_upto = [0] * len(self.actors)  # the latest-sent call each answered (or failed): its number
        self.failures = [0] * len(self.actors)  # deaths (retired past MAX_RESTARTS)
        self.suspensions = [0] * len(self.actors)  # failed calls, counted once per suspension
        self.suspended_until = [0.0] * len(self.actors)
        self._none_usable_since: float | None = None
        self.info: list[dict[str, Any] | None] = [None] * len(self.actors)
        self._starting = {actor.ready.remote(): i for i, actor in enumerate(self.actors)}
        self._calls: dict[Any, tuple[int, int]] = {}  # call ref -> (actor, frames)
        self._number: dict[Any, int] = {}  # call ref -> its number, in the order calls were sent
        self._sent = 0
        self._t0 = time.monotonic()
        #: Actors retired, and why (for the manifest): never placed while others answered, or broken on restart.
        self.retired: dict[int, str] = {}
        #: Actors that died, asked whether their restart built its model before they get files again: ready ref -> actor.
        self._probes: dict[Any, int] = {}

    @property
    def reserved_cpus(self) -> float:
        return sum(p.num_cpus for p in self.plans)

    def started(self, timeout: float = 0.0) -> bool:
        """True once every actor has started; raises ModelError when one
        cannot (with its reason), or when they cannot be placed in time."""
        import ray
        from ray.exceptions import RayActorError

        if not self._starting:
            return True
        done, _ = ray.wait(list(self._starting), num_returns=len(self._starting), timeout=timeout)
        for ref in done:
            i = self._starting.pop(ref)
            try:
                info = ray.get(ref)
            except RayActorError as exc:
                self.failures[i] = MAX_RESTARTS + 1
                if all(f > MAX_RESTARTS for f in self.failures):
                    raise ModelError(f"the model stage could not start: {describe_ray_error(exc)}") from exc
                continue
            if info["error"]:
                raise ModelError(f"the model stage could not start: {info['error']}. Check --device and --model; "
                                 "a GPU needs the gpu extra (pip install 'vscan[gpu]'), or scan with --device cpu")  # fmt: skip
            self.info[i] = info
            set_startup_phase("first files")
        if self._starting and time.monotonic() - self._t0 > START_TIMEOUT:
            if not any(info is not None for info in self.info):
                raise ModelError(f"the model stage could not be placed within {START_TIMEOUT:g} s: {len(self._starting)} of "
                                 f"{len(self.actors)} actors are waiting for resources ({self.plans[0]})")  # fmt: skip
            for ref, i in list(self._starting.items()):  # others answer: the sweep goes on without these
                self._starting.pop(ref)
                self._retire(i, f"not placed within {START_TIMEOUT:g} s ({self.plans[i]}) while others answered")
        return not self._starting

    def _retire(self, i: int, why: str) -> None:
        import ray

        self.failures[i] = MAX_RESTARTS + 1
        self.retired[i] = why
        ray.kill(self.actors[i], no_restart=True)

    def usable(self) -> list[int]:
        """The actors a call may go to now; raises ModelError when none will again."""
        # Only actors that have answered take calls: one never placed would hold them.
        alive = [i for i, f in enumerate(self.failures) if f <= MAX_RESTARTS and (self.info[i] is not None or not self.answered())]
        if not alive:
            raise ModelError(f"every model actor died more than {MAX_RESTARTS} times; the scan stops "
                             "(the files without records are scanned when it is started again)")  # fmt: skip
        self._check_probes()
        now = time.monotonic()
        probing = set(self._probes.values())
        usable = [i for i in alive if self.suspended_until[i] <= now and i not in probing and i not in self.retired]
        if usable:
            self._none_usable_since = None
        elif self._none_usable_since is None:
            self._none_usable_since = now
        elif now - self._none_usable_since > START_TIMEOUT:
            raise ModelError(f"no model actor has answered for {START_TIMEOUT:g} s; the scan stops "
                             "(the files without records are scanned when it is started again)")  # fmt: skip
        return usable

    def _probe(self, i: int) -> None:
        """Ask actor ``i`` (restarted by Ray after it died) whether its model built; no file goes to it meanwhile."""
        if i not in self.retired and i not in self._probes.values():
            self._probes[self.actors[i].ready.remote()] = i

    def _check_probes(self) -> None:
        """Restarted actors that answered: back in dispatch, or retired when
        the restart could not build the model (never sent a file to fail on)."""
        import ray
        from ray.exceptions import ActorUnavailableError, RayActorError

        if not self._probes:
            return
        done, _ = ray.wait(list(self._probes), num_returns=len(self._probes), timeout=0)
        for ref in done:
            i = self._probes.pop(ref)
            try:
                info = ray.get(ref)
            except RayActorError as exc:
                if not isinstance(exc, ActorUnavailableError):
                    self.failures[i] += 1  # died again while restarting (Ray tries up to max_restarts)
                if self.failures[i] <= MAX_RESTARTS:
                    self._probe(i)  # ask again (an unreachable one: until Ray restarts it or declares it dead)
                continue
            if info["error"]:
                self._retire(i, f"restarted, but could not build its model: {info['error']}")
            else:
                self.info[i] = info  # where the restart runs (node_of)

    def answered(self) -> bool:
        return any(info is not None for info in self.info)

    def answering(self) -> bool:
        """True once at least one actor has started, or the local model
        (checks the actors' start-up too: one that cannot start still stops the scan)."""
        self.started()
        return any(info is not None for info in self.info) or bool(self.local_calls)

    def submit(self, files: list, payload_refs: list, frames: int) -> Any | None:
        """One model call to the least-loaded usable actor; returns its ref,
        or None while every actor is left out after a failure (call again)."""
        if self.local is not None:
            from vscan.runtime.local_model import call_locally

            if not self.answered() and not self.local.failed:  # the local model until an actor answers
                return call_locally(self, files, payload_refs, frames)
            self.local.close()
            self.local = None
        usable = self.usable()
        if not usable:
            return None
        i = min(usable, key=lambda k: (self.load[k], self.suspensions[k]))
        ref = self.actors[i].run.remote(files, *payload_refs)
        self._calls[ref] = (i, frames)
        self._sent += 1
        self._number[ref] = self._sent  # Ray runs an actor's calls in this order
        self.load[i] += frames
        return ref

    def finished(self, ref: Any, error: BaseException | None = None) -> None:
        """A call came back (``error``: the Ray error it failed with); frees its
        load, and leaves a failed actor out of dispatch for a while."""
        from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

        i, frames = self._calls.pop(ref)
        if i < 0:  # the local model's call: answered before its ref existed
            return
        self.load[i] -= frames
        self.answered_upto[i] = max(self.answered_upto[i], self._number.pop(ref, 0))
        if error is None:
            return
        if isinstance(error, RayTaskError) and isinstance(error.cause, ActorBroken) and self.info[i] is not None:
            # It had started: a restart whose model did not build. (One that never
            # started is reported by started(), as the scan's start-up failure.)
            if i not in self.retired:
                self._retire(i, str(error.cause))
            return
        now = time.monotonic()
        if self.suspended_until[i] > now:
            return  # another call of the same failure
        self.suspensions[i] += 1
        first, cap = SUSPEND_SECONDS
        self.suspended_until[i] = now + min(cap, first * 2 ** (self.suspensions[i] - 1))
        if isinstance(error, RayActorError) and not isinstance(error, ActorUnavailableError):
            self.failures[i] += 1  # it died (Ray restarts it, up to max_restarts)
        if isinstance(error, RayActorError) and self.failures[i] <= MAX_RESTARTS:
            self._probe(i)  # died or unreachable (restarting, or its node went): no files until it answers again

    def node_of(self, ref: Any) -> str | None:
        """The node of the actor call ``ref`` went to, as it last answered (a restart: its own node once it answered)."""
        i, _ = self._calls.get(ref, (-1, 0))
        return (self.info[i] or {}).get("model_node") if i >= 0 else None

    def abandon(self, ref: Any) -> None:
        """Give up on call ``ref`` (it waits on a node that went away): its load is freed and Ray asked to
        cancel it. Where its actor answered no call sent after it, Ray keeps that actor blocked on it (calls run
        in order, on frames lost with their node): the actor is restarted, and the calls queued behind it fail
        and go elsewhere."""
        import ray

        i, number = self._calls[ref][0], self._number.get(ref, 0)
        wedged = i >= 0 and self.answered_upto[i] < number and i not in self.retired
        self.finished(ref)
        with suppress(Exception):  # best effort: one that already ran, or on a dead actor, is not cancelled
            ray.cancel(ref)
        if wedged:
            with suppress(Exception):
                ray.kill(self.actors[i], no_restart=False)
            self.suspended_until[i] = time.monotonic() + SUSPEND_SECONDS[0]
            self._probe(i)  # no files until its restart answers

    def cluster(self) -> list[dict[str, Any]]:
        """The actors for the manifest: node, actor id, provider, threads, reserved CPUs/GPUs."""
        return [{**(info or {"model_node": p.node_id, "model_actor": None}), "threads": p.threads,
                 "num_cpus": p.num_cpus, "num_gpus": p.num_gpus, **({"retired": self.retired[i]} if i in self.retired else {})}
                for i, (p, info) in enumerate(zip(self.plans, self.info))] + self._local_entry()  # fmt: skip

    def _local_entry(self) -> list[dict[str, Any]]:
        """The local model (vscan.runtime.local_model), for the manifest, where it answered calls."""
        if not self.local_calls:
            return []
        return [{"model_node": None, "model_actor": None, "in_process": True, "until_an_actor_answered": True,
                 "calls": self.local_calls, "threads": 1, "num_cpus": 0, "num_gpus": 0}]  # fmt: skip

    def stats(self) -> dict[str, float] | None:
        """Work summed over the actors that answer (busy seconds, frames, calls)."""
        import ray
        from ray.exceptions import RayError

        total: dict[str, float] = {}
        parts = [self.local_stats] if self.local_stats else []
        for actor in self.actors:
            try:
                parts.append(ray.get(actor.stats.remote(), timeout=30))
            except RayError:
                continue
        for part in parts:
            for key, value in part.items():
                total[key] = max(total.get(key, 0), value) if key.startswith("max_") else total.get(key, 0) + value
        return total or None

    def close(self) -> None:
        import ray

        set_startup_phase(None)
        if self.local is not None:
            self.local.close()
        for actor in self.actors:
            ray.kill(actor)

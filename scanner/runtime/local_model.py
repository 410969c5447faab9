"""The model stage in the scanning process while the model actor starts (issue #30).

A private local Ray (no ``--ray-address``) on a small machine starts its
model actor last: Ray itself comes up, then the actor's interpreter imports
the model stage and builds its model. On the project's 2-core machine that
was 10-24 s of each 18-29 s archive run, and every file's first pass was
decoded long before the first model answer (so adaptive sampling's switch
never decoded a confirmation ahead: vscan.runtime.confirm_ahead).

``LocalModel`` builds the same ModelWorker (vscan.runtime.model_actor) in a
thread of the scanning process, started before ``ray.init``, so it loads
while Ray comes up. vscan.runtime.model_pool sends model calls to it until
the first model actor answers, then only to the actors, and lets it go. A
call it fails (an exception) is not its files' fault: the pool stops using
it and the call goes to an actor. Its records say ``model_actor: null``
(the model ran in the scanning process, as in vscan.runtime.embedded).

It is used where the embedded path would be (vscan.runtime.embedded):
without a Ray address, on CPU, and only once the model actors' plan gives
this machine's model one thread (a node of at most 7 CPUs): a bigger node's
driver has other work, and its actor is what the plan sized.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from typing import Any

from vscan.config import ScanConfig

__all__ = ["LocalModel", "local_model_wanted", "call_locally", "IN_PROCESS"]

#: Where a call the local model answered says it ran.
IN_PROCESS = {"model_node": None, "model_actor": None}
#: Largest node (CPUs) whose scans start a local model: its model actor gets one thread (vscan.runtime.model_pool).
MAX_CPUS = 7


def local_model_wanted(config: ScanConfig, ray_address: str | None, *, may_use_a_gpu: bool) -> bool:
    """Whether this scan builds a model here while Ray starts (module docstring); ``may_use_a_gpu``:
    vscan.runtime.embedded.may_use_a_gpu (the model stage then runs on Ray's GPU actors)."""
    runtime = config.runtime
    if not runtime.local_model_at_start or ray_address or os.environ.get("RAY_ADDRESS") or runtime.device == "cuda":
        return False
    if may_use_a_gpu or (os.cpu_count() or 1) > MAX_CPUS:
        return False
    import sys

    ray = sys.modules.get("ray")
    return not (ray is not None and getattr(ray, "is_initialized", lambda: False)())  # a Ray already running: its actors


class LocalModel:
    """A ModelWorker built in a thread (``start``), used by the pool until an actor answers."""

    def __init__(self) -> None:
        self.worker: Any = None
        self.error: str | None = None
        self.ready_at: float | None = None  # time.perf_counter() when built
        self.busy_seconds = 0.0
        self._built = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, config: ScanConfig, bank_path: Any, inputs: list, generation: str | None, plan: Any) -> "LocalModel":
        """Built in a thread, as the model actor ``plan`` (vscan.runtime.model_pool.ActorPlan) of this machine would be."""
        model = cls()
        args = (config, bank_path, inputs, generation, plan)
        model._thread = threading.Thread(target=model._build, args=args, name="vscan-local-model", daemon=True)
        model._thread.start()
        return model

    def _build(self, config: ScanConfig, bank_path: Any, inputs: list, generation: str | None, plan: Any) -> None:
        try:
            from vscan.runtime.bank_share import share_bank
            from vscan.runtime.model_actor import ModelWorker

            bank = share_bank(bank_path, config, [], inputs, generation, local=True)
            self.worker = ModelWorker(replace(config, runtime=replace(config.runtime, device=plan.device)), bank, threads=plan.threads)
            self.ready_at = time.perf_counter()
        except Exception as exc:  # noqa: BLE001 - the actors build it again and report what fails
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._built.set()

    @property
    def ready(self) -> bool:
        return self._built.is_set() and self.worker is not None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def run(self, files: list, payloads: list) -> list[Any]:
        """One model call here (as a model actor's ``run``); raises what the worker raises."""
        t0 = time.perf_counter()
        try:
            results = self.worker.run(files, *payloads)
        finally:
            self.busy_seconds += time.perf_counter() - t0
        for result in results:
            result["ran_on"] = dict(IN_PROCESS)
        return results

    def stats(self) -> dict[str, float]:
        return self.worker.stats() if self.worker is not None else {}

    def close(self) -> None:
        """Let the worker go (its bank mapping, its sessions); a build still running finishes in its thread."""
        self.worker = None


def call_locally(pool: Any, files: list, payload_refs: list, frames: int) -> Any | None:
    """``pool``'s model call answered by its local model (vscan.runtime.model_pool.ModelPool.submit):
    the results' ref, ready at once; None while the model is still building, or when the call
    failed here (the model is then not used again, and the call goes to an actor)."""
    import ray

    from vscan.runtime.ray_start import set_startup_phase

    local = pool.local
    if not local.ready:
        return None
    try:
        results = local.run(files, ray.get(list(payload_refs)))
    except Exception as exc:  # noqa: BLE001 - not the files' fault: an actor takes the call
        local.error = f"{type(exc).__name__}: {exc}"
        return None
    pool.local_calls += 1
    pool.local_stats = local.stats()
    set_startup_phase("first files")
    ref = ray.put(results)
    pool._calls[ref] = (-1, frames)
    return ref

"""Where a scan's work runs: decode tasks that say where they ran (chain of
custody at scale), and the model actors' plan over the cluster's nodes.

A thin wrapper around vscan.runtime.decode_task.decode_task, run as the Ray
decode task: every summary it returns carries ``node``, the Ray node id of
the worker that read and decoded the file, which the record keeps in
``ran_on.decode_node``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vscan.config import ScanConfig
from vscan.errors import ModelError

__all__ = ["decode_on_node", "ran_on", "ActorPlan", "plan_actors", "CPUS_PER_MODEL_THREAD"]

#: Ray CPUs per model thread on CPU nodes, and the smallest node that gives the model a core.
CPUS_PER_MODEL_THREAD = 4


def decode_on_node(paths: list[str], config: ScanConfig, known_sha256: Any = None, benign: Any = ()) -> tuple:
    """decode_task, with this worker's node id in each summary."""
    import ray

    from vscan.runtime.decode_task import decode_task  # here, in the worker: the driver never needs the decoders

    node = ray.get_runtime_context().get_node_id()
    summaries, *payloads = decode_task(paths, config, known_sha256, benign or ())
    for summary in summaries:
        summary["node"] = node
    return (summaries, *payloads)


def ran_on(summary: dict[str, Any] | None, model: dict[str, Any] | None = None) -> dict[str, Any]:
    """A record's ``ran_on``: decode node, and the model stage's node and actor."""
    where = {"decode_node": (summary or {}).get("node"), "model_node": None, "model_actor": None}
    where.update(model or {})
    return where


@dataclass(frozen=True)
class ActorPlan:
    """Where one model actor goes and what it holds."""

    node_id: str | None  # None: let Ray place it (GPU actors)
    num_cpus: float
    num_gpus: float
    threads: int  # onnxruntime threads per model; 0 = onnxruntime's default
    device: str


def plan_actors(nodes: list[dict[str, Any]], config: ScanConfig) -> list[ActorPlan]:
    """The pool for these nodes (``vscan.runtime.ray_start.cluster_nodes``)."""
    device = config.runtime.device
    gpus = sum(n["gpus"] for n in nodes)
    if gpus and device != "cpu":
        # device "auto" stays auto in the actor: CUDA when onnxruntime has it,
        # else CPU (a cpu install on a GPU host still scans, on CPU).
        return [ActorPlan(None, 0, 1, 0, device) for _ in range(gpus)]
    if device == "cuda":
        raise ModelError("--device cuda, but no node of the Ray cluster reports a GPU: use --device cpu or auto, "
                         "or start the nodes with their GPUs (ray start --num-gpus N)")  # fmt: skip
    plans = []
    for node in nodes:
        if node["cpus"] <= 0:
            continue
        threads = max(1, node["cpus"] // CPUS_PER_MODEL_THREAD)
        reserve = threads if node["cpus"] >= CPUS_PER_MODEL_THREAD else 0
        plans.append(ActorPlan(node["node_id"], reserve, 0, threads, "cpu" if device == "auto" else device))
    if not plans:
        raise ModelError("the Ray cluster has no node with CPUs or GPUs for the model stage")
    return plans

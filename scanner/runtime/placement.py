"""Decode tasks that say where they ran (chain of custody at scale).

A thin wrapper around vscan.runtime.decode_task.decode_task, run as the Ray
decode task: every summary it returns carries ``node``, the Ray node id of
the worker that read and decoded the file, which the record keeps in
``ran_on.decode_node``.
"""

from __future__ import annotations

from typing import Any

from vscan.config import ScanConfig

__all__ = ["decode_on_node", "ran_on"]


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

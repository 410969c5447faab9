"""Known-content lookups for ``--state``, answered per file.

Decode tasks digest a file first and skip decoding when its content was
scanned before with the same versions. Each task asks one small actor on
the driver's node, which reads the state database there, about its own
file's SHA-256: a task's cost does not grow with the history, and the state
file need not be on shared storage.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["KnownContent", "start_known_content"]


class _StateReader:
    """The Ray actor: SHA-256 -> known for these versions (vscan.output.resume.StateDB)."""

    def __init__(self, state_path: str, versions: dict[str, Any]) -> None:
        from vscan.output.resume import StateDB

        self.db, self.versions = StateDB(state_path), versions

    def known(self, sha256: str) -> bool:
        return self.db.get(sha256, self.versions) is not None


class KnownContent:
    """``sha256 in known``, one actor call per file (picklable: travels to decode tasks)."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def __contains__(self, sha256: object) -> bool:
        """Known for these versions; a lookup that fails (the reader actor
        died, the state file is unreadable) is "not known": the file is
        decoded, never given an error for the state's fault."""
        import ray

        try:
            return bool(ray.get(self._reader.known.remote(sha256)))
        except Exception:  # noqa: BLE001 - any failure of the lookup means: scan it
            return False


def start_known_content(state_path: str | os.PathLike, versions: dict[str, Any]) -> KnownContent:
    """The reader actor, pinned to this (the driver's) node, where the state file is."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    reader = ray.remote(_StateReader).options(num_cpus=0, scheduling_strategy=here, max_restarts=3).remote(
        os.path.abspath(state_path), versions)  # fmt: skip
    return KnownContent(reader)

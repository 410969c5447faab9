"""Ray start-up for a scan: a private local Ray, or joining a named cluster.

Without an address vscan always starts its own local Ray (``address="local"``),
whatever else runs on the machine: a cluster registered by ``ray start`` or
named in ``RAY_ADDRESS`` is never joined by accident, and two scans on one
machine each get their own. With an address it joins that cluster; Ray's
token authentication (``RAY_AUTH_MODE=token``, the token in ``RAY_AUTH_TOKEN``,
``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) is switched on when a token
is there, and a refused or unreachable cluster stops the scan with one
message saying what to set. A Ray already initialised in this process (the
Python API inside a Ray program, the tests) is used as it is.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from vscan.errors import ConfigError

__all__ = ["start_ray", "cluster_nodes", "dead_node_ids"]

_AUTH_HELP = (
    "a cluster started with RAY_AUTH_MODE=token needs its token here: export RAY_AUTH_MODE=token and "
    "RAY_AUTH_TOKEN=<the output of `ray get-auth-token` on the head node> (or copy the head's "
    "~/.ray/auth_token, or point RAY_AUTH_TOKEN_PATH at a copy)"
)


def _token_available() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token"
    return Path(path).is_file()


def _enable_token_auth_for_address() -> None:
    """Ray turns token auth on by itself only for clusters it finds (no
    address, ``auto``); a named address gets it when a token is available
    and the mode was not chosen explicitly."""
    if "RAY_AUTH_MODE" in os.environ or not _token_available():
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    from ray._raylet import Config  # Ray reads the mode once per process: refresh it, as ray.init does

    Config.initialize("")


def start_ray(address: str | None) -> bool:
    """Join ``address`` or start a private local Ray; True when we started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    common: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                                  configure_logging=True)  # fmt: skip
    if address:
        _enable_token_auth_for_address()
        try:
            ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ray.exceptions.AuthenticationError) as exc:
            auth = isinstance(exc, ray.exceptions.AuthenticationError) or "uthentication" in str(exc.__cause__ or "")
            hint = _AUTH_HELP if auth else "is `ray start --head` running there, and is the address host:port of its GCS?"
            raise ConfigError(f"cannot join the Ray cluster at {address!r}: {hint}") from exc
        return False
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    ray.init(address="local", num_cpus=os.cpu_count() or 1,
             object_store_memory=min(2 << 30, max(256 << 20, int(memory * 0.1))), **common)  # fmt: skip
    return True


def cluster_nodes() -> list[dict[str, Any]]:
    """The alive nodes: id, address, CPUs, GPUs (for the plan and the manifest)."""
    import ray

    nodes = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        nodes.append({"node_id": node["NodeID"], "address": node.get("NodeManagerAddress"),
                      "cpus": int(res.get("CPU", 0)), "gpus": int(res.get("GPU", 0))})  # fmt: skip
    return sorted(nodes, key=lambda n: n["node_id"])


def dead_node_ids(nodes: list[dict[str, Any]] | None = None) -> set[str]:
    """Ids of the nodes Ray knows that are not alive (alive: ``nodes`` when given, else now)."""
    import ray

    alive = {n["node_id"] for n in (nodes if nodes is not None else cluster_nodes())}
    return {n["NodeID"] for n in ray.nodes()} - alive

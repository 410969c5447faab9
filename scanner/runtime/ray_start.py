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

A private local Ray starts lean (:func:`_lean_head`): no autoscaler
monitor, no log monitor (worker logs never go to the driver anyway), no
dashboard process, and the agents' ports picked here, so that the raylet
does not wait for its agents to report theirs. Measured on the project's
2-core machine (bench/bench_startup.py): ray.init 1.6-1.9 s instead of
4.1-6.3 s, shutdown 0.4-0.6 s instead of 1.2-1.4 s, and three Python
processes fewer competing for the cores. Should that start fail on some
Ray version, the plain start is tried; ``VSCAN_RAY_LEAN=0`` asks for the
plain start directly.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vscan.errors import ConfigError

__all__ = ["start_ray", "cluster_nodes", "dead_node_ids", "startup_phase", "set_startup_phase", "phase_times"]

#: Ports of the local node's agents, picked here instead of by the agents (port 0),
#: which the raylet would otherwise wait for before it registers (~1-2 s).
_AGENT_PORTS = ("metrics_agent_port", "dashboard_agent_listen_port", "runtime_env_agent_port")

_phase: str | None = None
_phase_times: dict[str, float] = {}


def startup_phase() -> str | None:
    """What this process's scan is starting right now, for the progress bar
    (``"ray"``, ``"ray up"``, ``"models"``, ``"first files"``; a small scan without Ray,
    vscan.runtime.embedded: ``"models here"``, ``"first files here"``), or None when not starting."""
    return _phase


def set_startup_phase(phase: str | None) -> None:
    global _phase
    _phase = phase
    if phase in ("ray", "models here"):  # a scan's start-up begins
        _phase_times.clear()
    if phase is not None:
        _phase_times.setdefault(phase, time.perf_counter())


def phase_times() -> dict[str, float]:
    """When (``time.perf_counter()``) this process's last scan entered each start-up phase (bench/bench_startup.py)."""
    return dict(_phase_times)

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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


@contextmanager
def _lean_head():
    """While ``ray.init`` starts a private local node: RayParams without the
    autoscaler monitor and the log monitor, with the agents' ports chosen
    here, and no dashboard (API server) process. Ray's own modules, patched
    for the one call and restored after; with a Ray whose internals differ,
    nothing is patched (the plain start)."""
    try:
        from ray._private import parameter, services

        base, api_server = parameter.RayParams, services.start_api_server
        probe = base()
        if not all(hasattr(probe, a) for a in ("no_monitor", "include_log_monitor", *_AGENT_PORTS)):
            raise AttributeError("RayParams without the expected fields")
    except Exception:  # noqa: BLE001 - another Ray: start it as it comes
        yield False
        return

    class LeanParams(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.no_monitor = True  # the autoscaler's monitor: nothing autoscales a private node
            self.include_log_monitor = False  # streams worker logs to the driver: log_to_driver is off
            for name in _AGENT_PORTS:
                if not getattr(self, name):
                    setattr(self, name, _free_port())

    def no_api_server(*_args: Any, **_kwargs: Any) -> tuple[None, None]:
        return None, None  # include_dashboard=False still started a dashboard process (usage stats only)

    parameter.RayParams, services.start_api_server = LeanParams, no_api_server
    try:
        yield True
    finally:
        parameter.RayParams, services.start_api_server = base, api_server


def _start_local(ray: Any, common: dict[str, Any]) -> None:
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    options = dict(address="local", num_cpus=os.cpu_count() or 1,
                   object_store_memory=min(2 << 30, max(256 << 20, int(memory * 0.1))), **common)  # fmt: skip
    if os.environ.get("VSCAN_RAY_LEAN", "1") != "0":
        with _lean_head() as lean:
            try:
                ray.init(**options)
                return
            except Exception:  # noqa: BLE001 - a lean start this Ray does not take (a port taken meanwhile): the plain one
                if not lean:
                    raise
                ray.shutdown()
    ray.init(**options)


def start_ray(address: str | None) -> bool:
    """Join ``address`` or start a private local Ray; True when we started it."""
    import ray

    if ray.is_initialized():
        return False
    set_startup_phase("ray")
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
        set_startup_phase("ray up")
        return False
    _start_local(ray, common)
    set_startup_phase("ray up")
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

    if nodes is None:
        return {n["NodeID"] for n in ray.nodes() if not n.get("Alive")}
    alive = {n["node_id"] for n in nodes}
    return {n["NodeID"] for n in ray.nodes()} - alive

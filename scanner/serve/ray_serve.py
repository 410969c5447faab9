"""``vscan serve --ray-serve``: the match service as a Ray Serve application.

Each replica is a Ray actor that builds the same FastAPI app as
``vscan serve`` (vscan.serve.app.create_app: HMA 2.x endpoints, keys,
/metrics, OpenAPI) and maps the bank file itself, so the file must be at
the same path on every node that runs a replica (a shared or synced
folder); each replica reloads it when its generation changes. Ray Serve's
HTTP proxy listens on ``--host``/``--port`` and balances requests over the
replicas; ``--replicas`` sets how many. On a local Ray started here
(no ``--ray-address``) everything stops when the command ends; on an
existing cluster only this application is deleted (Serve itself, which
other applications may use, is left running). ``/metrics`` answers from
whichever replica takes the request: per-replica counts (Ray's own metrics
export aggregates Serve's request figures).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["APP_NAME", "application", "run"]

APP_NAME = "vscan-match"


def application(settings: Any, *, replicas: int, cpus_per_replica: float = 1.0):
    """The bound Serve application: ``replicas`` copies of the service's FastAPI app."""
    from ray import serve

    def build():  # runs in each replica: its own app, its own map of the bank
        from vscan.serve.app import create_app

        return create_app(settings)

    ingress = serve.ingress(build)()
    return serve.deployment(ingress, name="match", num_replicas=replicas, ray_actor_options={"num_cpus": cpus_per_replica}).bind()


def run(settings: Any, *, host: str, port: int, replicas: int, ray_address: str | None, cpus_per_replica: float = 1.0) -> None:
    """Deploy on Ray Serve and wait for SIGINT/SIGTERM, then take the application (and a Ray started here) down."""
    import ray
    from ray import serve

    local = ray_address is None
    if local:
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=ray_address, log_to_driver=False, configure_logging=False)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(application(settings, replicas=replicas, cpus_per_replica=cpus_per_replica), name=APP_NAME, route_prefix="/")
        print(f"vscan serve: {replicas} replica(s) on Ray Serve at http://{host}:{port}", flush=True)
        stop.wait()
    finally:
        try:
            if local:
                serve.shutdown()
            else:
                serve.delete(APP_NAME)
        finally:
            ray.shutdown()

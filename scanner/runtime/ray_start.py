"""Ray start-up for a scan: a local Ray, or joining a cluster."""

from __future__ import annotations

import logging
import os

__all__ = ["start_ray"]


def start_ray(address: str | None) -> bool:
    """Connect to ``address`` or start a local Ray; True when we started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    if address:
        ray.init(address=address, **common)
        return False
    ray.init(
        num_cpus=os.cpu_count() or 1,
        object_store_memory=min(2 << 30, max(256 << 20, int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * 0.1))),
        **common,
    )
    return True

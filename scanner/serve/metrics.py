"""Prometheus metrics of the match service (GET /metrics).

Under ``vscan serve --workers N`` every worker process writes its values to
``PROMETHEUS_MULTIPROC_DIR`` (set by the command before the workers start)
and a scrape of any worker sums them (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["ServeMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)


class ServeMetrics:
    def __init__(self, bank_name: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.bank_name = bank_name
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()  # one per app: several apps in one process never collide
        r = self.registry
        self.requests = Counter("vscan_serve_requests", "HTTP requests by route and status", ["route", "status"], registry=r)
        self.request_seconds = Histogram("vscan_serve_request_seconds", "HTTP request time by route", ["route"],
                                         buckets=_LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.lookups = Counter("vscan_serve_lookups", "Hashes looked up", ["bank"], registry=r)
        self.lookup_hits = Counter("vscan_serve_lookup_matches", "Hashes looked up that matched at least one entry", ["bank"], registry=r)
        self.lookup_seconds = Histogram("vscan_serve_lookup_seconds", "Time per lookup (index search and metadata)", ["bank"],
                                        buckets=_LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.scans = Counter("vscan_serve_scans", "Whole-file scans by record status", ["status"], registry=r)
        self.scan_matches = Counter("vscan_serve_scan_matches", "Scanned files with a match, per bank", ["bank"], registry=r)
        self.scan_seconds = Histogram("vscan_serve_scan_seconds", "Time per whole-file scan", buckets=_LATENCY_BUCKETS, registry=r)
        mode = {"multiprocess_mode": "max"} if self.multiprocess else {}
        self.bank_rows = Gauge("vscan_serve_bank_rows", "Frame hashes in the bank the service answers from", ["bank"], registry=r, **mode)
        self.reloads = Counter("vscan_serve_bank_reloads", "Bank reloads after its generation changed", ["bank"], registry=r)
        self._first = True

    def request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.request_seconds.labels(route).observe(seconds)

    def lookup(self, seconds: float, hits: int) -> None:
        self.lookups.labels(self.bank_name).inc()
        if hits:
            self.lookup_hits.labels(self.bank_name).inc()
        self.lookup_seconds.labels(self.bank_name).observe(seconds)

    def scan(self, seconds: float, record: dict[str, Any]) -> None:
        self.scans.labels(record.get("status", "?")).inc()
        self.scan_seconds.observe(seconds)
        if any(m.get("is_match") for m in record.get("matches", [])):
            self.scan_matches.labels(self.bank_name).inc()

    def reloaded(self, state) -> None:
        self.bank_rows.labels(self.bank_name).set(state.rows)
        if not self._first:
            self.reloads.labels(self.bank_name).inc()
        self._first = False

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

"""Prometheus metrics of a running scan (``vscan scan --metrics-port [HOST:]PORT``).

Served from the scan's own process (prometheus_client's HTTP server, a
daemon thread) while it runs, updated from each record as it becomes
durable: files by status, errors by kind and type, video seconds, frames
decoded and sampled (hashed), matches per bank, and the run's files and
video-seconds per second so far. Stage busy fractions (``vscan_scan_stage_busy_fraction``,
worked out when scraped): ``decode``, the decode slots' mean occupancy; ``model``,
the share of the run with a model call in flight; ``record``, the share spent
writing records to the sink (from the pipeline's own queue profile,
vscan.runtime.profile.QueueStats; a scan without Ray, whose stages take turns in
one process, counts its files' decode and model seconds instead). The
records' own stage seconds add up in ``vscan_scan_stage_seconds``. Binds 127.0.0.1 unless a host is given.
``VSCAN_METRICS_LINGER_SECONDS`` keeps it serving that long after the scan
ends, so a scraper sees the final counts of a short scan.
"""

from __future__ import annotations

import os
import time
from typing import Any

__all__ = ["ScanMetrics", "parse_address", "watch", "busy_fractions", "DECODE_TIMINGS"]

#: A record's timings spent in the decode stage (the rest are the model stage's: hash, match, detect, ...).
DECODE_TIMINGS = frozenset({"digest", "decode", "regions", "fetch", "archive_read"})
_LIVE: list[Any] = []  # the running scan's QueueStats (registered by vscan.runtime.stages.RecordStage)


def watch(queues: Any) -> None:
    """The pipeline profile the busy fractions are read from (the scan running in this process)."""
    _LIVE[:] = [queues]


def busy_fractions(worked: dict[str, float], elapsed_seconds: float) -> dict[str, float]:
    """{decode, model, record}: each stage's busy share of the run so far (module docstring);
    ``worked``: the records' decode and model seconds, used when the pipeline was not sampled."""
    q = _LIVE[-1] if _LIVE else None
    now = time.monotonic()
    wall = max((q.last - q.t0) if q is not None else 0.0, 1e-9)
    sampled = q is not None and q.sums["decode_running"] > 0
    out = {
        "decode": q.sums["decode_running"] / (wall * max(q.slots, 1)) if sampled else worked["decode"] / max(elapsed_seconds, 1e-9),
        "model": 1.0 - q.model_idle / wall if sampled else worked["model"] / max(elapsed_seconds, 1e-9),
        "record": q.sink_seconds / max(now - q.t0, 1e-9) if q is not None else 0.0,
    }
    return {stage: min(1.0, max(0.0, value)) for stage, value in out.items()}


def parse_address(text: str) -> tuple[str, int]:
    """``PORT`` or ``HOST:PORT`` -> (host, port); 127.0.0.1 by default."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"Invalid --metrics-port ({text!r}). Supported values are PORT or HOST:PORT.") from None
    if not 0 < number < 65536:
        raise ValueError(f"Invalid --metrics-port ({text!r}). Supported ports are 1..65535.")
    return host or "127.0.0.1", number


class ScanMetrics:
    def __init__(self, address: str, *, bank_name: str | None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

        host, port = parse_address(address)
        self.registry = r = CollectorRegistry()
        self.bank_name = bank_name or ""
        self.files = Counter("vscan_scan_files", "Files recorded, by status", ["status"], registry=r)
        self.errors = Counter("vscan_scan_errors", "Files recorded with an error, by kind and type", ["kind", "type"], registry=r)
        self.video_seconds = Counter("vscan_scan_video_seconds", "Seconds of video recorded", registry=r)
        self.frames_decoded = Counter("vscan_scan_frames_decoded", "Frames decoded", registry=r)
        self.frames_hashed = Counter("vscan_scan_frames_hashed", "Frames sampled and hashed", registry=r)
        self.matches = Counter("vscan_scan_matches", "Files with a match, per bank", ["bank"], registry=r)
        self.skipped = Counter("vscan_scan_skipped", "Files not decoded, by why (known-benign, unchanged)", ["why"], registry=r)
        self.files_rate = Gauge("vscan_scan_files_per_second", "Files recorded per second since the scan started", registry=r)
        self.video_rate = Gauge("vscan_scan_video_seconds_per_second", "Video seconds recorded per second since the scan started", registry=r)
        self.stage_seconds = Counter("vscan_scan_stage_seconds", "Seconds the recorded files spent in each stage's work (decode, model)", ["stage"], registry=r)
        busy = Gauge("vscan_scan_stage_busy_fraction", "Share of the run each stage was busy (decode slots' occupancy, model call in flight, record writing)",
                     ["stage"], registry=r)  # fmt: skip
        self._worked = {"decode": 0.0, "model": 0.0}
        for stage in ("decode", "model", "record"):
            busy.labels(stage).set_function(lambda stage=stage: busy_fractions(self._worked, time.monotonic() - self._t0)[stage])
        self._t0, self._n, self._video = time.monotonic(), 0, 0.0
        self.server = start_http_server(port, addr=host, registry=r)

    def record(self, record: dict[str, Any]) -> None:
        self.files.labels(record.get("status", "?")).inc()
        error = record.get("error")
        if error:
            self.errors.labels(error.get("kind", ""), error.get("type", "")).inc()
        seconds = float(record.get("duration_seconds") or 0.0)
        self.video_seconds.inc(seconds)
        self.frames_decoded.inc(int(record.get("frames_decoded") or 0))
        self.frames_hashed.inc(int(record.get("frames_sampled") or 0))
        for name, seconds in (record.get("timings") or {}).items():
            if name.startswith("match_"):
                continue  # parts of "match"
            stage = "decode" if name in DECODE_TIMINGS else "model"
            self._worked[stage] += float(seconds or 0.0)
            self.stage_seconds.labels(stage).inc(float(seconds or 0.0))
        if record.get("skipped"):
            self.skipped.labels(record["skipped"]).inc()
        if any(m.get("is_match") for m in record.get("matches") or ()):
            self.matches.labels(self.bank_name).inc()
        self._n += 1
        self._video += seconds
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        self.files_rate.set(self._n / elapsed)
        self.video_rate.set(self._video / elapsed)

    def close(self) -> None:
        linger = float(os.environ.get("VSCAN_METRICS_LINGER_SECONDS", "0") or 0)
        if linger > 0:
            time.sleep(linger)
        server = self.server[0] if isinstance(self.server, tuple) else None
        if server is not None:
            server.shutdown()
            server.server_close()

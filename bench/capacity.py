"""A capacity model of the scan pipeline: per-stage rates measured in one
run, and the throughput they predict for N nodes x C CPUs x G GPUs.

Rates come from a run's records (``timings``, ``duration_seconds``), its
queue profile (``ScanSummary.pipeline``) and the driver thread's CPU time
between its first and last record (vscan.bench.bench_pipeline.run_scan):

- decode: video-seconds per decode-slot-second, for the run's sampling
  (slot time after the first file came back decoded, so worker start-up is
  out and Ray's per-task overhead in; the in-task rate beside it);
- model: video-seconds and frames per model-actor second (hashing,
  detectors and matching, all inside the actor), and its onnxruntime threads;
  each actor's first file is left out (it pays the actor's warm-up, reported
  apart as ``model_first_file_seconds``), the actor's per-call overhead
  outside the records' timings is spread over the files;
- match: video-seconds and frames per second of matching (inside the actor;
  each actor's first file left out likewise);
- sink: records per second of ``write_many`` (group commit);
- driver + sink: records per second of driver-thread CPU plus sink time (a
  conservative ceiling: the sink's own CPU is counted twice).

``predict`` takes the minimum over stages, each scaled as it scales on a
cluster: decode with the decode slots (CPUs minus the cores the model pool
reserves, vscan.runtime.model_pool.plan_actors), the model with its actors
(CPU actors by their threads), driver and sink not at all (one driver).
A CPU model adds a shared-cores bound: decode, model and driver together
cannot use more CPU-seconds than the machine has (``physical_cores``: on a
loopback cluster several raylets share one machine's cores). GPU actors
need a rate measured on a GPU (``gpu_actor_rate``); without one the model
stage is left out and the prediction is an upper bound.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from vscan.config import Runtime, ScanConfig
from vscan.runtime.model_pool import plan_actors

__all__ = ["StageRates", "Prediction", "stage_rates", "window_rate", "predict", "format_rates", "format_prediction"]


@dataclass(frozen=True)
class StageRates:
    """Per-stage rates of one run (per slot, per actor, or of the one driver)."""

    files: int
    video_seconds_per_file: float
    decode_per_slot: float  # video-s per decode-slot-second (Ray task overhead included, start-up not)
    decode_in_task: float  # video-s per second inside decode tasks (digest + decode)
    decode_frames_per_second: float  # frames decoded per second inside decode tasks
    model_per_actor: float  # video-s per model-actor busy second
    model_frames_per_actor: float  # frames hashed per model-actor busy second
    model_threads: int  # onnxruntime threads of the measured actors (0: not known)
    model_first_file_seconds: float  # an actor's first file, mean over actors (warm-up included)
    match_per_second: float  # video-s per second of matching
    match_frames_per_second: float  # sampled frames per second of matching
    sink_records_per_second: float  # write_many, group commit
    driver_records_per_second: float  # driver thread CPU + sink time, steady state
    driver_seconds_per_video_second: float  # the same cost per video-second

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Prediction:
    """Predicted video-s/s of one cluster shape, each stage's capacity, the bound."""

    nodes: int
    cpus_per_node: int
    gpus_per_node: int
    decode_slots: int
    model_actors: int
    stages: dict[str, float | None]  # video-s/s each stage could sustain (None: not measured)
    video_seconds_per_second: float
    bound: str  # the stage with the least capacity

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rate(amount: float, seconds: float) -> float:
    return amount / seconds if seconds > 0 else float("inf")


def stage_rates(records: list[dict[str, Any]], pipeline: dict[str, Any], *, driver_cpu_seconds: float,
                driver_records: int, model_threads: int = 0) -> StageRates:  # fmt: skip
    """The rates of one run. ``driver_cpu_seconds``: the driver thread's CPU
    time over ``driver_records`` records (first to last, so start-up is out)."""
    ok = [r for r in records if r["status"] == "ok"]
    video = sum(r["duration_seconds"] or 0.0 for r in ok)
    per_file = video / max(len(ok), 1)

    def total(stage: str, *, also: tuple[str, ...] = ()) -> float:
        return sum(r["timings"].get(s, 0.0) for r in ok for s in (stage, *also))

    decode_task = total("decode", also=("digest", "archive_read"))
    decoded = sum(r["frames_decoded"] or 0 for r in ok)
    sampled = sum(r["frames_sampled"] or 0 for r in ok)
    # The model stage's steady rate: each actor's first file (its warm-up) apart.
    seen: set = set()
    first, steady = [], []
    for r in ok:  # in the order they finished
        actor = (r.get("ran_on") or {}).get("model_actor")
        (steady if actor in seen else first).append(r)
        seen.add(actor)
    steady = steady or ok
    in_model = [sum(r["timings"].get(s, 0.0) for s in ("hash", "match", "detect")) for r in steady]
    overhead = max(0.0, pipeline.get("model_busy_seconds", 0.0) - total("hash", also=("match", "detect"))) / max(len(ok), 1)
    model_seconds = sum(in_model) + overhead * len(steady)
    steady_video = sum(r["duration_seconds"] or 0.0 for r in steady)
    steady_sampled = sum(r["frames_sampled"] or 0 for r in steady)
    hashed_per_sampled = pipeline.get("model_frames_hashed", 0) / max(sampled, 1)  # + border-free, overlay-filled
    steady_match = sum(r["timings"].get("match", 0.0) for r in steady)
    first_seconds = [sum(r["timings"].get(s, 0.0) for s in ("hash", "match", "detect")) for r in first]
    sink_per_record = pipeline.get("sink_seconds", 0.0) / max(len(records), 1)
    driver_per_record = driver_cpu_seconds / max(driver_records, 1) + sink_per_record
    return StageRates(
        files=len(records),
        video_seconds_per_file=per_file,
        decode_per_slot=_rate(video, pipeline.get("decode_steady_slot_seconds", 0.0)),
        decode_in_task=_rate(video, decode_task),
        decode_frames_per_second=_rate(decoded, decode_task),
        model_per_actor=_rate(steady_video, model_seconds),
        model_frames_per_actor=_rate(steady_sampled * hashed_per_sampled, model_seconds),
        model_threads=model_threads,
        model_first_file_seconds=sum(first_seconds) / len(first_seconds) if first_seconds else 0.0,
        match_per_second=_rate(steady_video, steady_match),
        match_frames_per_second=_rate(steady_sampled, steady_match),
        sink_records_per_second=_rate(1.0, sink_per_record),
        driver_records_per_second=_rate(1.0, driver_per_record),
        driver_seconds_per_video_second=driver_per_record / per_file if per_file > 0 else 0.0,
    )


def window_rate(stamps: list[float], start_fraction: float = 1 / 2) -> float | None:
    """Records/s over the records after the first ``start_fraction`` of them
    (``stamps``: seconds at each record): past start-up and the burst of
    files decoded while the model stage warmed up; None under 3 records."""
    start = min(int(len(stamps) * start_fraction), len(stamps) - 2)
    if start < 0 or len(stamps) < 3:
        return None
    return (len(stamps) - 1 - start) / max(stamps[-1] - stamps[start], 1e-9)


def predict(rates: StageRates, nodes: int, cpus_per_node: int, gpus_per_node: int = 0, *,
            physical_cores: int | None = None, gpu_actor_rate: float | None = None,
            device: str = "auto") -> Prediction:  # fmt: skip
    """Video-s/s of ``nodes`` x ``cpus_per_node`` CPUs x ``gpus_per_node`` GPUs:
    the least of the stages' capacities, each scaled by its workers.

    ``physical_cores``: cores the nodes really share (default: all their
    CPUs; a loopback cluster's raylets share one machine). ``gpu_actor_rate``:
    video-s per GPU actor-second measured on a GPU (else that stage is unknown)."""
    cluster = [{"node_id": f"n{i}", "cpus": cpus_per_node, "gpus": gpus_per_node} for i in range(nodes)]
    plans = plan_actors(cluster, ScanConfig(runtime=Runtime(device=device)))
    slots = max(1, int(nodes * cpus_per_node - sum(p.num_cpus for p in plans)))
    on_gpu = any(p.num_gpus for p in plans)
    if on_gpu:
        model = gpu_actor_rate * len(plans) if gpu_actor_rate else None
    else:
        scale = sum(p.threads for p in plans) / rates.model_threads if rates.model_threads else len(plans)
        model = rates.model_per_actor * scale
    per_file = rates.video_seconds_per_file
    stages: dict[str, float | None] = {
        "decode": rates.decode_per_slot * slots,
        "model": model,
        "match": None if on_gpu else rates.match_per_second * len(plans),
        "sink": rates.sink_records_per_second * per_file,
        "driver+sink": rates.driver_records_per_second * per_file,
    }
    cost = 1 / rates.decode_per_slot + rates.driver_seconds_per_video_second + (0.0 if on_gpu else max(rates.model_threads, 1) / rates.model_per_actor)
    stages["shared cores"] = (physical_cores or nodes * cpus_per_node) / cost
    known = {k: v for k, v in stages.items() if v is not None}
    bound = min(known, key=known.get)
    return Prediction(nodes, cpus_per_node, gpus_per_node, slots, len(plans), stages, known[bound], bound)


def format_rates(name: str, r: StageRates) -> str:
    """One line per run: the per-stage rates."""
    threads = f", {r.model_threads} thread(s)" if r.model_threads else ""
    return (f"  {name}: decode {r.decode_per_slot:,.0f} video-s/s per slot ({r.decode_in_task:,.0f} in-task, "
            f"{r.decode_frames_per_second:,.0f} frames/s); model {r.model_frames_per_actor:,.0f} frames/s = "
            f"{r.model_per_actor:,.0f} video-s/s per actor{threads} (first file {r.model_first_file_seconds:.2f} s); match {r.match_frames_per_second:,.0f} frames/s; "
            f"sink {r.sink_records_per_second:,.0f} records/s; driver+sink {r.driver_records_per_second:,.0f} records/s")  # fmt: skip


def format_prediction(p: Prediction) -> str:
    shape = f"{p.nodes} x {p.cpus_per_node} CPU" + (f" x {p.gpus_per_node} GPU" if p.gpus_per_node else "")
    stages = ", ".join(f"{k} {'?' if v is None else f'{v:,.0f}'}" for k, v in p.stages.items())
    return (f"  {shape:<22} {p.decode_slots:>4} slots {p.model_actors:>3} actors: {p.video_seconds_per_second:>9,.0f} "
            f"video-s/s, {p.bound}-bound ({stages})")  # fmt: skip

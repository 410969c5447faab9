"""The capacity model (vscan.bench.capacity): per-stage rates from a run's
records and queue profile, the prediction's arithmetic on recorded rates,
and that the benchmark measures them in a real scan. No timing assertions:
speeds are compared within a bench run, never asserted here."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from vscan.bench import synth
from vscan.bench.capacity import StageRates, format_prediction, predict, stage_rates, window_rate


def _record(seconds: float | None, match: float, *, actor: str = "A", status: str = "ok") -> dict:
    return {"status": status, "duration_seconds": seconds, "frames_decoded": 2, "frames_sampled": 2, "ran_on": {"model_actor": actor},
            "timings": {"digest": 0.01, "decode": 0.09, "hash": 0.02, "match": match}}  # fmt: skip


RATES = StageRates(
    files=100, video_seconds_per_file=20.0, decode_per_slot=400.0, decode_in_task=800.0, decode_frames_per_second=80.0,
    model_per_actor=2000.0, model_frames_per_actor=200.0, model_threads=1, model_first_file_seconds=2.0,
    match_per_second=50_000.0,
    match_frames_per_second=5000.0, sink_records_per_second=2000.0, driver_records_per_second=500.0,
    driver_seconds_per_video_second=1 / 500 / 20,
)  # fmt: skip


def test_stage_rates_from_records_and_profile():
    # Completion order: the actor's first file pays its warm-up (1 s of matching).
    records = [_record(20.0, 1.0), _record(20.0, 0.004), _record(20.0, 0.004), _record(None, 0, status="error")]
    records[3]["timings"] = {"digest": 0.5}
    pipeline = {"decode_steady_slot_seconds": 0.6, "model_busy_seconds": 1.098, "model_frames_hashed": 12, "sink_seconds": 0.004}
    r = stage_rates(records, pipeline, driver_cpu_seconds=0.004, driver_records=2, model_threads=1)
    assert r.files == 4 and r.video_seconds_per_file == 20.0  # error records count for the sink, not for video
    assert r.decode_per_slot == pytest.approx(60 / 0.6)
    assert r.decode_in_task == pytest.approx(60 / 0.3)  # digest + decode of the ok files
    assert r.decode_frames_per_second == pytest.approx(6 / 0.3)
    # The steady files: 2 x (0.02 hash + 0.004 match), plus the actor's 0.03 s outside the timings spread over 3 files.
    assert r.model_per_actor == pytest.approx(40 / (0.048 + 0.02))
    assert r.model_frames_per_actor == pytest.approx(4 * 2 / 0.068)  # 12 hashed for 6 sampled: 2 per frame
    assert r.model_first_file_seconds == pytest.approx(1.02)
    assert r.match_per_second == pytest.approx(40 / 0.008) and r.match_frames_per_second == pytest.approx(500)
    assert r.sink_records_per_second == pytest.approx(1000)
    assert r.driver_records_per_second == pytest.approx(1 / (0.002 + 0.001))  # driver CPU + sink time per record
    assert r.driver_seconds_per_video_second == pytest.approx(0.003 / 20)
    empty = stage_rates([], {}, driver_cpu_seconds=0.0, driver_records=0)
    assert math.isinf(empty.decode_per_slot) and empty.video_seconds_per_file == 0.0


def test_window_rate_skips_start_up_and_the_first_burst():
    assert window_rate([0.0, 1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(1.0)
    assert window_rate([3.0, 3.0, 3.0, 3.0, 3.0, 4.0, 5.0, 6.0]) == pytest.approx(1.0)  # the burst at 3 s left out
    assert window_rate([0.0, 1.0, 2.0, 3.0], start_fraction=0.0) == pytest.approx(1.0)
    assert window_rate([1.0, 2.0]) is None


def test_decode_scales_with_slots_model_with_actors_driver_is_fixed():
    one, two = predict(RATES, 1, 1, physical_cores=2), predict(RATES, 2, 1, physical_cores=4)
    assert (one.decode_slots, one.model_actors, two.decode_slots, two.model_actors) == (1, 1, 2, 2)
    assert one.stages["decode"] == 400 and two.stages["decode"] == 800
    assert one.stages["model"] == 2000 and two.stages["model"] == 4000
    assert one.stages["sink"] == two.stages["sink"] == 2000 * 20
    assert one.stages["driver+sink"] == two.stages["driver+sink"] == 500 * 20
    assert one.bound == "decode" and one.video_seconds_per_second == 400
    assert two.bound == "decode" and two.video_seconds_per_second == 800
    # Shared cores: each video-second costs 1/400 (decode) + 1/2000 (model) + 1/10000 (driver) core-seconds;
    # a node under 4 CPUs reserves none for its model thread, so they share its cores.
    per_core = 1 / (1 / 400 + 1 / 2000 + 1 / 10_000)
    assert two.stages["shared cores"] == pytest.approx(4 * per_core)
    alone = predict(RATES, 1, 1)  # cores default to the nodes' CPUs
    assert alone.bound == "shared cores" and alone.video_seconds_per_second == pytest.approx(per_core)
    # Two raylets on one machine's 2 cores (a loopback cluster): the cores they share bound it.
    loopback = predict(RATES, 2, 1, physical_cores=2)
    assert loopback.bound == "shared cores" and loopback.video_seconds_per_second == pytest.approx(2 * per_core)


def test_large_cpu_nodes_reserve_model_cores_and_hit_the_driver_ceiling():
    p = predict(RATES, 10, 32)  # 8 model threads reserved per node (vscan.runtime.model_pool.plan_actors)
    assert p.decode_slots == 10 * (32 - 8) and p.model_actors == 10
    assert p.stages["model"] == 2000 * 80  # CPU actors scale by their threads (measured with 1)
    assert p.bound == "driver+sink" and p.video_seconds_per_second == 500 * 20


def test_gpu_nodes_need_a_gpu_rate_for_the_model_stage():
    p = predict(RATES, 2, 16, 4)
    assert p.model_actors == 8 and p.decode_slots == 32 and p.stages["model"] is None and p.stages["match"] is None
    assert p.stages["shared cores"] == pytest.approx(32 / (1 / 400 + 1 / 10_000))  # the model is off the CPUs
    assert "?" in format_prediction(p)
    slow = predict(RATES, 2, 16, 4, gpu_actor_rate=100.0)
    assert slow.bound == "model" and slow.video_seconds_per_second == 800


def test_vscan_bench_offers_the_capacity_check():
    run = subprocess.run([sys.executable, "-m", "vscan.cli", "bench", "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "--capacity" in run.stdout and "--tiny-files" in run.stdout and "--rounds" in run.stdout


def test_a_real_scan_measures_every_stage_rate(tmp_path):
    from vscan.bench.pipeline_runs import make_bank, run_scan
    from vscan.config import Runtime, ScanConfig

    clips = [synth.make_clip(tmp_path / f"c{i}.mp4", seed=40 + i, seconds=2, size=(96, 64), scenes=1) for i in range(3)]
    bank = make_bank(tmp_path / "bank.db", clips[:1], "cpu")
    # On Ray (embedded_max_files=0): the capacity check measures Ray's stages; 3 small files would run without Ray.
    row = run_scan("capacity", clips, bank, ScanConfig(runtime=Runtime(device="cpu", embedded_max_files=0)), tmp_path)
    rates = StageRates(**row["rates"])
    assert rates.files == 3 and rates.video_seconds_per_file == pytest.approx(2.0, abs=0.1)
    for name in ("decode_per_slot", "decode_in_task", "model_per_actor", "model_frames_per_actor", "match_per_second",
                 "sink_records_per_second", "driver_records_per_second"):  # fmt: skip
        value = getattr(rates, name)
        assert 0 < value < math.inf, name
    assert rates.model_threads >= 1
    assert predict(rates, 2, 1).video_seconds_per_second > 0

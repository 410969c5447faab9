"""Resume re-tries transient failures: files whose last record is a timeout
(a real one: the decode worker's watchdog ends it at the per-file limit) are
scanned again by the same command, at most ``runtime.transient_retries``
times, and the run manifests count the re-tries. Real files, real Ray."""

from __future__ import annotations

from vscan.bench import synth
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import FixedRate
from vscan.output.sinks import JsonlSink
from vscan.runtime.driver import run_scan


def config(timeout: float, retries: int) -> ScanConfig:
    return ScanConfig(sampling=Sampling(policy=FixedRate(5.0)),
                      runtime=Runtime(device="cpu", file_timeout_seconds=timeout, transient_retries=retries))  # fmt: skip


def test_resume_retries_timeouts_at_most_n_times(tmp_path, ray_local):
    for i in range(3):
        synth.make_clip(tmp_path / "in" / f"clip{i}.mp4", seed=i, seconds=2.0, size=(160, 120))
    out = tmp_path / "r.jsonl"
    paths = sorted(str(p) for p in (tmp_path / "in").glob("*.mp4"))

    def scan(timeout: float, retries: int):
        with JsonlSink(out) as sink:
            summary = run_scan([tmp_path / "in"], sink=sink, config=config(timeout, retries))
            return summary, sink.records(), sink.manifests()[-1]["counts"]

    summary, records, counts = scan(0.001, 1)
    assert summary.files == 3 and {r["error"]["type"] for r in records} == {"DecodeTimeoutError"}
    assert counts["retried_transient"] == 0
    # The same command again: every timeout is tried once more (and times out again).
    summary, records, counts = scan(0.001, 1)
    assert summary.files == 3 and len(records) == 6 and counts["retried_transient"] == 3
    # One re-try was allowed and is spent: nothing is scanned, and the manifest says why.
    summary, records, counts = scan(0.001, 1)
    assert summary.files == 0 and len(records) == 6
    assert counts["retries_exhausted"] == 3 and counts["skipped_already_recorded"] == 0
    # More re-tries allowed and a sane limit: the files scan fine, once each.
    summary, records, counts = scan(600.0, 2)
    assert summary.files == 3 and summary.ok == 3 and counts["retried_transient"] == 3
    assert sorted(r["path"] for r in records[6:]) == paths and all(r["status"] == "ok" for r in records[6:])
    summary, records, counts = scan(600.0, 2)
    assert summary.files == 0 and counts["skipped_already_recorded"] == 3 and counts["retried_transient"] == 0

"""The sweep bench's rounds (vscan.bench.sweep_rounds): every run is warmed before the first timed round (issue #30)."""

from __future__ import annotations

from pathlib import Path

from vscan.bench import sweep_rounds as sr

_REPO = Path(__file__).resolve().parents[1]


def test_each_run_is_warmed_by_the_same_code_before_the_first_timed_round(tmp_path, monkeypatch):
    """A freshly packaged baseline compiled its numba kernels inside its first timed round while this checkout's
    were cached: each (code, Ray or not) run now scans 2 files untimed first, with the code it is then timed with."""
    calls: list[tuple] = []

    def scan(code, name, corpus, bank, out_dir, device, ray):  # the scans' order and code, not the scans
        calls.append((name, code, len(corpus), ray))
        return {"wall_seconds": 1.0, "video_seconds": 10.0, "first_record_seconds": 0.5, "steady_video_seconds_per_second": 20.0,
                "tree_cpu_seconds": 1.0, "embedded": not ray}  # fmt: skip

    monkeypatch.setattr(sr, "_scan_in_subprocess", scan)
    corpus = [tmp_path / f"clip{i}.mp4" for i in range(5)]
    result = sr.sweep_rounds(corpus, tmp_path / "bank", tmp_path, rounds=2, device="cpu", ray=True, no_ray_too=True,
                             baseline=_REPO, vpdq_run=lambda files: None)  # fmt: skip
    timed = [c for c in calls if not c[0].startswith("sweep-warm-")]
    warm = calls[: len(calls) - len(timed)]
    assert len(timed) == 2 * 4 and calls[len(warm) :] == timed  # every warm-up comes before any timed scan
    runs = {(code, ray) for _, code, _, ray in timed}
    assert runs == {(code, ray) for _, code, _, ray in warm} and len(runs) == 4  # main and baseline, with and without Ray
    assert all(n == 2 for _, _, n, _ in warm) and all(n == 5 for _, _, n, _ in timed)
    assert {name for name in result["summary"]} == {"main Ray", "baseline Ray", "main no Ray", "baseline no Ray"}

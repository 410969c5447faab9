"""vscan scan --metrics-port: Prometheus metrics served while a real scan runs (CLI, Ray), scraped over HTTP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("prometheus_client")

from vscan.bench import synth  # noqa: E402
from vscan.bank.store import build_bank  # noqa: E402
from vscan.decode import EveryFrame  # noqa: E402
from vscan.hashing.media import hash_media  # noqa: E402
from vscan.hashing.pdq import PDQHasher  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_scan_serves_metrics_while_it_runs(tmp_path, ray_address):
    reported, inbox = tmp_path / "reported", tmp_path / "inbox"
    synth.make_clip(reported / "clip.mp4", seed=11, seconds=6.0, size=(160, 120), gop=25)
    synth.make_clip(inbox / "copy.mp4", seed=11, seconds=6.0, size=(160, 120), gop=25, crf=34)
    for i in range(3):
        synth.make_clip(inbox / f"other-{i}.mp4", seed=60 + i, seconds=3.0, size=(160, 120))
    synth.make_corrupt(inbox / "broken.mp4", "random")

    def hash_file(path):
        result = hash_media(path, EveryFrame(), hasher=PDQHasher(device="cpu"), max_side=512)
        return result.frames, result.metadata.duration_seconds

    build_bank(tmp_path / "reported.bank", [reported], hash_media=hash_file)
    port = _free_port()
    env = {**os.environ, "VSCAN_METRICS_LINGER_SECONDS": "4"}
    proc = subprocess.Popen([sys.executable, "-m", "vscan.cli", "scan", str(inbox), "--bank", str(tmp_path / "reported.bank"),
                             "--out", str(tmp_path / "r.jsonl"), "--device", "cpu", "-q", "--fps", "1", "--ray-address", ray_address,
                             "--metrics-port", str(port)], env=env, stderr=subprocess.PIPE)  # fmt: skip
    scrapes = []
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                scrapes.append(response.read().decode())
        except OSError:
            pass
        time.sleep(0.2)
    assert proc.wait(timeout=60) == 0, proc.stderr.read().decode()[-2000:]
    assert len(scrapes) >= 3
    last = scrapes[-1]  # during the linger: the run's final counts
    assert _value(last, 'vscan_scan_files_total{status="ok"}') == 4
    assert _value(last, 'vscan_scan_files_total{status="error"}') == 1
    assert re.search(r'^vscan_scan_errors_total\{kind="input",type="\w+"\} 1\.0$', last, re.M)
    assert _value(last, 'vscan_scan_matches_total{bank="reported"}') == 1
    assert _value(last, "vscan_scan_video_seconds_total") == pytest.approx(15.0, abs=0.5)
    assert _value(last, "vscan_scan_frames_hashed_total") >= 15 and _value(last, "vscan_scan_files_per_second") > 0
    assert _value(scrapes[0], 'vscan_scan_files_total{status="ok"}') == 0  # served from the start, before any record
    # Stage busy fractions: each stage's share of the run, from the pipeline's own profile; the records' stage seconds.
    fractions = {stage: _value(last, f'vscan_scan_stage_busy_fraction{{stage="{stage}"}}') for stage in ("decode", "model", "record")}
    assert all(f'vscan_scan_stage_busy_fraction{{stage="{stage}"}}' in last for stage in fractions)
    assert 0 < fractions["decode"] <= 1 and 0 < fractions["model"] <= 1 and 0 < fractions["record"] < 0.5, fractions
    assert _value(last, 'vscan_scan_stage_seconds_total{stage="decode"}') > 0 and _value(last, 'vscan_scan_stage_seconds_total{stage="model"}') > 0

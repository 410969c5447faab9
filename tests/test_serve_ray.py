"""vscan serve --ray-serve: the match service deployed on Ray Serve (a local Ray
started by the command), spoken to over HTTP on loopback through Serve's proxy."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("ray.serve")

from vscan.bench import synth  # noqa: E402
from vscan.bank.store import build_bank  # noqa: E402
from vscan.decode import EveryFrame  # noqa: E402
from vscan.hashing.media import hash_media  # noqa: E402
from vscan.hashing.pdq import PDQHasher  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, key: str | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"X-API-Key": key} if key else {}), timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_match_service_on_ray_serve(tmp_path):
    reported = tmp_path / "reported"
    synth.make_clip(reported / "clip.mp4", seed=21, seconds=5.0, size=(160, 120), gop=25)

    def hash_file(path):
        result = hash_media(path, EveryFrame(), hasher=PDQHasher(device="cpu"), max_side=512)
        return result.frames, result.metadata.duration_seconds

    bank = tmp_path / "reported.bank"
    build_bank(bank, [reported], hash_media=hash_file)
    with sqlite3.connect(f"file:{bank}?mode=ro", uri=True) as conn:
        signal_hex = conn.execute("SELECT hash FROM frame_hashes WHERE entry_id = 'clip' AND frame_number = 2").fetchone()[0].hex()
    port = _free_port()
    env = {**os.environ, "VSCAN_API_KEYS": "k1"}
    proc = subprocess.Popen([sys.executable, "-m", "vscan.cli", "serve", "--bank", str(bank), "--ray-serve", "--replicas", "2",
                             "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if _get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "Ray Serve did not start"
            time.sleep(1)
        for _ in range(20):  # through Serve's proxy, over both replicas
            status, body = _get(f"{base}/m/lookup?signal_type=pdq&signal={signal_hex}", key="k1")
            assert status == 200
            hit = json.loads(body)["reported"][0]
            assert hit["bank_content_id"] == "clip" and hit["distance"] == "0"
        assert _get(f"{base}/m/lookup?signal_type=pdq&signal={signal_hex}")[0] == 401  # keys hold on Serve too
        status, body = _get(f"{base}/m/index/status", key="k1")
        assert status == 200 and json.loads(body)["pdq"]["entries"] == 1
        assert _get(base + "/openapi.json")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # this test's own process group only
            raise
    assert code == 0, proc.stdout.read().decode()[-3000:]
    with pytest.raises(OSError):
        _get(base + "/healthz")  # the application and the Ray it started are gone

"""vscan serve: the HMA-compatible match service, started through the CLI on
loopback and spoken to over HTTP (lookups, uploads, whole-file scans, keys,
metrics, OpenAPI, a bank reload under load)."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from vscan.bench import synth  # noqa: E402
from vscan.bank.store import build_bank  # noqa: E402
from vscan.decode import EveryFrame  # noqa: E402
from vscan.hashing.media import hash_media  # noqa: E402
from vscan.hashing.pdq import PDQHasher  # noqa: E402

KEY = "test-key-" + uuid.uuid4().hex


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hash_file(path):
    result = hash_media(path, EveryFrame(), hasher=PDQHasher(device="cpu"), max_side=512)
    return result.frames, result.metadata.duration_seconds


def call(base: str, path: str, *, key: str | None = KEY, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(base + path, data=data, headers={**({"X-API-Key": key} if key else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def upload(base: str, path: str, field: str, file: Path) -> tuple[int, bytes]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file.name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + file.read_bytes() + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
    return call(base, path, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    reported = root / "reported"
    synth.make_clip(reported / "clip.mp4", seed=21, seconds=5.0, size=(160, 120), gop=25)
    synth.write_image(reported / "photo.png", seed=22, size=(200, 150))
    synth.make_clip(root / "upload.mp4", seed=21, seconds=5.0, size=(160, 120), gop=25, crf=36)  # a re-encoded copy
    bank = root / "reported.bank"
    build_bank(bank, [reported], hash_media=_hash_file)
    (root / "keys.txt").write_text(f"# keys\n{KEY}\n")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vscan.cli", "serve", "--bank", str(bank), "--port", str(port),
                             "--api-key-file", str(root / "keys.txt"), "--reload-seconds", "0.3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if call(base, "/healthz", key=None)[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"vscan serve did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.3)
    yield base, root, bank
    proc.terminate()
    proc.wait(timeout=30)


def _bank_hash(bank: Path, entry: str, frame: int = 0) -> str:
    conn = sqlite3.connect(f"file:{bank}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT hash FROM frame_hashes WHERE entry_id = ? AND frame_number = ?", (entry, frame)).fetchone()[0].hex()
    finally:
        conn.close()


def test_lookup_answers_hma_shape_with_entry_metadata_and_needs_a_key(service):
    base, _, bank = service
    signal = _bank_hash(bank, "clip", 2)
    assert call(base, f"/m/lookup?signal_type=pdq&signal={signal}", key=None)[0] == 401
    assert call(base, f"/m/lookup?signal_type=pdq&signal={signal}", key="wrong")[0] == 401
    status, body = call(base, f"/m/lookup?signal_type=pdq&signal={signal}", key=None, headers={"Authorization": f"Bearer {KEY}"})
    assert status == 200
    found = json.loads(body)
    assert list(found) == ["reported"]  # keyed by bank name, as HMA's lookup
    hit = found["reported"][0]
    assert hit["bank_content_id"] == "clip" and hit["distance"] == "0" and hit["kind"] == "video" and hit["frame"] >= 0
    assert all(h["bank_content_id"] != "photo" or int(h["distance"]) <= 31 for h in found["reported"])
    far = "".join("%02x" % (int(signal[i : i + 2], 16) ^ 0xFF) for i in range(0, 64, 2))  # 256 bits away
    assert json.loads(call(base, f"/m/lookup?signal_type=pdq&signal={far}")[1]) == {}
    assert json.loads(call(base, f"/m/raw_lookup?signal_type=pdq&signal={signal}")[1])["matches"][0] == "clip"
    raw = json.loads(call(base, f"/m/raw_lookup?signal_type=pdq&signal={signal}&include_distance=true")[1])
    assert raw["matches"][0] == {"content_id": "clip", "distance": "0"}
    assert call(base, "/m/lookup?signal_type=pdq&signal=abc")[0] == 400
    assert call(base, f"/m/lookup?signal_type=md5&signal={signal}")[0] == 400


def test_uploaded_image_is_hashed_and_matched(service):
    base, root, _ = service
    status, body = upload(base, "/m/lookup", "photo", root / "reported" / "photo.png")
    assert status == 200, body
    assert json.loads(body)["pdq"]["reported"][0]["bank_content_id"] == "photo"
    status, body = upload(base, "/h/hash", "photo", root / "reported" / "photo.png")
    expected = hash_media(root / "reported" / "photo.png", EveryFrame(), hasher=PDQHasher(device="cpu")).frames.hashes[0].tobytes().hex()
    assert status == 200 and json.loads(body) == {"pdq": expected}
    (root / "not-an-image.png").write_bytes(b"no picture here")
    assert upload(base, "/m/lookup", "photo", root / "not-an-image.png")[0] == 422


def test_uploaded_video_gets_the_full_scan_record(service):
    from jsonschema import validate

    from vscan.verdict.record import result_schema

    base, root, _ = service
    status, body = upload(base, "/v/scan", "file", root / "upload.mp4")
    assert status == 200, body
    record = json.loads(body)
    validate(record, result_schema())
    assert record["path"] == "upload.mp4" and record["status"] == "ok"
    assert any(m["bank_entry_id"] == "clip" and m["is_match"] for m in record["matches"])
    assert record["risk"] >= 0.7 and record["versions"]["bank_sha256"]
    (root / "broken.mp4").write_bytes(b"\x00" * 4096)
    status, body = upload(base, "/v/scan", "file", root / "broken.mp4")
    assert status == 200 and json.loads(body)["status"] == "error"


def test_status_openapi_and_metrics(service):
    base, _, bank = service
    status = json.loads(call(base, "/m/index/status")[1])
    assert status["pdq"]["present"] is True and status["pdq"]["size"] > 100
    spec = json.loads(call(base, "/openapi.json", key=None)[1])
    assert {"/m/lookup", "/m/raw_lookup", "/m/index/status", "/v/scan", "/metrics"} <= set(spec["paths"])
    call(base, f"/m/lookup?signal_type=pdq&signal={_bank_hash(bank, 'clip')}")
    text = call(base, "/metrics")[1].decode()
    assert 'vscan_serve_lookups_total{bank="reported"}' in text
    assert "vscan_serve_lookup_seconds_bucket" in text and 'vscan_serve_bank_rows{bank="reported"}' in text
    assert call(base, "/metrics", key=None)[0] == 401


def test_bank_change_is_picked_up_without_dropping_requests(service):
    base, _, bank = service
    signal = _bank_hash(bank, "photo")
    before = json.loads(call(base, "/m/index/status")[1])["pdq"]
    statuses: list[int] = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            statuses.append(call(base, f"/m/lookup?signal_type=pdq&signal={signal}")[0])

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        run = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "disable", str(bank), "photo", "--reason", "test"],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert run.returncode == 0, run.stderr
        deadline = time.monotonic() + 60
        while json.loads(call(base, "/m/index/status")[1])["pdq"]["generation"] == before["generation"]:
            assert time.monotonic() < deadline, "the service never reloaded the bank"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    after = json.loads(call(base, "/m/index/status")[1])["pdq"]
    assert after["reloads"] == before["reloads"] + 1
    assert len(statuses) > 10 and set(statuses) == {200}  # every request during the reload answered
    found = json.loads(call(base, f"/m/lookup?signal_type=pdq&signal={signal}")[1])
    assert all(h["bank_content_id"] != "photo" for h in found.get("reported", []))  # the disabled entry no longer matches

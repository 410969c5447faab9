"""vscan scan gs://... and az://...: against real emulators on loopback started
by the tests (gcp-storage-emulator from PyPI, Azurite from npm), each behind a
fault-injecting HTTP proxy (throttling, 5xx, an object that keeps failing)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

import pytest

from _relay import answer, free_port, relay
from vscan.bench import synth
from vscan.bank.store import build_bank
from vscan.decode import EveryFrame
from vscan.hashing.media import hash_media
from vscan.hashing.pdq import PDQHasher

VSCAN = [sys.executable, "-m", "vscan.cli"]
AZURITE_VERSION = "3.35.0"
#: Azurite's published development account (its documented well-known key, not a secret).
AZURE_ACCOUNT = "devstoreaccount1"
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
NAMES = ("copy.mp4", "other.mp4", "broken.mp4", "sub/flaky.mp4", "notes.txt")


def _wait_port(port: int, proc: subprocess.Popen | None = None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert proc is None or proc.poll() is None, "the emulator exited"
            assert time.monotonic() < deadline, "the emulator did not start"
            time.sleep(0.2)


class FaultProxy:
    """Relays every request to ``upstream``; ``rule(method, path, query, headers)``
    says when to answer with an error (status, body) instead. Counts what it saw."""

    def __init__(self, upstream_port: int, rule: Callable[[str, str, str, dict], tuple[int, bytes] | None]) -> None:
        self.rule, self.lock = rule, threading.Lock()
        self.seen: list[tuple[str, str, str]] = []
        self.faults = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                with proxy.lock:
                    proxy.seen.append((self.command, unquote(parts.path), parts.query))
                    fault = proxy.rule(self.command, unquote(parts.path), parts.query, dict(self.headers))
                    proxy.faults += fault is not None
                if fault is not None:
                    answer(self, *fault)
                    return
                relay(self, upstream_port, body)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Faults:
    """Each object's first read a throttling answer, its second a 500; the first
    listing a throttling answer; objects in ``broken`` always a 503."""

    def __init__(self, throttle: bytes, is_read: Callable, is_list: Callable) -> None:
        self.throttle, self.is_read, self.is_list = throttle, is_read, is_list
        self.broken: set[str] = set()
        self.reads: dict[str, int] = {}
        self.lists = 0

    def __call__(self, method, path, query, headers):
        if method == "GET" and self.is_list(path, query):
            self.lists += 1
            return (503, self.throttle) if self.lists == 1 else None
        key = self.is_read(method, path, query)
        if key is None:
            return None
        if key in self.broken:
            return 503, self.throttle
        n = self.reads[key] = self.reads.get(key, 0) + 1
        return (503, self.throttle) if n == 1 else (500, b"<Error><Code>InternalError</Code></Error>") if n == 2 else None


def _media(root: Path) -> dict[str, Path]:
    synth.make_clip(root / "reported" / "clip.mp4", seed=11, seconds=6.0, size=(160, 120), gop=25)
    synth.make_clip(root / "copy.mp4", seed=11, seconds=6.0, size=(160, 120), gop=25, crf=34)
    synth.make_clip(root / "other.mp4", seed=32, seconds=4.0, size=(160, 120))
    synth.make_corrupt(root / "broken.mp4", "random")
    (root / "notes.txt").write_bytes(b"not media")

    def hash_file(path):
        result = hash_media(path, EveryFrame(), hasher=PDQHasher(device="cpu"), max_side=512)
        return result.frames, result.metadata.duration_seconds

    build_bank(root / "reported.bank", [root / "reported"], hash_media=hash_file)
    return {"copy.mp4": root / "copy.mp4", "other.mp4": root / "other.mp4", "broken.mp4": root / "broken.mp4",
            "sub/flaky.mp4": root / "other.mp4", "notes.txt": root / "notes.txt"}  # fmt: skip


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("cloud")
    return root, _media(root)


@pytest.fixture(scope="module")
def gcs(media):
    pytest.importorskip("google.cloud.storage")
    server_mod = pytest.importorskip("gcp_storage_emulator.server")
    root, files = media
    port = free_port()
    server = server_mod.create_server("127.0.0.1", port, in_memory=True, default_bucket="media")
    server.start()
    _wait_port(port)
    from google.cloud import storage

    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"  # this process's direct client (scans get their own)
    bucket = storage.Client().bucket("media")
    for name, path in files.items():
        bucket.blob(f"inbox/{name}").upload_from_filename(str(path))
    faults = Faults(b'{"error": {"code": 503, "message": "injected"}}',
                    lambda m, p, q: p.split("/o/", 1)[1] if m == "GET" and p.startswith("/download/") else None,
                    lambda p, q: p.endswith("/o") and "prefix=" in q)  # fmt: skip
    proxy = FaultProxy(port, faults)
    yield {"bucket": bucket, "faults": faults, "proxy": proxy, "env": {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{proxy.port}"}}
    proxy.server.shutdown()
    server.stop()


def _azurite() -> list[str]:
    """Azurite's blob server, installed from npm into a cache folder once (as .ci/run does)."""
    cache = Path(os.environ.get("VSCAN_TEST_CACHE", Path.home() / ".cache" / "vscan-test")) / f"azurite-{AZURITE_VERSION}"
    exe = cache / "node_modules" / ".bin" / "azurite-blob"
    if not exe.exists():
        if shutil.which("npm") is None or shutil.which("node") is None:
            if os.environ.get("CI") == "true":
                pytest.fail("Azurite needs node and npm; under CI=true the az:// tests are required")
            pytest.skip("Azurite needs node and npm")
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(cache), f"azurite@{AZURITE_VERSION}"],
                       check=True, capture_output=True, timeout=600)  # fmt: skip
    return [str(exe)]


@pytest.fixture(scope="module")
def azure(media):
    pytest.importorskip("azure.storage.blob")
    root, files = media
    port = free_port()
    # --disableTelemetry: Azurite otherwise reports to Microsoft; nothing here may leave the machine.
    proc = subprocess.Popen([*_azurite(), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
                             "--disableTelemetry", "--skipApiVersionCheck", "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_port(port, proc)
        from azure.storage.blob import BlobServiceClient

        direct = BlobServiceClient.from_connection_string(_connection(port)).create_container("media")
        for name, path in files.items():
            direct.upload_blob(f"inbox/{name}", path.read_bytes())
        faults = Faults(b"<Error><Code>ServerBusy</Code><Message>injected</Message></Error>",
                        lambda m, p, q: p.split("/media/", 1)[1] if m == "GET" and "/media/" in p and "comp=" not in q else None,
                        lambda p, q: "comp=list" in q)  # fmt: skip
        proxy = FaultProxy(port, faults)
        yield {"container": direct, "faults": faults, "proxy": proxy, "env": {"AZURE_STORAGE_CONNECTION_STRING": _connection(proxy.port)}}
        proxy.server.shutdown()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _connection(port: int) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};AccountKey={AZURE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{AZURE_ACCOUNT};")  # fmt: skip


def _scan(store, media, uri: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    # 3 attempts: exactly what an object's throttled read, then its 500, then its read take (the checks below);
    # each attempt more is a longer backoff (0.5 s doubling, test_azure_backoff_doubles) on the object that never recovers.
    env = {**os.environ, **store["env"], "VSCAN_OBJECT_MAX_ATTEMPTS": "3", "VSCAN_OBJECT_RETRY_SECONDS": "3"}
    return subprocess.run([*VSCAN, "scan", uri, "--bank", str(media[0] / "reported.bank"), "--out", str(out), "--device", "cpu",
                           "-q", "--fps", "1", *extra], capture_output=True, text=True, timeout=600, env=env)  # fmt: skip


def _check_scan(store, media, scheme: str, tmp_path: Path, identity: Callable[[str], tuple[str, str | None, int]]) -> None:
    """Scan the prefix through the faults, check the records, then scan again once the store recovers."""
    faults = store["faults"]
    faults.broken.add("inbox/sub/flaky.mp4")
    out = tmp_path / "results.jsonl"
    run = _scan(store, media, f"{scheme}://media/inbox", out)
    assert run.returncode == 0, run.stderr
    records = {r["path"]: r for r in map(json.loads, out.read_text().splitlines())}
    base = f"{scheme}://media/inbox/"
    assert set(records) == {base + n for n in ("copy.mp4", "other.mp4", "broken.mp4", "sub/flaky.mp4")}
    for name in ("copy.mp4", "other.mp4"):
        record = records[base + name]
        etag, version, size = identity(f"inbox/{name}")
        assert record["status"] == "ok", record["error"]
        assert record["object"]["uri"] == base + name and record["object"]["etag"] == etag and record["object"]["version_id"] == version
        assert record["object"]["size_bytes"] == size == record["size_bytes"]
        assert faults.reads[f"inbox/{name}"] >= 3  # throttled, then a 500, then read
    assert any(m["bank_entry_id"] == "clip" and m["is_match"] for m in records[base + "copy.mp4"]["matches"])
    assert not any(m["is_match"] for m in records[base + "other.mp4"]["matches"])
    assert records[base + "broken.mp4"]["error"]["kind"] == "input"  # the file's own fault
    flaky = records[base + "sub/flaky.mp4"]["error"]
    assert flaky["type"] == "ObjectStoreError" and flaky["kind"] == "transient", flaky  # the store's, never the file's
    assert faults.lists >= 2  # the first listing was throttled and retried

    faults.broken.clear()  # the store recovers: the same command scans only the transient failure again
    run = _scan(store, media, f"{scheme}://media/inbox", out)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 5 and lines[-1]["path"] == base + "sub/flaky.mp4" and lines[-1]["status"] == "ok"

    missing = _scan(store, media, f"{scheme}://no-such-bucket/x", tmp_path / "x.jsonl")
    assert missing.returncode == 2 and "no-such-bucket" in missing.stderr


def test_scan_of_a_gcs_prefix_through_throttling_and_errors(gcs, media, tmp_path):
    def identity(key):
        blob = gcs["bucket"].get_blob(key)
        return blob.etag, str(blob.generation), blob.size

    _check_scan(gcs, media, "gs", tmp_path, identity)
    lists = [q for m, p, q in gcs["proxy"].seen if p.endswith("/o") and "prefix=" in q]
    assert lists and all("maxResults=1000" in q for q in lists)  # asked a page at a time


def test_scan_of_an_azure_prefix_through_throttling_and_errors(azure, media, tmp_path):
    def identity(key):
        props = azure["container"].get_blob_client(key).get_blob_properties()
        return props.etag.strip('"'), props.version_id, props.size

    _check_scan(azure, media, "az", tmp_path, identity)


def test_azure_backoff_doubles(monkeypatch):
    """The Azure client waits 0.5, 1, 2, 4 s (+-25%) between attempts, as the S3 and GCS paths do; Azure's own
    ExponentialRetry would wait 0.5, 2.5, 4.5, 8.5 s (initial + 2**n) and doubled this file's scan times."""
    from vscan.inputs import objectstore_azure

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", _connection(1))
    monkeypatch.setenv("VSCAN_OBJECT_MAX_ATTEMPTS", "5")
    policy = objectstore_azure._new_service()._config.retry_policy
    assert policy.total_retries == 4
    for n, wait in enumerate((0.5, 1.0, 2.0, 4.0)):
        waits = [policy.get_backoff_time({"count": n}) for _ in range(200)]
        assert wait * 0.75 <= min(waits) and max(waits) <= wait * 1.25 and abs(sum(waits) / len(waits) - wait) < 0.1 * wait


def test_azure_listing_is_paged_and_streamed(azure, monkeypatch):
    from vscan.inputs import objectstore_azure
    from vscan.inputs.discover import discover

    many = 2_100
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: azure["container"].upload_blob(f"many/f{i:05d}.jpg", b"x"), range(many)))
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azure["env"]["AZURE_STORAGE_CONNECTION_STRING"])
    monkeypatch.setattr(objectstore_azure._service, "_made", None)
    faults = azure["faults"]
    before = faults.lists
    found = discover(["az://media/many"])
    assert next(found) == "az://media/many/f00000.jpg"
    assert faults.lists - before <= 2  # one page asked for (and a throttled first listing's retry)
    rest = list(found)
    assert len(rest) + 1 == many and len(set(rest)) == many - 1
    assert faults.lists - before >= 3  # page by page


def test_a_keyframe_first_pass_reads_an_object_by_ranges(gcs, media, tmp_path):
    """Default (adaptive) sampling on gs:// objects: the records equal a local scan of the same files,
    a keyframe pass reads a fraction of the object, and digests are null unless the object is read whole."""
    import hashlib

    folder = tmp_path / "local"
    synth.make_clip(folder / "long.mp4", seed=40, seconds=24.0, size=(480, 360), gop=50, bitrate=1_500_000)
    synth.make_clip(folder / "copy.mp4", seed=11, seconds=6.0, size=(160, 120), gop=25, crf=34)
    whole_clip = synth.make_clip(tmp_path / "camera.mp4", seed=12, seconds=2.0, size=(96, 64)).read_bytes()  # its index (moov) last
    (folder / "cut-before-index.mp4").write_bytes(whole_clip[: len(whole_clip) // 2])  # a recording interrupted: no index
    for path in folder.iterdir():
        gcs["bucket"].blob(f"ranged/{path.name}").upload_from_filename(str(path))
    bank = str(media[0] / "reported.bank")
    env = {**os.environ, **gcs["env"]}
    scans = {name: (tmp_path / f"{name}.jsonl", subprocess.Popen(
        [*VSCAN, "scan", target, "--bank", bank, "--out", str(tmp_path / f"{name}.jsonl"), "--device", "cpu", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**env, **extra}))  # the three scans at once
        for name, target, extra in (("local", str(folder), {}), ("ranges", "gs://media/ranged", {}),
                                    ("whole", "gs://media/ranged", {"VSCAN_OBJECT_READS": "whole"}))}  # fmt: skip
    runs = {}
    for name, (out, scan) in scans.items():
        _, stderr = scan.communicate(timeout=600)
        assert scan.returncode == 0, stderr
        runs[name] = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    for file in ("long.mp4", "copy.mp4"):
        local, ranged, whole = runs["local"][file], runs["ranges"][file], runs["whole"][file]
        size = (folder / file).stat().st_size
        for record in (ranged, whole):
            assert record["status"] == "ok", record["error"]
            assert record["frames_sampled"] == local["frames_sampled"] and record["media"] == local["media"]
            assert [(m["bank_entry_id"], m["is_match"]) for m in record["matches"]] == [(m["bank_entry_id"], m["is_match"]) for m in local["matches"]]
            assert record["size_bytes"] == size and record["object"]["size_bytes"] == size
        assert ranged["object"]["read"] == "ranges" and ranged["sha256"] is None and ranged["md5"] is None  # read in part: no content digest
        # Read whole, an object is fetched once per decode pass (a matched copy's second pass fetches it again).
        passes = 2 if whole.get("second_pass") and "ahead" not in whole["second_pass"].get("sampling", "") else 1
        assert whole["object"]["read"] == "whole" and whole["object"]["bytes_read"] == passes * size, (whole["second_pass"], size)
        assert whole["sha256"] == local["sha256"] == hashlib.sha256((folder / file).read_bytes()).hexdigest()
    for name, run in runs.items():  # read from disk, by ranges, whole: the error says the index is missing
        cut = run["cut-before-index.mp4"]
        assert cut["status"] == "error" and cut["error"]["kind"] == "input", (name, cut)
        assert "no index (moov box)" in cut["error"]["message"] and "bytes its mdat box declares" in cut["error"]["message"], (name, cut["error"])
    assert any(m["is_match"] for m in runs["ranges"]["copy.mp4"]["matches"])
    long = runs["ranges"]["long.mp4"]
    assert "keyframes" in long["sampling"] and long["object"]["bytes_read"] < 0.5 * long["object"]["size_bytes"], long["object"]

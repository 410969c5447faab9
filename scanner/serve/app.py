"""``vscan serve``: a match service with HMA 2.x's matching endpoints.

    GET  /m/lookup?signal_type=pdq&signal=HEX   the bank entries within --radius of the hash, by bank name
    POST /m/lookup                              an uploaded image (form field ``photo``, or any one file):
                                                PDQ-hashed, then looked up: {"pdq": <as GET>}
    GET  /m/raw_lookup?signal_type=pdq&signal=HEX[&include_distance=true]   {"matches": [entry ids]}
    GET  /m/index/status                        {"pdq": {"present", "built_to", "size"}} (HMA's shape)
    GET  /h/hash?url=...  (not served: no fetching of URLs) -- POST /h/hash: the PDQ of an uploaded image
    POST /v/scan[?uri=s3://b/k]                 an uploaded video or image, or an s3:// object: its full scan record (in process)
    GET  /metrics                               Prometheus text format
    GET  /healthz                               liveness (no key needed)
    GET  /openapi.json, /docs                   the OpenAPI spec (FastAPI's)

The response of ``GET /m/lookup`` keeps HMA's shape (a JSON object keyed by
bank name) and, as ThreatExchange #1681 asks, lists each matching entry with
its metadata instead of the bare bank name::

    {"reported": [{"bank_content_id": "clip-7", "distance": "12", "label": "...", "kind": "video",
                   "frame": 40, "timestamp_seconds": 1.6, ...}]}

``distance`` is a string, as HMA's ``similarity_info.pretty_str()``.

API keys: with keys configured (``--api-key-file``, one key a line, or
``VSCAN_API_KEYS``, comma-separated), every endpoint but /healthz, /docs and
/openapi.json needs ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``.

The app is made by :func:`create_app` from :class:`ServeSettings`; uvicorn's
``--workers N`` (``vscan serve --workers N``) runs N stateless processes that
each map the same bank index (one copy in the page cache).
"""

import hmac
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile  # (module level: FastAPI resolves the annotations)
from fastapi.responses import JSONResponse, PlainTextResponse

__all__ = ["ServeSettings", "create_app", "create_app_from_env", "ENV_SETTINGS"]

#: The environment variable that carries the settings to uvicorn's worker processes.
ENV_SETTINGS = "VSCAN_SERVE_SETTINGS"
OPEN_PATHS = ("/healthz", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc")


@dataclass(frozen=True)
class ServeSettings:
    bank: str
    bank_name: str = ""  # default: the bank file's stem
    radius: int = 31
    api_keys: tuple[str, ...] = ()
    reload_check_seconds: float = 2.0
    max_upload_bytes: int = 512 << 20
    config_toml: str = ""  # scan settings for POST /v/scan (vscan config show); empty: the defaults on the CPU
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.bank_name or Path(self.bank).stem


def create_app_from_env():
    """uvicorn's factory (``vscan serve --workers N``): settings from :data:`ENV_SETTINGS`."""
    data = json.loads(os.environ[ENV_SETTINGS])
    data["api_keys"] = tuple(data.get("api_keys", ()))
    return create_app(ServeSettings(**data))


def settings_json(settings: ServeSettings) -> str:
    return json.dumps(asdict(settings))


def create_app(settings: ServeSettings) -> FastAPI:
    from vscan import __version__
    from vscan.serve.bank_state import BankHolder
    from vscan.serve.batcher import LookupBatcher
    from vscan.serve.metrics import ServeMetrics

    metrics = ServeMetrics(settings.name)
    holder = BankHolder(settings.bank, check_seconds=settings.reload_check_seconds, on_reload=metrics.reloaded)
    metrics.reloaded(holder.current)
    keys = tuple(k for k in settings.api_keys if k)

    app = FastAPI(title="vscan match service", version=__version__,
                  description="HMA 2.x-compatible hash matching (PDQ) against a vscan bank, and whole-file scans.")  # fmt: skip
    app.state.holder, app.state.settings = holder, settings

    @app.middleware("http")
    async def guard(request: Request, call_next):
        t0 = time.perf_counter()
        if keys and request.url.path not in OPEN_PATHS and not _key_ok(request, keys):
            metrics.request(request.url.path, 401, time.perf_counter() - t0)
            return JSONResponse({"message": "missing or wrong API key (X-API-Key or Authorization: Bearer)"}, status_code=401)
        response = await call_next(request)
        metrics.request(request.scope.get("route").path if request.scope.get("route") else "other", response.status_code,
                        time.perf_counter() - t0)  # fmt: skip
        return response

    def pdq_of(signal_type: str, signal: str) -> np.ndarray:
        if signal_type != "pdq":
            raise HTTPException(400, f"No such SignalType '{signal_type}' (this service matches pdq)")
        try:
            raw = bytes.fromhex(signal.strip())
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise HTTPException(400, "invalid signal type: a PDQ signal is 64 hex digits")
        return np.frombuffer(raw, np.uint8).reshape(1, 32)

    batcher = LookupBatcher(holder, settings.radius)  # concurrent lookups searched as one batch (vscan.serve.batcher)

    async def lookup(hashes: np.ndarray) -> dict[str, list[dict[str, Any]]]:
        t0 = time.perf_counter()
        hits = await batcher.search(hashes[0])  # searched in the bank generation current when its batch ran
        metrics.lookup(time.perf_counter() - t0, len(hits))
        return {settings.name: [{**h, "distance": str(h["distance"])} for h in hits]} if hits else {}

    @app.get("/m/lookup", summary="Look a hash up (HMA 2.x): matching bank entries with their metadata, by bank name")
    async def lookup_get(signal_type: str = Query(..., examples=["pdq"]), signal: str = Query(..., description="64 hex digits")):
        return await lookup(pdq_of(signal_type, signal))

    @app.get("/m/raw_lookup", summary="Look a hash up (HMA 2.x): matching entry ids")
    async def raw_lookup(signal_type: str = Query(...), signal: str = Query(...), include_distance: bool = False):
        found = (await lookup(pdq_of(signal_type, signal))).get(settings.name, [])
        if include_distance:
            return {"matches": [{"content_id": h["bank_content_id"], "distance": h["distance"]} for h in found]}
        return {"matches": [h["bank_content_id"] for h in found]}

    @app.post("/m/lookup", summary="Hash an uploaded image (PDQ) and look it up: {\"pdq\": <as GET /m/lookup>}")
    async def lookup_post(photo: UploadFile = File(..., description="an image")):
        from starlette.concurrency import run_in_threadpool

        hashes = await run_in_threadpool(_hash_upload, photo, settings)  # decoding and hashing off the event loop
        return {"pdq": await lookup(hashes[:1])}

    @app.post("/h/hash", summary="The PDQ hash of an uploaded image (HMA 2.x): {\"pdq\": HEX}")
    def hash_post(photo: UploadFile = File(...)):
        return {"pdq": _hash_upload(photo, settings)[0].tobytes().hex()}

    @app.get("/m/index/status", summary="Index status (HMA 2.x shape), plus the bank generation and reloads")
    def index_status(signal_type: str | None = None):
        if signal_type not in (None, "pdq"):
            raise HTTPException(400, f"No such signal type '{signal_type}'")
        state = holder.current
        return {"pdq": {"present": True, "built_to": int(state.opened_at), "size": state.rows, "entries": state.entries,
                        "generation": state.generation, "reloads": holder.reloads, "reload_errors": holder.reload_errors,
                        "lookup_batches": batcher.batches, "lookups": batcher.searched}}  # fmt: skip

    @app.post("/v/scan", summary="Scan an uploaded file, or an s3:// object (?uri=), in process: its full scan record (vscan's result schema)")
    def scan_upload(file: UploadFile | None = File(None, description="a video or an image"),
                    uri: str | None = Query(None, description="an object to fetch instead of an upload: s3://bucket/key")):  # fmt: skip
        from vscan.inputs.objectstore import is_uri, normalize
        from vscan.serve.scan_one import scan_upload as run

        state = holder.current
        if (file is None) == (uri is None):
            raise HTTPException(400, "give either an uploaded file (form field file) or ?uri=s3://bucket/key")
        t0 = time.perf_counter()
        if uri is not None:
            if not is_uri(uri):
                raise HTTPException(400, "uri: only s3://bucket/key objects are fetched")
            record = run(normalize(uri), state, settings)  # fetched by the decode step (vscan.inputs.objectstore), ETag in the record
        else:
            with tempfile.TemporaryDirectory(prefix="vscan-serve-") as tmp:
                path = Path(tmp) / Path(file.filename or "upload").name
                _save(file, path, settings.max_upload_bytes)
                record = run(str(path), state, settings)
            record["path"] = file.filename or record["path"]
        metrics.scan(time.perf_counter() - t0, record)
        return record

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    def prometheus():
        body, content_type = metrics.render()
        return PlainTextResponse(body, media_type=content_type)

    @app.get("/healthz", summary="Liveness")
    def healthz():
        return {"ok": True, "bank": settings.name, "generation": holder.current.generation}

    return app  # (the reload thread is a daemon: it ends with the process)


def _key_ok(request, keys: tuple[str, ...]) -> bool:
    given = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        given = given or auth[7:].strip()
    return any(hmac.compare_digest(given.encode(), k.encode()) for k in keys) if given else False


def _save(upload: UploadFile, path: Path, limit: int) -> None:
    written = 0
    with open(path, "wb") as out:
        while chunk := upload.file.read(1 << 20):
            written += len(chunk)
            if written > limit:
                raise HTTPException(413, f"upload larger than {limit} bytes")
            out.write(chunk)


def _hash_upload(upload: UploadFile, settings: ServeSettings) -> np.ndarray:
    """PDQ of an uploaded image ([1, 32] uint8), as ``vscan hash photo.jpg``."""
    from vscan.serve.scan_one import hash_image

    with tempfile.TemporaryDirectory(prefix="vscan-serve-") as tmp:
        path = Path(tmp) / Path(upload.filename or "upload.jpg").name
        _save(upload, path, settings.max_upload_bytes)
        try:
            return hash_image(path)
        except Exception as exc:
            raise HTTPException(422, f"cannot hash the upload as an image: {type(exc).__name__}: {exc}") from None

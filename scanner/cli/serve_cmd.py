"""``vscan serve``: the HMA-compatible match service (vscan.serve.app)."""

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from vscan.cli.app import app, fail

__all__ = ["serve_command"]


@app.command("serve")
def serve_command(
    *,
    bank: Annotated[Path, typer.Option("--bank", metavar="FILE", help="Bank to match against; reloaded when it changes (import, disable, enable, rebuild).")],
    host: Annotated[str, typer.Option("--host", metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option("--workers", metavar="N", min=1, help="Worker processes (uvicorn), each mapping the same bank index.")] = 1,
    radius: Annotated[int, typer.Option("--radius", metavar="BITS", min=0, max=256, help="Hamming distance a lookup matches within.")] = 31,
    bank_name: Annotated[Optional[str], typer.Option("--bank-name", metavar="NAME", help="The bank's name in lookup answers (default: the file's stem).")] = None,
    api_key_file: Annotated[Optional[Path], typer.Option("--api-key-file", metavar="FILE", help="API keys, one a line (also: $VSCAN_API_KEYS, comma-separated); none: no key needed.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", metavar="FILE", help="Scan settings TOML for POST /v/scan (vscan config show).")] = None,
    reload_seconds: Annotated[float, typer.Option("--reload-seconds", metavar="S", help="How often the bank's generation is checked.")] = 2.0,
    ray_serve: Annotated[bool, typer.Option("--ray-serve", help="Deploy on Ray Serve (a local Ray, or --ray-address's cluster): its proxy on --host/--port balances over --replicas; the bank must be at the same path on every node.")] = False,
    replicas: Annotated[int, typer.Option("--replicas", metavar="N", min=1, help="With --ray-serve: replicas of the service.")] = 1,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", metavar="ADDR", help="With --ray-serve: an existing Ray cluster (default: start a local one).")] = None,
) -> None:
    """Serve HMA 2.x-compatible matching (GET /m/lookup, POST /m/lookup,
    /m/raw_lookup, /m/index/status), whole-file scans (POST /v/scan),
    Prometheus /metrics and the OpenAPI spec (/openapi.json, /docs).

    Scale out with --workers, with --ray-serve on Ray Serve (--replicas), or
    with more replicas behind your own load balancer: every process is
    stateless and maps the same bank index."""
    import uvicorn

    from vscan.serve.app import ENV_SETTINGS, ServeSettings, create_app, settings_json
    from vscan.serve.bank_state import BankState

    keys = [k.strip() for k in os.environ.get("VSCAN_API_KEYS", "").split(",") if k.strip()]
    if api_key_file is not None:
        try:
            keys += [line.strip() for line in api_key_file.read_text().splitlines() if line.strip() and not line.startswith("#")]
        except OSError as exc:
            fail(f"{api_key_file}: cannot read API keys: {exc.strerror or exc}")
    config_toml = ""
    if config is not None:
        from vscan.config import ScanConfig
        from vscan.errors import VscanError

        try:
            config_toml = ScanConfig.from_toml(config).to_toml()
        except VscanError as exc:
            fail(exc)
    try:
        BankState.open(bank)  # a bad bank stops here, not in every worker (and its index is built once, here)
    except Exception as exc:
        fail(f"{bank}: cannot serve this bank: {exc}")
    settings = ServeSettings(bank=str(bank.resolve()), bank_name=bank_name or "", radius=radius, api_keys=tuple(keys),
                             reload_check_seconds=reload_seconds, config_toml=config_toml)  # fmt: skip
    if ray_serve:
        from vscan.serve.ray_serve import run

        run(settings, host=host, port=port, replicas=replicas, ray_address=ray_address)
        return
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
        return
    import shutil
    import tempfile

    os.environ[ENV_SETTINGS] = settings_json(settings)
    made = None
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:  # the workers' shared metric files, removed when the service ends
        made = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="vscan-serve-metrics-")
    try:
        uvicorn.run("vscan.serve.app:create_app_from_env", factory=True, host=host, port=port, workers=workers, log_level="warning")
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)

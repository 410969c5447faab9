"""The ``vscan`` typer application and what every command module shares.

Command modules (``scan_cmd``, ``bank_cmd``, ``report_cmd``) register their
commands on :data:`app` and its groups; :mod:`vscan.cli.main` imports them
all. Help is plain click formatting: flags read as flags, choices list their
values (``--device <auto|cpu|cuda>``).

Exit codes: 0 done; 1 the work itself failed (a scan that broke off, a model
that fails its check); 2 a usage mistake (unknown option or choice, a path
that does not exist, a bad configuration value, nothing to check against).
"""

from pathlib import Path
from typing import Annotated, Literal, NoReturn, Optional

import typer

__all__ = [
    "app", "bank_app", "models_app", "config_app", "fail",
    "Decoder", "Device", "MatchMode", "HashBackend",
    "DecoderOpt", "DeviceOpt", "EveryFrameOpt", "FpsOpt", "KeyframesOpt", "ModelsDirOpt",
]  # fmt: skip

#: Choice types: click lists the valid values when one is unknown (exit 2).
Decoder = Literal["auto", "decord", "pyav"]
Device = Literal["auto", "cpu", "cuda"]
MatchMode = Literal["robust", "vpdq"]
HashBackend = Literal["onnx", "torch"]


def _version(value: bool) -> None:
    if value:
        import vscan

        typer.echo(f"vscan {vscan.__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="vscan",
    help="Find known videos and images again (perceptual hashes against banks) and score every file's risk.",
    no_args_is_help=True,
    add_completion=True,  # vscan --install-completion [bash|zsh|fish|powershell]
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", help="Print vscan's version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Find known videos and images again (perceptual hashes against banks) and score every file's risk."""
    if ctx.invoked_subcommand != "scan":  # vscan scan does so where its own Ctrl-C handling begins
        from vscan.cli.starting import started

        started()  # Ctrl-C is KeyboardInterrupt again (bank build keeps its resume point on it)


def _group(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


bank_app = _group("Build and describe hash banks.")
models_app = _group("Installed classifier/detector/hash models (ONNX + manifest).")
config_app = _group("Scan configuration: the TOML that vscan scan --config reads.")
app.add_typer(bank_app, name="bank")
app.add_typer(models_app, name="models")
app.add_typer(config_app, name="config")


def fail(error: "str | BaseException", code: int = 2) -> NoReturn:
    """Print ``vscan: error: ...`` on stderr and exit with ``code``."""
    from vscan.errors import VscanError

    message = f"{type(error).__name__}: {error}" if isinstance(error, VscanError) else str(error)
    typer.echo(f"vscan: error: {message}", err=True)
    raise typer.Exit(code)


ModelsDirOpt = Annotated[
    Optional[Path],
    typer.Option("--models-dir", help="User models folder (default: $VSCAN_MODELS_DIR), beside the shipped one.", metavar="DIR"),
]
EveryFrameOpt = Annotated[bool, typer.Option("--every-frame", help="Hash every frame.")]
FpsOpt = Annotated[Optional[float], typer.Option("--fps", help="Hash R frames per second, chosen by timestamp.", metavar="R")]
KeyframesOpt = Annotated[bool, typer.Option("--keyframes", help="Hash keyframes only (fastest).")]
DecoderOpt = Annotated[Decoder, typer.Option("--decoder", help="auto (decord, PyAV fallback), decord or pyav.")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="auto (CUDA when available), cpu or cuda.")]

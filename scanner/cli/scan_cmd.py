"""``vscan scan`` and ``vscan config show``."""

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from vscan.cli.app import app, config_app, fail
from vscan.cli.options import scan_config_options
from vscan.cli.starting import is_the_command, started
from vscan.config import ScanConfig
from vscan.errors import VscanError

__all__ = ["scan_command", "config_show", "config_docs"]


@app.command("scan")
@scan_config_options
def scan_command(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to scan (folders recursively).", metavar="PATH", show_default=False)],
    *,
    config: ScanConfig,
    bank: Annotated[Optional[Path], typer.Option("--bank", metavar="FILE", help="Bank file to match against (vscan bank build).")] = None,
    out: Annotated[str, typer.Option("--out", "-o", metavar="TARGET", help="Results, appended: *.jsonl (one JSON line per file), *.parquet, *.sqlite/*.db or postgresql://...")] = "results.jsonl",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", metavar="ADDRESS", help="Join this Ray cluster instead of starting a local one.")] = None,
    state: Annotated[Optional[Path], typer.Option("--state", metavar="FILE", help="SQLite state: skip files whose content was scanned with the same bank, models and config.")] = None,
    risk_policy: Annotated[Optional[Path], typer.Option("--risk-policy", metavar="FILE", help="TOML with DefaultRiskPolicy weights (see README).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")] = False,
    hash_store: Annotated[Optional[Path], typer.Option("--hash-store", metavar="DIR", help="Keep every hashed frame in Parquet under DIR, for vscan rematch (no decoding when the bank changes).")] = None,
    metrics_port: Annotated[Optional[str], typer.Option("--metrics-port", metavar="[HOST:]PORT", help="Serve Prometheus metrics while the scan runs (files, errors by kind, frames, matches per bank, rates); host 127.0.0.1 unless given.")] = None,
) -> None:
    """Scan files against a bank and/or detector models; write one risk record per file to --out.

    Sampling is adaptive by default (the ScanConfig default): keyframes
    first, then 1 frame/s (or --fps R) only around stretches that matched.
    --fps R alone samples at a fixed rate everywhere (and, after a weak hit
    on a sparse bank entry, the frames at its rows); --every-frame and
    --keyframes as named.

    Options can come from a TOML file (--config; vscan config show prints
    the effective one); options given on the command line override it.

    Started again over the same --out, it resumes: files that already have
    a record (same bank, models, config) are skipped; when none is left it
    says so without starting Ray.

    On a terminal it shows a progress bar; at the end it lists the files
    that matched (risk, path, bank entry, where in the file) and those that
    could not be scanned, counts scanned / skipped (already recorded,
    unchanged, known-benign) / errors, and prints the vscan report command.

    Exit codes: 0 when the scan completed, even if some files were errors
    (they have status "error" records); 2 for usage mistakes, found before
    anything starts (a path that does not exist, a folder with no media
    files, a bad option value, none of --bank, --model or --triage: a
    scan that checks nothing would report every file as clear); 1 when the scan
    itself failed.
    """
    from vscan.api import scan_iter
    from vscan.cli.progress import ScanOutcomes, ScanProgress, interrupted_message, print_summary
    from vscan.output.read import display_target

    try:
        started()  # Ctrl-C is KeyboardInterrupt from here on, handled below (before: vscan.cli.starting)
        policy = None
        if risk_policy is not None:
            from vscan.verdict.risk import DefaultRiskPolicy

            policy = DefaultRiskPolicy.from_toml(risk_policy)
        # Checks inputs, bank and --out before Ray starts (Ray starts on the first record).
        run = scan_iter(paths, bank=bank, out=out, config=config, ray_address=ray_address, risk_policy=policy, state=state,
                       hash_store=hash_store)
        metrics = _scan_metrics(metrics_port, bank)  # --metrics-port: Prometheus while the scan runs (vscan.runtime.metrics)
    except VscanError as exc:
        fail(exc)
    except KeyboardInterrupt:  # Ctrl-C while inputs, bank and --out are checked: nothing written yet
        _interrupted(0, display_target(out))
    records = iter(run)
    saved = 0
    outcomes = ScanOutcomes()  # the files that matched, listed at the end
    try:
        try:
            with ScanProgress(enabled=not quiet) as progress:
                progress.count_in_background(paths, config)
                for record in records:
                    saved += 1  # a record is handed out once durable
                    progress.update(record)
                    if metrics is not None:
                        metrics.record(record)
                    outcomes.add(record)
        except VscanError as exc:
            fail(exc, code=1)
        finally:
            records.close()  # type: ignore[attr-defined]  # closes the sink however the loop ended
            if metrics is not None:
                metrics.close()
        if not quiet and run.summary is not None:
            print_summary(run.summary, display_target(out), outcomes)
    except KeyboardInterrupt:  # at any moment: Ray starting, the model stage starting, files in flight, closing, the summary
        _interrupted(saved, display_target(out), records)
    _after_the_end(saved, display_target(out))


def _after_the_end(saved: int, shown_out: str) -> None:
    """The run is complete and every record saved: a Ctrl-C from here on (click, the interpreter's
    shutdown) is ignored and the command exits 0 as completed. A Python handler would not do: Python
    resets it to the default while it shuts down, and the process would die of the signal (-2)."""
    import signal

    if is_the_command():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interrupted(saved: int, shown_out: str, records=None) -> None:
    """Ctrl-C: close the run (its manifest says "interrupted"), say what is
    saved, exit 130. A second Ctrl-C while closing (Ray shutting down) ends
    the process at once, still with 130, never a traceback or a signal death."""
    import signal

    from vscan.cli.progress import interrupted_message

    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    if records is not None:
        records.close()
    typer.echo(interrupted_message(saved, shown_out), err=True)
    if is_the_command():
        # The sink and its manifest are closed, Ray is shut down: leave now. Finalizing the interpreter
        # with Ray's and the model stage's native threads half-started segfaulted (-11, 1 in 5 at 12 s).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    raise typer.Exit(130)


def _scan_metrics(address: Optional[str], bank: Optional[Path]):
    """The metrics server of --metrics-port, or None; a bad or busy address is a usage error (exit 2)."""
    if not address:
        return None
    from vscan.runtime.metrics import ScanMetrics

    try:
        return ScanMetrics(address, bank_name=bank.stem if bank else None)
    except (ValueError, OSError) as exc:
        fail(f"--metrics-port {address}: {exc}")


@config_app.command("show")
@scan_config_options
def config_show(*, config: ScanConfig) -> None:
    """Print the effective scan configuration as TOML: the defaults, then
    --config, then the options given. vscan scan --config reads it back."""
    typer.echo(config.to_toml(), nl=False)


@config_app.command("docs")
def config_docs() -> None:
    """Print the configuration reference (every section and key, its default,
    option and meaning) as Markdown: docs/configuration.md is this output."""
    from vscan.cli.config_docs import config_reference

    typer.echo(config_reference(), nl=False)

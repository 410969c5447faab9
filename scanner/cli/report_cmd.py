"""``vscan report``, ``vscan demo`` and ``vscan bench``.

demo and bench run tools from :mod:`vscan.bench`, imported only inside the
commands: the library never imports it.
"""

import sys
from pathlib import Path
from typing import Annotated

import typer

from vscan.cli.app import DeviceOpt, app, fail
from vscan.errors import VscanError

__all__ = ["report_command", "demo_command", "bench_command"]


@app.command("report")
def report_command(
    results: Annotated[str, typer.Argument(metavar="RESULTS", show_default=False, help=(
        "What vscan scan --out wrote: *.jsonl, *.parquet, *.sqlite/*.db or postgresql://..."))],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="HTML file to write.")] = Path("report.html"),
    thumbnails: Annotated[bool, typer.Option("--thumbnails", help="Embed heavily blurred thumbnails of the strongest frames (off by default: reviewer safety).")] = False,
) -> None:
    """Write a self-contained HTML report: files by risk, per-file timelines, the runs' match floods."""
    from vscan.output.read import read_floods, read_records
    from vscan.output.report import write_report

    try:
        records = read_records(results)
        write_report(records, out, thumbnails=thumbnails, floods=read_floods(results))  # floods: from the runs' manifests
    except VscanError as exc:
        fail(exc)
    typer.echo(f"{out}: {len(records)} files")


@app.command("demo")
def demo_command(
    directory: Annotated[Path, typer.Option("--dir", metavar="DIR", help="Where to generate the demo archive.")] = Path("vscan-demo"),
    device: DeviceOpt = "auto",
) -> None:
    """Generate a synthetic archive, bank its reported sources, scan it, print the results.

    Sources are abstract moving textures made on the spot; the archive holds
    edited re-uploads (re-encode, downscale, brightness, grayscale, trim),
    unrelated clips and corrupt files. The scan uses vscan scan's defaults
    (adaptive sampling) with --triage (the shipped NSFW classifier and face
    detector; the archive has no people, so both stay low).
    """
    from rich.console import Console

    from vscan.api import scan
    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import build_bank
    from vscan.bench.demo import make_demo_archive
    from vscan.cli.progress import ScanOutcomes, ScanProgress, print_summary
    from vscan.config import Models, Runtime, ScanConfig
    from vscan.decode import EveryFrame

    console = Console()
    console.print(f"[bold]1/3[/] generating a synthetic archive in {directory}/ ...")
    demo = make_demo_archive(directory)
    console.print(f"[bold]2/3[/] building a bank from {len(demo.sources)} reported clips ...")
    bank = directory / "reported.bank"
    bank.unlink(missing_ok=True)
    try:
        build_bank(bank, list(demo.sources), label="reported", hash_media=media_hasher(EveryFrame(), device))
        out = directory / "results.jsonl"
        out.unlink(missing_ok=True)
        console.print(f"[bold]3/3[/] scanning {demo.archive}/ on Ray ...")
        outcomes = ScanOutcomes(keep=100, show_unmatched=True)
        with ScanProgress() as progress:
            config = ScanConfig(models=Models(triage=True), runtime=Runtime(device=device))  # triage on: the shipped NSFW + face models

            def seen(record: dict) -> None:
                progress.update(record)
                outcomes.add(record)

            summary = scan([demo.archive], bank=bank, out=out, config=config, on_record=seen)
    except VscanError as exc:
        fail(exc, code=1)
    print_summary(summary, out, outcomes)
    print(f"next:    vscan scan {demo.archive} --bank {bank} --triage --out {out}   "
          "(the same scan from the command line: it finds nothing left to scan)")


@app.command(
    "bench",
    add_help_option=False,  # --help goes to the benchmark's own parser, which knows its options
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def bench_command(ctx: typer.Context) -> None:
    """Measure end-to-end and per-stage throughput on a generated corpus
    (options: vscan bench --help).

    Runs vscan.bench.bench_pipeline: a corpus of --clips N clips of --seconds S
    at --size WxH (plus --small-files N), fixed 1 fps and adaptive scans, and
    the reference vPDQ at 1 s/hash in the same run when it is installed.
    With --archive, vscan.bench.bench_archive instead: an archive of mostly
    known copies in several codecs and GOP lengths (vscan bench --archive --help).
    """
    if "--archive" in ctx.args:
        from vscan.bench import bench_archive

        bench_archive.main([a for a in ctx.args if a != "--archive"])
        return
    from vscan.bench import bench_pipeline

    argv = sys.argv
    sys.argv = ["vscan bench", *ctx.args]  # argparse reads sys.argv; its prog name is argv[0]
    try:
        bench_pipeline.main()
    finally:
        sys.argv = argv

"""``vscan export``: scan results out for case tools (VICS JSON case file, CSV)."""

from pathlib import Path
from typing import Annotated

import typer

from vscan.cli.app import app, fail
from vscan.errors import VscanError

__all__ = ["export_command"]


@app.command("export")
def export_command(
    results: Annotated[str, typer.Argument(metavar="RESULTS", show_default=False, help=(
        "What vscan scan --out wrote: *.jsonl, *.parquet, *.sqlite/*.db or postgresql://..."))],
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="vics (VICS 2.0 JSON case file) or csv.")] = "vics",
    out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="File to write.")] = Path("case.json"),
    detector_category: Annotated[int | None, typer.Option("--detector-category", metavar="N", min=0, help=(
        "VICS category for files a detector or classifier flagged and no categorised bank entry matched."))] = None,
    case_number: Annotated[str, typer.Option("--case-number", metavar="TEXT", help="CaseNumber of the VICS case.")] = "vscan",
) -> None:
    """Write scanned media as a VICS JSON case file (MD5, SHA1, size, path, category, reasons) or CSV."""
    from vscan.output.export import export_results
    from vscan.output.read import read_records

    try:
        written = export_results(read_records(results), fmt, out, detector_category=detector_category, case_number=case_number)
    except VscanError as exc:
        fail(exc)
    typer.echo(f"{out}: {written} {'media' if fmt == 'vics' else 'rows'}")

"""``vscan rematch``: a hash store against a new or changed bank, no decoding."""

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vscan.cli.app import app, fail
from vscan.errors import VscanError

__all__ = ["rematch_command"]


@app.command("rematch")
def rematch_command(
    store: Annotated[Path, typer.Argument(help="Hash store folder (vscan scan --hash-store DIR).", metavar="DIR", show_default=False)],
    *,
    bank: Annotated[Path, typer.Option("--bank", metavar="FILE", help="Bank to match the stored hashes against.")],
    out: Annotated[str, typer.Option("--out", "-o", metavar="TARGET", help="Records, appended: *.jsonl, *.parquet, *.sqlite/*.db or postgresql://...")] = "rematch.jsonl",
    rescan_list: Annotated[Optional[Path], typer.Option("--rescan-list", metavar="FILE", help="JSON lines {path, reason, detail} of files to scan again (frames too sparse, not stored, other settings).")] = None,
    risk_policy: Annotated[Optional[Path], typer.Option("--risk-policy", metavar="FILE", help="TOML with DefaultRiskPolicy weights (see README).")] = None,
) -> None:
    """Match every file's stored frame hashes against --bank without decoding:
    the records a scan would give for those frames, one per file, to --out.

    Files whose stored frames cannot decide (adaptive sampling would decode
    more frames around a new match; nothing stored; other sampling settings)
    are not guessed: they are counted and listed in --rescan-list. Prints a
    JSON summary. Started again over the same --out, it resumes.
    """
    from vscan.output.rematch import rematch
    from vscan.output.sinks import open_sink

    if not store.is_dir():
        fail(f"{store}: no such hash store folder")
    if not bank.is_file():
        fail(f"{bank}: no such bank file")
    try:
        policy = None
        if risk_policy is not None:
            from vscan.verdict.risk import DefaultRiskPolicy

            policy = DefaultRiskPolicy.from_toml(risk_policy)
        sink = open_sink(out)
    except VscanError as exc:
        fail(exc)
    try:
        records = rematch(store, bank=bank, sink=sink, risk_policy=policy, rescan_list=rescan_list)
        while True:
            try:
                next(records)
            except StopIteration as done:
                summary = done.value
                break
    except VscanError as exc:
        fail(exc, code=1)
    finally:
        sink.close()
    typer.echo(json.dumps(summary.to_dict()))

"""``vscan bank import|lookup|disable|enable|history|compact`` and ``vscan feedback``:
banks updated in place and matched from outside a scan (``vscan.bank.append``,
``vscan.bank.lookup``, ``vscan.bank.updates``)."""

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from vscan.cli.app import DeviceOpt, app, bank_app, fail
from vscan.errors import VscanError

__all__ = ["bank_import", "bank_lookup", "bank_disable", "bank_enable", "bank_history", "bank_compact", "feedback"]

BankArg = Annotated[Path, typer.Argument(help="Bank file.", metavar="BANK", show_default=False)]
ReasonOpt = Annotated[Optional[str], typer.Option("--reason", help="Why (kept in the bank's history).")]
WhoOpt = Annotated[Optional[str], typer.Option("--who", help="Who decided (default: $VSCAN_USER, else the login name).")]


def _echo_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")


@bank_app.command("import")
def bank_import(
    bank: BankArg,
    inputs: Annotated[list[Path], typer.Argument(help="Newer lists, hash files, media.", metavar="INPUT", show_default=False)],
    label: Annotated[Optional[str], typer.Option("--label", help="Label for every entry added.")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Import newer lists into an existing bank, in place: new entries are added,
    entries a list marks withdrawn or deleted are disabled (history kept),
    nothing is rebuilt. Prints the counts as JSON."""
    from vscan.bank.append import append_to_bank
    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import bank_row_plan
    from vscan.decode import EveryFrame

    try:  # media hashed with the rows the bank was built with (vscan bank build --rows)
        summary = append_to_bank(bank, inputs, label=label, hash_media=media_hasher(EveryFrame(), device, bank_row_plan(bank)))
    except VscanError as exc:
        fail(exc)
    _echo_json(summary)


@bank_app.command("lookup")
def bank_lookup(
    bank: BankArg,
    hashes: Annotated[Path, typer.Option("--hashes", help="PDQ hex lines, vPDQ lines or pytx CSV ('-': stdin).", show_default=False)],
    radius: Annotated[int, typer.Option("--radius", help="Hamming radius (exact up to 63; brute force above).")] = 31,
    dihedral: Annotated[bool, typer.Option("--dihedral", help=(
        "Also search the 8 rotations/flips of each hash (against the bank's frames only; --robust adds "
        "the crops, strips and rotations a scan also searches)."))] = False,
    robust: Annotated[bool, typer.Option("--robust", help=(
        "What a scan searches for a hash: the 8 rotations/flips against the frames and the bank's extra rows "
        "(centre crops, borders removed, 9:16 strips, rotations, grid windows; brute force over those rows); "
        "each hit says its prep."))] = False,
    device: Annotated[str, typer.Option("--device", help="cpu (the index) or cuda (brute force on the GPU; needs torch).")] = "cpu",
) -> None:
    """One JSON line per query hash: its line, the hash and every enabled bank
    row within the radius (entry, frame, distance; with --dihedral the variant).
    The bank's index (BANK.vidx) is built on first use."""
    from vscan.bank.hash_input import read_query_hashes
    from vscan.bank.lookup import BankLookup
    from vscan.bank.matcher import robust_lookup

    try:
        queries = read_query_hashes(sys.stdin if str(hashes) == "-" else hashes)
        with BankLookup.open(bank, device=device) as lookup:
            for start in range(0, len(queries.lines), 10_000):
                part = slice(start, start + 10_000)
                if robust:  # through the scan's matcher (vscan.bank.matcher)
                    items = robust_lookup(bank, queries.hashes[part], radius, lines=queries.lines[part], device=device)
                else:
                    items = lookup.lookup(queries.hashes[part], radius, dihedral=dihedral, lines=queries.lines[part])
                for item in items:
                    _echo_json(item)
    except VscanError as exc:
        fail(exc)


EntriesArg = Annotated[list[str], typer.Argument(help="Entry ids.", metavar="ENTRY", show_default=False)]


def _switch(change, done: str, bank: Path, entries: list[str], reason: Optional[str], who: Optional[str]) -> None:
    """Runs ``change`` (disable_entries / enable_entries) and prints which entries it changed and which already were."""
    try:
        changed = change(bank, entries, reason=reason, who=who)
    except VscanError as exc:
        fail(exc)
    _echo_json({done: changed, f"already_{done}": [e for e in entries if e not in changed]})


@bank_app.command("disable")
def bank_disable(bank: BankArg, entries: EntriesArg, reason: ReasonOpt = None, who: WhoOpt = None) -> None:
    """Disable entries: they stop matching in the next scan and lookup, without a rebuild."""
    from vscan.bank.updates import disable_entries

    _switch(disable_entries, "disabled", bank, entries, reason, who)


@bank_app.command("enable")
def bank_enable(bank: BankArg, entries: EntriesArg, reason: ReasonOpt = None, who: WhoOpt = None) -> None:
    """Enable disabled entries again."""
    from vscan.bank.updates import enable_entries

    _switch(enable_entries, "enabled", bank, entries, reason, who)


@bank_app.command("history")
def bank_history(
    bank: BankArg,
    entry: Annotated[Optional[str], typer.Argument(help="One entry (default: all).", metavar="ENTRY", show_default=False)] = None,
) -> None:
    """The disable / enable / feedback history, one JSON line per event, oldest first."""
    from vscan.bank.store import Bank
    from vscan.bank.updates import history

    try:
        Bank(bank).close()  # a clear error for a missing file or a non-bank
        events = history(bank, entry)
    except VscanError as exc:
        fail(exc)
    for event in events:
        _echo_json(event.to_dict())


@bank_app.command("compact")
def bank_compact(bank: BankArg) -> None:
    """Rebuild the bank's lookup index (BANK.vidx) over every row, folding in
    the rows imported since it was built, and the arrays scans open beside it."""
    from vscan.bank.lookup import compact
    from vscan.bank.mapped import prepare

    try:
        summary = compact(bank)
        prepare(bank)
        _echo_json(summary)
    except VscanError as exc:
        fail(exc)


def _record_for(results: Path, path: str) -> dict:
    from vscan.output.read import read_records

    records = [r for r in read_records(results) if r.get("path") == path]
    if not records:
        records = [r for r in read_records(results) if str(r.get("path", "")).endswith(path)]
    if not records:
        raise typer.BadParameter(f"no record for {path!r} in {results}")
    return records[-1]


@app.command("feedback")
def feedback(
    results: Annotated[Path, typer.Argument(help="Scan results (a sink target: JSONL, Parquet, SQLite...).", metavar="RESULTS", show_default=False)],
    bank: Annotated[Path, typer.Option("--bank", help="The bank the scan matched against.", show_default=False)],
    false_positive: Annotated[Optional[str], typer.Option("--false-positive", help="A scanned file whose match was wrong: its entries are disabled.", metavar="PATH")] = None,
    confirmed: Annotated[Optional[str], typer.Option("--confirmed", help="A scanned file whose match was right (logged).", metavar="PATH")] = None,
    entry: Annotated[Optional[list[str]], typer.Option("--entry", help="Only this matched entry (repeatable; default: every matched entry of the file).", metavar="ID")] = None,
    reason: ReasonOpt = None,
    who: WhoOpt = None,
) -> None:
    """Review a scan's match: --false-positive PATH disables the bank entries that
    matched PATH (or --entry ID), --confirmed PATH logs them as right; both kept
    in the bank's history."""
    from vscan.bank.updates import record_feedback

    if (false_positive is None) == (confirmed is None):
        fail("Give exactly one of --false-positive PATH or --confirmed PATH")
    path = false_positive if false_positive is not None else confirmed
    verdict = "false_positive" if false_positive is not None else "confirmed"
    try:
        record = _record_for(results, path)
        matched = [m["bank_entry_id"] for m in record.get("matches") or [] if m.get("is_match")]
        targets = list(dict.fromkeys(entry or matched))  # an entry matched by digest and by frames once
        if not targets:
            fail(f"{path}: no matched entry in its record; name one with --entry")
        unknown = [e for e in targets if e not in {m["bank_entry_id"] for m in record.get("matches") or []}]
        if unknown:
            fail(f"{path}: entr{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} did not match it in {results}")
        changed = [e for e in targets if record_feedback(bank, e, verdict, file=record["path"], reason=reason, who=who)]
    except VscanError as exc:
        fail(exc)
    _echo_json({"file": record["path"], "feedback": verdict, "entries": targets, "disabled": changed})

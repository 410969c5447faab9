"""The ``vscan`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from vscan.errors import ConfigError, VscanError

app = typer.Typer(
    name="vscan",
    help="Find known videos and images again (perceptual hashes against banks) and score every file's risk.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bank_app = typer.Typer(help="Build and describe hash banks.", no_args_is_help=True)
app.add_typer(bank_app, name="bank")
models_app = typer.Typer(help="Installed classifier/detector/hash models (ONNX + manifest).", no_args_is_help=True)
app.add_typer(models_app, name="models")
ModelsDirOpt = Annotated[
    Optional[Path], typer.Option("--models-dir", help="User models folder (default: $VSCAN_MODELS_DIR), beside the shipped one.")
]


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"vscan: error: {message}", err=True)
    raise typer.Exit(code)


def _policy(every_frame: bool, fps: Optional[float], keyframes: bool, default=None):
    from vscan.decode import parse_policy

    if not (every_frame or fps is not None or keyframes) and default is not None:
        return default
    return parse_policy(every_frame=every_frame, fps=fps, keyframes=keyframes)


EveryFrameOpt = Annotated[bool, typer.Option("--every-frame", help="Hash every frame.")]
FpsOpt = Annotated[Optional[float], typer.Option("--fps", help="Hash R frames per second, chosen by timestamp.", metavar="R")]
KeyframesOpt = Annotated[bool, typer.Option("--keyframes", help="Hash keyframes only (fastest).")]
BackendOpt = Annotated[str, typer.Option("--decoder", help="Decoder: auto (decord, PyAV fallback), decord or pyav.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA when available), cpu or cuda.")]


@app.command("hash")
def hash_command(
    file: Annotated[Path, typer.Argument(help="Video or still image (jpg, png, webp).", show_default=False)],
    every_frame: EveryFrameOpt = False,
    fps: FpsOpt = None,
    keyframes: KeyframesOpt = False,
    decoder: BackendOpt = "auto",
    device: DeviceOpt = "auto",
) -> None:
    """Print one vPDQ line per sampled frame: frame_number,quality,hex,timestamp_seconds.

    The output is the upstream vPDQ hash-file format. Default: every frame.
    """
    from vscan.decode import EveryFrame
    from vscan.hashing.vpdq import format_vpdq_line
    from vscan.hashing.pdq import PDQHasher
    from vscan.hashing.media import hash_media

    try:
        policy = _policy(every_frame, fps, keyframes, default=EveryFrame())
        hasher = PDQHasher(device=device)  # type: ignore[arg-type]
        result = hash_media(file, policy, hasher=hasher, backend=decoder)  # type: ignore[arg-type]
    except VscanError as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    out = sys.stdout
    frames = result.frames
    for number, quality, hex64, ts in zip(frames.frame_numbers, frames.qualities, frames.hex(), frames.timestamps_seconds):
        out.write(format_vpdq_line(int(number), int(quality), hex64, float(ts)) + "\n")


@bank_app.command("build")
def bank_build(
    out: Annotated[Path, typer.Argument(help="Bank file to write (SQLite).", show_default=False)],
    inputs: Annotated[list[Path], typer.Argument(help="Videos, images, folders and hash lists.", show_default=False)],
    label: Annotated[Optional[str], typer.Option("--label", help="Label for every entry added.")] = None,
    every_frame: EveryFrameOpt = False,
    fps: FpsOpt = None,
    keyframes: KeyframesOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Build a bank from videos, images and hash lists.

    Hash lists: upstream vPDQ .txt files, plain PDQ hex lists, MD5/SHA-1/SHA-256
    lists and pytx CSV (signal_type,signal_str,...). Media is hashed densely
    (every frame by default) so sparse scans line up with it at any phase.
    """
    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import build_bank
    from vscan.decode import EveryFrame

    try:
        policy = _policy(every_frame, fps, keyframes, default=EveryFrame())
        info = build_bank(out, inputs, label=label, hash_media=media_hasher(policy, device))
    except VscanError as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    _print_bank_info(info)


@bank_app.command("info")
def bank_info(bank: Annotated[Path, typer.Argument(help="Bank file.", show_default=False)]) -> None:
    """Describe a bank: entries, hashes, labels, checksum."""
    from vscan.bank.store import Bank

    try:
        with Bank(bank) as b:
            info = b.info()
    except VscanError as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    _print_bank_info(info)


def _print_bank_info(info) -> None:
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bank {info.path}", show_header=False)
    for key, value in asdict(info).items():
        if key == "path":
            continue
        table.add_row(key, ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value))
    Console().print(table)


@app.command("scan")
def scan_command(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to scan (folders recursively).", show_default=False)],
    bank: Annotated[Optional[Path], typer.Option("--bank", help="Bank file to match against (vscan bank build).")] = None,
    out: Annotated[str, typer.Option("--out", "-o", help="Results, appended: *.jsonl (one JSON line per file), *.parquet, *.sqlite/*.db or postgresql://...")] = "results.jsonl",
    every_frame: EveryFrameOpt = False,
    fps: Annotated[Optional[float], typer.Option("--fps", help="Sample R frames per second by timestamp, everywhere (fixed rate).", metavar="R")] = None,
    keyframes: KeyframesOpt = False,
    adaptive: Annotated[bool, typer.Option("--adaptive", help="The default: keyframes first, then 1 fps (or --fps R) only around matched stretches.")] = False,
    decoder: BackendOpt = "auto",
    device: DeviceOpt = "auto",
    timeout: Annotated[float, typer.Option("--timeout", help="Per-file decode time limit, seconds.")] = 600.0,
    all_files: Annotated[bool, typer.Option("--all-files", help="In folders, try every file, not only media suffixes.")] = False,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Join this Ray cluster instead of starting a local one.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")] = False,
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="Run this classifier/detector too (installed name or manifest path); repeatable.")] = None,
    models_dir: ModelsDirOpt = None,
    risk_policy: Annotated[Optional[Path], typer.Option("--risk-policy", help="TOML with DefaultRiskPolicy weights (see README).")] = None,
    state: Annotated[Optional[Path], typer.Option("--state", help="SQLite state: skip files whose content was scanned with the same bank, models and config.")] = None,
    batch_frames: Annotated[int, typer.Option("--batch-frames", help="Frames per model batch on the device (mixing files).")] = 128,
    small_file_group: Annotated[int, typer.Option("--small-file-group", help="Decode up to N files under --small-file-mb in one worker task while all workers are busy; 1: one file per task.")] = 8,
    small_file_mb: Annotated[float, typer.Option("--small-file-mb", help="Size under which a file counts as small, MiB.")] = 2.0,
    archive_member_max_mb: Annotated[float, typer.Option("--archive-member-max-mb", help="zip/tar: refuse a member larger than this uncompressed, MiB.")] = 1024.0,
    archive_max_ratio: Annotated[float, typer.Option("--archive-max-ratio", help="zip/tar: refuse a member whose uncompressed/compressed ratio exceeds this.")] = 100.0,
    archive_total_max_mb: Annotated[float, typer.Option("--archive-total-max-mb", help="zip/tar: stop reading an archive past this much uncompressed content, MiB.")] = 16384.0,
) -> None:
    """Scan files against a bank; write one risk record per file to --out.

    Sampling: adaptive by default (keyframes, then 1 fps around anything that
    matched); --fps R for a fixed rate everywhere, --every-frame, --keyframes.

    Started again over the same --out, it resumes: files that already have a
    record (same bank, models, config) are skipped.

    Exits 0 when the scan completed, even if some files were errors (they
    have status "error" records); non-zero only when the scan itself failed.
    """
    from vscan.decode import FixedRate
    from vscan.config import Archives, Inputs, Models, Runtime, Sampling, ScanConfig
    from vscan.runtime.driver import run_scan
    from vscan.cli.progress import ScanProgress, print_summary
    from vscan.output.sinks import open_sink

    try:
        if adaptive or not (every_frame or keyframes or fps is not None):
            if every_frame or keyframes:
                raise ConfigError("Invalid sampling options (--adaptive with --every-frame/--keyframes). Supported: --adaptive [--fps R].")
            from vscan.decode import Adaptive

            policy = Adaptive(dense_fps=fps or 1.0)
        else:
            policy = _policy(every_frame, fps, keyframes, default=FixedRate(1.0))
        config = ScanConfig(sampling=Sampling(policy=policy, decoder=decoder), inputs=Inputs(all_files=all_files), archives=Archives(member_max_bytes=int(archive_member_max_mb * 2**20), max_ratio=archive_max_ratio, total_max_bytes=int(archive_total_max_mb * 2**20)), runtime=Runtime(device=device, file_timeout_seconds=timeout, batch_frames=batch_frames, small_file_group=small_file_group, small_file_bytes=int(small_file_mb * 2**20)))  # fmt: skip
        if model:
            from dataclasses import replace

            from vscan.models.manifest import resolve_model

            manifests = [resolve_model(m, models_dir) for m in model]
            for m in manifests:
                m.verify()
            config = replace(config, models=Models(detectors=tuple(str(m.manifest_path.resolve()) for m in manifests)))
        policy_obj = None
        if risk_policy is not None:
            from vscan.verdict.risk import DefaultRiskPolicy

            policy_obj = DefaultRiskPolicy.from_toml(risk_policy)
        if bank is not None:
            from vscan.bank.store import Bank

            Bank(bank).close()  # fail early on a bad bank
        with open_sink(out) as sink, ScanProgress(enabled=not quiet) as progress:
            summary = run_scan(paths, sink=sink, bank_path=bank, config=config, ray_address=ray_address, on_record=progress.update, state_path=state, risk_policy=policy_obj)
    except VscanError as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    if not quiet:
        print_summary(summary, sink.target)


@models_app.command("list")
def models_list(models_dir: ModelsDirOpt = None) -> None:
    """List installed models: the shipped models/ folder and the user folder."""
    from rich.console import Console
    from rich.table import Table

    from vscan.models.manifest import installed_manifests

    try:
        manifests = installed_manifests(models_dir)
    except VscanError as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    table = Table(title="installed models")
    for column in ("name", "kind", "version", "input", "output", "risk labels", "manifest"):
        table.add_column(column, overflow="fold")
    for m in manifests:
        inp = f"{m.input.height}x{m.input.width} {m.input.layout} {m.input.colour}{' letterbox' if m.input.letterbox else ''}" if m.input else "see manifest"
        out = m.output.decoding if m.output else "hash"
        risk = ", ".join(f"{k}={v:g}" for k, v in m.risk.labels.items())
        table.add_row(m.name, m.kind, m.version, inp, out, risk, str(m.manifest_path))
    Console(width=200).print(table)


@models_app.command("check")
def models_check(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Manifests (files or folders); default: every installed model.", show_default=False)] = None,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Verify model files (SHA-256) and their ONNX input/output shapes and dtypes
    against the manifests. Exits 1 when any model fails."""
    from vscan.models.manifest import check_model, installed_manifests, load_manifest

    try:
        manifests = [load_manifest(p) for p in paths] if paths else installed_manifests(models_dir)
    except VscanError as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    failed = 0
    for m in manifests:
        problems = check_model(m)
        failed += bool(problems)
        typer.echo(f"{m.name} ({m.kind}, {m.manifest_path}): " + ("ok" if not problems else "FAILED"))
        for problem in problems:
            typer.echo(f"  - {problem}")
    if failed:
        raise typer.Exit(1)


@app.command("report")
def report_command(
    results: Annotated[Path, typer.Argument(help="Results file from vscan scan (JSON lines).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html"),
    thumbnails: Annotated[bool, typer.Option("--thumbnails", help="Embed heavily blurred thumbnails of the strongest frames (off by default: reviewer safety).")] = False,
) -> None:
    """Write a self-contained HTML report: files by risk, per-file timelines."""
    from vscan.output.report import read_records, write_report

    try:
        records = read_records(results)
        write_report(records, out, thumbnails=thumbnails)
    except VscanError as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    typer.echo(f"{out}: {len(records)} files")


@app.command("demo")
def demo_command(
    directory: Annotated[Path, typer.Option("--dir", help="Where to generate the demo archive.")] = Path("vscan-demo"),
    device: DeviceOpt = "auto",
) -> None:
    """Generate a synthetic archive, bank its reported sources, scan it, print the results.

    Sources are abstract moving textures made on the spot; the archive holds
    edited re-uploads (re-encode, downscale, brightness, grayscale, trim),
    unrelated clips and corrupt files.
    """
    import json

    from rich.console import Console
    from rich.table import Table

    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import build_bank
    from vscan.decode import Adaptive, EveryFrame
    from vscan.bench.demo import make_demo_archive
    from vscan.config import Archives, Inputs, Runtime, Sampling, ScanConfig
    from vscan.runtime.driver import run_scan
    from vscan.cli.progress import ScanProgress, print_summary
    from vscan.output.sinks import open_sink

    console = Console()
    console.print(f"[bold]1/3[/] generating a synthetic archive in {directory}/ ...")
    demo = make_demo_archive(directory)
    console.print(f"[bold]2/3[/] building a bank from {len(demo.sources)} reported clips ...")
    bank = directory / "reported.bank"
    bank.unlink(missing_ok=True)
    build_bank(bank, list(demo.sources), label="reported", hash_media=media_hasher(EveryFrame(), device))
    out = directory / "results.jsonl"
    out.unlink(missing_ok=True)
    console.print(f"[bold]3/3[/] scanning {demo.archive}/ on Ray ...")
    config = ScanConfig(sampling=Sampling(policy=Adaptive()), runtime=Runtime(device=device))  # type: ignore[arg-type]  # vscan scan's default
    with open_sink(out) as sink, ScanProgress() as progress:
        summary = run_scan([demo.archive], sink=sink, bank_path=bank, config=config, on_record=progress.update)
    table = Table(title="results, highest risk first (full records in results.jsonl)")
    for column in ("file", "risk", "best match", "query/compared %", "matched s", "error"):
        table.add_column(column, overflow="fold")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    for r in sorted(records, key=lambda r: (-(r["risk"] or 0), r["path"])):
        best = r["matches"][0] if r["matches"] else None
        table.add_row(
            Path(r["path"]).name,
            "-" if r["risk"] is None else f"{r['risk']:.2f}",
            f"{best['bank_entry_id']} ({best['kind']})" if best else "",
            f"{best['query_pct']:.0f}/{best['compared_pct']:.0f}" if best else "",
            f"{best['matched_seconds']:.1f}" if best else "",
            r["error"]["type"] if r["error"] else "",
        )
    console.print(table)
    print_summary(summary, out)


@app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_command(ctx: typer.Context) -> None:
    """Measure end-to-end and per-stage throughput on a generated corpus, with the
    reference vPDQ at 1 s/hash in the same run when it is installed.

    Options are those of bench/bench_pipeline.py: --clips N --seconds S --size WxH
    --small-files N --device D --json OUT (vscan bench --help-bench lists them).
    """
    from vscan.bench import bench_pipeline

    args = list(ctx.args)
    if "--help-bench" in args:
        args = ["--help"]
    sys.argv = ["vscan bench", *args]
    bench_pipeline.main()


def main() -> None:
    app()


if __name__ == "__main__":
    main()

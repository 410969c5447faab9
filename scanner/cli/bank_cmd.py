"""``vscan hash``, ``vscan bank build|info|relabel`` and ``vscan models list|check``."""

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from vscan.cli.app import (
    DecoderOpt, DeviceOpt, EveryFrameOpt, FpsOpt, KeyframesOpt, ModelsDirOpt, app, bank_app, fail, models_app,
)  # fmt: skip
from vscan.errors import BankError, VscanError

__all__ = ["hash_command", "bank_build", "bank_info", "bank_relabel", "models_list", "models_check"]


def _dense_policy(every_frame: bool, fps: Optional[float], keyframes: bool):
    """The policy the options name; every frame (at most ``BANK_MAX_FPS`` a second) when none is given."""
    from vscan.bank.one_pass import BANK_MAX_FPS
    from vscan.decode import EveryFrame, parse_policy

    if not (every_frame or fps is not None or keyframes):
        return EveryFrame(max_fps=BANK_MAX_FPS)
    return parse_policy(every_frame=every_frame, fps=fps, keyframes=keyframes)


@app.command("hash")
def hash_command(
    file: Annotated[Path, typer.Argument(help="Video or picture (jpg, png, webp, bmp, gif, tif, heic, avif; a multi-page or animated one gives a line per page or frame).", metavar="FILE", show_default=False)],
    every_frame: EveryFrameOpt = False,
    fps: FpsOpt = None,
    keyframes: KeyframesOpt = False,
    decoder: DecoderOpt = "auto",
    device: DeviceOpt = "auto",
    as_scanned: Annotated[bool, typer.Option("--as-scanned", help="Hash each frame as vscan scan and bank build prepare it "
                          "(decoded straight to the scan's square frame): a scan of this file meets these hashes at distance 0. "
                          "Default: the frame at its own size, as the reference vPDQ hashes it.")] = False,
) -> None:
    """Print one vPDQ line per sampled frame: frame_number,quality,hex,timestamp_seconds.

    The output is the upstream vPDQ hash-file format. Default: every frame.
    """
    from vscan.hashing.media import hash_media
    from vscan.hashing.pdq import PDQHasher
    from vscan.hashing.vpdq import format_vpdq_line

    try:
        policy = _dense_policy(every_frame, fps, keyframes)
        hasher = PDQHasher(device=device)
        from vscan.frames.prepare import SCAN_FRAME_SIDE_PX

        result = hash_media(file, policy, hasher=hasher, backend=decoder, frame_side=SCAN_FRAME_SIDE_PX if as_scanned else None)
    except VscanError as exc:
        fail(exc)
    frames = result.frames
    for number, quality, hex64, ts in zip(frames.frame_numbers, frames.qualities, frames.hex(), frames.timestamps_seconds):
        sys.stdout.write(format_vpdq_line(int(number), int(quality), hex64, float(ts)) + "\n")


def _say_not_added(out: Path, info) -> None:
    """One line on stderr when reported files in the folders could not be added (vscan.bank.importers.NOT_ADDED)."""
    from vscan.bank.importers import NOT_ADDED

    missing = sorted(source for source, notes in info.import_notes.items() if any(w.startswith(NOT_ADDED) for w in notes))
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        typer.echo(f"vscan bank build: {len(missing)} file(s) could not be read and were not added ({shown}): "
                   f"'vscan bank info {out}' says why", err=True)  # fmt: skip


@bank_app.command("build")
def bank_build(
    out: Annotated[Path, typer.Argument(help="Bank file to write (SQLite).", metavar="BANK", show_default=False)],
    inputs: Annotated[list[Path], typer.Argument(help="Videos, images, folders and hash lists.", metavar="INPUT", show_default=False)],
    label: Annotated[Optional[str], typer.Option("--label", help="Label for every entry added.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace BANK if it exists (without it, an existing bank is an error; 'vscan bank import' adds to one).")] = False,
    every_frame: EveryFrameOpt = False,
    fps: FpsOpt = None,
    keyframes: KeyframesOpt = False,
    device: DeviceOpt = "auto",
    rows: Annotated[str, typer.Option("--rows", metavar="full|compact|lean|cover|sparse", help="Bank rows kept per video: full (every frame with all its extra rows, ~400-500 a video-second), compact (runs of near-identical frames, extra rows every 2 s: ~20-36 a video-second, fewer crops and letterboxed copies found), lean (compact with 3 crops and no turned rows, which the scan bridges by cropping and turning its own frames, and one centre window instead of the grid windows: ~8-18 a video-second), cover (frame rows for runs of frames within 26 bits of one of them, each standing for the time until the next; 2 crops and the strip every 2 s, one centre window a second: ~5 a video-second on slow footage, ~15 on fast real footage) or sparse (cover where runs last half a second or more, elsewhere the frames a scan sampling twice a second takes, cover's extra rows on detailed frames: ~4.5 a video-second on any footage; scans against it look again at a weak hit's ticks and take every frame of half a second of files up to 6 s, and find on bench_bank_build's held-out edits what full finds, but fewer split-screen and off-centre-cropped copies (AugLy's and re-framed copies of held-out sources: 0.85 against full's 0.95); a still (a frame grab, a cropped screenshot) of fast footage needs rows at its own frame, which only full keeps: held-out frame grabs 4/12 against full's 9/12; docs/banks.md).")] = "full",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", metavar="ADDRESS", help="Hash the media on this Ray cluster (one CPU a file; the files must be readable on every node).")] = None,
) -> None:
    """Build a bank from videos, images and hash lists.

    Hash lists: upstream vPDQ .txt files, plain PDQ hex lists, MD5/SHA-1/SHA-256
    lists and pytx CSV (signal_type,signal_str,...). Media is hashed densely
    (by default every frame, at most 60 a second; --every-frame: all) so sparse
    scans line up with it at any phase.
    Files in a folder that are neither media nor a hash list (a README.txt), and
    videos in a folder that cannot be read (cut off, damaged, encrypted), are
    skipped and listed by 'vscan bank info'. Resumable: a build that was
    interrupted or killed continues when the same command is run again (each
    source is added once). The bank's index for scans and lookups (BANK.vidx)
    is built beside it.
    """
    from vscan.bank.mapped import prepare
    from vscan.bank.store import build_bank

    from vscan.bank.hashers import ROW_PLANS

    remote = None
    try:
        if rows not in ROW_PLANS:
            raise BankError(f"Invalid --rows ({rows!r}). Supported values are {', '.join(ROW_PLANS)}")
        policy = _dense_policy(every_frame, fps, keyframes)
        key = build_resume_key(inputs, label=label, policy=policy, rows=rows)
        if ray_address:
            remote = _ray_hasher(ray_address, inputs, policy, device, ROW_PLANS[rows])
        else:  # the next sources hashed at once in threads, one per core (vscan.bank.hashers.LocalMediaHasher)
            remote = _local_hasher(inputs, policy, device, ROW_PLANS[rows])
        hash_media = remote
        with BuildProgress() as progress:
            info = build_bank(out, inputs, label=label, hash_media=hash_media, replace=replace,
                              resume_key=key, progress=progress.step, row_plan=rows)  # fmt: skip
        prepare(out)
        _say_not_added(out, info)
    except VscanError as exc:
        fail(exc)
    except KeyboardInterrupt:
        typer.echo("vscan: build interrupted; run the same command again to continue it", err=True)
        raise typer.Exit(130) from None
    finally:
        if remote is not None:
            remote.cancel()
        if ray_address:
            import ray

            ray.shutdown()  # leaves the cluster (it was joined, not started)
    _print_bank_info(info)


def _ray_hasher(address: str, inputs: list[Path], policy, device: str, rows):
    """The media of ``inputs`` hashed on the Ray cluster at ``address`` (vscan.bank.hashers.RayMediaHasher)."""
    from vscan.bank.hashers import RayMediaHasher
    from vscan.bank.importers import MEDIA_EXTENSIONS
    from vscan.bank.writer import walk_inputs
    from vscan.runtime.ray_start import start_ray

    start_ray(address)
    media = [path for path, _, _ in walk_inputs(inputs) if path.suffix.lower() in MEDIA_EXTENSIONS]
    return RayMediaHasher(media, policy, device, rows=rows)


def _local_hasher(inputs: list[Path], policy, device: str, rows):
    """The media of ``inputs`` hashed in this process, the next ones at once in threads (vscan.bank.hashers.LocalMediaHasher)."""
    from vscan.bank.hashers import LocalMediaHasher
    from vscan.bank.importers import MEDIA_EXTENSIONS
    from vscan.bank.writer import walk_inputs

    media = [path for path, _, _ in walk_inputs(inputs) if path.suffix.lower() in MEDIA_EXTENSIONS]
    return LocalMediaHasher(media, policy, device, rows=rows)


def build_resume_key(inputs: list[Path], *, label: Optional[str], policy, rows: str = "full") -> str:
    """What a resumed build must share with the interrupted one: the inputs, the label, the sampling, the rows, vscan's version."""
    import hashlib
    import json

    from vscan.version import __version__

    what = {"inputs": sorted(str(Path(p).resolve()) for p in inputs), "label": label, "policy": repr(policy), "vscan": __version__}
    if rows != "full":  # a full build's key is as before
        what["rows"] = rows
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


class BuildProgress:
    """A bank build's progress on stderr: a bar with the ETA on a terminal (by bytes of the
    sources, measured on this run's sources only), one line per source otherwise."""

    def __init__(self) -> None:
        import time

        self._clock = time.perf_counter
        self._start = self._clock()
        self._tty = sys.stderr.isatty()
        self._progress = None
        self._task = None
        self._first_done_bytes: int | None = None

    def __enter__(self) -> "BuildProgress":
        if self._tty:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("[bold]building"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[name]}"),
                                      TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=False)  # fmt: skip
            self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            if self._task is not None and exc[0] is None:
                self._progress.update(self._task, completed=self._progress.tasks[0].total)
            self._progress.__exit__(*exc)

    def eta_seconds(self, done_bytes: int, total_bytes: int) -> float | None:
        """Seconds left at this run's rate; None before a source of this run is done."""
        if self._first_done_bytes is None or done_bytes <= self._first_done_bytes:
            return None
        rate = (done_bytes - self._first_done_bytes) / max(self._clock() - self._start, 1e-9)
        return (total_bytes - done_bytes) / rate

    def step(self, step) -> None:
        if step.resumed:
            return
        if self._first_done_bytes is None:
            self._first_done_bytes = step.done_bytes
            self._start = self._clock()
        if self._progress is not None:
            if self._task is None:
                self._task = self._progress.add_task("build", total=step.total_bytes, name="")
            self._progress.update(self._task, completed=step.done_bytes, name=f"{step.done_sources + 1}/{step.total_sources} {step.rel}")
            return
        eta = self.eta_seconds(step.done_bytes, step.total_bytes)
        left = "" if eta is None else f", ETA {int(eta) // 60}m{int(eta) % 60:02d}s"
        print(f"vscan bank build: {step.done_sources + 1}/{step.total_sources} {step.rel} "
              f"({100 * step.done_bytes / max(step.total_bytes, 1):.0f}% of bytes{left})", file=sys.stderr, flush=True)  # fmt: skip


@bank_app.command("info")
def bank_info(bank: Annotated[Path, typer.Argument(help="Bank file.", metavar="BANK", show_default=False)]) -> None:
    """Describe a bank: entries, hashes, labels, checksum."""
    from vscan.bank.store import Bank

    try:
        with Bank(bank) as b:
            info = b.info()
    except VscanError as exc:
        fail(exc)
    _print_bank_info(info)


@bank_app.command("relabel")
def bank_relabel(
    bank: Annotated[Path, typer.Argument(help="Bank file.", metavar="BANK", show_default=False)],
    entries: Annotated[list[str], typer.Argument(help="Entry ids.", metavar="ENTRY", show_default=False)],
    label: Annotated[Optional[str], typer.Option("--label", help="The new label.")] = None,
    kind: Annotated[Optional[str], typer.Option("--kind", metavar="video|image|pdq_list", help="The new kind.")] = None,
    reason: Annotated[Optional[str], typer.Option("--reason", help="Why (kept in the bank's history).")] = None,
    who: Annotated[Optional[str], typer.Option("--who", help="Who decided (default: $VSCAN_USER, else the login name).")] = None,
) -> None:
    """Change the label (and/or kind) of entries, in place: the next scan, lookup and
    service report it, without a rebuild. A new bank generation is written (resume and
    --state rescan); the old values are kept in 'vscan bank history'. Prints the ids
    changed as JSON."""
    import json

    from vscan.bank.updates import relabel_entries

    try:
        changed = relabel_entries(bank, entries, label=label, kind=kind, reason=reason, who=who)
    except VscanError as exc:
        fail(exc)
    sys.stdout.write(json.dumps({"relabelled": changed, "already": [e for e in entries if e not in changed]}, sort_keys=True) + "\n")


def _info_value(value) -> str:
    """One bank-info value in words: an empty list is "none", a missing label "(no label)"."""
    if isinstance(value, dict):
        return ", ".join(f"{k if k not in (None, '') else '(no label)'}: {v}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return "none" if value in (None, "") else str(value)


def bank_info_lines(info) -> list[str]:
    """``vscan bank info``: plain "key  value" lines (digests whole, nothing wrapped mid-word)."""
    from dataclasses import asdict

    values = {k: v for k, v in asdict(info).items() if k != "path"}
    width = max(map(len, values), default=0)
    return [f"bank {info.path}", *(f"  {key:<{width}}  {_info_value(value)}" for key, value in values.items())]


def _print_bank_info(info) -> None:
    typer.echo("\n".join(bank_info_lines(info)))


@models_app.command("list")
def models_list(models_dir: ModelsDirOpt = None) -> None:
    """List installed models: the shipped models/ folder and the user folder."""
    from rich.console import Console
    from rich.table import Table

    from vscan.models.manifest import installed_manifests

    try:
        manifests = installed_manifests(models_dir)
    except VscanError as exc:
        fail(exc)
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
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Manifests (files or folders); default: every installed model.", metavar="MANIFEST", show_default=False)] = None,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Verify model files (SHA-256) and their ONNX input/output shapes and dtypes
    against the manifests. Exits 1 when any model fails."""
    from vscan.models.manifest import check_model, installed_manifests, load_manifest

    try:
        manifests = [load_manifest(p) for p in paths] if paths else installed_manifests(models_dir)
    except VscanError as exc:
        fail(exc)
    failed = 0
    for m in manifests:
        problems = check_model(m)
        failed += bool(problems)
        typer.echo(f"{m.name} ({m.kind}, {m.manifest_path}): " + ("ok" if not problems else "FAILED"))
        for problem in problems:
            typer.echo(f"  - {problem}")
    if failed:
        raise typer.Exit(1)

"""The configuration options of ``vscan scan`` and ``vscan config show``.

Every option here overrides one key of :class:`vscan.config.ScanConfig`
(the same key as in a ``--config`` TOML file); each defaults to None (or
off), and only the options the user actually gave override the file. The
effective configuration is ``ScanConfig.from_toml(--config).updated(given)``.

:func:`scan_config_options` adds these options to a command once: the
command receives the built ``config`` instead of the raw options.
"""

import inspect
import math
import os
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from vscan.cli.app import Decoder, Device, HashBackend, MatchMode, ModelsDirOpt, fail
from vscan.config import ScanConfig
from vscan.errors import ConfigError, VscanError

__all__ = ["scan_config_options", "build_config", "flag_overrides", "MIB"]

MIB = 2**20
_D = ScanConfig()  # the defaults, for the help text


def _opt(*names: str, help: str, metavar: Optional[str] = None) -> Any:
    return typer.Option(*names, help=help, metavar=metavar)


#: (parameter, annotation, default): the options, in --help order.
CONFIG_OPTIONS: list[tuple[str, Any, Any]] = [
    ("config_file", Annotated[Optional[Path], _opt("--config", metavar="FILE", help=(
        "TOML configuration: sections [sampling] [matching] [models] [inputs] [archives] [runtime] with "
        "ScanConfig's keys (vscan config show prints one). Options given on the command line override it."))], None),
    ("adaptive", Annotated[bool, _opt("--adaptive", help=(
        "Adaptive sampling, the default: keyframes first, then R frames/s (--fps R, default "
        f"{_D.sampling.fps:g}) only around stretches that matched."))], False),
    ("fps", Annotated[Optional[float], _opt("--fps", metavar="R", help=(
        "A fixed rate: R frames per second by timestamp, everywhere. With --adaptive: the rate around matches."))], None),
    ("every_frame", Annotated[bool, _opt("--every-frame", help="Hash every frame.")], False),
    ("keyframes", Annotated[bool, _opt("--keyframes", help="Hash keyframes only (fastest).")], False),
    ("first_pass_frames", Annotated[Optional[int], _opt("--first-pass-frames", metavar="N", help=(
        "Adaptive sampling: at least N frames per file in the first pass. Finding re-framed copies "
        "(vertical blur-fill re-posts, picture-in-picture, split screens) in short files needs 4 or more; "
        f"each extra frame costs decoding. [default: {_D.sampling.first_pass_frames}]"))], None),
    ("decoder", Annotated[Optional[Decoder], _opt("--decoder", help=(
        f"auto (decord, PyAV fallback), decord or pyav. [default: {_D.sampling.decoder}]"))], None),
    ("match_mode", Annotated[Optional[MatchMode], _opt("--match-mode", help=(
        "robust (dihedral variants, border and overlay removal, bank crops, time alignment) or vpdq "
        f"(the reference vPDQ rules alone). [default: {_D.matching.mode}]"))], None),
    ("device", Annotated[Optional[Device], _opt("--device", help=(
        f"auto (CUDA when available), cpu or cuda. [default: {_D.runtime.device}]"))], None),
    ("hash_backend", Annotated[Optional[HashBackend], _opt("--hash-backend", help=(
        f"PDQ on onnxruntime or torch (bit-identical). [default: {_D.runtime.hash_backend}]"))], None),
    ("batch_frames", Annotated[Optional[int], _opt("--batch-frames", metavar="N", help=(
        f"Frames per model call on the device, mixing files. [default: {_D.runtime.batch_frames}]"))], None),
    ("timeout_seconds", Annotated[Optional[float], _opt("--timeout-seconds", metavar="S", help=(
        f"Per-file decode time limit, seconds. [default: {_D.runtime.file_timeout_seconds:g}]"))], None),
    ("small_file_group", Annotated[Optional[int], _opt("--small-file-group", metavar="N", help=(
        "Decode up to N files under --small-file-mb in one worker task while every worker is busy; "
        f"1: one file per task. [default: {_D.runtime.small_file_group}]"))], None),
    ("small_file_mb", Annotated[Optional[float], _opt("--small-file-mb", metavar="MIB", help=(
        f"Size under which a file counts as small, MiB. [default: {_D.runtime.small_file_bytes / MIB:g}]"))], None),
    ("all_files", Annotated[bool, _opt("--all-files", help="In folders, try every file, not only media suffixes.")], False),
    ("follow_links", Annotated[bool, _opt("--follow-links", help=(
        "In folders, follow a symbolic link to a file outside the folder given (by default such a link gets an error "
        "record: on a mounted disk image an absolute link names this machine's files)."))], False),
    ("ignore", Annotated[Optional[list[str]], _opt("--ignore", metavar="LIST", help=(
        "Known-benign digest list (NSRL RDSv3 SQLite, or MD5/SHA-1/SHA-256 lines): a listed file is not decoded "
        "and gets a known-benign record; repeatable."))], None),
    ("allow", Annotated[Optional[list[str]], _opt("--allow", metavar="BANK", help=(
        "Allow bank (vscan bank build): a file that matches one of its entries has its bank matches suppressed "
        "(risk from them 0, reasons say why); repeatable."))], None),
    ("archive_member_max_mb", Annotated[Optional[float], _opt("--archive-member-max-mb", metavar="MIB", help=(
        "zip/tar: refuse a member larger than this uncompressed, MiB. "
        f"[default: {_D.archives.member_max_bytes / MIB:g}]"))], None),
    ("archive_max_ratio", Annotated[Optional[float], _opt("--archive-max-ratio", metavar="X", help=(
        "zip/tar: refuse a member whose uncompressed/compressed ratio exceeds this. "
        f"[default: {_D.archives.max_ratio:g}]"))], None),
    ("archive_total_max_mb", Annotated[Optional[float], _opt("--archive-total-max-mb", metavar="MIB", help=(
        "zip/tar: stop reading an archive past this much uncompressed content, MiB. "
        f"[default: {_D.archives.total_max_bytes / MIB:g}]"))], None),
    ("archive_max_entries", Annotated[Optional[int], _opt("--archive-max-entries", metavar="N", help=(
        "zip/tar: list at most this many entries of one archive; past it the archive gets an ArchiveError record. "
        f"[default: {_D.archives.max_entries}]"))], None),
    ("model", Annotated[Optional[list[str]], _opt("--model", "-m", metavar="NAME|MANIFEST", help=(
        "Run this classifier/detector too (installed name or manifest path); repeatable. "
        "Replaces [models] detectors of --config."))], None),
    ("triage", Annotated[bool, _opt("--triage", help=(
        "Triage unknown content with the shipped models: open_nsfw (NSFW classifier) and BlazeFace (faces) on "
        "frames at their own aspect ratio, at least one frame every few seconds, denser around high scores."))], False),
    ("triage_model", Annotated[Optional[list[str]], _opt("--triage-model", metavar="MANIFEST", help=(
        "With --triage, run this manifest too: e.g. a classifier fed face crops ([input] from = \"blazeface\") "
        "or a NudeNet plug-in (models/templates/nudenet.toml.template); repeatable."))], None),
    ("models_dir", ModelsDirOpt, None),
]  # fmt: skip
_NAMES = [name for name, _, _ in CONFIG_OPTIONS]


def _mib(flag: str, value: float) -> int:
    if not math.isfinite(value):
        raise ConfigError(f"Invalid {flag} ({value!r}). Supported values are finite numbers of MiB.")
    return int(value * MIB)


def flag_overrides(
    *,
    adaptive: bool = False,
    fps: Optional[float] = None,
    every_frame: bool = False,
    keyframes: bool = False,
    first_pass_frames: Optional[int] = None,
    decoder: Optional[str] = None,
    match_mode: Optional[str] = None,
    device: Optional[str] = None,
    hash_backend: Optional[str] = None,
    batch_frames: Optional[int] = None,
    timeout_seconds: Optional[float] = None,
    small_file_group: Optional[int] = None,
    small_file_mb: Optional[float] = None,
    all_files: bool = False,
    follow_links: bool = False,
    ignore: Optional[list[str]] = None,
    allow: Optional[list[str]] = None,
    archive_member_max_mb: Optional[float] = None,
    archive_max_ratio: Optional[float] = None,
    archive_total_max_mb: Optional[float] = None,
    archive_max_entries: Optional[int] = None,
    detectors: Optional[list[str]] = None,
    triage: bool = False,
    triage_model: Optional[list[str]] = None,
) -> dict[str, dict[str, Any]]:
    """The ScanConfig keys the given options set, as ``{section: {key: value}}``."""
    modes = [flag for flag, on in (("--adaptive", adaptive), ("--every-frame", every_frame), ("--keyframes", keyframes)) if on]
    if len(modes) > 1 or (fps is not None and (every_frame or keyframes)):
        given = modes + (["--fps"] if fps is not None else [])
        raise ConfigError(f"Invalid sampling options ({' with '.join(given)}). "
                          "Supported: one of --adaptive [--fps R], --fps R, --every-frame, --keyframes.")  # fmt: skip
    sampling: dict[str, Any] = {}
    policy = "every-frame" if every_frame else "keyframes" if keyframes else "adaptive" if adaptive else None
    if policy is None and fps is not None:
        policy = "fps"
    if policy is not None:
        sampling["policy"] = policy
    if fps is not None:
        sampling["fps"] = fps
    if first_pass_frames is not None:
        sampling["first_pass_frames"] = first_pass_frames
    runtime = {"device": device, "hash_backend": hash_backend, "batch_frames": batch_frames,
               "file_timeout_seconds": timeout_seconds, "small_file_group": small_file_group,
               "small_file_bytes": None if small_file_mb is None else _mib("--small-file-mb", small_file_mb)}  # fmt: skip
    archives = {
        "member_max_bytes": None if archive_member_max_mb is None else _mib("--archive-member-max-mb", archive_member_max_mb),
        "max_ratio": archive_max_ratio,
        "total_max_bytes": None if archive_total_max_mb is None else _mib("--archive-total-max-mb", archive_total_max_mb),
        "max_entries": archive_max_entries,
    }
    sections = {
        "sampling": {**sampling, "decoder": decoder},
        "matching": {"mode": match_mode, "ignore": [os.path.abspath(p) for p in ignore] if ignore else None,
                     "allow": [os.path.abspath(p) for p in allow] if allow else None},
        "models": {"detectors": detectors, "triage": True if triage or triage_model else None,
                   "triage_models": [os.path.abspath(p) for p in triage_model] if triage_model else None},
        "inputs": {"all_files": True if all_files else None, "follow_links": True if follow_links else None},
        "archives": archives,
        "runtime": runtime,
    }
    out = {name: {k: v for k, v in keys.items() if v is not None} for name, keys in sections.items()}
    return {name: keys for name, keys in out.items() if keys}


def _resolve_models(entries: list[str], models_dir: Optional[Path]) -> list[str]:
    """Installed names or manifest paths, as absolute manifest paths (each model file checked)."""
    from vscan.models.manifest import resolve_model

    out = []
    for entry in entries:
        manifest = resolve_model(entry, models_dir)
        manifest.verify()
        out.append(str(manifest.manifest_path.resolve()))
    return out


def build_config(config_file: Optional[Path] = None, *, model: Optional[list[str]] = None,
                 models_dir: Optional[Path] = None, **flags: Any) -> ScanConfig:  # fmt: skip
    """``--config`` (or the defaults) with the given options on top; detector
    names (from either) resolved to manifest paths."""
    base = ScanConfig.from_toml(config_file) if config_file is not None else ScanConfig()
    config = base.updated(flag_overrides(**flags, detectors=list(model) if model else None), source="command line")
    if config.models.detectors:
        resolved = _resolve_models(list(config.models.detectors), models_dir)
        config = config.updated({"models": {"detectors": resolved}}, source="command line")
    return config


def scan_config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``command`` the configuration options; it is called with
    ``config=`` the ScanConfig they build (a bad value exits 2 first)."""
    signature = inspect.signature(command, eval_str=True)
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values() if p.name != "config"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
             for name, annotation, default in CONFIG_OPTIONS]  # fmt: skip

    def wrapper(**kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in _NAMES}
        try:
            config = build_config(**given)
        except VscanError as exc:
            fail(exc)
        return command(config=config, **kwargs)

    parameters = own + added
    wrapper.__name__, wrapper.__qualname__ = command.__name__, command.__qualname__
    wrapper.__doc__, wrapper.__module__ = command.__doc__, command.__module__
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper

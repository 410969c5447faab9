"""Scan configuration: six sections, every field validated.

    ScanConfig(
        sampling=Sampling(policy="adaptive", fps=1.0),  # what is decoded
        matching=Matching(mode="robust"),               # how hashes match the bank
        models=Models(detectors=("nsfw/manifest.toml",)),
        inputs=Inputs(all_files=False),                 # which files are tried
        archives=Archives(member_max_bytes=1 << 30),    # zip/tar limits
        runtime=Runtime(device="auto", batch_frames=128),
    )

``sampling``, ``matching``, ``models`` and ``archives`` decide what a record says: they are part of the ``versions`` stamp
on every record (resume and ``--state`` rescan when they change). ``inputs`` and ``runtime`` only decide which files are
tried, and where and how fast the scan runs: changing them never rescans a file. The same names are the TOML keys of
``vscan scan --config FILE`` (``[sampling]``, ``[runtime]``, ...; see :meth:`ScanConfig.from_toml`).
"""

from __future__ import annotations

import functools
import json
import math
import tomllib
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from vscan.decode.adaptive import Adaptive
from vscan.decode.sampling import EveryFrame, FixedRate, Keyframes, SamplingPolicy
from vscan.errors import ConfigError

__all__ = ["ScanConfig", "Sampling", "Matching", "Models", "Inputs", "Archives", "Runtime", "RESULT_SECTIONS"]

#: Sections whose values change what a record says (the ``versions`` stamp).
RESULT_SECTIONS = ("sampling", "matching", "models", "archives")

PolicyName = Literal["adaptive", "fps", "every-frame", "keyframes"]


def _range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> dict[str, Any]:
    return {"min": lo, "max": hi, "lo_open": lo_open}


class _Section:
    """Validation shared by the sections: types, Literal choices, ranges."""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            _check_field(type(self).__name__.lower(), f, hints[f.name], getattr(self, f.name))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:  # once per section: a decode task replace()s its config (validated again) often
    return typing.get_type_hints(cls)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _check_field(section: str, f, hint: Any, value: Any) -> None:
    where = f"{section}.{f.name}"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    optional = origin in (typing.Union, __import__("types").UnionType) and type(None) in args
    if optional:
        if value is None:
            return
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"Invalid {where} ({value!r}). Supported values are {', '.join(map(repr, args))}.")
        return
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"Invalid {where} ({value!r}). Supported values are true, false.")
        return
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"Invalid {where} ({value!r}). Supported values are whole numbers.")
    if hint is float and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
        raise ConfigError(f"Invalid {where} ({value!r}). Supported values are finite numbers.")
    if origin is tuple:
        if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"Invalid {where} ({value!r}). Supported values are lists of strings.")
        return
    bounds = f.metadata.get("range")
    if bounds and hint in (int, float):
        lo, hi = bounds["min"], bounds["max"]
        if (lo is not None and (value < lo or (bounds["lo_open"] and value == lo))) or (hi is not None and value > hi):
            low = "" if lo is None else (f"> {lo}" if bounds["lo_open"] else f">= {lo}")
            high = "" if hi is None else f"<= {hi}"
            raise ConfigError(f"Invalid {where} ({value!r}). Supported values are {' and '.join(x for x in (low, high) if x)}.")


def _num(default: Any, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Any:
    return field(default=default, metadata={"range": _range(lo, hi, lo_open=lo_open)})


@dataclass(frozen=True)
class Sampling(_Section):
    """Which frames are decoded. ``policy``: "adaptive" (keyframes first, then ``fps`` frames/s around anything that
    matched), "fps" (``fps`` frames/s everywhere), "every-frame" or "keyframes"; or a
    :class:`~vscan.decode.sampling.SamplingPolicy` object."""

    policy: Any = "adaptive"
    fps: float = _num(1.0, 0, lo_open=True)
    decoder: Literal["auto", "decord", "pyav"] = "auto"
    #: Frames are decoded straight to ``frame_size`` x ``frame_size``: PDQ maps any frame to 64x64, and one size lets batches mix files.
    frame_size: int = _num(256, 16)
    #: frame_size when the bank was built from hash lists alone (no media): 320 meets the reference vPDQ ~15 bits closer than 256.
    list_frame_size: int = _num(320, 16)
    max_frames_per_file: int = _num(4096, 1)
    #: A scan skips the non-reference frames it does not want (PyAV skip_frame=NONREF, per packet in H.264, HEVC, VP9, VP8:
    #: each wanted frame itself). False lets AV1 passes take the next reference frame for a skipped wanted one (frames
    #: over 4 apart); True decodes AV1 whole. vscan hash and bank builds decode every frame they name as coded.
    exact_frames: bool = False
    #: Adaptive sampling: at least this many frames per file in the first
    #: pass (evenly spread where the keyframes are fewer, as in short files).
    #: Region search (re-framed uploads: blur-fill vertical re-posts,
    #: picture-in-picture, split screens, translucent boxes) needs 4 or more;
    #: each frame added costs about half a GOP of decoding.
    first_pass_frames: int = _num(2, 1)
    #: Adaptive sampling: a file whose first-pass frames share straight edges
    #: that stay put (an inset's sides, a split screen's seam, caption bands)
    #: is decoded again with 6 first-pass frames, so that its region is
    #: searched (vscan.runtime.region_probe). False: never.
    region_probe: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        policy = self.policy
        if isinstance(policy, Adaptive) and policy.min_frames < self.first_pass_frames:
            object.__setattr__(self, "policy", replace(policy, min_frames=self.first_pass_frames))
        if isinstance(policy, str):
            builders = {"adaptive": lambda: Adaptive(dense_fps=self.fps, min_frames=self.first_pass_frames), "fps": lambda: FixedRate(self.fps),
                        "every-frame": EveryFrame, "keyframes": Keyframes}  # fmt: skip
            if policy not in builders:
                raise ConfigError(f"Invalid sampling.policy ({policy!r}). Supported values are {', '.join(map(repr, builders))}.")
            object.__setattr__(self, "policy", builders[policy]())
        elif not isinstance(policy, SamplingPolicy):
            raise ConfigError(f"Invalid sampling.policy ({policy!r}). Supported values are a policy name or a SamplingPolicy.")
        rate = getattr(self.policy, "dense_fps", getattr(self.policy, "fps", None))
        if rate is not None:
            object.__setattr__(self, "fps", float(rate))
        if isinstance(self.policy, Adaptive):
            object.__setattr__(self, "first_pass_frames", self.policy.min_frames)

    @property
    def policy_name(self) -> str:
        return {Adaptive: "adaptive", FixedRate: "fps", EveryFrame: "every-frame", Keyframes: "keyframes"}.get(
            type(self.policy), self.policy.describe()
        )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["policy"] = self.policy_name
        if isinstance(self.policy, Adaptive) and self.policy != Adaptive(dense_fps=self.fps, min_frames=self.first_pass_frames):
            out["policy"] = self.policy.describe()  # tuned beyond what the TOML keys say: recorded as text
        return out


@dataclass(frozen=True)
class Matching(_Section):
    """How query hashes match the bank. ``mode``: "robust" (all 8 dihedral
    variants, border and overlay removal, bank crops, time alignment) or
    "vpdq" (the reference vPDQ rules alone)."""

    mode: Literal["robust", "vpdq"] = "robust"
    min_quality: int = _num(50, 0, 100)
    distance_threshold: int = _num(31, 0, 256)
    #: Robust mode: a file that matches nothing as it is gets searched for the
    #: bank's grid windows (a crop keeping 70% of each side, off-centre:
    #: vscan.runtime.offcentre). False: never.
    offcentre: bool = True
    #: Known-benign digest lists (NSRL RDSv3 SQLite, or plain MD5/SHA-1/SHA-256
    #: lists: vscan.inputs.known_benign): a listed file is digested, never
    #: decoded, and gets a ``known-benign`` record, unless the bank knows one
    #: of its digests (then it is matched).
    ignore: tuple[str, ...] = ()
    #: Allow banks (vscan bank build): a file matching one of their entries has
    #: its bank matches suppressed, and its reasons say so (vscan.verdict.allow).
    allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class Models(_Section):
    """Classifier/detector manifests (paths) run on the same decoded frames.

    ``triage`` runs the shipped open_nsfw and blazeface models (and ``triage_models``:
    more manifests, e.g. fed the face detector's crops) on frames kept at their aspect
    ratio (longest side ``triage_max_side``), samples at least one frame
    every ``triage_every_seconds`` and ``triage_min_frames`` per file, and asks
    a second pass around frames scoring >= ``triage_refine_threshold``
    (vscan.detect.triage)."""

    detectors: tuple[str, ...] = ()
    triage: bool = False
    triage_models: tuple[str, ...] = ()
    triage_max_side: int = _num(512, 64)
    triage_every_seconds: float = _num(3.0, 0, lo_open=True)
    triage_min_frames: int = _num(8, 1)
    triage_refine_threshold: float = _num(0.5, 0, 1)


@dataclass(frozen=True)
class Inputs(_Section):
    """Which files are tried (in folders, media suffixes unless ``all_files``; links out of the inputs: ``follow_links``)."""

    all_files: bool = False
    follow_links: bool = False


@dataclass(frozen=True)
class Archives(_Section):
    """zip/tar members are refused, never inflated, past ``member_max_bytes``, an uncompressed/compressed ratio of
    ``max_ratio``, or past ``total_max_bytes`` of content in one archive; an archive is listed up to ``max_entries``
    entries (the rest gets an ArchiveError record)."""

    member_max_bytes: int = _num(1 << 30, 1)
    max_ratio: float = _num(100.0, 1)
    total_max_bytes: int = _num(16 << 30, 1)
    max_entries: int = _num(100_000, 1)


@dataclass(frozen=True)
class Runtime(_Section):
    """Where and how fast: none of these changes what a record says."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: "onnx" (models/pdq/pdq.onnx through onnxruntime) or "torch" (vscan.kernels.pdq); bit-identical.
    hash_backend: Literal["onnx", "torch"] = "onnx"
    #: Frames the driver gathers (across files) before a model call.
    batch_frames: int = _num(128, 1)
    #: Frames per hash-model run inside a call; None: on CPU 4 with one model
    #: thread (0.28 ms a frame in runs of 4, 0.40 in runs of 32: the frames stay
    #: in the core's cache), else 32; ``batch_frames`` on CUDA.
    hash_batch_frames: int | None = _num(None, 1)
    #: Decode tasks in flight; None: decode slots + 2.
    decode_inflight: int | None = _num(None, 1)
    model_inflight: int = _num(2, 1)
    file_timeout_seconds: float = _num(600.0, 0, lo_open=True)
    #: Files under ``small_file_bytes`` are decoded up to ``small_file_group``
    #: to one Ray task while every decode slot is busy.
    small_file_bytes: int = _num(2 << 20, 0)
    small_file_group: int = _num(8, 1)
    #: Resume tries a file again whose last record is a transient failure
    #: (timeout, decoder crash, model error) at most this many times.
    transient_retries: int = _num(2, 0)
    #: True: model actors get the whole bank loaded into memory, shipped through
    #: Ray's object store. False (default): they open its memory-mapped index
    #: from the bank's path (vscan.bank.mapped), where every node can read it.
    bank_in_memory: bool = False
    #: True: model actors hand each file's frame hashes back to the driver, which
    #: keeps them in a hash store (``vscan scan --hash-store``, vscan.output.hash_store).
    keep_frame_hashes: bool = False
    #: A scan of at most this many plain files (no archive, no object storage), together at most ``embedded_max_bytes``, started
    #: without a Ray address, runs without Ray: in the scanning process and its decode processes (vscan.runtime.embedded), the same
    #: records sooner, because starting Ray costs more than such files take (bench_startup --embedded-sweep on 2 cores at load
    #: 1.5-1.7, 5 s clips, whole scan without Ray / on Ray: 0.62x at 256 files, 0.69x at 512). 0: always Ray.
    embedded_max_files: int = _num(512, 0)
    #: Bytes of input, all files together, up to which a scan of ``embedded_max_files`` files runs without Ray.
    embedded_max_bytes: int = _num(2 << 30, 0)
    #: True: no Ray address, CPU, <= 7 CPUs: the model loads here while Ray starts, takes calls until an actor answers (runtime.local_model).
    local_model_at_start: bool = False
    #: Objects (s3://, gs://, az://): "ranges" decodes a video where it lies by range requests (a keyframe pass
    #: reads ~0.3 of its bytes) and its record has no content digests; "whole" fetches it and digests it.
    #: "auto": ranges, but whole when a digest decides something: a bank or --allow bank holding digest-only
    #: entries (an MD5/SHA list), --state, --ignore (vscan.inputs.ranged). The VSCAN_OBJECT_READS variable overrides it.
    object_reads: Literal["auto", "ranges", "whole"] = "auto"


_SECTIONS: dict[str, type] = {
    "sampling": Sampling, "matching": Matching, "models": Models,
    "inputs": Inputs, "archives": Archives, "runtime": Runtime,
}  # fmt: skip


@dataclass(frozen=True)
class ScanConfig:
    """Everything a scan needs besides its inputs, bank and sink (module docstring)."""

    sampling: Sampling = field(default_factory=Sampling)
    matching: Matching = field(default_factory=Matching)
    models: Models = field(default_factory=Models)
    inputs: Inputs = field(default_factory=Inputs)
    archives: Archives = field(default_factory=Archives)
    runtime: Runtime = field(default_factory=Runtime)

    def __post_init__(self) -> None:
        for name, cls in _SECTIONS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                object.__setattr__(self, name, _section_from_dict(name, value, "<dict>"))
            elif not isinstance(value, cls):
                raise ConfigError(f"Invalid {name} section ({value!r}). Supported values are a {cls.__name__} or a dict.")

    # -- conversions ------------------------------------------------------

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Every section as plain values (what ``vscan config show`` prints)."""
        return {name: getattr(self, name).to_dict() for name in _SECTIONS}

    def result_dict(self) -> dict[str, dict[str, Any]]:
        """The sections that change what a record says (the versions stamp)."""
        return {name: getattr(self, name).to_dict() for name in RESULT_SECTIONS}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> "ScanConfig":
        """From ``{"sampling": {...}, "runtime": {...}}``; unknown sections or keys are errors."""
        return cls().updated(data, source=source)

    def updated(self, data: dict[str, Any], *, source: str = "<dict>") -> "ScanConfig":
        """A copy with the sections' keys in ``data`` replaced (later wins: file, then flags)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: Invalid configuration ({data!r}). Supported values are tables of sections.")
        changes = {}
        for name, values in data.items():
            if name not in _SECTIONS:
                raise ConfigError(f"{source}: unknown section [{name}]. Supported sections are {', '.join(_SECTIONS)}.")
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{name}] must be a table of keys, got {values!r}.")
            merged = {**_raw(getattr(self, name)), **values}
            changes[name] = _section_from_dict(name, merged, source)
        return replace(self, **changes)

    @classmethod
    def from_toml(cls, path: str | Path) -> "ScanConfig":
        """Read a TOML file with any of the six sections (module docstring)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read configuration: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        return cls.from_dict(data, source=str(path))

    def to_toml(self) -> str:
        """The configuration as TOML that :meth:`from_toml` reads back."""
        lines: list[str] = []
        for name, values in self.to_dict().items():
            lines.append(f"[{name}]")
            for key, value in values.items():
                if value is None:
                    lines.append(f"# {key} = (automatic)")
                else:
                    lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)


def _raw(section: Any) -> dict[str, Any]:
    out = {f.name: getattr(section, f.name) for f in fields(section)}
    if isinstance(section, Sampling):
        out["policy"] = section.policy  # keep a tuned policy object through an update of other keys
    return out


def _section_from_dict(name: str, values: dict[str, Any], source: str) -> Any:
    cls = _SECTIONS[name]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key {name}.{unknown[0]}. Supported keys in [{name}] are {', '.join(sorted(known))}.")
    values = dict(values)
    policy = values.get("policy")
    if cls is Sampling and isinstance(policy, Adaptive) and values.get("first_pass_frames", policy.min_frames) != policy.min_frames:
        # A new first_pass_frames for an adaptive policy carried over from an earlier layer.
        values["policy"] = policy = replace(policy, min_frames=values["first_pass_frames"])
    if cls is Sampling and isinstance(policy, SamplingPolicy) and "fps" in values:
        # A new rate for a policy object carried over from an earlier layer:
        # rebuilt by name, so that Sampling checks the rate first.
        rate = getattr(policy, "dense_fps", getattr(policy, "fps", None))
        if rate is not None and values["fps"] != rate:
            tuned = isinstance(policy, Adaptive) and policy != Adaptive(dense_fps=rate, min_frames=policy.min_frames)
            values["policy"] = "fps" if isinstance(policy, FixedRate) else "adaptive"
            if tuned:
                values["policy"] = replace(policy, dense_fps=Sampling(policy="adaptive", fps=values["fps"]).fps)
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(value)
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))

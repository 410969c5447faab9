"""The configuration reference (docs/configuration.md), generated from :class:`vscan.config.ScanConfig`.

``vscan config docs`` prints it; ``tests/test_docs.py`` checks that the
committed page is what this prints, so a key added to ScanConfig without a
description here, or a page not regenerated, fails the tests.

Descriptions come from the ``#:`` comment above each field in
``vscan/config.py`` and, for fields without one, from :data:`DESCRIPTIONS`.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from typing import Any

from vscan import config as config_module
from vscan.config import RESULT_SECTIONS, ScanConfig

__all__ = ["DESCRIPTIONS", "FLAGS", "field_descriptions", "config_reference"]

#: Fields whose meaning has no ``#:`` comment in vscan/config.py.
DESCRIPTIONS: dict[str, str] = {
    "sampling.policy": "Which frames are decoded: `adaptive` (keyframes first, then `fps` frames/s around "
                       "anything that matched), `fps` (`fps` frames/s everywhere, by timestamp), `every-frame` "
                       "or `keyframes`.",
    "sampling.fps": "Frames per second: everywhere under `fps`, around matched stretches under `adaptive`.",
    "sampling.decoder": "`auto` (decord for dense access, PyAV for sparse, each falling back to the other), "
                        "`decord` or `pyav`.",
    "sampling.max_frames_per_file": "Frame budget per file, spread over the whole file; a file that hits it "
                                    "has `truncated` in its record.",
    "matching.mode": "`robust` (8 dihedral variants, border and overlay removal, bank crops, time alignment, "
                     "region and off-centre search) or `vpdq` (the reference vPDQ rules alone).",
    "matching.min_quality": "Frames below this PDQ quality (0-100) are left out on both sides, as in vPDQ.",
    "matching.distance_threshold": "A frame matches a bank frame at Hamming distance <= this (of 256 bits).",
    "models.detectors": "Classifier/detector manifests (paths; `--model` takes installed names too) run on the "
                        "same decoded frames.",
    "models.triage": "Run the shipped open_nsfw (NSFW) and BlazeFace (faces) models on every file (`--triage`).",
    "models.triage_models": "More manifests run with triage, e.g. a deepfake classifier fed BlazeFace's face "
                            "crops (`--triage-model`).",
    "models.triage_max_side": "Triage models see frames at their own aspect ratio, longest side this many pixels.",
    "models.triage_every_seconds": "With triage the first pass takes at least one frame every this many seconds.",
    "models.triage_min_frames": "With triage the first pass takes at least this many frames per file.",
    "models.triage_refine_threshold": "A triage score at or above this asks for a denser second pass around it.",
    "inputs.all_files": "In folders, try every file, not only media suffixes.",
    "inputs.follow_links": "In folders, follow a symbolic link to a file outside the folder given (on a mounted "
                           "disk image an absolute link names this machine's files: by default it gets an error record).",
    "archives.member_max_bytes": "A zip/tar member (or a file inside a disk image) larger than this is refused, "
                                 "never read (`ArchiveMemberError`).",
    "archives.max_ratio": "A member whose uncompressed/compressed ratio passes this is refused (members under "
                          "1 MiB are exempt).",
    "archives.total_max_bytes": "Reading one archive or disk image stops past this much content.",
    "archives.max_entries": "An archive is listed up to this many entries; past it the archive gets an "
                            "`ArchiveError` record.",
    "runtime.device": "`auto` (CUDA when available), `cpu` or `cuda`.",
    "runtime.small_file_group": "At most this many small files (under `small_file_bytes`) share one decode task; "
                                "1: one file per task.",
    "runtime.model_inflight": "Model calls in flight per model actor.",
    "runtime.file_timeout_seconds": "Per-file decode time limit; past it the file gets a `DecodeTimeoutError` record.",
}

#: The `vscan scan` option that sets a key, where one does.
FLAGS: dict[str, str] = {
    "sampling.policy": "`--adaptive`, `--fps R`, `--every-frame`, `--keyframes`",
    "sampling.fps": "`--fps R`",
    "sampling.decoder": "`--decoder`",
    "sampling.first_pass_frames": "`--first-pass-frames N`",
    "matching.mode": "`--match-mode`",
    "matching.ignore": "`--ignore LIST` (repeatable)",
    "models.detectors": "`--model NAME|MANIFEST` (repeatable)",
    "models.triage": "`--triage`",
    "models.triage_models": "`--triage-model MANIFEST` (repeatable)",
    "inputs.all_files": "`--all-files`",
    "inputs.follow_links": "`--follow-links`",
    "archives.member_max_bytes": "`--archive-member-max-mb MIB`",
    "archives.max_ratio": "`--archive-max-ratio X`",
    "archives.total_max_bytes": "`--archive-total-max-mb MIB`",
    "archives.max_entries": "`--archive-max-entries N`",
    "runtime.device": "`--device`",
    "runtime.hash_backend": "`--hash-backend`",
    "runtime.batch_frames": "`--batch-frames N`",
    "runtime.file_timeout_seconds": "`--timeout-seconds S`",
    "runtime.small_file_bytes": "`--small-file-mb MIB`",
    "runtime.small_file_group": "`--small-file-group N`",
}

def _comment_descriptions(cls: type) -> dict[str, str]:
    """The ``#:`` comment block right above each field of a section class."""
    out: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = re.match(r"(\w+)\s*:", stripped)
        if match and pending:
            out[match.group(1)] = " ".join(pending)
        pending = []
    return out


def field_descriptions() -> dict[str, str]:
    """``{"section.key": description}`` for every ScanConfig key (empty where none is known)."""
    out: dict[str, str] = {}
    for section in ScanConfig().to_dict():
        cls = getattr(config_module, type(getattr(ScanConfig(), section)).__name__)
        comments = _comment_descriptions(cls)
        for f in fields(cls):
            key = f"{section}.{f.name}"
            out[key] = DESCRIPTIONS.get(key) or comments.get(f.name, "")
    return out


def _default(value: Any) -> str:
    if value is None:
        return "automatic"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _markdown(text: str) -> str:
    """Docstring markup as Markdown: ``x`` -> `x`, :class:`~a.b.C` -> `C`."""
    text = re.sub(r":\w+:`~?([\w.]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    return text.replace("``", "`")


def _cell(text: str) -> str:
    return _markdown(text).replace("|", "\\|")


def config_reference() -> str:
    """docs/configuration.md: every section and key, its default, option and meaning."""
    defaults = ScanConfig().to_dict()
    described = field_descriptions()
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `vscan config docs > docs/configuration.md` from vscan.config.ScanConfig;",
        "     tests/test_docs.py fails when this page and the code disagree. Edit the code, not this page. -->",
        "",
        "`vscan scan --config FILE` reads a TOML file with these sections and keys; options given on the",
        "command line win over the file. `vscan config show` prints the effective configuration (every key",
        "with its value), which `--config` reads back. From Python the same names build a `vscan.ScanConfig`:",
        "",
        "```python",
        "import vscan",
        "",
        "config = vscan.ScanConfig(matching=vscan.Matching(mode=\"vpdq\"),",
        "                          runtime=vscan.Runtime(device=\"cpu\"))",
        "config = vscan.ScanConfig.from_dict({\"sampling\": {\"policy\": \"fps\", \"fps\": 2.0}})",
        "```",
        "",
        "Every value is checked when the configuration is built (types, ranges, choices); a bad one is a",
        "`ConfigError` (exit code 2 on the command line) naming the key and the valid values.",
        "",
        "Sections " + ", ".join(f"`[{s}]`" for s in RESULT_SECTIONS) + " change what a record says: they are part",
        "of the `versions` stamp on every record, so changing them makes resume and `--state` scan files",
        "again. `[inputs]` and `[runtime]` only pick which files are tried and where and how fast the scan",
        "runs; changing them never rescans a file.",
        "",
    ]
    for section, values in defaults.items():
        cls = type(getattr(ScanConfig(), section))
        stamp = "in the `versions` stamp" if section in RESULT_SECTIONS else "not in the `versions` stamp"
        doc = " ".join((cls.__doc__ or "").split())
        lines += [f"## [{section}]", "", f"`vscan.{cls.__name__}`, {stamp}. {_markdown(doc)}", "",
                  "| key | default | option | meaning |", "|---|---|---|---|"]
        for key, value in values.items():
            name = f"{section}.{key}"
            lines.append(f"| `{key}` | `{_cell(_default(value))}` | {_cell(FLAGS.get(name, ''))} | {_cell(described[name])} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(config_reference(), end="")

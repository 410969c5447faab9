"""Progress bar (TTY only) and the end-of-scan summary table."""

from __future__ import annotations

import os
import re
import shlex
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from rich.console import Console

__all__ = ["ScanProgress", "ScanOutcomes", "print_summary", "summary_lines", "counts_line", "best_match",
           "interrupted_message", "console_error"]


#: The bar's words before the first record arrives, by what the scan waits for.
WAITING_FOR_RAY = "checking inputs and output, starting Ray"
WAITING_FOR_FIRST = "Ray up: starting the model stage, decoding the first files"
WAITING_FOR_MODELS = "Ray up: loading the models, decoding the first files"
WAITING_FOR_FILES = "models loaded: decoding and hashing the first files"
#: A small scan runs without Ray (vscan.runtime.embedded): the models load in the command itself.
WAITING_HERE_FOR_MODELS = "a small scan, no Ray needed: loading the models, decoding the first files"
WAITING_HERE_FOR_FILES = "a small scan, no Ray needed: models loaded, decoding and hashing the first files"
#: Kept for callers of the first release of the bar.
WAITING = WAITING_FOR_RAY


def waiting_for() -> str:
    """What a scan without a record yet is waiting for, seen from this process:
    Ray not started yet; Ray up (the model stage and the first decodes); the
    models loading; the models loaded and the first files on their way. A
    small scan without Ray says so (the phases vscan.runtime.embedded sets)."""
    starting = sys.modules.get("vscan.runtime.ray_start")  # the model pool, or the embedded scan, says how far it got
    phase = getattr(starting, "startup_phase", lambda: None)()
    if phase in ("models here", "first files here"):
        return WAITING_HERE_FOR_MODELS if phase == "models here" else WAITING_HERE_FOR_FILES
    ray = sys.modules.get("ray")  # never imported here: a run that needs no Ray never loads it
    initialized = getattr(ray, "is_initialized", None)  # None while the scan's thread is still importing it
    try:
        up = initialized is not None and initialized()
    except Exception:  # noqa: BLE001 - Ray half set up: still starting
        up = False
    if not up:
        return WAITING_FOR_RAY
    return {"models": WAITING_FOR_MODELS, "first files": WAITING_FOR_FILES}.get(phase, WAITING_FOR_FIRST)


class ScanProgress:
    """Files done of the total, video-seconds per second and ETA, on a TTY;
    silent otherwise. The total comes from :meth:`count_in_background`: the
    bar shows done/total and an ETA as soon as discovery has counted the
    inputs, and records flow from the start meanwhile."""

    def __init__(self, *, enabled: bool = True, total: int | None = None) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.total = total
        self._progress = None
        self._task = None
        self._video_seconds = 0.0
        self._records = 0
        self._start = time.perf_counter()

    def __enter__(self) -> "ScanProgress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            # Until the first record: what the scan is waiting for (Ray, the model stage, the first files).
            self._task = self._progress.add_task(waiting_for(), total=self.total, rate="")
            threading.Thread(target=self._follow_start, name="vscan-progress-start", daemon=True).start()
        return self

    def _follow_start(self) -> None:
        """Until the first record, keep the bar's words on what the scan is waiting for."""
        while not self._records:
            progress = self._progress
            if progress is None:
                return
            progress.update(self._task, description=waiting_for())
            time.sleep(0.25)

    def count_in_background(self, paths: Iterable, config) -> None:
        """Count the scan's input files (vscan.inputs.discover, streaming) in
        a daemon thread and set the total when done; never delays a record."""
        if not self.enabled:
            return

        def count() -> None:
            from vscan.inputs.archive_reader import ArchiveLimits
            from vscan.inputs.archives import is_container
            from vscan.inputs.discover import discover

            limits = ArchiveLimits.from_config(config.archives)
            # Containers (zip/tar, disk images) are not listed here: that would
            # decompress them in this process, which the scan leaves to workers.
            # Their member count is unknown, so a scan with any gets no total.
            count = 0
            for path in discover(paths, all_files=config.inputs.all_files, archive_limits=limits, list_containers=False,
                                          follow_links=config.inputs.follow_links):
                if is_container(path):
                    return
                count += 1
            self.set_total(count)

        threading.Thread(target=count, name="vscan-count-inputs", daemon=True).start()

    def set_total(self, total: int) -> None:
        self.total = total
        if self._progress is not None:
            self._progress.update(self._task, total=total)

    def update(self, record: dict[str, Any]) -> None:
        self._records += 1
        self._video_seconds += record.get("duration_seconds") or 0.0
        if self._progress is not None:
            elapsed = max(time.perf_counter() - self._start, 1e-9)
            self._progress.update(self._task, advance=1, description="scanning",
                                  rate=f"{self._video_seconds / elapsed:.1f} video-s/s")

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            progress, self._progress = self._progress, None  # the start-up thread stops with it
            progress.stop()


def interrupted_message(saved: int, out: str) -> str:
    """What Ctrl-C leaves: the records already durable, and how to go on."""
    return (f"Interrupted: {saved} record{'s' if saved != 1 else ''} from this run {'are' if saved != 1 else 'is'} saved in {out}. "
            "Run the same command again to resume: files already recorded are skipped.")  # fmt: skip


def _shown_path(path: str) -> str:
    """A path as the user typed it where possible: relative to the working folder when under it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel.startswith("..") else rel


def _where(record: dict[str, Any], match: dict[str, Any]) -> str:
    """Where in the file a match is: its span and matched seconds; a still has no time."""
    if match.get("kind") == "exact":
        return "the whole file (exact digest)"
    part = ", read in part" if record.get("partial") else ""  # cut off or damaged: the record's partial says how
    if (record.get("media") or {}).get("kind") == "image":
        return "still image" + part
    from vscan.output.report import matched_stretch  # the report shades the same stretch

    stretch = matched_stretch(match, record.get("duration_seconds"))
    spans = f"{stretch[0]:.1f}-{stretch[1]:.1f} s" if stretch else "?"
    return f"{spans} of {record.get('duration_seconds') or 0:.1f} s, {match.get('matched_seconds', 0):.1f} s matched{part}"


def best_match(record: dict[str, Any]) -> dict[str, Any] | None:
    """The match that decides: exact first, then the one covering most of the file."""
    counted = [m for m in record.get("matches") or [] if m.get("is_match")]
    if not counted:
        return None
    return max(counted, key=lambda m: (m.get("kind") == "exact", m.get("query_pct") or 0, m.get("matched_seconds") or 0))


@dataclass(frozen=True)
class FileLine:
    risk: float
    path: str
    what: str
    where: str


class ScanOutcomes:
    """What the end of a scan lists: the files that matched (or that a model
    flagged), highest risk first, and the files that could not be scanned.
    Keeps at most ``keep`` of each (the report has them all)."""

    FLAG_RISK = 0.5  # a detector/triage risk at least this is listed even without a bank match

    def __init__(self, keep: int = 20, *, show_unmatched: bool = False) -> None:
        self.keep = keep
        self.show_unmatched = show_unmatched
        self.matched: list[FileLine] = []
        self.errors: list[FileLine] = []
        self.matched_total = 0
        self.errors_total = 0
        self.unmatched: list[str] = []
        self.seen = 0

    def add(self, record: dict[str, Any]) -> None:
        self.seen += 1
        path = _shown_path(record["path"])
        if record.get("status") != "ok":
            self.errors_total += 1
            if len(self.errors) < self.keep:
                error = record.get("error") or {}
                message = console_error(_first_line(error.get("message", "")), record["path"])
                shown = message if len(message) <= 120 else message[:117].rstrip() + "..."  # cut: says so
                self.errors.append(FileLine(0.0, path, error.get("type", "error"), shown))
            return
        match = best_match(record)
        risk = record.get("risk") or 0.0
        if match is not None:
            line = FileLine(risk, path, f"{match['bank_entry_id']}" + (f" ({match['label']})" if match.get("label") else ""),
                            _where(record, match))  # fmt: skip
        elif risk >= self.FLAG_RISK:
            line = FileLine(risk, path, "; ".join(record.get("reasons") or [])[:80], "")
        else:
            if len(self.unmatched) < self.keep:
                self.unmatched.append(path)
            return
        self.matched_total += 1
        self.matched.append(line)
        self.matched.sort(key=lambda x: (-x.risk, x.path))
        del self.matched[self.keep:]

    def lines(self) -> list[str]:
        out: list[str] = []
        if not self.seen:
            return out  # no record in this run: the counts say why
        if self.matched:
            more = f" ({self.keep} highest shown)" if self.matched_total > len(self.matched) else ""
            out.append(f"Matched or flagged: {self.matched_total} file{'s' if self.matched_total != 1 else ''}{more}, highest risk first")
            width = min(max(len(x.path) for x in self.matched), 48)
            for x in self.matched:
                out.append(f"  {x.risk:4.2f}  {x.path:<{width}}  {x.what}" + (f"  {x.where}" if x.where else ""))
        else:
            out.append("Matched or flagged: none")
        if self.show_unmatched and self.unmatched:
            out.append(f"Not matched: {', '.join(sorted(self.unmatched))}")  # by path: not in the order the files finished
        if self.errors:
            more = f" ({self.keep} shown)" if self.errors_total > len(self.errors) else ""
            out.append(f"Could not be scanned: {self.errors_total}{more}")
            for x in sorted(self.errors, key=lambda x: x.path):
                out.append(f"  {x.path}  {x.what}: {x.where}")
        return out


#: "PyAV cannot open it: InvalidDataError: [Errno 1094995529] Invalid data found when processing input: '/the/path'"
_CANNOT_OPEN = re.compile(r"^(PyAV|decord|PIL) cannot open it: (?P<ffmpeg>.*?); (?P<why>.+)$")
_ERRNO = re.compile(r"\[Errno -?\d+\] ")


def console_error(message: str, path: str) -> str:
    """An error message as the console's error lines show it (the record keeps it whole): without the path the line
    shows already, FFmpeg's errno and its own copy of the path, and where vscan found why a file cannot be opened (an
    MP4 cut off before its index: vscan.inputs.truncated), that first, before the decoder's generic words."""
    message = message.removeprefix(f"{path}: ")
    message = _ERRNO.sub("", message).replace(f": '{path}'", "")
    opened = _CANNOT_OPEN.match(message)
    if opened:
        message = f"cannot be opened: {opened['why']} ({opened[1]}: {opened['ffmpeg']})"
    return message


def _first_line(text: str) -> str:
    """An error message's first line, without decoders' own log lines."""
    return (text.strip().splitlines() or [""])[0]


def _rate_line(summary) -> str:
    return (f"{summary.video_seconds:.1f} video-s in {summary.wall_seconds:.1f} s: {summary.video_seconds_per_second:.1f} video-s/s, "
            f"{summary.files_per_second:.2f} files/s")  # fmt: skip


def _pipeline_line(summary) -> str | None:
    q = getattr(summary, "pipeline", None)
    if not (q and q.get("model_calls")):
        return None
    # Which stage bounds the run: decode slots always full and the model
    # stage often idle = decode-bound; files queueing for the model = model-bound.
    busy = q.get("model_busy_fraction", 0)
    bound = "decode-bound" if q["decode_all_slots_busy_fraction"] >= 0.8 and busy < 0.8 else (
        "model-bound" if busy >= 0.8 else "neither stage saturated")
    return (f"decode slots all busy {q['decode_all_slots_busy_fraction']:.0%}, model stage busy {busy:.0%}, "
            f"{q['mean_frames_per_call']:.0f} frames per model call ({bound})")


def counts_line(summary) -> str:
    """scanned / skipped (why) / errors / matched, each counted apart (``ScanSummary.counts_text``)."""
    return summary.counts_text()


def summary_lines(summary, out: str, outcomes: ScanOutcomes | None = None) -> list[str]:
    """The end of ``vscan scan``: what matched, the counts, where the records are and how to read them."""
    lines = [] if outcomes is None else outcomes.lines()
    if summary.nothing_scanned and summary.skipped:
        lines.append(f"Nothing left to scan: {counts_line(summary)}. "
                     f"Every input already has its record for this bank, models and settings.")  # fmt: skip
    elif summary.nothing_scanned and summary.files == 0:
        lines.append("Nothing to scan: no input file was found.")
    else:
        lines.append(counts_line(summary))
        if summary.scanned:
            lines.append(_rate_line(summary))
        pipeline = _pipeline_line(summary)
        if pipeline:
            lines.append(f"pipeline: {pipeline}")
    lines.append(f"results: {out}")
    lines.append(f"report:  vscan report {shlex.quote(str(out))} -o report.html")
    return lines


def print_summary(summary, out: "Path | str", outcomes: ScanOutcomes | None = None) -> None:
    # Plain lines, not a table: nothing is cut or wrapped mid-word at 80 columns.
    print("\n".join(summary_lines(summary, str(out), outcomes)), flush=True)

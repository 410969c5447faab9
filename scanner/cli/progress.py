"""Progress bar (TTY only) and the end-of-scan summary table."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from rich.console import Console
from rich.table import Table

__all__ = ["ScanProgress", "print_summary", "interrupted_message"]


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
        self._start = time.perf_counter()

    def __enter__(self) -> "ScanProgress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]scanning"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("scan", total=self.total, rate="")
        return self

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
            for path in discover(paths, all_files=config.inputs.all_files, archive_limits=limits, list_containers=False):
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
        self._video_seconds += record.get("duration_seconds") or 0.0
        if self._progress is not None:
            elapsed = max(time.perf_counter() - self._start, 1e-9)
            self._progress.update(self._task, advance=1, rate=f"{self._video_seconds / elapsed:.1f} video-s/s")

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()


def interrupted_message(saved: int, out: str) -> str:
    """What Ctrl-C leaves: the records already durable, and how to go on."""
    return (f"Interrupted: {saved} record{'s' if saved != 1 else ''} from this run are saved in {out}. "
            "Run the same command again to resume: files already recorded are skipped.")  # fmt: skip


def print_summary(summary, out: Path) -> None:
    table = Table(title="vscan scan", show_header=False)
    table.add_row("files", str(summary.files))
    table.add_row("ok", str(summary.ok))
    table.add_row("matched", str(summary.matched))
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(summary.errors_by_type.items()))
    table.add_row("errors", f"{summary.errors}" + (f" ({errors})" if errors else ""))
    table.add_row("video seconds", f"{summary.video_seconds:.1f}")
    table.add_row("wall seconds", f"{summary.wall_seconds:.1f}")
    table.add_row("throughput", f"{summary.video_seconds_per_second:.1f} video-s/s, {summary.files_per_second:.2f} files/s")
    q = getattr(summary, "pipeline", None)
    if q and q.get("model_calls"):
        # Which stage bounds the run: decode slots always full and the model
        # stage often idle = decode-bound; files queueing for the model = model-bound.
        bound = "decode-bound" if q["decode_all_slots_busy_fraction"] >= 0.8 and q.get("model_busy_fraction", 0) < 0.8 else (
            "model-bound" if q.get("model_busy_fraction", 0) >= 0.8 else "neither stage saturated")
        table.add_row("pipeline", f"decode slots all busy {q['decode_all_slots_busy_fraction']:.0%}, model stage busy "
                      f"{q.get('model_busy_fraction', 0):.0%}, {q['mean_frames_per_call']:.0f} frames per model call ({bound})")
    table.add_row("results", str(out))
    Console(stderr=False).print(table)

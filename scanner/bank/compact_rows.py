"""Fewer bank rows per reported video-second: consecutive frames of a shot collapse into runs.

    rule = CompactRule(frame_bits=8)
    compact_bank_rows("reported.bank", "reported-compact.bank", rule)   # a new bank, the source untouched

A shot is near-identical frame to frame: an entry's frame rows are cut into
runs, a run starting at a frame and holding every following frame whose hash
lies within ``frame_bits`` of the run's first; the run keeps its first frame
row only (its time is the run's start). A query frame near any frame of the
run is then within ``frame_bits`` more of the kept row. The extra rows
(borders removed, centre crops, re-post and grid windows) are kept at the
runs' first frames only (grid windows: at most ``grid_per_second`` runs a
second carry them), so every kept extra row still names a kept frame, as the
readers (``Bank.load_index``, ``MappedBank``) require.

This is the measured experiment of ``vscan.bench.bench_bank_build --compact``
(rows per video-second and recall per kind, against the full bank in the same
run); ``vscan bank build`` does not apply it (docs/banks.md says why).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from vscan.bank.rows import plan_keeps_prep, row_kind, run_starts, spaced
from vscan.bank.store import Bank
from vscan.bank.writer import BankWriter
from vscan.hashing.vpdq import ExtraHashes, FrameHashes

if TYPE_CHECKING:
    from vscan.bank.hashers import RowPlan

__all__ = ["CompactRule", "run_starts", "compact_entry", "compact_bank_rows", "plan_entry", "derive_bank"]


@dataclass(frozen=True)
class CompactRule:
    """``frame_bits``: a frame joins the run while within this many bits of the run's first frame.
    ``extra_per_second``: runs carrying extra rows other than grid windows (borders removed, crops,
    strip, rotations), at most this many a second (None: every run).
    ``grid_per_second``: frames carrying grid windows (of those the build gave them), at most this
    many a second (None: all of them); their frame rows are kept too."""

    frame_bits: int = 8
    extra_per_second: float | None = None
    grid_per_second: float | None = 1.0

    @property
    def name(self) -> str:
        return f"runs{self.frame_bits}-extra{self.extra_per_second}-grid{self.grid_per_second}"


def compact_entry(frames: FrameHashes, extra: ExtraHashes | None, rule: CompactRule) -> tuple[FrameHashes, ExtraHashes | None]:
    """One entry's rows after ``rule``: the runs' first frames (and the frames keeping grid windows),
    their extra rows as the rule spaces them."""
    order = np.argsort(frames.frame_numbers, kind="stable")
    starts = order[run_starts(frames.hashes[order], rule.frame_bits)]
    time_of = dict(zip(frames.frame_numbers.tolist(), frames.timestamps_seconds.tolist()))
    kept_frames = set(frames.frame_numbers[starts].tolist())
    extra_frames = spaced(sorted(kept_frames), [time_of[f] for f in sorted(kept_frames)], rule.extra_per_second)
    grid_frames: set[int] = set()
    pick = np.zeros(0, bool)
    if extra is not None and len(extra.hashes):
        is_grid = np.array([row_kind(p) == "grid" for p in extra.preps], bool)
        with_grid = sorted(set(extra.frame_numbers[is_grid].tolist()))
        grid_frames = spaced(with_grid, [time_of.get(f, np.nan) for f in with_grid], rule.grid_per_second)
        kept_frames |= grid_frames & set(time_of)
        pick = np.array([int(f) in (grid_frames if g else extra_frames) for f, g in zip(extra.frame_numbers.tolist(), is_grid)], bool)
    keep = np.flatnonzero(np.isin(frames.frame_numbers, sorted(kept_frames)))
    kept = FrameHashes(frames.frame_numbers[keep], frames.timestamps_seconds[keep], frames.qualities[keep], frames.hashes[keep])
    if extra is None or not len(extra.hashes):
        return kept, extra
    return kept, ExtraHashes(extra.frame_numbers[pick], tuple(np.asarray(extra.preps, dtype=object)[pick].tolist()),
                             extra.qualities[pick], extra.hashes[pick])  # fmt: skip


def plan_entry(frames: FrameHashes, extra: ExtraHashes | None, plan: "RowPlan") -> tuple[FrameHashes, ExtraHashes | None]:
    """One entry's rows (a full build's: every frame, its extra rows) as ``vscan bank build --rows
    plan.name`` keeps them (``vscan.bank.one_pass.RowChoice``, frame by frame)."""
    from vscan.bank.one_pass import RowChoice, centred_rows, first_per_prep, run_owners

    order = np.argsort(frames.frame_numbers, kind="stable")
    choose = RowChoice(plan)
    choice = np.zeros((len(order), 3), bool)
    choice[order] = [choose(frames.hashes[i], float(frames.timestamps_seconds[i])) for i in order]
    kept = FrameHashes(*(a[choice[:, 0]] for a in (frames.frame_numbers, frames.timestamps_seconds, frames.qualities, frames.hashes)))
    if extra is None or not len(extra.hashes):
        return centred_rows(kept, extra, plan.centre_bits)[:2] if getattr(plan, "centre_bits", None) is not None else (kept, extra)
    is_grid = np.array([row_kind(p) == "grid" for p in extra.preps], bool)
    with_extra, with_grid = frames.frame_numbers[choice[:, 1]], frames.frame_numbers[choice[:, 2]]
    pick = np.where(is_grid, np.isin(extra.frame_numbers, with_grid), np.isin(extra.frame_numbers, with_extra))
    pick &= np.array([plan_keeps_prep(p, plan.crops, plan.windows, plan.grid_windows) for p in extra.preps], bool)
    owners = dict(zip(frames.frame_numbers[order].tolist(), run_owners(frames.frame_numbers[order], choice[order, 0], -1)[0].tolist()))
    numbers = np.asarray([owners.get(int(f), int(f)) for f in extra.frame_numbers[pick]], np.int64)  # filed under their run's row
    extra = first_per_prep(ExtraHashes(numbers, tuple(np.asarray(extra.preps, dtype=object)[pick].tolist()), extra.qualities[pick], extra.hashes[pick]))
    if getattr(plan, "centre_bits", None) is not None:
        kept, extra, _ = centred_rows(kept, extra, plan.centre_bits)
    return kept, extra


def derive_bank(src: str | os.PathLike, dst: str | os.PathLike, plan: "RowPlan") -> None:
    """Writes ``dst``: ``src``'s entries (a full build) with each entry's rows as ``plan`` keeps them
    (``src`` is only read): a plan's rows and recall measured without building again."""
    _rewrite(src, dst, lambda f, x: plan_entry(f, x, plan), f"vscan derive_bank {plan}")


def compact_bank_rows(src: str | os.PathLike, dst: str | os.PathLike, rule: CompactRule) -> None:
    """Writes ``dst``: ``src``'s entries and digests, each entry's rows after ``rule`` (``src`` is only read)."""
    _rewrite(src, dst, lambda f, x: compact_entry(f, x, rule), f"vscan compact_rows {rule}")


def _rewrite(src, dst, keep: Callable, created_by: str) -> None:
    """``src``'s entries, digests and geometry into ``dst``, each entry's rows through ``keep(frames, extra)``."""
    with Bank(src) as bank, BankWriter(Path(dst), created_by=created_by) as writer:
        conn = bank._conn
        digests: dict[str, list[tuple[str, str]]] = {}
        for entry_id, algorithm, digest in conn.execute("SELECT entry_id, algorithm, digest FROM file_digests ORDER BY entry_id"):
            digests.setdefault(entry_id, []).append((algorithm, digest))
        for entry_id, label, source_path, source_type, source_ref, kind, duration, _ in bank.rows("entries"):
            source = (source_path, source_type, source_ref)
            if kind == "file_digest":
                algorithm, digest = digests.pop(entry_id)[0]
                writer.add_file_digest(entry_id, label, source, algorithm, digest)
                continue
            rows = conn.execute("SELECT frame_number, timestamp_seconds, quality, hash FROM frame_hashes WHERE entry_id = ? "
                                "ORDER BY frame_number", (entry_id,)).fetchall()  # fmt: skip
            given = all(r[2] is not None for r in rows)
            frames = FrameHashes([r[0] for r in rows], [np.nan if r[1] is None else r[1] for r in rows],
                                 [100 if r[2] is None else r[2] for r in rows],
                                 np.frombuffer(b"".join(r[3] for r in rows), np.uint8).reshape(len(rows), 32))  # fmt: skip
            extra = None
            if bank.has_extra_hashes:
                x = conn.execute("SELECT frame_number, prep, quality, hash FROM extra_hashes WHERE entry_id = ? "
                                 "ORDER BY frame_number, prep", (entry_id,)).fetchall()  # fmt: skip
                if x:
                    extra = ExtraHashes(np.asarray([r[0] for r in x], np.int64), tuple(r[1] for r in x),
                                        np.asarray([100 if r[2] is None else r[2] for r in x], np.int32),
                                        np.frombuffer(b"".join(r[3] for r in x), np.uint8).reshape(len(x), 32))  # fmt: skip
            frames, extra = keep(frames, extra)
            writer.add_frame_hashes(entry_id, label, source, kind, frames, duration, qualities_given=given)
            if extra is not None and len(extra.hashes):
                writer.add_extra_hashes(entry_id, extra)
            if (geometry := bank.entry_geometry(entry_id)) is not None:
                writer.add_geometry(entry_id, geometry)
            for algorithm, digest in digests.pop(entry_id, []):
                writer.add_digest(entry_id, algorithm, digest)

"""How one file's scan ends: its one record, and its frames let go.

The driver (vscan.runtime.driver) follows each file as a :class:`Task` and
hands it here when it is done: an error record, or the record of its
passes' frames with the model's result. Adaptive sampling's second pass
(the dense pass around the first pass's matches) that fails, whether by a
decoder error, a crashed or killed worker or the per-file time limit, ends
the file on its first pass, whose result the model has already given: the
record is that result, ``second_pass`` says the pass failed and why, and
the counts are the first pass's. Two passes that both ran count a frame
they both took once. Either way the file's frames (object-store refs) are
dropped the moment its record is made.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any, Callable

from vscan.errors import DecodeTimeoutError, error_info
from vscan.inputs.paths import display
from vscan.runtime.payload import FileSummary, ModelResult
from vscan.runtime.placement import ran_on
from vscan.verdict.record import build_record
from vscan.verdict.risk import RiskPolicy

__all__ = ["FileState", "Task", "Outcomes", "ahead_settled", "checked", "let_go", "second_pass_again", "second_pass_decoded"]


class FileState(enum.Enum):
    """Where a file is, in the order of the stages (vscan.runtime.stages)."""

    QUEUED = "queued"  # taken from the inputs, not yet in a decode task
    DECODING = "decoding"  # in a decode task
    DECODED = "decoded"  # decoded, waiting for a model call
    AT_MODEL = "at the model"  # in a model call
    REFINING = "refining"  # its second sampling pass is decoding (the first pass's frames kept)
    RECORDED = "recorded"  # its record is made


@dataclass
class Task:
    """One file on its way through the pipeline."""

    key: int
    path: str
    attempt_decoder: str
    submitted: float
    started: float | None = None
    summary: FileSummary | None = None
    payload_ref: Any = None  # its DecodedFile in the object store
    policy: Any = None  # a second-pass sampling policy (adaptive sampling)
    first_pass: FileSummary | None = None  # the first pass's summary
    first_result: ModelResult | None = None  # the model's result for the first pass alone
    first_payload_ref: Any = None  # the first pass's frames, sent again with the second
    infra_failures: int = 0  # model-stage faults that may be the file's (retried up to INFRA_RETRIES)
    node_faults: int = 0  # its node or model actor's node went away (never the file's fault)
    group_size: int = 1  # files in the decode task that carries this file
    second_pass_tries: int = 0  # second-pass decodes that failed for the run's circumstances (``second_pass_again``)
    state: FileState = FileState.QUEUED

    def move(self, state: FileState) -> None:
        self.state = state


#: Decodes of one file's second pass when they fail for the run's circumstances (kind "transient": a decoder that
#: stalled on a loaded machine): a second pass that decides a match is not given up on its first stall.
SECOND_PASS_TRIES = 2


def second_pass_again(task: Task, error: dict[str, Any]) -> bool:
    """Whether ``task``'s failed second pass (its decode's ``error``) is decoded once more, rather than the file
    finishing on its first pass (``Outcomes.decode_failed``); counted on the task. An input error is final."""
    if task.first_result is None or error.get("kind") != "transient" or task.second_pass_tries + 1 >= SECOND_PASS_TRIES:
        return False
    task.second_pass_tries += 1
    return True


def let_go(task: Task) -> None:
    """Drop the file's frames (object-store refs) and its first pass."""
    task.payload_ref = task.first_payload_ref = task.first_pass = task.first_result = task.policy = None


class Outcomes:
    """Makes each finished file's record and passes it to ``emit``."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], *, policy_text: str, risk_policy: RiskPolicy, timeout_seconds: float,
                 min_quality: int = 0) -> None:  # fmt: skip
        self.emit, self.policy_text, self.risk_policy, self.timeout_seconds = emit, policy_text, risk_policy, timeout_seconds
        self.min_quality = min_quality

    def fail(self, task: Task, error: dict[str, str]) -> None:
        """An error record (what is known of the file, and why)."""
        base = task.summary.as_dict() if task.summary is not None else {"path": task.path}
        # Display-safe however it was made (a member's message names its raw path: vscan.inputs.paths).
        error = {**error, "message": display(str(error.get("message", "")))}
        record = build_record({**base, "error": error}, policy_text=self.policy_text, risk_policy=self.risk_policy)
        self.emit({**record, "ran_on": ran_on(base)})
        let_go(task)
        task.move(FileState.RECORDED)

    def finish(self, task: Task, summary: FileSummary, result: ModelResult) -> None:
        """The record of the file's frames: ``summary`` and the model's ``result``."""
        facts = summary.as_dict()
        record = build_record(facts, policy_text=self.policy_text, matches=result.matches, risk_policy=self.risk_policy,
                              timings=result.timings, detections=result.detections, detection_timeline=result.detection_timeline)  # fmt: skip
        if summary.second_pass is not None:
            record["second_pass"] = summary.second_pass
        if result.skipped_disabled:  # bank entries it would have matched, disabled (vscan.bank.updates)
            record["skipped_disabled"] = result.skipped_disabled
        checked(record, result.qualities, self.min_quality)
        if result.frame_hashes is not None:  # --hash-store: the driver takes it off before the sink (vscan.output.hash_store)
            record["_frame_hashes"] = result.frame_hashes
        self.emit({**record, "ran_on": ran_on(facts, result.ran_on)})
        let_go(task)
        task.move(FileState.RECORDED)

    def finish_passes(self, task: Task, result: ModelResult) -> None:
        """:meth:`finish` after the model call; two passes' frames both took count once."""
        if task.first_pass is not None:
            from vscan.runtime.confirm_ahead import decisions_kept

            if task.first_result is not None:  # a second pass (a confirmation, windows, looks) does not undo a decision
                result = replace(result, matches=decisions_kept(task.first_result.matches, result.matches))
            twice = task.summary.frames_sampled - result.frames_sampled
            task.summary = replace(task.summary, frames_sampled=task.summary.frames_sampled - twice,
                                   frames_decoded=task.summary.frames_decoded - twice)  # fmt: skip
        self.finish(task, task.summary, result)

    def decode_failed(self, task: Task, error: dict[str, str]) -> None:
        """A decode failed (error, crash, timeout): an error record, or for a
        second pass the first pass's record, saying the second failed."""
        if task.first_result is None:
            self.fail(task, error)
            return
        second = {"status": "failed", "sampling": task.policy.describe(), "error": error}
        self.finish(task, replace(task.first_pass, second_pass=second), task.first_result)

    def timed_out(self, task: Task) -> None:
        err = DecodeTimeoutError(f"{task.path}: decoding exceeded {self.timeout_seconds:g} s")
        self.decode_failed(task, error_info(err))


def checked(record: dict[str, Any], qualities: Any, min_quality: int) -> None:
    """Say what was checked: ``frames_matchable``, the frames whose PDQ
    quality reached ``matching.min_quality`` (only those are compared with
    the bank). With none, and nothing matched or detected, the file was not
    checked at all: ``unchecked`` says why and ``risk`` is null, never a
    "clear" 0 (a black, blank or tiny video looks clear otherwise)."""
    if qualities is None:
        return
    import numpy as np

    matchable = int(np.count_nonzero(np.asarray(qualities) >= min_quality))
    record["frames_matchable"] = matchable
    if matchable or record["matches"] or record["detections"]:
        return
    why = (f"no sampled frame reached matchable quality (PDQ quality >= {min_quality}; "
           f"{record['frames_sampled']} sampled): not compared with the bank")  # fmt: skip
    record["unchecked"] = why
    record["risk"] = None
    record["reasons"] = [f"unchecked: {why}"]


def ahead_settled(task: Task, confirmed: str | None) -> None:
    """A first pass's model result is in: its confirmation decoded ahead
    (FileSummary.ahead) either was matched in that call (``confirmed``: the
    file's summary becomes both passes', as a second pass's would, its first
    pass kept for the counts) or was not needed (its frames count as decoded,
    the record's sampling says so, and its frames are dropped)."""
    summary = task.summary
    ahead = summary.ahead if summary is not None else None
    if ahead is None:
        return
    first = replace(summary, ahead=None)
    if confirmed is not None:
        second = {"status": "ok", "sampling": f"{confirmed}, decoded ahead in the first pass's decode task",
                  "frames_sampled": ahead.frames_sampled, "frames_decoded": ahead.frames_decoded}  # fmt: skip
        task.first_pass, task.summary = first, replace(first.merged(ahead, confirmed), second_pass=second)
        return
    timings = dict(first.timings)
    for name, seconds in ahead.timings.items():
        timings[name] = timings.get(name, 0.0) + seconds
    note = f"; {ahead.frames_decoded} frames decoded ahead to confirm it, not needed"
    task.summary = replace(first, frames_decoded=first.frames_decoded + ahead.frames_decoded, timings=timings, sampling=f"{first.sampling or ''}{note}")


def second_pass_decoded(task: Task) -> FileSummary:
    """The file's summary once its second pass decoded: both passes', with ``second_pass``."""
    second = {"status": "ok", "sampling": task.policy.describe(),
              "frames_sampled": task.summary.frames_sampled, "frames_decoded": task.summary.frames_decoded}  # fmt: skip
    return replace(task.first_pass.merged(task.summary, task.policy.describe()), second_pass=second)

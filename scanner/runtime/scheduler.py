"""The scan's one scheduler: back-pressure in one place, and the loop that moves files through the stages.

    inputs ─▶ DecodeStage ─▶ ModelStage ─▶ RecordStage ─▶ sink
    (queued)  (decoding,      (at the model;  (recorded)
               decoded)        refining: a second pass goes back to decoding)

:class:`FrameBudget` is the whole of the back-pressure: how many frames may
wait for the model stage (decoded, or reserved for decodes in flight), how
many decode tasks and model calls may be outstanding, and how many frames
one model call takes. :class:`Scheduler` asks the stages to move files on,
then waits for whichever Ray result comes first. What a failure means for a
file is decided in one place too: vscan.runtime.faults (Ray failures) and
vscan.runtime.outcome (the record it ends with).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

__all__ = ["FrameBudget", "Scheduler", "CALL_BATCHES", "QUEUE_BATCHES"]

#: Frames of one model call, in batches of ``runtime.batch_frames`` (a file
#: with more frames than that goes alone): calls of bounded size.
CALL_BATCHES = 4
#: Frames waiting for the model stage (decoded, or reserved for decodes in
#: flight), in batches per model actor: a bounded queue.
QUEUE_BATCHES = 8


@dataclass
class FrameBudget:
    """Back-pressure, the one place: frames that wait for the model stage
    never pass ``frames`` (``frame_bytes`` each), so the object store holds a
    bounded amount of decoded video whatever the number of files.

    A decode in flight reserves the frames a file brought so far on average
    (before the first one lands: an equal share of the budget per decode
    slot); a decode is started only while the frames waiting plus those
    reserved leave room for one more file. While no frame waits (decoding is
    what bounds the scan) every decode slot may take a file whatever its
    size: the frames waiting then stay within the budget, or within one
    file per slot when files are bigger than their share of it (a file
    bigger than the whole budget goes alone on a one-slot node). Second
    passes and retries are not held back (their file already has a place)."""

    frames: int  # frames waiting for the model stage, at most
    call_frames: int  # frames of one model call (a bigger file goes alone)
    decode_tasks: int  # decode tasks in flight, at most
    model_calls: int  # model calls in flight, at most (all actors)
    frame_bytes: int  # bytes of one decoded frame (uint8 S x S x 3)
    slots: int  # decode slots (CPUs for decoding) in the cluster
    first_estimate: int  # frames reserved per file before any file landed
    _landed_files: int = field(default=0, init=False)
    _landed_frames: int = field(default=0, init=False)

    @classmethod
    def for_scan(cls, config: Any, *, actors: int, slots: int) -> "FrameBudget":
        batch, size = config.runtime.batch_frames, config.sampling.frame_size
        frames = QUEUE_BATCHES * batch * actors
        return cls(frames=frames, call_frames=CALL_BATCHES * batch, decode_tasks=config.runtime.decode_inflight or slots + 2,
                   model_calls=config.runtime.model_inflight * actors, frame_bytes=size * size * 3, slots=slots,
                   first_estimate=max(1, frames // max(slots, 1)))  # fmt: skip

    def landed(self, frames: int) -> None:
        """A file's first pass came back decoded with ``frames`` frames."""
        self._landed_files += 1
        self._landed_frames += frames

    @property
    def per_file(self) -> int:
        """Frames a file in flight is expected to bring."""
        if not self._landed_files:
            return self.first_estimate
        return max(1, -(-self._landed_frames // self._landed_files))

    def may_decode(self, waiting_frames: int, decoding_files: int, decode_tasks: int) -> bool:
        """Whether one more file may start decoding now."""
        if decode_tasks >= self.decode_tasks:
            return False
        if not waiting_frames and decoding_files < self.slots:
            return True  # decoding bounds the scan: keep every slot busy
        return waiting_frames + (decoding_files + 1) * self.per_file <= self.frames

    def describe(self) -> dict[str, int]:
        """For the pipeline profile (ScanSummary.pipeline)."""
        return {"frame_budget": self.frames, "frame_budget_bytes": self.frames * self.frame_bytes,
                "call_frame_limit": self.call_frames, "decode_task_limit": self.decode_tasks,
                "model_call_limit": self.model_calls}  # fmt: skip


class Scheduler:
    """Moves files forward through the stages until every one has its record.

    Each turn: records finished so far go to the sink; new files start
    decoding while the budget allows; decoded files go to the model; then
    the first Ray result to come back is handed to its stage. The loop ends
    when no file is left anywhere (and a model actor has started, so that
    records never come before the model stage is known to work)."""

    def __init__(self, *, decode: Any, model: Any, records: Any, budget: FrameBudget, queues: Any) -> None:
        self.decode, self.model, self.records, self.budget, self.queues = decode, model, records, budget, queues
        if getattr(model, "ahead", None) is None:  # the model stage tells the decode stage's switch how first passes went
            model.ahead = getattr(decode, "ahead", None)

    def run(self) -> Iterator[dict[str, Any]]:
        import ray

        while True:
            yield from self.records.commit()
            self.decode.admit(self.budget, waiting_frames=self.model.waiting_frames)
            self.queues.sample(self.decode.running_now, len(self.model.ready), self.model.waiting_frames, len(self.model.calls))
            self.model.feed(self.budget, draining=self.decode.exhausted and not self.decode.in_flight)
            if self.decode.exhausted and not self.decode.in_flight and self.model.idle:
                self.model.wait_started()
                yield from self.records.commit()
                return
            waitable = self.decode.waitable() + self.model.waitable()
            if waitable:
                done, _ = ray.wait(waitable, num_returns=1, timeout=0.2)
                for ref in done:
                    if not self.model.landed(ref):
                        self.decode.landed(ref)
            self.decode.reap_stuck()
            self.model.reap_lost()

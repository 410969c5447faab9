"""Queue-depth profile of a running scan (ScanSummary.pipeline)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["QueueStats"]


class QueueStats:
    """Time-weighted depths of the pipeline's queues, sampled by the driver
    loop: how busy the decode slots are, how many finished files wait for
    the model stage, and how many model calls are in flight. Says which
    stage is the bottleneck: decode-bound when the slots are always full and
    the model stage waits; model-bound when files queue up in front of it."""

    def __init__(self, slots: int, model_inflight: int) -> None:
        self.slots, self.model_inflight = slots, model_inflight
        self.t0 = self.last = time.monotonic()
        self.sums = {"decode_running": 0.0, "ready_files": 0.0, "ready_frames": 0.0, "model_calls": 0.0}
        self.all_slots_busy = self.model_idle = self.model_full = 0.0
        self.max_ready_frames = 0
        self.calls: list[tuple[int, int]] = []  # (files, frames) per model call
        self.decode_tasks = self.decode_files = 0
        self.sink_seconds = 0.0  # in sink.write (the driver's thread)
        # Adaptive first passes back from the model: how many decided, had their confirmation decoded ahead, and used it.
        self.first_passes = {"first_passes": 0, "first_passes_decided": 0, "confirmations_decoded_ahead": 0, "confirmations_matched_ahead": 0}
        # Decode slot time after the first file came back decoded (past worker start-up).
        self.steady_slot_seconds, self._decoded_once = 0.0, False

    def sample(self, decode_running: int, ready_files: int, ready_frames: int, model_calls: int) -> None:
        now = time.monotonic()
        dt, self.last = now - self.last, now
        for key, value in zip(self.sums, (decode_running, ready_files, ready_frames, model_calls)):
            self.sums[key] += value * dt
        self.all_slots_busy += dt * (decode_running >= self.slots)
        self.model_idle += dt * (model_calls == 0)
        self.model_full += dt * (model_calls >= self.model_inflight)
        self.max_ready_frames = max(self.max_ready_frames, ready_frames)
        self._decoded_once = self._decoded_once or ready_files > 0 or model_calls > 0
        self.steady_slot_seconds += decode_running * dt * self._decoded_once

    def first_pass(self, decided: bool, *, ahead: bool, confirmed: bool) -> None:
        for name, counts in zip(self.first_passes, (True, decided, ahead, confirmed)):
            self.first_passes[name] += int(counts)

    def report(self, model: dict[str, float] | None, actors: int = 1) -> dict[str, Any]:
        """The profile; ``model``: work summed over the ``actors`` model actors."""
        wall = max(self.last - self.t0, 1e-9)
        out: dict[str, Any] = {f"mean_{k}": round(v / wall, 3) for k, v in self.sums.items()}
        out.update(
            wall_seconds=round(wall, 3),
            decode_slots=self.slots,
            decode_slot_seconds=round(self.sums["decode_running"], 3),  # slots in use x time
            decode_steady_slot_seconds=round(self.steady_slot_seconds, 3),  # the same after the first decoded file (capacity model)
            decode_all_slots_busy_fraction=round(self.all_slots_busy / wall, 3),
            model_no_call_fraction=round(self.model_idle / wall, 3),
            model_calls_at_limit_fraction=round(self.model_full / wall, 3),
            max_ready_frames=self.max_ready_frames,
            sink_seconds=round(self.sink_seconds, 4),
            decode_tasks=self.decode_tasks,
            decode_files=self.decode_files,
            model_calls=len(self.calls),
            mean_files_per_call=round(float(np.mean([c[0] for c in self.calls])), 2) if self.calls else 0.0,
            mean_frames_per_call=round(float(np.mean([c[1] for c in self.calls])), 1) if self.calls else 0.0,
            max_frames_per_call=max((c[1] for c in self.calls), default=0),
        )
        out["model_actors"] = actors
        out.update(self.first_passes)
        if model:
            out["model_busy_seconds"] = round(model["busy_seconds"], 3)
            out["model_busy_fraction"] = round(model["busy_seconds"] / wall / max(actors, 1), 3)  # mean over actors
            out["model_frames_hashed"] = int(model["frames"])
        return out

"""Adaptive sampling's confirmation decoded ahead (issue #30): one decode
task and one model call for a file whose first pass decides.

A first pass that already decides (vscan.decode.adaptive.first_pass_decides)
is confirmed by a ``Confirm`` pass of a frame or two. Run as a second pass,
that costs a second decode task (the file opened and its packets indexed
again) and a second model call that hashes the first pass's frames again.
Decoded *ahead*, the first pass's decode task decodes those frames too, its
decoder still open (its packet index, and any frame it passed on the way,
reused: ``ahead_attempt``), and the model call that matches the first pass
hashes only them and matches the two passes together when the first pass
decides (``confirm_in_call``): exactly the pass ``Adaptive.refine`` would
have asked for (the same ``Confirm``, checked), its first-pass hashes reused.
Where the first pass does not decide, the frames decoded ahead are dropped
and the record counts them as decoded.

Decoding ahead costs up to ``Adaptive.confirm_reach_seconds`` of frames per file, wasted on a file
that matches nothing, so the scan does it only while most first passes
decide (``AheadSwitch``: an archive of known material, not a sweep), unless
``Adaptive.confirm_ahead`` says always (True) or never (False). Not before
the model has answered: decoding ahead then (tried) made the sweep bench
decode 34 frames a file instead of 2. So where the model actor's start-up
outlasts decoding every first pass (a small archive on a loaded machine),
the scan decodes none ahead unless asked to.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vscan.decode.adaptive import Adaptive, Confirm, confirm_pass
from vscan.runtime.payload import DecodedFile

__all__ = ["AHEAD_SHARE", "AHEAD_WINDOW", "AheadSwitch", "ahead_attempt", "ahead_policy", "confirm_in_call", "confirm_read_on", "decisions_kept",
           "decode_ahead", "merged_hashes"]

#: First passes the switch looks back on, and the share of them that decided above which it decodes ahead.
AHEAD_WINDOW = 8
AHEAD_SHARE = 0.5
#: First passes seen before the switch may turn on (a sweep's first known file does not turn it on).
AHEAD_MIN_SEEN = 3


def ahead_policy(policy: Any, timestamps: np.ndarray, duration_seconds: float) -> Confirm | None:
    """The ``Confirm`` pass to decode ahead for a first pass sampled at
    ``timestamps``, or None: the one ``Adaptive.refine`` asks for if it decides."""
    if not isinstance(policy, Adaptive) or not policy.confirm_ahead or not policy.confirm_frames or not duration_seconds > 0:
        return None
    return confirm_pass(np.asarray(timestamps, np.float64), float(duration_seconds), policy.confirm_frames, policy.confirm_reach_seconds)


class AheadSwitch:
    """Whether first passes decode their confirmation ahead: as
    ``Adaptive.confirm_ahead`` says, or (None) once ``AHEAD_MIN_SEEN`` first
    passes came back from the model, while at least ``AHEAD_SHARE`` of the
    last ``AHEAD_WINDOW`` decided."""

    def __init__(self, config: Any) -> None:
        policy = config.sampling.policy
        # Triage models and detectors see the passes' frames in the same call as the first: not decoded ahead.
        usable = isinstance(policy, Adaptive) and bool(policy.confirm_frames) and not config.models.triage and not config.models.detectors
        self.setting = policy.confirm_ahead if usable else False
        self.recent: deque[bool] = deque(maxlen=AHEAD_WINDOW)

    def observe(self, decided: bool) -> None:
        """A first pass came back from the model: it decided, or not."""
        self.recent.append(bool(decided))

    def ahead_config(self, config: Any) -> Any:
        """``config`` with its policy decoding ahead (``Adaptive.confirm_ahead`` True)."""
        from dataclasses import replace

        return replace(config, sampling=replace(config.sampling, policy=replace(config.sampling.policy, confirm_ahead=True)))

    @property
    def on(self) -> bool:
        if self.setting is not None:
            return bool(self.setting)
        return len(self.recent) >= AHEAD_MIN_SEEN and sum(self.recent) >= AHEAD_SHARE * len(self.recent)


def confirm_read_on(config: Any) -> Callable | None:
    """For the first pass's ``PyAVDecoder.read_on``: the frames of the ``Confirm`` pass that
    ``decode_ahead`` will decode after a first pass of the frames ``selected`` (``ahead_policy``),
    so that a keyframe pass decodes on from their keyframe to them (its keyframe decoded once);
    None when the scan decodes no confirmation ahead."""
    from vscan.decode.spread import spread_count
    from vscan.runtime.region_probe import REGION_MIN_FRAMES, escalated_cost, may_escalate

    policy = config.sampling.policy
    if not isinstance(policy, Adaptive) or not policy.confirm_ahead or not policy.confirm_frames:
        return None
    escalates = may_escalate(config)

    def later(meta: Any, pts_seconds: np.ndarray, selected: np.ndarray) -> tuple[int, ...]:
        confirm = ahead_policy(policy, pts_seconds[selected], meta.duration_seconds)
        if confirm is None:
            return ()
        frames = tuple(confirm.select(pts_seconds, meta.keyframe_indices, meta.duration_seconds).tolist())
        if escalates and spread_count(policy, pts_seconds[selected], meta.duration_seconds,
                                      np.isin(selected, np.asarray(meta.keyframe_indices or (), np.int64))) < REGION_MIN_FRAMES:  # a burst counts for none
            # The region probe may decode this first pass again with more frames, from the keyframes, and confirm that
            # pass with a decode of its own: the frames read on to are then decoded twice. Read on only where even that
            # stays within the file's frames (a 75-frame WebM read on to and taken again decoded 79). Most such first
            # passes (a long GOP's 2-3 keyframes) are never taken again; without reading on, each opened a confirmation
            # pass of its own (issue #30).
            keys = meta.keyframe_indices
            again, escalated = escalated_cost(policy, pts_seconds, keys, meta.duration_seconds, selected)
            confirm_again = ahead_policy(policy, pts_seconds[escalated], meta.duration_seconds)
            after = 0 if confirm_again is None else _read_on_cost(tuple(confirm_again.select(pts_seconds, keys, meta.duration_seconds).tolist()), keys)
            if len(selected) + _read_on_cost(frames, keys) + again + after > meta.num_frames:
                return ()
        return frames

    return later


def _read_on_cost(frames: tuple[int, ...], keyframes) -> int:
    """Frames a keyframe pass decodes to read on to ``frames`` from the keyframe before each, at most."""
    keys = np.asarray(keyframes or (0,), np.int64)
    return sum(i - int(keys[max(0, np.searchsorted(keys, i, side="right") - 1)]) + 1 for i in frames)


def ahead_attempt(path: str, frame_size: int, attempt: tuple, confirm: Confirm) -> tuple[int, tuple]:
    """The confirmation's frames from the first pass's PyAV decoder (still
    holding the file's packet index): those it decoded on the way and kept
    (``passing``), or on from their keyframe (``read_ahead``: ``confirm_read_on``),
    the rest decoded now. Returns (frames decoded now, an attempt tuple as
    vscan.runtime.decode_task's ``_attempt`` makes, with a border tap over them)."""
    from vscan.decode.sampling import FrameList
    from vscan.frames.borders import BorderTap
    from vscan.frames.resize import to_square

    decoder, meta, tap = attempt[0], attempt[1], attempt[2]
    pts_seconds = decoder.frame_times(Path(path))
    wanted = confirm.select(pts_seconds, meta.keyframe_indices, meta.duration_seconds).tolist()
    kept, decoder.passing, decoder.keep_passing = dict(decoder.passing), {}, 0
    read, decoder.read_ahead, decoder.read_on = dict(decoder.read_ahead), {}, None
    have = {i: kept[i] for i in wanted if i in kept}
    have.update(read[i] for i in wanted if i not in have and i in read)  # (index, frame) of the frame a decode of i gives
    missing = tuple(i for i in wanted if i not in have and i not in read)
    decoder.frames_decoded = 0
    if missing:
        for batch in decoder.iter_frames(path, FrameList(missing), batch_size=64, size=(frame_size, frame_size)):
            have.update(zip(batch.frame_indices.tolist(), batch.rgb))
    decoded = int(decoder.frames_decoded) if missing else 0
    decoder.frames_decoded = decoded
    order = np.asarray(sorted(have), np.int64)
    frames = np.stack([have[i] for i in order.tolist()])
    ahead_tap = BorderTap(lambda rgb: to_square(rgb, frame_size), enabled=tap.enabled)
    ahead_tap.push(frames)
    return decoded, (decoder, meta, ahead_tap, [frames], [order], [pts_seconds[order]], None, None)


def decode_ahead(path: str, config: Any, summary: dict[str, Any], file: DecodedFile, attempt: tuple, fallback: Any,
                 decode_frames: Callable[..., DecodedFile]) -> DecodedFile:  # fmt: skip
    """``file`` (a first pass) with its confirmation decoded ahead by the
    same decoder (``DecodedFile.ahead``, its facts in ``summary["ahead"]``),
    when the policy asks (``ahead_policy``) and the first attempt's PyAV
    decoder served; ``file`` as it is otherwise, or when that decode fails
    (the confirmation then runs as a second pass, if the first decides).
    ``decode_frames``: vscan.runtime.decode_task's, given the attempt."""
    from dataclasses import replace

    from vscan.decode.guard import STALL_SECONDS, run_guarded
    from vscan.runtime.payload import FileSummary

    confirm = ahead_policy(config.sampling.policy, file.timestamps, file.duration_seconds)
    decoder = attempt[0]
    if confirm is None or fallback is not None or not hasattr(decoder, "passing") or getattr(decoder, "plain", True):
        return file
    t0 = time.perf_counter()
    facts: dict[str, Any] = {"path": path, "sha1": summary.get("sha1")}
    stall = min(STALL_SECONDS, config.runtime.file_timeout_seconds / 3)
    try:
        decoded, first = run_guarded(lambda watch: ahead_attempt(path, config.sampling.frame_size, (watch.use(decoder), *attempt[1:]), confirm),
                                     stall, what="PyAV decoder (confirmation decoded ahead)")  # fmt: skip
        second = decode_frames(path, replace(config, sampling=replace(config.sampling, policy=confirm)), facts, t0, first=(first, None))
    except Exception:  # noqa: BLE001 - the first pass stands; its confirmation, if it decides, is decoded as a second pass
        return file
    timings = facts["timings"]
    timings["decode"] = timings.pop("digest", 0.0) + timings.get("decode", 0.0)  # decode_frames timed from t0: the decode came first
    facts["frames_decoded"] = decoded
    summary["ahead"] = FileSummary.from_dict(facts)
    return replace(file, ahead=second, ahead_policy=confirm)


def merged_hashes(first: DecodedFile, second: DecodedFile, both: DecodedFile, h1: dict, h2: dict) -> dict | None:
    """The hashed frame sets of ``both`` (``first.merged(second)``) from each
    pass's own, in the merge's row order; None when a set of ``both`` is not
    the two passes' rows (region search ran again on the merged frames)."""
    numbers = np.concatenate([first.frame_numbers, second.frame_numbers])
    _, keep = np.unique(numbers, return_index=True)  # as DecodedFile.merged orders them
    present = {"frames": True, "unbordered_frames": both.unbordered is not None, "unoverlaid_frames": both.unoverlaid is not None,
               "region_frames": both.region is not None and both.region.frames is not None and both.region.rows is None}  # fmt: skip
    out = {}
    for kind, wanted in present.items():
        if not wanted:
            continue
        if kind not in h1 or kind not in h2:
            return None
        if kind == "region_frames" and not (first.region is not None and first.region.frames is not None and second.region is not None
                                            and second.region.frames is not None):  # fmt: skip
            return None
        out[kind] = tuple(np.concatenate([a, b])[keep] for a, b in zip(h1[kind], h2[kind]))
    return out


def decisions_kept(first: list, confirmed: list) -> list:
    """The matches of a file after its second pass: the two passes' (``confirmed``),
    except that an entry the first pass decided (``is_match``) stays decided. A
    ``Confirm`` pass measures a decision (spans, matched seconds); it does not
    undo it: one confirming frame that misses (a flat or changed moment) turned
    a first pass decided at 4 of 4 frames into 4 of 5, under the 80% rule, and
    the copy was reported as no match. Nor do a second pass's windows or looks
    (``vscan.runtime.outcome``): their frames between the ones that
    decided lower query% (a picture-in-picture or split-screen copy decided on
    its first pass's region, then 1 fps over the file, on a bank of 4 rows a
    second or of every frame alike). Such an entry keeps the first pass's
    match, its figures measured on the first pass's frames."""
    decided = {m.bank_entry_id: m for m in first if m.is_match}
    still = {m.bank_entry_id for m in confirmed if m.is_match}
    lost = [entry for entry in decided if entry not in still]
    if not lost:
        return confirmed
    out = [m for m in confirmed if m.bank_entry_id not in lost] + [decided[entry] for entry in lost]
    return [m for m in out if m.is_match] + [m for m in out if not m.is_match]


def _summed(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in {*a, *b}}


def confirm_in_call(files: list[DecodedFile], hashed: list[dict], results: list[dict],
                    hash_sets: Callable[[list[DecodedFile]], tuple[list[dict], int]],
                    match: Callable[[int, DecodedFile, dict], dict]) -> tuple[list[DecodedFile | None], int]:  # fmt: skip
    """For each file whose first pass asked for exactly the ``Confirm`` it
    carries decoded ahead: its frames hashed (all such files' in shared
    batches), the two passes matched together (``match(i, merged file, its
    hashed sets)``), and ``results[i]`` replaced by that result, ``confirmed``
    saying which pass. Returns (the merged files, None where not confirmed;
    frames hashed)."""
    chosen = [i for i, (f, r) in enumerate(zip(files, results))
              if f.ahead is not None and isinstance(r.get("refine"), Confirm) and r["refine"] == f.ahead_policy]  # fmt: skip
    merged: list[DecodedFile | None] = [None] * len(files)
    if not chosen:
        return merged, 0
    t0 = time.perf_counter()
    ahead_hashed, frames_hashed = hash_sets([files[i].ahead for i in chosen])
    share = (time.perf_counter() - t0) / max(frames_hashed, 1)
    for j, i in enumerate(chosen):
        first, second = files[i], files[i].ahead
        both = first.merged(second)
        sets = merged_hashes(first, second, both, hashed[i], ahead_hashed[j])
        if sets is None:
            again, n = hash_sets([both])
            sets, frames_hashed = again[0], frames_hashed + n
        result = match(i, both, sets)
        result["matches"] = decisions_kept(results[i]["matches"], result["matches"])
        hash_seconds = share * sum(len(q) for _, q in ahead_hashed[j].values())
        result["timings"] = _summed(results[i]["timings"], {**result["timings"], "hash": hash_seconds})
        result["confirmed"] = results[i]["refine"].describe()
        results[i], merged[i] = result, both
    return merged, frames_hashed

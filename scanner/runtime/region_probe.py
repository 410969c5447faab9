"""More first-pass frames for files that look re-framed (adaptive sampling).

Region search (``vscan.frames.regions``) needs ``REGION_MIN_FRAMES`` frames of
a file; adaptive sampling's first pass takes a short clip's keyframes, often
2 or 3. Giving every file more (``--first-pass-frames``) costs about half a
GOP of decoding per frame on every file. Instead, the first pass's frames are
tested for straight edges that stay put while the picture changes
(``vscan.frames.straight_edges``: an inset's sides, a split screen's seam,
caption bands, a translucent box), and only a file that has them is decoded
again with ``ESCALATED_FRAMES`` frames spread over it, so that its region is
searched and hashed. The record's ``sampling`` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from vscan.config import ScanConfig
from vscan.decode.adaptive import Adaptive
from vscan.errors import DecodeError, UnsupportedMediaError
from vscan.frames.regions import MIN_FRAMES as REGION_MIN_FRAMES
from vscan.frames.straight_edges import looks_reframed
from vscan.frames.windows import GRID_FPS

__all__ = ["ESCALATED_FRAMES", "KEEP_PASSING", "REGION_MIN_FRAMES", "SPREAD_CLOCK_SECONDS", "decode_again_if_reframed", "escalated_config", "escalated_cost", "first_pass_spread_rows", "may_escalate",
           "share_decode"]

#: First-pass frames of a file that looks re-framed: on bench_robustness's
#: re-framed kinds, adaptive recall was 0.90 with 4 and 0.93 with 6 for every
#: file; 8 found no more picture-in-picture or split-screen copies than 6.
#: With region search's later fixes (vscan.frames.boxes) 6 gives 8/8 of
#: bench_robustness's picture-in-picture and 8/8 of its split screens, and
#: 22/24 and 24/24 on seeds 301-324; 8 gave 7/8 picture-in-picture there
#: (one first-pass match was not decided again on both passes' frames).
ESCALATED_FRAMES = 6
#: ... each moved back to a tick of a full bank's grid and pane windows (``GRID_FPS`` a second, from the picture's
#: start: ``Adaptive.spread_clock_seconds``; a ``--rows sparse`` bank's own tick, ``ticks_passed_seconds``, for it),
#: where region search's boxes meet those rows on fast footage. Same session, adaptive, bench_generalise (full / sparse
#: bank): tune 147 -> 150 / 138 (split 5 -> 7 of 8, chain3 +1), check 150 / 138 and held-out 149 / 134 unchanged; 600
#: unrelated files: 0 false positives, 1,570 -> 1,608 frames sampled. On whole seconds instead (a 1 s clock) tune gained
#: 2 and check and held-out each lost a copy: its frames fell on the second pass's 1 fps windows, 12 frames down to 9.
SPREAD_CLOCK_SECONDS = 1 / GRID_FPS


def escalated_config(config: ScanConfig, frames: list[np.ndarray], border_box: Callable[[], np.ndarray | None],
                     spread: np.ndarray | None = None) -> ScanConfig | None:  # fmt: skip
    """The config to decode the file again with, or None (keep the first decode).

    Only an adaptive first pass in robust mode with too few frames for region
    search (``frames``: its decoded batches), where ``looks_reframed`` holds
    (``border_box()``: the file's flat bars, ``vscan.frames.borders``, asked only then).
    ``spread`` (bool per frame, ``spread_rows``): the frames spread over the file, which are
    counted and looked at; a short file's burst (``Adaptive.burst_max_file_seconds``: every
    frame of 0.5-1 s in its middle) counts for none, so it never blocks the escalation of a
    short picture-in-picture copy. None: every frame.
    """
    policy = config.sampling.policy
    if not config.sampling.region_probe or not isinstance(policy, Adaptive) or config.matching.mode != "robust" or config.models.triage:
        return None  # a second pass (Windows), other policies, triage (>= 8 frames anyway)
    total = sum(len(f) for f in frames)
    spread = np.asarray(spread, bool) if spread is not None and len(spread) == total else np.ones(total, bool)
    count = int(spread.sum())
    if not 2 <= count < REGION_MIN_FRAMES or policy.min_frames >= ESCALATED_FRAMES:
        return None  # counted before the frames are joined: a long file's first pass is not copied whole to be counted
    every = np.concatenate(frames) if len(frames) > 1 else frames[0]
    if not looks_reframed(every if spread.all() else every[spread], border_box()):
        return None
    return replace(config, sampling=replace(config.sampling, policy=replace(policy, min_frames=ESCALATED_FRAMES, spread_clock_seconds=policy.ticks_passed_seconds or SPREAD_CLOCK_SECONDS)))


def first_pass_spread_rows(policy, numbers: list[np.ndarray], times: list[np.ndarray], meta) -> np.ndarray | None:
    """``spread_rows`` of a pass's frames (batches of frame ``numbers`` at ``times``), its keyframes kept; None: no burst."""
    if getattr(policy, "burst_max_file_seconds", None) is None or not len(times):
        return None
    from vscan.decode.spread import spread_rows

    n = np.concatenate(numbers) if len(numbers) > 1 else np.asarray(numbers[0])
    keys = np.isin(n, np.asarray(meta.keyframe_indices or (), np.int64))
    return spread_rows(policy, np.concatenate(times) if len(times) > 1 else times[0], meta.duration_seconds, keys)


#: Frames a PyAV first pass keeps that it decoded on the way to its own
#: (``PyAVDecoder.keep_passing``), for the escalated pass to take (~12 KB each at 64x64).
KEEP_PASSING = 2048


def may_escalate(config: ScanConfig) -> bool:
    """Whether ``escalated_config`` can ask for more frames under ``config`` (so the first pass keeps what it passes)."""
    policy = config.sampling.policy
    return (config.sampling.region_probe and isinstance(policy, Adaptive) and config.matching.mode == "robust"
            and not config.models.triage and policy.min_frames < ESCALATED_FRAMES)  # fmt: skip


def decode_again_if_reframed(path: str, config: ScanConfig, first, decode) -> tuple[ScanConfig | None, int | None, tuple]:
    """``(escalated config or None, frames decoded in all or None when only
    the kept attempt's decoder counts, (attempt, fallback))``: ``first`` is
    ``decode(path, config)``'s result, kept unless ``escalated_config`` asks
    for more frames. The escalated pass shares the first's decode
    (``share_decode``): it takes the first pass's frames and those its
    decoder passed on the way, and decodes only what is still missing; a
    decoder that keeps nothing (decord) decodes the file again with
    ``decode(path, more)``. A failure of the escalated pass keeps the first
    (a file whose keyframes decoded is never lost to the longer decode)."""
    (decoder, meta, tap, frames, numbers, times, *_), _fallback = first
    if not frames:
        return None, None, first
    if meta.num_frames and sum(len(n) for n in numbers) >= meta.num_frames:
        return None, None, first  # the first pass holds every frame of the file (a few-page TIFF, a 3-frame clip): none to add
    spread = first_pass_spread_rows(config.sampling.policy, numbers, times, meta)
    more = escalated_config(config, frames, lambda: tap.add_to({"frames": frames[0]}).get("border_box"), spread)
    if more is None:
        return None, None, first
    try:
        if getattr(decoder, "passing", None) is not None:
            return more, *share_decode(path, more, first)
        again = decode(path, more)
    except (DecodeError, UnsupportedMediaError):
        return None, None, first
    return more, int(decoder.frames_decoded) + int(again[0][0].frames_decoded), again


def _decode_cost(frames: list[int], keyframes, stopped: int | None = None) -> int:
    """Frames decoded to reach ``frames`` (sorted) from their keyframes, forward, at most: an upper bound; ``stopped``: the
    decoder goes on from that frame where ``frames`` all come after it (``PyAVDecoder.stopped_at``)."""
    keys = np.asarray(keyframes or (0,), np.int64)
    cost, reached = 0, stopped if stopped is not None and frames and frames[0] > stopped else -1
    for i in frames:
        key = int(keys[max(0, np.searchsorted(keys, i, side="right") - 1)])
        cost += i - max(key - 1, reached)
        reached = i
    return cost


def _confirm_frames(policy, pts_seconds: np.ndarray, keyframes, duration_seconds: float, frames) -> list[int]:
    """The frames of the confirmation ``decode_ahead`` will ask for after an escalated pass of ``frames``
    (``confirm_ahead.ahead_policy``'s, which imports this module); none when the scan decodes no confirmation ahead."""
    from vscan.decode.adaptive import confirm_pass

    if not (isinstance(policy, Adaptive) and policy.confirm_ahead and policy.confirm_frames and duration_seconds > 0 and len(frames)):
        return []
    confirm = confirm_pass(pts_seconds[np.asarray(sorted(frames), np.int64)], float(duration_seconds), policy.confirm_frames, policy.confirm_reach_seconds)
    return [] if confirm is None else confirm.select(pts_seconds, keyframes, duration_seconds).tolist()


def escalated_cost(policy: Adaptive, pts_seconds: np.ndarray, keyframes, duration_seconds: float, selected: np.ndarray) -> tuple[int, np.ndarray]:
    """(frames ``share_decode`` decodes at most, the frames it gives) if the region probe takes an adaptive
    first pass of the frames ``selected`` again (``escalated_config``: ``ESCALATED_FRAMES`` spread over the file)."""
    more = replace(policy, min_frames=ESCALATED_FRAMES).select(pts_seconds, keyframes, duration_seconds)
    missing = sorted(set(np.asarray(more).tolist()) - set(np.asarray(selected).tolist()))
    return (_decode_cost(missing, keyframes) if missing else 0), np.union1d(more, selected).astype(np.int64)


def share_decode(path: str, more: ScanConfig, first) -> tuple[int, tuple]:
    """The escalated pass from the first's decode: ``more``'s frames are the
    first pass's, those its decoder kept on the way (``passing``), and the
    rest decoded now by the same decoder (``FrameList``); with
    ``skip_nonref`` a frame the decoder skipped is stood in for by the next
    one kept, as the decoder itself does. Returns (frames decoded by both,
    the attempt with the merged frames, in frame order, and a border tap
    over them)."""
    from vscan.decode.sampling import FrameList
    from vscan.frames.borders import BorderTap
    from vscan.frames.resize import to_square

    (decoder, meta, tap, frames, numbers, times, truncation, view), fallback = first
    first_decoded = int(decoder.frames_decoded)
    pts_seconds = decoder.frame_times(Path(path))  # the index pass's, cached
    wanted = more.sampling.policy.select(pts_seconds, meta.keyframe_indices, meta.duration_seconds)
    have = {int(i): f for batch_numbers, batch in zip(numbers, frames) for i, f in zip(batch_numbers.tolist(), batch)}
    kept = dict(decoder.passing)
    decoder.passing = {}
    skips = decoder.skip_nonref and getattr(decoder, "stand_in", True)
    stand_in = sorted(kept) if skips else []
    missing = []
    from vscan.decode.spread import burst_mask

    burst = burst_mask(more.sampling.policy, pts_seconds, meta.duration_seconds)
    for i in wanted.tolist():
        if i in have or (burst[i] and skips and any(j in have for j in range(i + 1, i + 5))):
            continue  # (a burst frame the first pass's decoder skipped, standing in the next one, as the first pass did)
        if i in kept:
            have[i] = kept[i]
            continue
        later = next((j for j in stand_in if i < j <= i + 4 and j not in have), None)  # the next decoded frame (a skipped non-reference one)
        if later is not None:
            have[later] = kept[later]
        else:
            missing.append(i)
    decoded = 0
    keys, stopped = meta.keyframe_indices, decoder.stopped_at(path) if hasattr(decoder, "stopped_at") else None

    def cost(frames: list[int]) -> int:
        """The first pass's frames, ``frames`` decoded on from where it stopped (or their keyframes), and the confirmation
        decoded ahead after them (those of its frames neither pass has: the probe's decode keeps what it passes)."""
        confirm = [i for i in _confirm_frames(more.sampling.policy, pts_seconds, keys, meta.duration_seconds, [*have, *frames])
                   if i not in have and i not in kept and i not in frames]  # fmt: skip
        on = sorted({*frames, *(i for i in confirm if stopped is not None and i > stopped)})  # passed by the probe's decode
        return first_decoded + _decode_cost(on, keys, stopped) + _decode_cost(sorted(set(confirm) - set(on)), keys)

    if missing and _spread(more, pts_seconds, have, meta) >= REGION_MIN_FRAMES and cost(missing) > meta.num_frames:
        # enough frames for region search, and decoding the rest would decode frames twice: the first of them that fit in
        # the file's frames (a short copy's burst decoded to its middle: a box found on its first half alone was misplaced)
        missing = missing[: next((k for k in range(len(missing), -1, -1) if cost(missing[:k]) <= meta.num_frames), 0)]
    if missing:
        square = (more.sampling.frame_size, more.sampling.frame_size)
        for batch in decoder.iter_frames(path, FrameList(tuple(missing)), batch_size=64, size=square):
            have.update({int(i): f for i, f in zip(batch.frame_indices.tolist(), batch.rgb)})
        decoded = int(decoder.frames_decoded)
    # what either pass decoded on the way and no pass took stays kept: a confirmation decoded ahead takes its frames there
    decoder.passing = {**{i: f for i, f in kept.items() if i not in have}, **(decoder.passing if missing else {})}
    order = np.asarray(sorted(have), np.int64)  # (the first pass's frames, more frames taken and decoded)
    merged = np.stack([have[i] for i in order.tolist()])
    merged_tap = BorderTap(lambda rgb: to_square(rgb, more.sampling.frame_size), enabled=tap.enabled)
    merged_tap.push(merged)
    decoder.frames_decoded = first_decoded + decoded
    attempt = (decoder, meta, merged_tap, [merged], [order], [pts_seconds[order]], truncation, view)
    return first_decoded + decoded, (attempt, fallback)


def _spread(more: ScanConfig, pts_seconds: np.ndarray, have: dict, meta) -> int:
    """Frames of ``have`` (index: frame) spread over the file: a short file's burst counts for none (``spread_count``)."""
    from vscan.decode.spread import spread_count

    order = np.asarray(sorted(have), np.int64)
    return spread_count(more.sampling.policy, pts_seconds[order], meta.duration_seconds, np.isin(order, np.asarray(meta.keyframe_indices or (), np.int64)))

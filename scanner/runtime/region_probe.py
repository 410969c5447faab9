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

import numpy as np

from vscan.config import ScanConfig
from vscan.decode.sampling import Adaptive
from vscan.errors import DecodeError, UnsupportedMediaError
from vscan.frames.regions import MIN_FRAMES as REGION_MIN_FRAMES
from vscan.frames.straight_edges import looks_reframed

__all__ = ["ESCALATED_FRAMES", "REGION_MIN_FRAMES", "decode_again_if_reframed", "escalated_config"]

#: First-pass frames of a file that looks re-framed: on bench_robustness's
#: re-framed kinds, adaptive recall was 0.90 with 4 and 0.93 with 6 for every
#: file; 8 found no more picture-in-picture or split-screen copies than 6.
#: With region search's later fixes (vscan.frames.boxes) 6 gives 8/8 of
#: bench_robustness's picture-in-picture and 8/8 of its split screens, and
#: 22/24 and 24/24 on seeds 301-324; 8 gave 7/8 picture-in-picture there
#: (one first-pass match was not decided again on both passes' frames).
ESCALATED_FRAMES = 6


def escalated_config(config: ScanConfig, frames: list[np.ndarray], border_box: Callable[[], np.ndarray | None]) -> ScanConfig | None:
    """The config to decode the file again with, or None (keep the first decode).

    Only an adaptive first pass in robust mode with too few frames for region
    search (``frames``: its decoded batches), where ``looks_reframed`` holds
    (``border_box()``: the file's flat bars, ``vscan.frames.borders``, asked only then).
    """
    policy = config.sampling.policy
    if not config.sampling.region_probe or not isinstance(policy, Adaptive) or config.matching.mode != "robust" or config.models.triage:
        return None  # a second pass (Windows), other policies, triage (>= 8 frames anyway)
    count = sum(len(f) for f in frames)
    if not 2 <= count < REGION_MIN_FRAMES or policy.min_frames >= ESCALATED_FRAMES:
        return None
    if not looks_reframed(np.concatenate(frames) if len(frames) > 1 else frames[0], border_box()):
        return None
    return replace(config, sampling=replace(config.sampling, policy=replace(policy, min_frames=ESCALATED_FRAMES)))


def decode_again_if_reframed(path: str, config: ScanConfig, first, decode) -> tuple[ScanConfig | None, int, tuple]:
    """``(escalated config or None, frames the first decode cost when it was
    replaced, (attempt, fallback))``: ``first`` is ``decode(path, config)``'s
    result, kept unless ``escalated_config`` asks for more frames and
    ``decode(path, more)`` succeeds (a file whose keyframes decoded is never
    lost to the longer decode: its failure keeps the first)."""
    (decoder, _meta, tap, frames, *_), _fallback = first
    if not frames:
        return None, 0, first
    more = escalated_config(config, frames, lambda: tap.add_to({"frames": frames[0]}).get("border_box"))
    if more is None:
        return None, 0, first
    try:
        again = decode(path, more)
    except (DecodeError, UnsupportedMediaError):
        return None, 0, first
    return more, int(decoder.frames_decoded), again

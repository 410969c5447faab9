"""Cuts coded without a keyframe, marked from packet sizes (issue #27: short evidence inside longer video).

An encoder with a fixed GOP and no scene-cut keyframes (x264 ``scenecut=0``, ``keyint`` of several
seconds, VP9's fixed keyframe interval) still spends a large packet on the first frame after a cut:
nothing of the new picture can be predicted from the old one, so that frame is coded mostly intra.
The index pass already reads every packet's size, flag and timestamp, so marking those packets costs
no decoding. Adaptive sampling's first pass then also decodes the frame at a marked cut that lies
in a wide gap between its keyframes (``vscan.decode.adaptive.Adaptive.cut_frames``): a 3 s excerpt
between keyframes 9 s apart is otherwise never seen. While a scan decodes confirmations ahead (most
first passes decide: an archive) only a file whose first pass does not decide decodes them, in its
second pass, with frames enough after each to decide there (``AtCuts``): a known copy is only
confirmed (issue #30: cut frames were 583 of the 4,013 frames decoded on its archive, all in files
whose first pass decided).

A cut is a non-key packet at least ``CUT_SIZE_RATIO`` times the 80th percentile of the sizes of the
non-key packets within ``CUT_WINDOW_SECONDS`` of it (the larger predicted frames, which a cut's
packet dwarfs), the only one that large within ``CUT_ISOLATION_SECONDS`` (AV1's and VP9's periodic
reference frames are not cuts), not within ``CUT_MIN_SPACING_SECONDS`` of the last cut marked
(a flash, a fade: one mark). Whether a keyframe shows the new picture already is the first pass's
to judge (``cut_fills``: a cut with a first-pass frame soon after it is not sampled).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vscan.decode.sampling import SamplingDecision, Windows, _plus_frames_at

__all__ = ["CUT_SIZE_RATIO", "AtCuts", "KeyframeIndices", "cut_fills", "first_pass_cuts", "mark_cuts", "with_cuts"]

#: A cut's packet is at least this many times its neighbours' ``CUT_REFERENCE_PERCENTILE``.
CUT_SIZE_RATIO = 2.5
#: The neighbours' size a cut is compared with: their 80th percentile, the typical size of the
#: largest predicted frames (P frames among B frames, 1 in 4 in x264's default pattern), which a
#: cut's mostly intra-coded packet still dwarfs; their median would be the B frames' and mark every P.
CUT_REFERENCE_PERCENTILE = 80.0
#: A cut is alone: no other predicted packet within this many seconds is this share of its size (``_isolated``).
#: (0.6 dropped a held-out VP9 excerpt's cut: the busy scene before it had packets 0.66 of its size.)
CUT_ISOLATION_SECONDS, CUT_ISOLATION_SHARE = 1.5, 0.7
#: ... leaving out the packets this close to it (a cut's own next packet can be large too).
CUT_ISOLATION_BESIDE_SECONDS = 0.1
#: Neighbours are the non-key packets within this many seconds either side.
CUT_WINDOW_SECONDS = 1.0
#: Fewest neighbours for a median worth comparing with (a very short file marks nothing).
CUT_MIN_NEIGHBOURS = 6
#: A cut this close to the last cut marked is not marked.
CUT_MIN_SPACING_SECONDS = 1.0


class KeyframeIndices(tuple):
    """A file's keyframe indices (presentation order), as ``VideoMetadata.keyframe_indices``
    holds them, carrying the cuts coded without a keyframe that the index pass marked
    (``cuts``: frame indices, presentation order). A sampling policy sees only the keyframe
    indices it is given; one that can use cuts (Adaptive's first pass) reads ``cuts``, the
    others see a plain tuple of keyframes."""

    cuts: tuple[int, ...]

    def __new__(cls, keys: Sequence[int], cuts: Sequence[int] = ()) -> "KeyframeIndices":
        self = super().__new__(cls, keys)
        self.cuts = tuple(int(c) for c in cuts)
        return self

    def __reduce__(self):  # pickled whole (Ray carries VideoMetadata), cuts included
        return (KeyframeIndices, (tuple(self), self.cuts))


def mark_cuts(pts_seconds: np.ndarray, sizes: np.ndarray, keyflags: np.ndarray,
              ratio: float = CUT_SIZE_RATIO) -> tuple[int, ...]:  # fmt: skip
    """Frame indices (into the presentation-order arrays) of cuts coded without a keyframe,
    strongest first: non-key packets ``ratio`` times the ``CUT_REFERENCE_PERCENTILE`` of the
    non-key packets within ``CUT_WINDOW_SECONDS``; of marks closer than
    ``CUT_MIN_SPACING_SECONDS``, the strongest."""
    t = np.asarray(pts_seconds, np.float64)
    size = np.asarray(sizes, np.float64)
    key = np.asarray(keyflags, bool)
    if len(t) != len(size) or len(t) != len(key):
        raise ValueError(f"pts, sizes and keyflags differ in length: {len(t)}, {len(size)}, {len(key)}")
    pred = np.flatnonzero(~key)
    if len(pred) <= CUT_MIN_NEIGHBOURS:
        return ()
    pred_t, pred_size = t[pred], size[pred]
    strength = _strengths(pred_t, pred_size, ratio)
    found = [(float(strength[j]), int(j)) for j in np.flatnonzero(strength >= ratio) if _isolated(pred_t, pred_size, int(j))]
    kept: list[int] = []
    for _, j in sorted(found, key=lambda f: (-f[0], f[1])):
        if all(abs(pred_t[j] - pred_t[k]) >= CUT_MIN_SPACING_SECONDS for k in kept):
            kept.append(j)
    return tuple(int(pred[j]) for j in kept)


def _isolated(pred_t: np.ndarray, pred_size: np.ndarray, j: int) -> bool:
    """Whether packet ``j`` is alone in being large within ``CUT_ISOLATION_SECONDS``: AV1's and
    VP9's golden and alternate reference frames are as large, but come every second or so
    (libaom: every 32 frames; on issue #30's archive they were 15 of 19 marks in one AV1 copy)."""
    dt = np.abs(pred_t - pred_t[j])
    near = (dt <= CUT_ISOLATION_SECONDS) & (dt > CUT_ISOLATION_BESIDE_SECONDS)
    return not bool((pred_size[near] >= CUT_ISOLATION_SHARE * pred_size[j]).any())


def _strengths(pred_t: np.ndarray, pred_size: np.ndarray, ratio: float) -> np.ndarray:
    """Each non-key packet's size over the ``CUT_REFERENCE_PERCENTILE`` of its neighbours (the
    packets within about ``CUT_WINDOW_SECONDS`` either side, by count at the file's packet rate;
    reflected at the ends); 0 where it cannot reach ``ratio`` (not compared: an hour of video is
    90,000 packets, and only the few much larger than the file's small ones are candidates)."""
    n = len(pred_size)
    span = float(pred_t[-1] - pred_t[0]) if n > 1 else 0.0
    rate = (n - 1) / span if span > 0 else 25.0
    half = int(min(max(CUT_MIN_NEIGHBOURS // 2, round(CUT_WINDOW_SECONDS * rate)), max(1, (n - 1) // 2)))
    out = np.zeros(n)
    candidates = np.flatnonzero(pred_size >= ratio * float(np.percentile(pred_size, 20)))
    if not len(candidates):
        return out
    padded = np.pad(pred_size, half, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)[candidates]
    near = np.delete(windows, half, axis=1)  # the packet itself is not its own neighbour
    out[candidates] = pred_size[candidates] / np.maximum(1.0, np.percentile(near, CUT_REFERENCE_PERCENTILE, axis=1))
    return out


def with_cuts(keyframe_indices: Sequence[int], pts_seconds: np.ndarray, sizes: np.ndarray | None,
              keyflags: np.ndarray) -> KeyframeIndices:  # fmt: skip
    """``keyframe_indices`` carrying the cuts marked in the packets (none without sizes)."""
    cuts = () if sizes is None else mark_cuts(pts_seconds, sizes, keyflags)
    return KeyframeIndices(keyframe_indices, cuts)


#: Cuts a second pass looks after in one file, at most (each costs decoding from its keyframe on).
CUT_FRAMES_PER_FILE = 4
#: Only cuts in gaps between first-pass frames wider than this are sampled.
CUT_MIN_GAP_SECONDS = 2.0


def cut_fills(pts_seconds: np.ndarray, chosen: np.ndarray, cuts: Sequence[int], duration_seconds: float,
              max_frames: int = CUT_FRAMES_PER_FILE, min_gap_seconds: float = CUT_MIN_GAP_SECONDS,
              keyframes: Sequence[int] | None = None, reach_seconds: float | None = None, far_frames: int = 0) -> np.ndarray:  # fmt: skip
    """The marked ``cuts`` a first pass that samples ``chosen`` should add: those in a gap between
    chosen frames (the file's end closes the last) wider than ``min_gap_seconds`` whose next chosen
    frame is over ``CUT_MIN_SPACING_SECONDS`` away (else that frame shows the new picture): at most
    ``max_frames`` in the order given (``mark_cuts``: strongest first), and with each, the cuts
    before it in its gap (decoding forward to it passes them: no more frames decoded), up to
    twice ``max_frames`` in all; sorted frame indices. ``reach_seconds``: only cuts at most this far after the keyframe
    before them, but for the first ``far_frames`` of those further (strongest first)."""
    pts = np.asarray(pts_seconds, np.float64)
    cuts = np.asarray([c for c in cuts if 0 <= c < len(pts)], np.int64)
    if not len(cuts) or max_frames < 1:
        return np.zeros(0, np.int64)
    times = np.unique(pts[np.asarray(chosen, np.int64)])
    edges = np.append(times, max(float(duration_seconds), float(times[-1]) if len(times) else 0.0))
    at = pts[cuts]
    slot = np.searchsorted(edges, at, side="right") - 1  # the gap [edges[slot], edges[slot + 1]) holding the cut
    ok = (slot >= 0) & (slot < len(edges) - 1)
    cuts, at, slot = cuts[ok], at[ok], slot[ok]
    gap = edges[slot + 1] - edges[slot]
    keep = (gap > min_gap_seconds) & (edges[slot + 1] - at > CUT_MIN_SPACING_SECONDS)
    if reach_seconds is not None and keyframes is not None and len(keyframes):
        key_t = np.sort(pts[np.asarray(keyframes, np.int64)])
        before = key_t[np.clip(np.searchsorted(key_t, at, side="right") - 1, 0, len(key_t) - 1)]
        near = at - before <= reach_seconds  # decoded from that keyframe on: at most this many seconds of frames
        far = np.flatnonzero(keep & ~near)[:far_frames]
        keep &= near
        keep[far] = True
    cuts, at, slot = cuts[keep], at[keep], slot[keep]
    taken: list[int] = []
    for c, t, g in zip(cuts[:max_frames].tolist(), at[:max_frames], slot[:max_frames]):
        passed = [int(x) for x in cuts[(slot == g) & (at < t)] if int(x) not in taken]
        taken += [c, *passed][: max(0, 2 * max_frames - len(taken))]
    return np.unique(np.asarray(taken, np.int64))


def first_pass_cuts(policy: Any, decoder: Any, meta: Any, path: str, sampled: np.ndarray) -> tuple[float, ...]:
    """The times of the cuts a second pass looks after if ``policy``'s first pass (frame indices
    ``sampled``) does not decide (``Adaptive.cut_seconds``); () where the policy takes none (a second
    pass: ``AtCuts.cut_seconds`` is its cuts' times, ``Confirm``) or the decoder marked none (PyAV's index pass marks them)."""
    pick = getattr(getattr(policy, "inner", policy), "cut_seconds", None)
    if not callable(pick) or not getattr(meta.keyframe_indices, "cuts", ()) or not hasattr(decoder, "frame_times") or not len(sampled):
        return ()
    return pick(decoder.frame_times(Path(path)), meta.keyframe_indices, meta.duration_seconds, sampled)  # cached: no second demux


def cut_burst(cut_seconds: Sequence[float], fps: float, after_seconds: float) -> np.ndarray:
    """Times at ``fps`` from each cut to ``after_seconds`` after it: the frames short evidence spliced
    in at the cut needs to be decided (vscan.bank.short: 3 frames over 2.5 s)."""
    if not len(cut_seconds):
        return np.zeros(0)
    steps = np.arange(0.0, after_seconds + 1e-9, 1.0 / fps)
    return np.unique(np.add.outer(np.asarray(cut_seconds, np.float64), steps).ravel())


@dataclass(frozen=True)
class AtCuts(Windows):
    """A second pass's windows (none where the first pass matched nothing) plus ``cut_fps`` frames
    over ``after_seconds`` from each cut at ``cut_seconds`` (``cut_burst``): the cuts coded without
    a keyframe that an undecided first pass passed over (``Adaptive.cut_seconds``)."""

    cut_seconds: tuple[float, ...] = ()
    cut_fps: float = 2.0
    after_seconds: float = 4.0

    def describe(self) -> str:
        cuts = f"{len(self.cut_seconds)} cuts ({self.cut_fps:g} fps for {self.after_seconds:g} s after each)"
        return f"{super().describe()} + {cuts}" if self.spans else f"AtCuts({cuts}: the first pass matched nothing)"

    def decide(self, pts_seconds, keyframe_indices, duration_seconds) -> SamplingDecision:
        decision = super().decide(pts_seconds, keyframe_indices, duration_seconds)
        targets = cut_burst(self.cut_seconds, self.cut_fps, self.after_seconds)
        return _plus_frames_at(decision, pts_seconds, targets, duration_seconds, f"after {len(self.cut_seconds)} cuts")

"""Adaptive sampling: a cheap first pass (keyframes plus gap fills), then, where it matched,
a dense second pass in windows around the matched stretches, or a one-frame confirmation when
the first pass already decides (``first_pass_decides``); ``WithTriage`` adds triage frames.
The fixed policies it builds on are in vscan.decode.sampling."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vscan.decode.cuts import CUT_FRAMES_PER_FILE, AtCuts, cut_burst, cut_fills
from vscan.decode.sampling import (
    FixedRate,
    LookWindows,
    SamplingDecision,
    SamplingPolicy,
    Windows,
    _frames_at,
    _indices,
    _merge_spans,
    sparse_looks,
)
from vscan.decode.spread import burst_rows, first_pass_spread, short_burst, ticks_passed, widest_middle
from vscan.decode.triage_sampling import WithTriage
from vscan.errors import ConfigError

__all__ = ["Adaptive", "Confirm", "FixedRateBurst", "LookWindows", "WithTriage", "burst_rows", "confirm_pass", "first_pass_decides", "first_pass_spread", "short_burst", "widest_middle"]


#: Paths of matches found on part of the frame (an inset, a window, an
#: off-centre crop): their boxes and spans come from few frames, so they are
#: never decided by the first pass alone (the dense pass searches again).
_PART_PATHS = ("region", "window", "off-centre", "grid-window", "window-916", "rotated")
#: Share of the first pass's frames (quality-filtered, unique) a deciding match holds.
DECIDES_QUERY_PCT = 80.0
#: Distinct first-pass frames a deciding match holds (at one consistent time lag when aligned).
DECIDES_MIN_FRAMES = 2
#: A scan against a ``--rows sparse`` bank: files up to this long take ``Adaptive``'s burst (``burst_max_file_seconds``).
SPARSE_BURST_MAX_FILE_SECONDS = 6.0


def first_pass_decides(matches: Sequence) -> bool:
    """Whether adaptive sampling's first pass already decides the file: a
    whole-frame perceptual match (``vscan.bank.match.Match``) decided by the
    matcher's own rules (vPDQ's query%/compared% or a time-aligned run) on at
    least ``DECIDES_MIN_FRAMES`` distinct frames and ``DECIDES_QUERY_PCT`` of
    the first pass's frames, spread over the file (keyframes and gap fills),
    and no other bank entry with a frame matched outside its query span
    (another known clip in the file, which denser frames might decide)."""
    def decides(m) -> bool:
        return (bool(getattr(m, "is_match", False)) and getattr(m, "signal", "pdq") == "pdq"
                and getattr(m, "decided_by", "vpdq") in ("vpdq", "alignment")
                and not any(p in _PART_PATHS for p in getattr(m, "path", ()))
                and float(getattr(m, "query_pct", 0.0)) >= DECIDES_QUERY_PCT
                and int(getattr(m, "num_query_hashes_matched", 0)) >= DECIDES_MIN_FRAMES)  # fmt: skip

    deciding = [m for m in matches if decides(m)]
    if not deciding:
        return False
    lo = min(m.query_span_seconds[0] for m in deciding)
    hi = max(m.query_span_seconds[1] for m in deciding)
    for m in matches:
        start, end = getattr(m, "query_span_seconds", (math.nan, math.nan))
        if all(m is not d for d in deciding) and math.isfinite(start) and math.isfinite(end) and (start < lo - 1e-6 or end > hi + 1e-6):
            return False
    return True


@dataclass(frozen=True)
class Confirm(SamplingPolicy):
    """A few frames that confirm a first pass that already decided: the
    frames on screen at ``seconds`` (the middles of its widest sampling gaps).
    ``max_gap_seconds``: the widest gap between the two passes' frames, so the
    record says how coarsely spans and matched seconds were measured."""

    seconds: tuple[float, ...]
    max_gap_seconds: float
    name = "confirm"

    def describe(self) -> str:
        return (f"Confirm({len(self.seconds)} frames: the first pass decided; spans and matched seconds "
                f"measured on sparse frames up to {self.max_gap_seconds:.1f} s apart)")  # fmt: skip

    def decide(self, pts_seconds, keyframe_indices, duration_seconds) -> SamplingDecision:
        pts = np.asarray(pts_seconds, np.float64)
        if len(pts) == 0 or not self.seconds:
            return SamplingDecision(np.zeros(0, np.int64), self.name, "no frames")
        chosen = _frames_at(pts, np.asarray(self.seconds, np.float64))
        return SamplingDecision(chosen, self.name, f"{len(chosen)} frames to confirm the first pass")


def confirm_pass(sampled_seconds: Sequence[float], duration_seconds: float, frames: int,
                 reach_seconds: float | None = None) -> "Confirm | None":  # fmt: skip
    """The ``Confirm`` pass for a first pass sampled at ``sampled_seconds``:
    in each of its ``frames`` widest gaps (the stretch after the last frame
    included), the middle, or ``reach_seconds`` after the gap's first frame
    when that comes sooner (decoding forward from a keyframe reaches it in
    that many seconds of frames, not half a GOP); None for ``frames`` 0 or
    nothing left between its frames. ``max_gap_seconds`` is measured on the
    frames chosen."""
    times = np.unique(np.clip(np.asarray(sampled_seconds, np.float64), 0.0, duration_seconds))
    edges = np.append(times, duration_seconds)
    gaps = np.diff(edges)
    if frames < 1 or not len(gaps):
        return None
    order = np.argsort(-gaps, kind="stable")[:frames]
    order = order[gaps[order] > 2.0 / 25]  # a gap under two frames has nothing between
    if not len(order):
        return None
    into = gaps[order] / 2 if reach_seconds is None else np.minimum(gaps[order] / 2, reach_seconds)
    mids = np.sort(edges[order] + into)
    widest = float(np.diff(np.unique(np.concatenate([edges, mids]))).max())
    return Confirm(tuple(float(t) for t in mids), widest)


@dataclass(frozen=True)
class Adaptive(SamplingPolicy):
    """Keyframes first; densify only where the file shows signals.

    First pass: the keyframes (cheap: nothing else is decoded), plus one
    frame every ``max_gap_seconds`` inside longer keyframe gaps so that no
    stretch of video goes unseen. After matching, ``refine`` asks for a
    second pass at ``dense_fps`` in windows of ``window_seconds`` around every
    stretch with matched frames (near-matches included), within a budget of
    ``max_frames`` per file. Exact file-digest hits need no second pass.
    """

    dense_fps: float = 1.0
    window_seconds: float = 8.0
    max_gap_seconds: float = 10.0
    max_frames: int = 600
    #: Keyframes closer than this to the last one kept are skipped (all-intra
    #: video has a keyframe on every frame).
    min_keyframe_spacing_seconds: float = 1.0
    #: The first pass has at least this many frames (evenly spread when the
    #: keyframes are fewer): finding a static overlay (vscan.frames.overlays)
    #: needs two frames of a file. More would cost half a GOP of decoding each.
    min_frames: int = 2
    #: One frame short of ``min_frames`` (a short file with one keyframe), True: the other at the middle of the widest
    #: stretch without one (vscan.decode.spread.first_pass_spread: the decode stops at half the file, not 3/4), against a
    #: bank with a row for every frame (not ``whole_seconds`` nor a burst: rows on a clock, where each frame is a chance to
    #: land near one). Off: on the archive bench it cut frames decoded 2,538 -> 2,387 with the same records, but the
    #: held-out media bank lost pattern overlay_onto_screenshot (a 6.9 s single-keyframe copy that looks re-framed: the
    #: region probe then takes only the frames the first pass passed, its first half, as decoding more would exceed the file).
    spread_middle: bool = False
    #: A first pass that already decides (``first_pass_decides``: a strong,
    #: consistent whole-frame match over the file) is confirmed by this many
    #: more frames (``Confirm``: the middles of its widest sampling gaps)
    #: instead of ``dense_fps`` windows over its whole length; None: dense
    #: windows as for any other hit.
    confirm_frames: int | None = 1
    #: Decode that confirmation ahead, in the first pass's decode task (its
    #: decoder still open), so a file whose first pass decides costs one decode
    #: task and one model call (vscan.runtime.confirm_ahead). None: the scan
    #: decides as it goes (ahead while most first passes decide: an archive of
    #: known material; not on a sweep, where it would decode frames for nothing).
    confirm_ahead: bool | None = None
    #: The confirming frame is at most this far after the first-pass frame
    #: that opens its gap (a keyframe, mostly), not at the gap's middle: the
    #: decoder reaches it in this many seconds of frames instead of half a GOP
    #: (issue #30: half a GOP was 44% of an archive's decode). The record's
    #: ``max_gap_seconds`` says how far apart the frames then are. None: the middle.
    #: A quarter second (was 1 s): on the archive bench the frames decoded to confirm
    #: went 2,175 -> 700 (the first passes' own: 931), every file's matched entries,
    #: spans and matched seconds the same but for one file (its confirming frame
    #: matched at 0.25 s, missed at 1 s); a 10 s GOP now says 9.75 s apart, not 9 s.
    confirm_reach_seconds: float | None = 0.25
    #: Short evidence (a 2.5-5 s excerpt inside a longer file, issue #27): a
    #: near-match (not decided) within ``short_max_distance`` bits on at most
    #: two first-pass frames of a file longer than ``short_min_file_seconds``
    #: is searched again at ``short_fps`` within ``short_window_seconds`` of it,
    #: so the excerpt shows the frames a short run needs (vscan.bank.short:
    #: 3 frames over 2.5 s); at ``dense_fps`` a 3 s excerpt shows 2-3. None: off.
    short_fps: float | None = 5.0
    short_window_seconds: float = 5.0
    short_max_distance: int = 20
    short_min_file_seconds: float = 12.0
    #: A file of at most this long (``vscan.bank.short.SHORT_FILE_SECONDS``, decided as a whole) with a weak hit within
    #: ``short_max_distance`` is searched again at ``short_fps`` too, not ``dense_fps``: a 4 s copy at 1 fps shows 4
    #: frames, and one or two edited past the bar (shapes, text over fast footage) leave it short of half. Same session,
    #: adaptive, on bench_generalise's splits (full / sparse bank): tune +0 / +1, check +1 / +2, held-out +0 / +1
    #: (`overlay_text`, `crop_offcentre`; docs/banks.md); 600 unrelated files: the same frames sampled, 0 false positives. None: off.
    short_file_seconds: float | None = 6.0
    #: Cuts coded without a keyframe (vscan.decode.cuts: marked from packet sizes by the index
    #: pass) in a gap over 2 s between first-pass frames: the first pass of a file longer than
    #: ``short_min_file_seconds`` also decodes the frame at up to this many, strongest first (and
    #: those its decode passes), so a short excerpt between keyframes 10 s apart is seen (issue #27);
    #: a hit there gets its second pass's windows. While the scan decodes confirmations ahead
    #: (``confirm_ahead`` True: most first passes decide, an archive of known material) the first
    #: pass takes none: a file whose first pass decides is only confirmed (issue #30), and one that
    #: does not has a second pass (``AtCuts``) that decodes ``cut_fps`` frames over
    #: ``cut_after_seconds`` from each, enough for a clip spliced in there to decide in that pass.
    #: Shorter files: none (a split screen's own cuts moved its frames). 0: off.
    cut_frames: int = CUT_FRAMES_PER_FILE
    cut_fps: float = 2.0
    #: (2.5 s, the short rule's least: a held-out insert whose frames after 2 s are flat went unseen)
    cut_after_seconds: float = 4.0
    #: ... and only cuts at most this far after the keyframe before them (decoded from it on; issue #30's archive
    #: has a cut 5.4 s into every 10 s GOP: unbounded, its frames decoded went 3,368 -> 8,831). None: any.
    cut_reach_seconds: float | None = 1.5
    #: ... but an archive scan's ``AtCuts`` pass (its first pass decided nothing) also takes this many further, strongest
    #: first: a clip spliced far from a keyframe (full bank: tune, check, held-out +1 each; the archive bench's CPU +10%:
    #: docs/matching-quality.md, "Far cuts in an archive's second pass"). 0: none.
    at_cuts_far_frames: int = 2
    #: The first pass's spread frames and gap fills on whole seconds: a hash list at one hash a second (the reference
    #: vPDQ's rate, PDQ per image grabs) holds the frames at whole seconds, and a frame half a second off meets none of
    #: them (issue #27; set for banks built from lists alone by vscan.bank.query_side.scan_config_for_bank).
    whole_seconds: bool = False
    #: The spread frames also on whole seconds (a ``--rows sparse`` bank's ticks), beside where they fall (a trimmed copy's
    #: chance): ``vscan.decode.spread.first_pass_spread``'s ``seconds_too`` (set by vscan.bank.query_side; docs/banks.md).
    spread_on_seconds_too: bool = False
    #: The even spread's frames (``min_frames`` over the file) moved back to the ticks of a clock of this many seconds
    #: where that keeps them apart (``vscan.decode.spread.on_clock``). The region probe's 6 frames take a full bank's grid
    #: clock (``vscan.runtime.region_probe.SPREAD_CLOCK_SECONDS``): its boxes meet the grid and pane windows on their ticks.
    #: None: where they fall.
    spread_clock_seconds: float | None = None
    #: The first pass also hashes the frames on multiples of this many seconds that its decode passes anyway (from each chosen
    #: frame's keyframe on: ``vscan.decode.spread.ticks_passed``): hashing, not decoding. A ``--rows sparse`` bank's frame rows are
    #: on such a clock where footage is fast, and its searches' cuts (turned, off-centre) meet its rows there only. None: off.
    ticks_passed_seconds: float | None = None
    #: A ``--rows sparse`` bank holds fast footage only at its ticks (a row every 0.5 s): a short copy trimmed off them shows no
    #: frame within 80 bits of a row. Files up to this long also decode every frame of ``burst_seconds`` in their middle, one on
    #: a tick, whose weak hit names the look (``LookWindows``). None: off (vscan.bank.query_side.scan_config_for_bank sets it).
    burst_max_file_seconds: float | None = None
    burst_seconds: float = 0.5
    name = "adaptive"

    def __post_init__(self) -> None:
        FixedRate(self.dense_fps)
        FixedRate(self.cut_fps)
        if not self.cut_after_seconds >= 0:
            raise ConfigError(f"Invalid cut_after_seconds ({self.cut_after_seconds!r}). Supported values are seconds >= 0.")
        if self.short_fps is not None:
            FixedRate(self.short_fps)
        if self.confirm_frames is not None and (isinstance(self.confirm_frames, bool) or not isinstance(self.confirm_frames, int) or self.confirm_frames < 0):
            raise ConfigError(f"Invalid confirm_frames ({self.confirm_frames!r}). Supported values are None or integers >= 0.")
        if isinstance(self.cut_frames, bool) or not isinstance(self.cut_frames, int) or self.cut_frames < 0:
            raise ConfigError(f"Invalid cut_frames ({self.cut_frames!r}). Supported values are integers >= 0.")
        if self.cut_reach_seconds is not None and not self.cut_reach_seconds > 0:
            raise ConfigError(f"Invalid cut_reach_seconds ({self.cut_reach_seconds!r}). Supported values are None or seconds > 0.")
        if not (isinstance(self.at_cuts_far_frames, int) and self.at_cuts_far_frames >= 0):
            raise ConfigError(f"Invalid at_cuts_far_frames ({self.at_cuts_far_frames!r}). Supported values are integers >= 0.")
        if self.confirm_ahead not in (None, True, False):
            raise ConfigError(f"Invalid confirm_ahead ({self.confirm_ahead!r}). Supported values are None, True and False.")
        if self.confirm_reach_seconds is not None and not self.confirm_reach_seconds > 0:
            raise ConfigError(f"Invalid confirm_reach_seconds ({self.confirm_reach_seconds!r}). Supported values are None or seconds > 0.")
        if self.spread_clock_seconds is not None and not self.spread_clock_seconds > 0:
            raise ConfigError(f"Invalid spread_clock_seconds ({self.spread_clock_seconds!r}). Supported values are None or seconds > 0.")
        if self.ticks_passed_seconds is not None and not self.ticks_passed_seconds > 0:
            raise ConfigError(f"Invalid ticks_passed_seconds ({self.ticks_passed_seconds!r}). Supported values are None or seconds > 0.")
        if self.burst_max_file_seconds is not None and not (self.burst_max_file_seconds > 0 and self.burst_seconds > 0):
            raise ConfigError(f"Invalid burst ({self.burst_max_file_seconds!r}, {self.burst_seconds!r}). Supported values are None or seconds > 0.")
        if not (self.window_seconds >= 0 and self.max_gap_seconds > 0 and self.max_frames >= 1):
            raise ConfigError(
                f"Invalid Adaptive({self.window_seconds}, {self.max_gap_seconds}, {self.max_frames}). "
                "Supported values are window_seconds >= 0, max_gap_seconds > 0, max_frames >= 1."
            )

    def describe(self) -> str:
        burst = f", a {self.burst_seconds:g} s burst in files up to {self.burst_max_file_seconds:g} s" if self.burst_max_file_seconds is not None else ""
        seconds = ", whole seconds" if self.whole_seconds else ", spread on whole seconds too" if self.spread_on_seconds_too else ""
        seconds += f", spread on {self.spread_clock_seconds:g} s ticks" if self.spread_clock_seconds is not None else ""
        seconds += f", frames passed on {self.ticks_passed_seconds:g} s ticks" if self.ticks_passed_seconds is not None else ""
        return f"Adaptive(keyframes, then {self.dense_fps:g} fps near signals{seconds}{burst})"

    def decide(self, pts_seconds, keyframe_indices, duration_seconds) -> SamplingDecision:
        pts = np.asarray(pts_seconds, np.float64)
        n = len(pts)
        if n == 0:
            return SamplingDecision(np.zeros(0, np.int64), self.name, "no frames")
        keys = _indices(keyframe_indices if keyframe_indices is not None else [0])
        keys = keys[(keys >= 0) & (keys < n)]
        if len(keys) == 0:
            keys = np.zeros(1, np.int64)
        every_key = keys  # where a decode starts; the spacing below keeps some for the first pass's frames
        kept, last = [], -math.inf
        for k in keys.tolist():
            if pts[k] - last >= self.min_keyframe_spacing_seconds - 1e-9:
                kept.append(k)
                last = pts[k]
        keys = np.asarray(kept, np.int64)
        # Fill keyframe gaps longer than max_gap_seconds (and the tail).
        times = np.append(pts[keys], duration_seconds)
        fill = [np.arange(a + self.max_gap_seconds, b - 1e-6, self.max_gap_seconds) for a, b in zip(times[:-1], times[1:])]
        fill_targets = np.concatenate(fill) if fill else np.zeros(0)
        fill_targets = np.unique(np.floor(fill_targets + 0.5)) if self.whole_seconds else fill_targets
        chosen = np.union1d(keys, _frames_at(pts, fill_targets)) if len(fill_targets) else keys
        spread = first_pass_spread(pts, chosen, duration_seconds, self.min_frames, self.whole_seconds, seconds_too=self.spread_on_seconds_too,
                                   middle=self.spread_middle and self.burst_max_file_seconds is None and not self.whole_seconds,
                                   clock=self.spread_clock_seconds)  # fmt: skip
        chosen = np.union1d(chosen, spread)
        if self.ticks_passed_seconds is not None:
            chosen = np.union1d(chosen, ticks_passed(pts, chosen, every_key, self.ticks_passed_seconds))
        fills = len(chosen) - len(keys)
        chosen = np.union1d(chosen, short_burst(pts, duration_seconds, self.burst_max_file_seconds, self.burst_seconds))
        bursted = len(chosen) - len(keys) - fills
        if self.confirm_ahead is not True:  # added after the spread: a cut's frame never stands in for one of the first pass's own
            cuts = cut_fills(pts, chosen, getattr(keyframe_indices, "cuts", ()), duration_seconds,
                             self.cut_frames if duration_seconds > self.short_min_file_seconds else 0,
                             keyframes=keys, reach_seconds=self.cut_reach_seconds)  # fmt: skip
            chosen = np.union1d(chosen, cuts) if len(cuts) else chosen
        at_cuts = len(chosen) - len(keys) - fills - bursted
        return SamplingDecision(
            chosen.astype(np.int64), self.name,
            f"{len(keys)} keyframes + {fills} gap fills" + (f" + {bursted} in a {self.burst_seconds:g} s burst" if bursted else "")
            + (f" + {at_cuts} at cuts" if at_cuts else ""),
        )

    def cut_seconds(self, pts_seconds, keyframe_indices, duration_seconds, sampled) -> tuple[float, ...]:
        """Times of the marked cuts (``cut_frames``) in the wide gaps between the first pass's frames
        ``sampled`` (indices): what ``refine`` looks after when the first pass does not decide; none
        unless ``confirm_ahead`` is True (else the first pass sampled them: ``decide``)."""
        cuts = getattr(keyframe_indices, "cuts", ())
        if self.confirm_ahead is not True or not cuts or not self.cut_frames or not duration_seconds > self.short_min_file_seconds:
            return ()
        pts = np.asarray(pts_seconds, np.float64)
        found = cut_fills(pts, np.asarray(sampled, np.int64), cuts, duration_seconds, self.cut_frames,
                          keyframes=_indices(keyframe_indices), reach_seconds=self.cut_reach_seconds,
                          far_frames=self.at_cuts_far_frames)  # fmt: skip
        return tuple(float(t) for t in pts[found])

    def refine(self, matches: Sequence, duration_seconds: float, moments: Sequence[tuple[float, float]] = (),
               sampled_seconds: Sequence[float] | None = None, cut_seconds: Sequence[float] = ()) -> "SamplingPolicy | None":  # fmt: skip
        """The second pass for a file with these first-pass matches, or None.
        ``cut_seconds``: its cuts a first pass that does not decide looks after (``cut_seconds``; ``AtCuts``).
        ``moments``: (timestamp, score) of frames where a triage model
        (vscan.detect.triage) crossed its threshold: windows around them too.
        ``sampled_seconds``: the first pass's frame times; given, a first pass
        that already decides (``first_pass_decides``) gets a ``Confirm`` pass
        of ``confirm_frames`` frames instead of dense windows (none with 0).
        A still (or a file of unknown duration, 0) has nothing more to decode."""
        if any(getattr(m, "signal", "pdq") != "pdq" for m in matches) or not duration_seconds > 0:
            return None
        decided = first_pass_decides(matches)
        if self.confirm_frames is not None and sampled_seconds is not None and not len(moments) and decided:
            return confirm_pass(sampled_seconds, duration_seconds, self.confirm_frames, self.confirm_reach_seconds)
        cuts = () if decided or not self.cut_frames else tuple(float(t) for t in cut_seconds)
        short = self.short_fps is not None and any(self._short_hit(m, duration_seconds) or self._short_file_hit(m, duration_seconds) for m in matches)
        fps = max(self.dense_fps, self.short_fps) if short else self.dense_fps
        spans = [(max(0.0, t - self.window_seconds), min(duration_seconds, t + self.window_seconds)) for t, _ in moments]
        for m in matches:
            start, end = m.query_span_seconds
            reach = self.short_window_seconds if short and self._short_hit(m, duration_seconds) else self.window_seconds
            if math.isfinite(start) and math.isfinite(end):
                spans.append((max(0.0, start - reach), min(duration_seconds, end + reach)))
        if not spans and not cuts:
            return None
        budget_seconds = self.max_frames / fps
        kept, total = [], 0.0
        for a, b in _merge_spans(spans):
            if total >= budget_seconds:
                break
            b = min(b, a + budget_seconds - total)
            kept.append((a, b))
            total += b - a
        # Weak hits' looks at a sparse entry's rows (vscan.bank.row_looks), and a match's on one cropped frame (robust.THIN_MATCH_FRAMES)
        looks = sparse_looks(matches, self.max_frames, decided=True)
        if looks:
            looks = tuple(sorted({*looks, *cut_burst(cuts, self.cut_fps, self.cut_after_seconds).tolist()}))
            return LookWindows(fps, tuple(kept), looks)
        return AtCuts(fps, tuple(kept), cuts, self.cut_fps, self.cut_after_seconds) if cuts else Windows(fps, tuple(kept))

    def _weak_close(self, m) -> bool:
        """A hit that is not a match, within ``short_max_distance`` bits of a row."""
        return not getattr(m, "is_match", False) and int(getattr(m, "distance_min", 256)) <= self.short_max_distance

    def _short_file_hit(self, m, duration_seconds: float) -> bool:
        """A weak hit in a file of at most ``short_file_seconds`` (``short_fps`` over the whole file)."""
        return self.short_file_seconds is not None and duration_seconds <= self.short_file_seconds and self._weak_close(m)

    def _short_hit(self, m, duration_seconds: float) -> bool:
        """A weak hit that may be short evidence (``short_fps``)."""
        return (duration_seconds > self.short_min_file_seconds and self._weak_close(m)
                and int(getattr(m, "num_query_hashes_matched", 0)) <= 2)  # fmt: skip


@dataclass(frozen=True)
class FixedRateBurst(FixedRate):
    """``FixedRate`` plus ``Adaptive``'s short-file burst: a ``--fps`` scan against a ``--rows sparse`` bank (scan_config_for_bank)."""

    burst_max_file_seconds: float = SPARSE_BURST_MAX_FILE_SECONDS
    burst_seconds: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        Adaptive(burst_max_file_seconds=self.burst_max_file_seconds, burst_seconds=self.burst_seconds)  # validates them

    def describe(self) -> str:
        return f"{super().describe()} + a {self.burst_seconds:g} s burst in files up to {self.burst_max_file_seconds:g} s"

    def decide(self, pts_seconds, keyframe_indices, duration_seconds) -> SamplingDecision:
        decision = super().decide(pts_seconds, keyframe_indices, duration_seconds)
        burst = short_burst(np.asarray(pts_seconds, np.float64), duration_seconds, self.burst_max_file_seconds, self.burst_seconds)
        chosen = np.union1d(decision.frame_indices, burst).astype(np.int64)
        added = len(chosen) - len(decision.frame_indices)
        return SamplingDecision(chosen, decision.policy, decision.reason + (f" + {added} in a {self.burst_seconds:g} s burst" if added else ""))

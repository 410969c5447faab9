"""Region search only where the plain match leaves something to find (issue #30).

Region search (vscan.frames.regions.add_region: an inset picture, a
translucent box) costs 100-300 ms of a decode worker per file with four or
more sampled frames, more than decoding them; on an archive of known
material the whole-frame match then decides the file anyway. So a video
file with frames enough to search (a file the region probe gave more
frames because it looked re-framed is searched in its decode task, as
before) has its search *deferred*
(``DecodedFile.regions_deferred``): the model call matches it first, and
searches its frames only when that match does not decide the file
(vscan.decode.adaptive.first_pass_decides: a whole-frame match over most of
its frames, nothing else matched outside it), then hashes what the search
added and matches again. The record's ``timings.regions`` counts the search
wherever it ran.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from vscan.decode.adaptive import first_pass_decides
from vscan.frames.regions import MIN_FRAMES, add_region
from vscan.runtime.payload import DecodedFile

__all__ = ["add_region_or_defer", "closer_weak_hits", "found_in_part", "new_sets", "search_deferred"]


def add_region_or_defer(payload: dict[str, Any], *, enabled: bool, reframed: bool) -> bool:
    """``add_region`` on ``payload`` now, or defer it to the model call
    (True): a video with frames enough to search that did not look
    re-framed to the region probe (``reframed``: its first pass was given
    more frames for region search; searched here, as the probe intends)."""
    frames = payload.get("frames")
    still = float(payload.get("duration_seconds", 0.0) or 0.0) == 0.0
    if not enabled or frames is None or len(frames) < MIN_FRAMES or still or reframed:
        add_region(payload, enabled=enabled)
        return False
    return True


def search_deferred(file: DecodedFile, matches: Sequence) -> DecodedFile | None:
    """``file`` with its deferred region search done, when its plain match
    did not decide it and the search added a frame set; else None. Not
    where the match already holds a match through a part of the frames
    (``found_in_part``): the search's region would take that version's place."""
    if not file.regions_deferred or file.region is not None or first_pass_decides(matches) or found_in_part(matches):
        return None
    payload = file.to_dict()
    before = set(payload)
    add_region(payload)
    if set(payload) == before:
        return None
    return replace(DecodedFile.from_dict(payload), ahead=file.ahead, ahead_policy=file.ahead_policy, cut_seconds=file.cut_seconds)


def found_in_part(matches: Sequence) -> bool:
    """Whether a match was found through a region version (``Match.region``: the off-centre window, a centre crop, a
    rotated cut, a placed region; vscan.runtime.file_match's searches). Such a match is not deciding
    (``first_pass_decides``), but a region search then would only replace it: matched again, the query holds the
    search's region instead, and the searches that need a query without one (off-centre, centre crops) do not run.
    Tune split, session 42: both pattern crops kept 65% x 75% and 64% x 78% were found off-centre (6 and 8 frames
    matched) and then lost this way, to a region found in a test pattern."""
    return any(getattr(m, "is_match", False) and getattr(m, "region", None) is not None for m in matches)


def new_sets(found: DecodedFile, hashed: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    """The frame sets the search added to ``found`` that ``hashed`` does not hold yet: (set name, frames)."""
    sets = [("unoverlaid_frames", found.unoverlaid.frames if found.unoverlaid is not None else None),
            ("region_frames", found.region.frames if found.region is not None and found.region.rows is None else None)]  # fmt: skip
    return [(name, frames) for name, frames in sets if frames is not None and name not in hashed]


def closer_weak_hits(before: Sequence, after: Sequence) -> list:
    """``after`` (the matches of the rematch with the search's region), but an entry's weak hit from ``before``
    (the plain match) where neither decides and the plain one was closer: the second pass is chosen on
    ``distance_min`` (Adaptive.short_fps: 5 frames/s near a hit within 20 bits), and a region version of the
    same frames can sit further off (held-out pattern excerpt, session 42: 18 bits plain, 22 through the
    region, so its second pass went from 5 frames/s to 1)."""
    plain = {m.bank_entry_id: m for m in before if not m.is_match}
    kept = []
    for m in after:
        b = plain.pop(m.bank_entry_id, None)
        kept.append(b if b is not None and not m.is_match and b.distance_min < m.distance_min else m)
    return kept + list(plain.values())

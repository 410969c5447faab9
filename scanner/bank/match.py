"""Matching query frame hashes against a bank, with vPDQ's semantics.

vPDQ baseline (facebook/ThreatExchange ``vpdq/``, pytx ``extensions/vpdq``):
both sides are filtered to quality >= ``min_quality`` and de-duplicated by exact
hash; frames are an unordered bag; a hash matches if any hash on the other side
lies within ``distance_threshold``. Per bank entry:

- ``query_pct``: matched unique query hashes / unique query hashes, in percent;
- ``compared_pct``: matched unique hashes of the entry / unique hashes of the entry.

Upstream's Python brute-force matcher tests ``distance < tolerance``; we test
``distance <= distance_threshold`` (the PDQ convention, 31), so
``distance_threshold=30`` reproduces upstream's counts exactly.

Decision rule: ``is_match = query_pct >= match_query_pct or compared_pct >=
match_compared_pct`` (80 / 80 by default). pytx decides on query% >= 80 alone;
the compared% arm also reports a bank video embedded in a longer query (a query
that contains the reference). Pass ``match_compared_pct=math.inf`` for pytx's rule.
Entries with at least one matched frame are returned (``min_query_pct`` raises
that floor), ``is_match`` or not, sorted best first.

Timing (beyond vPDQ): each query frame shows until the next frame's timestamp
(the last one until the file's end, ``duration_seconds``, else for the median gap); ``matched_seconds`` sums that display time
over the matched query frames. Spans are the first/last matched timestamps on
each side. All are NaN without timestamps.

Search is exact every way (``vscan.bank.prepared``): brute force over
de-duplicated hashes (numpy on CPU, torch on CUDA), or multi-index hashing
(``vscan.bank.index``) once the bank holds more than ``blocking_min_hashes``
unique hashes. The robust matcher (``variants=``) is ``vscan.bank.robust``.

Every path goes through ``vscan.bank.matcher.Matcher`` (a ``FileQuery`` of
query versions, ``vscan.bank.query``); ``match_frames`` is its wrapper for
one set of frame hashes and their versions.
"""


from __future__ import annotations

import numpy as np

from vscan.bank.matcher import Matcher
from vscan.bank.plain import digest_matches
from vscan.bank.prepared import Match, display_durations, unique_hashes
from vscan.bank.query import FileQuery, MatchSettings, QueryVersion
from vscan.bank.store import BankIndex
from vscan.hashing.vpdq import FrameHashes

__all__ = ["Match", "match_frames", "match_digests", "unique_hashes", "display_durations"]


def match_frames(
    query: FrameHashes,
    index: BankIndex,
    *,
    variants: np.ndarray | None = None,
    unbordered: FrameHashes | None = None,
    unbordered_variants: np.ndarray | None = None,
    border_kind: str | None = None,
    unoverlaid: FrameHashes | None = None,
    unoverlaid_variants: np.ndarray | None = None,
    duration_seconds: float | None = None,
    region: FrameHashes | None = None,
    region_variants: np.ndarray | None = None,
    region_box: tuple[float, float, float, float] | None = None,
    **settings,
) -> list[Match]:
    """Bank entries sharing at least one matched frame with ``query``, best first.

    Without ``variants``: vPDQ exactly (module docstring). With ``variants``
    (uint8 [N, 8, 32], the dihedral variants of ``query``'s frames) the robust
    matcher runs: all 8 variants of every query frame, plus ``unbordered``
    (the same samples with their borders removed, and their variants), are
    searched against every bank row, the frames and their extra rows (borders
    removed, centre crops); ``unoverlaid`` (the samples with a static overlay
    filled, ``vscan.frames.overlays``) is searched too, within the looser
    ``overlay_distance_threshold``: its pairs beyond ``distance_threshold``
    count only towards the alignment, never towards query% / compared%.
    Per entry the variant matching most frames is kept;
    query% / compared% count frames matched through any row; matched pairs are
    aligned in time (``vscan.bank.align``). ``is_match`` holds when vPDQ's rule
    holds or an aligned run covers >= ``align_min_seconds`` with >=
    ``align_min_frames`` query frames.

    ``region`` (the samples cropped to the inset picture that
    ``vscan.frames.regions`` found, and their variants) is one more query
    version (path "region"; ``region_box``, as fractions of the frame, goes
    into its matches). A run shorter than ``align_min_seconds`` still
    decides when it is strong (``vscan.bank.short``). ``settings``: the
    fields of ``vscan.bank.query.MatchSettings``.

    ``duration_seconds`` (the query file's) ends the last sample's display
    time, so ``matched_seconds`` never exceeds it; without it the last sample
    shows for the median gap.
    """
    matcher = Matcher(index, MatchSettings(**settings))
    versions = [QueryVersion("frames", query, variants)]
    if variants is not None:
        for kind, fh, var, extra in (("unbordered", unbordered, unbordered_variants, {"border_kind": border_kind}),
                                     ("unoverlaid", unoverlaid, unoverlaid_variants, {}),
                                     ("region", region, region_variants, {"box": region_box})):  # fmt: skip
            if fh is not None and var is not None:
                versions.append(QueryVersion(kind, fh, var, **extra))
    if not len(query):
        return []
    return matcher.match(FileQuery(tuple(versions), {}, duration_seconds))


def match_digests(sha256: str | None, md5: str | None, index: BankIndex, *, sha1: str | None = None) -> list[Match]:
    """Exact file-digest hits (a whole-file match: 100% / 100%, distance 0)."""
    return digest_matches(index, {"sha256": sha256, "md5": md5, "sha1": sha1})

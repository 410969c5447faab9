"""One matcher for every way a file is matched against a bank.

    matcher = Matcher(index, MatchSettings(min_quality=50, distance_threshold=31))
    matches = matcher.match(FileQuery(versions, digests={"sha256": ...}, duration_seconds=12.0))

``index``: a loaded ``BankIndex``, a memory-mapped ``MappedBank``
(``vscan.bank.mapped``: each file is first narrowed to the entries it can
match, ``for_file``) or None (no bank: nothing matches). Exact digest hits
come first (one per entry, SHA-256 preferred); then the frames: vPDQ's rules
(``vscan.bank.plain``) for a query without dihedral variants, else the robust
matcher (``vscan.bank.robust``) over every query version (borders removed,
overlay filled, a region, a still's windows, an off-centre window).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vscan.bank.plain import digest_matches, vpdq_matches
from vscan.bank.prepared import Match
from vscan.bank.query import FileQuery, MatchSettings
from vscan.bank.robust import robust_matches, row_hits

__all__ = ["Matcher"]


class Matcher:
    """Matches files (``FileQuery``) against one bank ``index`` under ``settings``.
    ``narrow_seconds``: time spent narrowing a memory-mapped bank so far."""

    def __init__(self, index: Any, settings: MatchSettings | None = None) -> None:
        self.index = index
        self.settings = settings or MatchSettings()
        self.narrow_seconds = 0.0

    def match(self, query: FileQuery) -> list[Match]:
        """Digest hits, then perceptual matches, best first (``vscan.bank.match`` for the rules)."""
        if self.index is None:
            return []
        narrowed = self.for_file(query)
        if narrowed is not self:
            return narrowed.match(query)
        matches, seen = [], set()
        for hit in digest_matches(self.index, query.digests):
            if hit.bank_entry_id not in seen:
                seen.add(hit.bank_entry_id)
                matches.append(hit)
        if len(query.frames):
            matches += robust_matches(self.index, query, self.settings) if query.robust else vpdq_matches(self.index, query, self.settings)
        return matches

    def for_file(self, query: FileQuery) -> "Matcher":
        """This matcher, or for a memory-mapped bank one over only the entries ``query`` can
        match (those with a row within reach of any of its versions, or one of its digests):
        per entry its matches are the same."""
        from vscan.bank.mapped import MappedBank, narrow_for_query

        if not isinstance(self.index, MappedBank):
            return self
        t0 = time.perf_counter()
        index = narrow_for_query(self.index, query, self.settings)
        self.narrow_seconds += time.perf_counter() - t0
        return Matcher(index, self.settings)

    def skipped_disabled(self, query: FileQuery) -> list[str] | None:
        """The disabled entries ``query`` would have matched (the same match against them
        alone), or None for a bank without disabled entries."""
        narrowed = self.for_file(query)
        if narrowed is not self:
            return narrowed.skipped_disabled(query)
        disabled = getattr(self.index, "disabled", None)
        if disabled is None:
            return None
        return sorted({m.bank_entry_id for m in Matcher(disabled, self.settings).match(query) if m.is_match})

    def row_hits(self, hashes: np.ndarray, radius: int, *, prep_prefix: str | None = None) -> dict[str, np.ndarray]:
        """Every bank row within ``radius`` of each of ``hashes`` whose preparation starts with
        ``prep_prefix`` (``vscan.bank.robust.row_hits``); a memory-mapped bank is narrowed to the
        entries whose extra rows hold a hit first (only extra rows have a preparation)."""
        s, index = self.settings, self.index
        if hasattr(index, "narrow"):
            index = index.narrow([hashes], radius, s.min_quality, extra_only=prep_prefix is not None)
        return row_hits(index, hashes, radius, min_quality=s.min_quality, method=s.method, blocking_min_hashes=s.blocking_min_hashes,
                        device=s.device, prep_prefix=prep_prefix)  # fmt: skip

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

from vscan.bank.list_banks import decide_on_rows
from vscan.bank.plain import digest_matches, vpdq_matches
from vscan.bank.prepared import Match
from vscan.bank.query import FileQuery, MatchSettings
from vscan.bank.robust import robust_matches, row_hits

__all__ = ["Matcher", "robust_lookup"]


class Matcher:
    """Matches files (``FileQuery``) against one bank ``index`` under ``settings``.
    ``narrow_seconds``: time spent narrowing a memory-mapped bank so far."""

    def __init__(self, index: Any, settings: MatchSettings | None = None) -> None:
        self.index = index
        self.settings = settings or MatchSettings()
        self.narrow_seconds = 0.0

    def match(self, query: FileQuery, *, kept: dict | None = None) -> list[Match]:
        """Digest hits, then perceptual matches, best first (``vscan.bank.match`` for the rules). ``kept``: a dict
        held between two matches of one file (a first pass and its confirmation), where the robust matcher keeps
        each query hash's search (``vscan.bank.robust.robust_matches``): the same matches."""
        if self.index is None:
            return []
        narrowed = self.for_file(query, kept=kept)
        if narrowed is not self:
            return narrowed.match(query, kept=kept)
        matches, seen = [], set()
        for hit in digest_matches(self.index, query.digests):
            if hit.bank_entry_id not in seen:
                seen.add(hit.bank_entry_id)
                matches.append(hit)
        if len(query.frames):
            if query.robust:
                # A sparse hash list's rows met in order decide a short run too (vscan.bank.list_banks).
                matches += decide_on_rows(self.index, query, robust_matches(self.index, query, self.settings, kept=kept), self.settings)
            else:
                matches += vpdq_matches(self.index, query, self.settings)
        return matches

    def for_file(self, query: FileQuery, *, kept: dict | None = None) -> "Matcher":
        """This matcher, or for a memory-mapped bank one over only the entries ``query`` can
        match (those with a row within reach of any of its versions, or one of its digests):
        per entry its matches are the same. ``kept``: a dict held between a first pass's match
        and its confirmation's, where the narrowed bank is kept: a query reaching the same
        entries with the same digests (a confirmation: the first pass's frames and one more)
        takes it again, not narrowed anew (its rows, labels and kinds as read for the first)."""
        from vscan.bank.mapped import MappedBank, narrow_for_query

        if not isinstance(self.index, MappedBank):
            return self
        t0 = time.perf_counter()
        index = None
        if kept is not None:
            reach = _reach(self.index, query, self.settings)
            prior = kept.get("matcher.narrowed")
            if prior is not None and prior[0] is self.index and prior[1] == reach:
                index = prior[2]
        if index is None:
            index = narrow_for_query(self.index, query, self.settings)
            if kept is not None:
                kept["matcher.narrowed"] = (self.index, reach, index)
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
        ``prep_prefix`` (``vscan.bank.robust.row_hits``, plus ``entry_id``: the entry's id); a
        memory-mapped bank is narrowed to the entries holding a hit first (with ``prep_prefix``:
        in their extra rows, the only rows with a preparation)."""
        s, index = self.settings, self.index
        if hasattr(index, "narrow"):
            # a search's own hashes (gate boxes, windows), searched once: not kept among the file's (MappedBank.candidates)
            index = index.narrow([hashes], radius, s.min_quality, extra_only=prep_prefix is not None, keep=False)
        hits = row_hits(index, hashes, radius, min_quality=s.min_quality, method=s.method, blocking_min_hashes=s.blocking_min_hashes,
                        device=s.device, prep_prefix=prep_prefix)  # fmt: skip
        hits["entry_id"] = np.asarray(index.entry_ids, object)[hits["entry"]] if hits["entry"].size else np.zeros(0, object)
        return hits


def _reach(bank: Any, query: FileQuery, settings: MatchSettings) -> tuple:
    """What ``narrow_for_query`` narrows ``query`` to, short of the narrowing: the entries holding a row within
    reach of its hashes searched (``MappedBank.candidates``, each hash's kept there) and its digests."""
    mq = settings.min_quality
    if query.robust:
        sets = [(v.variants[v.hashes.qualities >= mq], settings.radius(v)) for v in query.versions if v.variants is not None]
    else:
        fh = query.frames.hashes
        sets = [(fh.hashes[fh.qualities >= mq], settings.distance_threshold)]
    entries = [bank.candidates(np.ascontiguousarray(h, np.uint8).reshape(-1, 32), int(r), mq) for h, r in sets]
    digests = tuple((k, query.digests.get(k)) for k in ("sha256", "md5", "sha1"))
    return np.unique(np.concatenate(entries)).tobytes(), digests


def robust_lookup(bank_path, queries: np.ndarray, radius: int = 31, *, lines: np.ndarray | None = None, device: str | None = None) -> list[dict]:
    """``vscan bank lookup --robust``: what a scan's matcher searches for each of ``queries`` (uint8
    [n, 32]): its 8 dihedral variants against every enabled row of the bank, frames and extra rows
    (crops, borders removed, strips, rotations, grid windows), through ``Matcher.row_hits`` over the
    memory-mapped bank (built beside the bank on first use, as the lookup's index is). One dict per
    query: ``line``, ``hash`` and ``matches``, each {entry, frame, distance, variant: the nearest
    variant of the query for that row, prep: "frame" or the extra row's}, nearest first. Every row
    counts, whatever its quality (a lookup, not a match)."""
    from vscan.bank.hash_input import dihedral_variants
    from vscan.bank.mapped import MappedBank, prepare
    from vscan.errors import BankError
    from vscan.hashing.pdq_ops import DIHEDRAL_NAMES

    if not 0 <= radius <= 256:
        raise BankError(f"Invalid radius ({radius}). Supported values are 0..256")
    queries = np.ascontiguousarray(queries, np.uint8).reshape(-1, 32)
    prepare(bank_path)
    matcher = Matcher(MappedBank.open(bank_path), MatchSettings(min_quality=0, device=device))
    hits = matcher.row_hits(dihedral_variants(queries).reshape(-1, 32), radius)
    owner, variant, preps = hits["query"] // 8, hits["query"] % 8, np.asarray(hits["prep"], str)
    # Per (query, row): the nearest variant (then the first); a row is (entry, frame, prep).
    order = np.lexsort((variant, hits["distance"], preps, hits["frame"], hits["entry"], owner))
    key = np.stack([owner, hits["entry"], hits["frame"]])[:, order]
    prep = preps[order]
    first = np.ones(order.size, bool)
    first[1:] = (key[:, 1:] != key[:, :-1]).any(axis=0) | (prep[1:] != prep[:-1])
    out = [{"line": int(lines[i]) if lines is not None else i + 1, "hash": queries[i].tobytes().hex(), "matches": []} for i in range(len(queries))]
    for k in order[first].tolist():
        out[int(owner[k])]["matches"].append({"entry": str(hits["entry_id"][k]), "frame": int(hits["frame"][k]), "distance": int(hits["distance"][k]),
                                              "variant": DIHEDRAL_NAMES[int(variant[k])], "prep": str(preps[k]) or "frame"})  # fmt: skip
    for item in out:
        item["matches"].sort(key=lambda h: (h["distance"], h["entry"], h["frame"], h["prep"] != "frame", h["prep"]))
    return out

"""Allow banks (``vscan scan --allow BANK``): false-positive governance.

An allow bank is an ordinary bank (``vscan bank build``) of content that
must not count as a hit: a common intro, a meme, a logo sequence, a file a
reviewer cleared. Each finished file's frame hashes (handed back by the
model stage, as for ``--hash-store``) and digests are matched against every
allow bank in the driver, with the scan's own matcher (vscan.output.rematch's
model-free ``ModelWorker``): exact digests, dihedral variants, borders and
overlays, time alignment, the same ``is_match`` rule. A file that matches an
allow entry has each of its positive bank matches turned off
(``is_match: false``, ``suppressed_by``: the allow entry), the part of its
risk they gave removed (detector evidence is kept), and a reason first in
``reasons`` naming the allow entry; ``allowed`` lists the allow matches.

All positives of the file are suppressed, whichever bank entry they matched:
an allow entry clears the file, not one pairing. An allow bank's path is part
of the versions stamp (``matching.allow``), so resume rescans when it changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["AllowBanks", "take_frame_hashes"]


class AllowBanks:
    def __init__(self, config) -> None:
        from dataclasses import replace

        from vscan.runtime.hashed_matcher import HashedMatcher

        config = replace(config, runtime=replace(config.runtime, device="cpu"))
        self.banks = [(Path(p).stem, HashedMatcher(config, os.path.abspath(p))) for p in config.matching.allow]

    def apply(self, record: dict[str, Any]) -> None:
        """Suppress ``record``'s positives when it matches an allow entry."""
        kept = record.get("_frame_hashes")
        if record.get("status") != "ok" or not record.get("matches"):
            return
        allowed = []
        for name, matcher in self.banks:
            for m in _matches(matcher, record, kept):
                if m.is_match:
                    allowed.append({"bank": name, "bank_entry_id": m.bank_entry_id, "label": m.label,
                                    "kind": "exact" if m.signal != "pdq" else "perceptual",
                                    "query_pct": round(m.query_pct, 3), "compared_pct": round(m.compared_pct, 3)})  # fmt: skip
        if not allowed:
            return
        first = allowed[0]
        positives = [m for m in record["matches"] if m.get("is_match")]
        for m in positives:
            m["is_match"] = False
            m["suppressed_by"] = {"bank": first["bank"], "bank_entry_id": first["bank_entry_id"]}
        record["allowed"] = allowed
        if positives:
            detector = [r for r in record["reasons"] if not r.startswith(("exact ", "perceptual match", "partial perceptual"))]
            record["risk"] = 0.0 if not record.get("detections") else record["risk"]  # (a detector's part stays)
            names = ", ".join(sorted({m["bank_entry_id"] for m in positives}))
            record["reasons"] = [f"allowed: matches allow entry {first['bank_entry_id']} ({first['bank']}); "
                                 f"bank match with {names} suppressed"] + detector  # fmt: skip


def _matches(matcher, record: dict[str, Any], kept: dict[str, Any] | None) -> list:
    """The file's matches against one allow bank: digests, and its frames when they were handed back."""
    payload: dict[str, Any] = {"frame_numbers": np.zeros(0, np.int64), "timestamps": np.zeros(0, np.float64),
                               "duration_seconds": float(record.get("duration_seconds") or 0.0)}  # fmt: skip
    if record.get("sha1"):
        payload["sha1"] = record["sha1"]
    hashed: dict[str, tuple[np.ndarray, np.ndarray]] = {"frames": (np.zeros((0, 8, 32), np.uint8), np.zeros(0, np.int32))}
    if kept is not None:
        payload["frame_numbers"], payload["timestamps"] = kept["frame_numbers"], kept["timestamps"]
        if kept.get("border_box") is not None:
            payload["border_box"] = np.asarray(kept["border_box"], np.float64)
        names = {"frames": "frames", "unbordered": "unbordered_frames", "unoverlaid": "unoverlaid_frames"}
        hashed = {names[k]: (v, q.astype(np.int32)) for k, (v, q) in kept["sets"].items() if k in names}
    return matcher.file_result(payload, hashed, record.get("sha256"), record.get("md5"))["matches"]


def take_frame_hashes(batch: list[dict[str, Any]], *, allow: AllowBanks | None, store) -> None:
    """The driver's one call per group of records: allow banks applied, frame
    hashes stored (``--hash-store``), and taken off every record before the sink."""
    if allow is not None:
        for record in batch:
            allow.apply(record)
    if store is not None:
        store.add_many(batch)
    for record in batch:
        record.pop("_frame_hashes", None)


#: An entry matched by at least this many files of a run ...
FLOOD_MIN_FILES = 3
#: ... and by at least this share of the run's recorded files is flagged in the manifest.
FLOOD_MIN_SHARE = 0.01


class FloodCounter:
    """Files matched per bank entry over a run: an entry that matches an
    unusual share of the run's files (a flood: a common intro, a logo, a bad
    list entry) is listed in the run's manifest (``match_floods``), for a
    reviewer to check or add to an allow bank."""

    def __init__(self) -> None:
        self.files = 0
        self.by_entry: dict[str, list] = {}  # entry -> [files, label]

    def add(self, record: dict[str, Any]) -> None:
        self.files += 1
        for entry in {(m["bank_entry_id"], m.get("label")) for m in record.get("matches") or () if m.get("is_match")}:
            counted = self.by_entry.setdefault(entry[0], [0, entry[1]])
            counted[0] += 1

    def floods(self) -> list[dict[str, Any]]:
        need = max(FLOOD_MIN_FILES, FLOOD_MIN_SHARE * self.files)
        out = [{"bank_entry_id": e, "label": label, "files": n, "share": round(n / max(self.files, 1), 4)}
               for e, (n, label) in self.by_entry.items() if n >= need]  # fmt: skip
        return sorted(out, key=lambda f: (-f["files"], f["bank_entry_id"]))

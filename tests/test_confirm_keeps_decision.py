"""A confirmation measures a first pass's decision; it does not undo it
(vscan.runtime.confirm_ahead.decisions_kept). Held-out, an hflip copy decided
on its first pass at 100% was reported as no match once its one confirming
frame missed (the merged passes at 75%, under the 80% rule). Nor does a second
pass's windows: a split-screen copy decided on its first pass's region found
nothing when the region search ran again over the merged passes' frames."""

from __future__ import annotations

import numpy as np

from vscan.bank.prepared import Match
from vscan.decode.adaptive import Confirm
from vscan.runtime.confirm_ahead import confirm_in_call, decisions_kept
from vscan.runtime.payload import DecodedFile


def _match(entry="a", *, pct=100.0, frames=3, is_match=True) -> Match:
    return Match(bank_entry_id=entry, label=None, query_pct=pct, compared_pct=pct, matched_seconds=12.0,
                 query_span_seconds=(0.0, 12.0), reference_span_seconds=(0.0, 12.0), distance_min=4, is_match=is_match,
                 num_query_hashes_matched=frames, decided_by="vpdq" if is_match else None)  # fmt: skip


def test_an_entry_the_first_pass_decided_stays_decided():
    first = [_match("a"), _match("b", pct=30.0, frames=1, is_match=False)]
    undone = [_match("b", pct=30.0, frames=1, is_match=False), _match("a", pct=75.0, is_match=False)]
    kept = decisions_kept(first, undone)
    assert [(m.bank_entry_id, m.is_match, m.query_pct) for m in kept] == [("a", True, 100.0), ("b", False, 30.0)]
    confirmed = [_match("a", pct=80.0, frames=4)]
    assert decisions_kept(first, confirmed) is confirmed  # still decided: the two passes' figures
    newly = [_match("a", pct=80.0, frames=4), _match("c", frames=2)]
    assert decisions_kept(first, newly) is newly  # the second pass may add what the first did not decide
    assert decisions_kept([_match("a", is_match=False)], [_match("a", pct=50.0, is_match=False)])[0].query_pct == 50.0


def _file(times: list[float]) -> DecodedFile:
    n = len(times)
    return DecodedFile(frames=np.zeros((n, 8, 8, 3), np.uint8), frame_numbers=np.arange(n, dtype=np.int64) * 30,
                       timestamps=np.asarray(times, np.float64), duration_seconds=12.0)  # fmt: skip


def test_a_confirming_frame_that_misses_keeps_the_first_pass_match():
    confirm = Confirm((9.0,), 8.0)
    first = _file([0.0, 4.0, 8.0])
    ahead = _file([9.0])
    ahead = DecodedFile(frames=ahead.frames, frame_numbers=np.asarray([270]), timestamps=ahead.timestamps, duration_seconds=12.0)
    first = DecodedFile(frames=first.frames, frame_numbers=first.frame_numbers, timestamps=first.timestamps,
                        duration_seconds=12.0, ahead=ahead, ahead_policy=confirm)  # fmt: skip
    sets = lambda n: {"frames": (np.zeros((n, 8, 32), np.uint8), np.full(n, 100.0))}  # noqa: E731
    results = [{"matches": [_match("a")], "refine": confirm, "timings": {"match": 0.01}}]
    seen = []

    def match(i, both, hashed):
        seen.append(len(both.frames))
        return {"matches": [_match("a", pct=75.0, is_match=False)], "timings": {"match": 0.01}}  # the 4th frame missed

    merged, hashed = confirm_in_call([first], [sets(3)], results, lambda files: ([sets(len(f.frames)) for f in files], 1), match)
    assert seen == [4] and merged[0] is not None and hashed == 1
    assert results[0]["confirmed"] == confirm.describe()
    assert [(m.bank_entry_id, m.is_match, m.query_pct) for m in results[0]["matches"]] == [("a", True, 100.0)]


def test_a_second_pass_of_windows_that_finds_nothing_keeps_the_first_pass_match():
    """``Outcomes.finish_passes`` of a file whose first pass decided on a region (a part path: windows follow) and whose
    second pass's search found nothing: the record holds the first pass's match; an undecided entry is the second pass's."""
    from vscan.decode.sampling import Windows
    from vscan.runtime.outcome import Outcomes, Task
    from vscan.runtime.payload import FileSummary, ModelResult
    from vscan.verdict.risk import DefaultRiskPolicy

    records: list[dict] = []
    outcomes = Outcomes(records.append, policy_text="", risk_policy=DefaultRiskPolicy(), timeout_seconds=60)
    first = FileSummary(path="/in/split.mp4", duration_seconds=12.0, frames_sampled=3, frames_decoded=40, sampling="Adaptive(...)")
    merged = FileSummary(path="/in/split.mp4", duration_seconds=12.0, frames_sampled=15, frames_decoded=200, sampling="Adaptive(...) + Windows")
    region = _match("a")
    task = Task(key=1, path="/in/split.mp4", attempt_decoder="pyav", submitted=0.0, summary=merged, policy=Windows(1.0, ((0.0, 12.0),)),
                first_pass=first, first_result=ModelResult(key=1, matches=[region, _match("b", pct=20.0, frames=1, is_match=False)],
                                                           timings={}, frames_sampled=3))  # fmt: skip
    outcomes.finish_passes(task, ModelResult(key=1, matches=[_match("b", pct=40.0, frames=2, is_match=False)], timings={}, frames_sampled=15))
    (record,) = records
    assert [(m["bank_entry_id"], m["is_match"], m["query_pct"]) for m in record["matches"]] == [("a", True, 100.0), ("b", False, 40.0)]
    assert record["risk"] > 0


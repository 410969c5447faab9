"""A short file's burst against a ``--rows sparse`` bank (vscan.decode.adaptive: every frame of half a second in its
middle) is there for the plain match; the searches after it (centre crops, rotation, regions, off-centre) leave its frames
out but the one nearest its middle (vscan.decode.spread.burst_rows), and search every frame as before where that finds
anything (vscan.runtime.file_match, issue #30: 1,000 unrelated files on a sparse bank)."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.bank.hash_input import dihedral_variants
from vscan.bank.mapped import MappedBank, prepare
from vscan.bank.writer import BankWriter
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode.adaptive import Adaptive, FixedRateBurst
from vscan.decode.spread import burst_rows
from vscan.hashing.vpdq import FrameHashes
from vscan.runtime import file_match
from vscan.runtime.file_match import FileMatcher

PTS = np.arange(83) / 30  # a 2.77 s file at 30 fps
BURST = Adaptive(burst_max_file_seconds=6.0)


def test_burst_rows_are_the_bursts_frames_but_its_middle_one():
    chosen = BURST.select(PTS, [0], 83 / 30)
    rows = burst_rows(BURST, PTS[chosen], 83 / 30)
    kept = chosen[~rows]
    assert rows.sum() == len(chosen) - 4 >= 13 and kept.tolist() == [0, 20, 41, 62]  # frame 0, the spread's 1/4 and 3/4, the burst's middle
    fixed = FixedRateBurst(1.0).select(PTS, [0], 83 / 30)
    assert PTS[fixed[~burst_rows(FixedRateBurst(1.0), PTS[fixed], 83 / 30)]].round(2).tolist() == [0.0, 1.0, 1.37, 2.0]
    assert burst_rows(Adaptive(), PTS[chosen], 83 / 30) is None  # no burst in the policy
    assert burst_rows(BURST, PTS[chosen], 8.0) is None and burst_rows(BURST, PTS[chosen], None) is None  # a longer file, unknown length


@pytest.fixture(scope="module")
def matcher(tmp_path_factory):
    path = tmp_path_factory.mktemp("burst") / "b.bank"
    rng = np.random.default_rng(5)
    with BankWriter(path) as writer:
        fh = FrameHashes(np.arange(40, dtype=np.int64), np.arange(40) / 2, np.full(40, 90, np.int32), rng.integers(0, 256, (40, 32), np.uint8))
        writer.add_frame_hashes("e0", "label0", ("src.mp4", "media", "e0"), "video", fh, 20.0)
    prepare(path)
    return FileMatcher(ScanConfig(sampling=Sampling(policy=BURST), runtime=Runtime(device="cpu")), MappedBank.open(path))


def _file(rng):
    chosen = BURST.select(PTS, [0], 83 / 30)
    hashes = rng.integers(0, 256, (len(chosen), 32), np.uint8)  # near no bank row: the plain match finds nothing
    payload = {"frame_numbers": chosen, "timestamps": PTS[chosen], "frames": rng.integers(0, 256, (len(chosen), 64, 64, 3), np.uint8),
               "duration_seconds": 83 / 30}  # fmt: skip
    return payload, {"frames": (dihedral_variants(hashes), np.full(len(chosen), 80, np.int32))}


def test_the_searches_leave_the_burst_out(matcher, monkeypatch):
    seen = []
    for name in ("_centre_crops", "_rotation", "_regions"):
        monkeypatch.setattr(file_match, name, lambda m, q, inputs, name=name: seen.append((name, len(q.frames), len(inputs.frames))))
    payload, hashed = _file(np.random.default_rng(1))
    result = matcher.file_result(payload, hashed, None, None)
    assert [s[0] for s in seen] == ["_centre_crops", "_rotation", "_regions"]
    assert {s[1:] for s in seen} == {(4, 4)}  # frame 0, 1/4, 3/4 and the middle, not the 15 of the burst
    assert len(result["qualities"]) == result["frames_sampled"] == len(payload["frame_numbers"])


def test_a_search_that_finds_something_without_the_burst_searches_every_frame(matcher, monkeypatch):
    seen = []

    def centre_crops(m, q, inputs):
        seen.append(len(q.frames))
        return q, m.for_file(q), []  # a weak hit: its query and matches stand as the file's

    monkeypatch.setattr(file_match, "_centre_crops", centre_crops)
    for name in ("_rotation", "_regions"):
        monkeypatch.setattr(file_match, name, lambda m, q, inputs: None)
    payload, hashed = _file(np.random.default_rng(2))
    result = matcher.file_result(payload, hashed, None, None)
    n = len(payload["frame_numbers"])
    assert seen == [4, n] and len(result["qualities"]) == n

"""A copy mirrored left-right (ffmpeg's hflip: the most common edit of a re-upload), issue #30: the model's ``flip_h``
variant is its hash's own mirror (the DCT's odd columns negated), which PDQ's Jarosz filter does not keep, so the
plain match met the source's rows 20-40 bits away, and a mirrored copy's first pass decided on part of its frames or
not at all. vscan.runtime.file_match then hashes the frames mirrored (``_mirrored``), only where a match or
near-match came through ``flip_h`` and nothing decided another way."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vscan.hashing.vpdq import FrameHashes, write_vpdq

N = 6
#: Two clips' frames, an entry each: "sharp" (two frames of smooth detail, then fine detail: the hash's own mirror lies
#: 20-30 bits and 60-80 bits from the mirrored frame's hash, measured) and "smooth" (16 x 16 cells: 30-44 bits).
CLIPS = {"sharp": (302, (6, 6, *[128] * (N - 2))), "smooth": (16, (16,) * N)}


def _pictures(seed: int, cells: tuple[int, ...]) -> np.ndarray:
    """256 px square frames of random cells, cubic, one per entry of ``cells`` (cells a side)."""
    rng = np.random.default_rng(seed)
    return np.stack([cv2.resize(rng.integers(30, 256, (n, n, 3), np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC) for n in cells])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(the model, a FileMatcher over a bank of the two clips' frames, their frames by name)."""
    from vscan.bank.store import Bank, build_bank
    from vscan.config import Runtime, ScanConfig
    from vscan.hashing.pdq import PDQHasher
    from vscan.runtime.file_match import FileMatcher

    tmp = tmp_path_factory.mktemp("mirror")
    hasher = PDQHasher(device="cpu")
    clips = {name: _pictures(*how) for name, how in CLIPS.items()}
    for name, frames in clips.items():
        batch = hasher.hash_frames(frames)
        write_vpdq(FrameHashes(np.arange(N), np.arange(N, dtype=np.float64), batch.quality, np.ascontiguousarray(batch.hashes[:, 0])), tmp / f"{name}.txt")
    build_bank(tmp / "b.db", [tmp / f"{name}.txt" for name in clips], label="reported")
    with Bank(tmp / "b.db") as bank:
        index = bank.load_index()
    return hasher, FileMatcher(ScanConfig(runtime=Runtime(device="cpu")), index), clips


def _result(setup, frames: np.ndarray) -> dict:
    hasher, matcher, _ = setup
    batch = hasher.hash_frames(frames)
    payload = {"frame_numbers": np.arange(N), "timestamps": np.arange(N, dtype=np.float64), "frames": frames, "duration_seconds": float(N)}
    return matcher.file_result(payload, {"frames": (batch.hashes, batch.quality)}, None, None)


def _without_the_step(monkeypatch, setup, frames: np.ndarray) -> dict:
    from vscan.runtime.file_match import FileMatcher

    with monkeypatch.context() as patch:
        patch.setattr(FileMatcher, "_mirror_applies", lambda *a: False)
        return _result(setup, frames)


def test_the_hash_s_own_mirror_lies_far_from_the_mirrored_frame_s_hash(setup):
    hasher, _, clips = setup
    for frames in clips.values():
        own = hasher.hash_frames(frames).hashes[:, 4]  # the model's flip_h variant of each frame
        mirrored = hasher.hash_frames(np.ascontiguousarray(frames[:, :, ::-1])).hashes[:, 0]
        assert np.bitwise_count(own ^ mirrored).sum(axis=1).mean() >= 20  # measured 33 and 49 a frame


@pytest.mark.parametrize("clip", sorted(CLIPS))
def test_a_mirrored_copy_is_matched_on_every_frame_through_its_frames_hashed_mirrored(setup, monkeypatch, clip):
    copy = np.ascontiguousarray(setup[2][clip][:, :, ::-1])
    result = _result(setup, copy)
    assert [(m.bank_entry_id, m.path, m.is_match, m.query_pct) for m in result["matches"]] == [(clip, ("flip_h",), True, 100.0)]
    assert result["matches"][0].distance_min <= 4 and result["timings"]["match_mirror"] > 0
    # Without the step the model's flip_h variant meets the rows far off: on part of the frames at most, never all.
    before = _without_the_step(monkeypatch, setup, copy)
    assert [m.path for m in before["matches"]] == [("flip_h",)]
    assert before["matches"][0].distance_min >= 12 and before["matches"][0].query_pct <= 50.0
    if clip == "sharp":  # two of six frames near: the first pass decided nothing (a second pass over the whole file followed)
        assert not before["matches"][0].is_match


def test_the_step_is_taken_only_for_a_match_through_flip_h(setup):
    clips = setup[2]
    plain = _result(setup, clips["sharp"])  # a clip itself decides as it is
    assert [(m.bank_entry_id, m.path, m.is_match) for m in plain["matches"]] == [("sharp", (), True)]
    assert plain["timings"]["match_mirror"] == 0.0
    other = _result(setup, _pictures(7, (16,) * N))  # unrelated frames: no near-match, no step
    assert not other["matches"] and other["timings"]["match_mirror"] == 0.0


def test_the_mirrored_frames_replace_a_decision_only_where_they_decide_more():
    from vscan.bank.prepared import Match
    from vscan.runtime.file_match import closer_decision

    def match(pct: float, bits: int, decided: bool = True) -> Match:
        return Match(bank_entry_id="src", label=None, query_pct=pct, compared_pct=pct, matched_seconds=8.0, query_span_seconds=(0.0, 7.0),
                     reference_span_seconds=(0.0, 7.0), distance_min=bits, is_match=decided, path=("flip_h",))  # fmt: skip

    assert closer_decision([match(100.0, 0)], [match(55.6, 6)])  # more of the frames
    assert closer_decision([match(100.0, 0)], [match(100.0, 16)])  # as many, closer
    assert closer_decision([match(60.0, 20)], [match(100.0, 2, decided=False)])  # a decision where there was none
    assert not closer_decision([match(100.0, 4)], [match(100.0, 4)])  # no better: the first measurement stays
    assert not closer_decision([match(80.0, 0)], [match(100.0, 12)])

"""A copy mirrored left-right (ffmpeg's hflip: the most common edit of a re-upload; AugLy's hflip, in its chains too):
the hash model's ``flip_h`` variant (and every other dihedral variant but the transpose) was the hash's own mirror
(the DCT's odd columns negated), which PDQ's Jarosz filter and cell centres do not keep, so a mirrored copy met its
source's rows 20-40 bits away (60-80 on fine detail): at the threshold's edge, decided on part of its frames or not at
all. Each variant is now the PDQ of the frame turned or mirrored (``vscan.kernels.pdq``, its ONNX export and
``vscan.bank.banded_hash`` alike), so a mirrored copy's first whole-frame match meets its source as a plain copy does."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vscan.hashing.vpdq import FrameHashes, write_vpdq

N = 6
#: Two clips' frames, an entry each: "sharp" (two frames of smooth detail, then fine detail: the hash's own mirror lies
#: 20-30 bits and 60-80 bits from the mirrored frame's hash, measured) and "smooth" (16 x 16 cells: 30-44 bits).
CLIPS = {"sharp": (302, (6, 6, *[128] * (N - 2))), "smooth": (16, (16,) * N)}
#: Each dihedral edit (``DIHEDRAL_NAMES`` order) of uint8 [N, H, W, 3] frames.
EDITS = {1: lambda x: np.rot90(x, 1, (1, 2)), 2: lambda x: x[:, ::-1, ::-1], 3: lambda x: np.rot90(x, -1, (1, 2)), 4: lambda x: x[:, :, ::-1],
         5: lambda x: x[:, ::-1], 6: lambda x: x.transpose(0, 2, 1, 3), 7: lambda x: x[:, ::-1, ::-1].transpose(0, 2, 1, 3)}  # fmt: skip


def _pictures(seed: int, cells: tuple[int, ...], size: tuple[int, int] = (256, 256)) -> np.ndarray:
    """Frames (``size``: width, height) of random cells, cubic, one per entry of ``cells`` (cells a side)."""
    rng = np.random.default_rng(seed)
    return np.stack([cv2.resize(rng.integers(30, 256, (n, n, 3), np.uint8), size, interpolation=cv2.INTER_CUBIC) for n in cells])


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


def _bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a ^ b).sum(axis=-1)


def test_each_variant_is_the_turned_frame_s_own_hash_where_the_hash_s_own_lies_far(setup):
    """The model (ONNX, CPU) and the banded hash a CPU scan runs (``BandedHasher.hash_detailed``): variant k of a frame
    is the hash of the frame under edit k, bit for bit, on square and oblong frames; the hash's own variants (the
    reference's, from its DCT: ``hash_input.dihedral_variants``, what a list of hashes alone can have) lie >= 20 bits off."""
    from vscan.bank.banded_hash import BandedHasher
    from vscan.bank.hash_input import dihedral_variants

    hasher, _, clips = setup
    banded = BandedHasher(hasher)
    for name, frames in (*clips.items(), ("320 x 180", _pictures(5, (12, 40, 90), (320, 180)))):
        model, ours = hasher.hash_frames(frames), banded.hash_detailed(frames)
        assert np.array_equal(model.hashes, ours.hashes) and np.array_equal(model.quality, ours.quality)
        own = dihedral_variants(model.hashes[:, 0])
        for k, edit in EDITS.items():
            turned = hasher.hash_frames(np.ascontiguousarray(edit(frames))).hashes[:, 0]
            assert _bits(model.hashes[:, k], turned).max() == 0, (name, k)
            if k != 6 and name in clips:  # a transpose is exact either way; at 320 px wide flip_h's own lies 6 bits off
                assert _bits(own[:, k], turned).mean() >= 20, (name, k)  # measured 30-106 a frame


@pytest.mark.parametrize("clip", sorted(CLIPS))
def test_a_mirrored_copy_is_matched_on_every_frame_by_its_first_whole_frame_match(setup, clip):
    """Before, the model's flip_h variant met the rows far off: on part of the frames at most (the sharp clip: two of six
    frames near, nothing decided; a second pass over the whole file followed), and a step that hashed the mirrored
    frames again (``file_match._mirrored``, stop 46) was needed to decide."""
    copy = np.ascontiguousarray(setup[2][clip][:, :, ::-1])
    result = _result(setup, copy)
    assert [(m.bank_entry_id, m.path, m.is_match, m.query_pct) for m in result["matches"]] == [(clip, ("flip_h",), True, 100.0)]
    assert result["matches"][0].distance_min <= 4 and "match_mirror" not in result["timings"]


def test_a_copy_turned_a_quarter_or_upside_down_is_matched_on_every_frame(setup):
    clips = setup[2]
    for k, name in ((1, "rot90"), (2, "rot180"), (5, "flip_v")):
        copy = np.ascontiguousarray(EDITS[k](clips["smooth"]))
        matches = _result(setup, copy)["matches"]
        assert [(m.bank_entry_id, m.is_match, m.query_pct) for m in matches] == [("smooth", True, 100.0)], name
        assert matches[0].distance_min <= 4, name


def test_a_plain_copy_and_unrelated_frames_are_unchanged(setup):
    clips = setup[2]
    plain = _result(setup, clips["sharp"])  # a clip itself decides as it is
    assert [(m.bank_entry_id, m.path, m.is_match, m.distance_min) for m in plain["matches"]] == [("sharp", (), True, 0)]
    other = _result(setup, _pictures(7, (16,) * N))  # unrelated frames: no match
    assert not other["matches"]

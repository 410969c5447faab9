"""Short files against a ``--rows sparse`` bank (issue 24): a copy trimmed at any frame shows a fixed clock frames that fall
between the entry's ticks; adaptive sampling's first pass then also decodes every frame of half a second in the middle of
a file up to ``SPARSE_BURST_MAX_FILE_SECONDS`` long (``Adaptive.burst_max_file_seconds``), set for sparse banks alone by
``scan_config_for_bank`` (a ``--fps`` scan's ``FixedRate`` becomes ``FixedRateBurst``). And a match the first pass decided on one frame through the scan's own crop names a look, which
the second pass takes (``Adaptive.refine``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vscan.bank.query_side import scan_config_for_bank
from vscan.bank.store import tick_seconds
from vscan.bank.writer import BankWriter
from vscan.config import ScanConfig
from vscan.decode.adaptive import SPARSE_BURST_MAX_FILE_SECONDS, Adaptive, FixedRateBurst, LookWindows
from vscan.decode.sampling import FixedRate, Windows
from vscan.errors import ConfigError
from vscan.hashing.vpdq import FrameHashes


def test_a_short_file_takes_every_frame_of_half_a_second_in_its_middle():
    policy = Adaptive(burst_max_file_seconds=6.0)
    pts = np.arange(83) / 30  # the held-out 2.77 s trim
    # the first pass without the burst: frame 0 and the even spread's at 1/4 and 3/4 (a bank whose rows are on a clock:
    # vscan.decode.spread.first_pass_spread)
    plain = {0, 20, 62}
    decision = policy.decide(pts, [0], 83 / 30)
    assert plain <= set(decision.frame_indices.tolist())
    added = sorted(set(decision.frame_indices.tolist()) - plain)
    assert len(added) >= 14 and np.all(np.diff(added) == 1)  # consecutive frames: one tick's worth
    window = pts[[added[0], added[-1]]]
    assert abs(window.mean() - 83 / 60) < 0.1 and window[1] - window[0] < 0.5
    assert "in a 0.5 s burst" in decision.reason and "burst in files up to 6 s" in policy.describe()
    # longer files, and the policy without the burst: as before
    long_pts = np.arange(300) / 30
    assert Adaptive(burst_max_file_seconds=6.0).decide(long_pts, [0], 10.0).frame_indices.tolist() == [0, 75, 225]  # no burst: 0 and the even spread
    with pytest.raises(ConfigError):
        Adaptive(burst_max_file_seconds=0.0)
    # a fixed rate's frames, and the same burst
    fixed = FixedRateBurst(1.0).decide(pts, [0], 83 / 30)
    assert set(fixed.frame_indices.tolist()) == set(FixedRate(1.0).decide(pts, [0], 83 / 30).frame_indices.tolist()) | set(added)
    assert FixedRateBurst(1.0).describe().startswith("FixedRate(1 fps) + ")
    assert FixedRateBurst(1.0).decide(long_pts, [0], 10.0).frame_indices.tolist() == FixedRate(1.0).decide(long_pts, [0], 10.0).frame_indices.tolist()
    with pytest.raises(ConfigError):
        FixedRateBurst(1.0, burst_seconds=0.0)


def _bank(path, row_plan: str | None):
    rng = np.random.default_rng(3)
    with BankWriter(path) as writer:
        if row_plan is not None:
            writer.meta_extra["row_plan"] = row_plan
        fh = FrameHashes(np.arange(4, dtype=np.int64) * 15, np.arange(4) * 0.5, np.full(4, 90, np.int32), rng.integers(0, 256, (4, 32), np.uint8))
        writer.add_frame_hashes("src", "reported", ("src.mp4", "media", "src"), "video", fh, 2.0)
    return path


@pytest.mark.parametrize(("plan", "burst"), [("sparse", True), ("full", False), ("lean", False), (None, False)])
def test_only_a_sparse_banks_scans_take_the_burst(tmp_path, plan, burst):
    bank = _bank(tmp_path / "b.bank", plan)
    assert (tick_seconds(bank) is not None) == burst
    policy = scan_config_for_bank(ScanConfig(), bank).sampling.policy
    assert isinstance(policy, Adaptive) and policy.burst_max_file_seconds == (SPARSE_BURST_MAX_FILE_SECONDS if burst else None)
    assert policy.spread_on_seconds_too == burst and not policy.whole_seconds  # a sparse bank's rows stand on ticks: the spread meets them too
    assert policy.ticks_passed_seconds == (0.5 if burst else None)  # and the frames on its ticks (2 a second) the decode passes
    config = ScanConfig()
    fixed = replace(config, sampling=replace(config.sampling, policy=FixedRate(1.0)))
    fixed_policy = scan_config_for_bank(fixed, bank).sampling.policy  # a --fps scan takes the burst too
    assert type(fixed_policy) is (FixedRateBurst if burst else FixedRate) and fixed_policy.fps == 1.0
    assert tick_seconds(tmp_path / "missing.bank") is None


def test_a_match_decided_on_one_frame_that_names_a_look_gets_it_in_the_second_pass():
    """A first pass's match through the scan's own crop on one frame (``vscan.bank.robust.THIN_MATCH_FRAMES``) does not
    decide the file (``first_pass_decides``); its dense windows may undo it, so the look it names comes with them."""

    class Thin:  # what refine reads of a Match
        is_match, signal, decided_by, path, query_pct, num_query_hashes_matched, distance_min = True, "pdq", "vpdq", ("centre-crop0.975", "crop"), 100.0, 1, 30
        query_span_seconds = (0.0, 0.0)
        look_seconds = (0.5, 1.0, 3.5)

    policy = Adaptive().refine([Thin()], 4.0, sampled_seconds=[0.0, 1.833])
    assert isinstance(policy, LookWindows) and policy.look_seconds == Thin.look_seconds and policy.exact_frames
    Thin.look_seconds = ()
    assert type(Adaptive().refine([Thin()], 4.0, sampled_seconds=[0.0, 1.833])) is Windows


def test_the_spread_also_on_whole_seconds_reaches_no_further():
    """Against a sparse bank a short single-keyframe file's spread frames are taken where they fall and on whole
    seconds (the bank's ticks); the decode from the keyframe stops where it did."""
    pts = np.arange(225) / 30.0  # 7.5 s at 30 fps, one keyframe: longer than the burst's files
    plain = Adaptive().decide(pts, [0], 7.5).frame_indices
    both = Adaptive(spread_on_seconds_too=True).decide(pts, [0], 7.5)
    assert set(plain.tolist()) < set(both.frame_indices.tolist())
    added = sorted(set(both.frame_indices.tolist()) - set(plain.tolist()))
    assert added and all(np.isclose(pts[i] % 1.0, 0.0) for i in added), added
    assert both.frame_indices.max() == plain.max()
    assert "spread on whole seconds too" in Adaptive(spread_on_seconds_too=True).describe()

"""vscan.bench.list_banks' perception column: the threshold rule of perception's benchmark (the largest distance among
the tune copies' own-source distances at which precision stays >= 99.9%), on distances made up here; perception itself
runs in its own interpreter (docs/matching-quality.md), not in the test suite."""

from __future__ import annotations

from vscan.bench.list_banks import _source_of, precision_threshold


def test_the_threshold_stops_below_the_first_negative_it_would_take_in():
    positive = [3, 5, 9, 40, 60]
    assert precision_threshold(positive, [30, 200, 41]) == 9  # 40 would take in the negative at 30
    assert precision_threshold(positive, [61, 250]) == 60  # no negative within any positive: the largest
    assert precision_threshold([50], [10]) == -1  # the closest pair is a negative: nothing is safe
    assert precision_threshold(positive, [9]) == 5  # a tie takes the negative in (3 of 4 pairs at 9): the one before
    assert precision_threshold(positive, [9], precision=0.75) == 60  # at 75% one negative in 4-6 pairs is allowed


def test_copies_are_named_after_their_source_and_others_are_distractors():
    stems = {"syn5100", "doorknob-hd-no-bar"}
    assert _source_of("syn5100__augly_blur.mp4", stems) == ("syn5100", "augly_blur")
    assert _source_of("doorknob-hd-no-bar__geo_pip1.mp4", stems) == ("doorknob-hd-no-bar", "geo_pip")
    assert _source_of("syn4100__geo_pip1.mp4", stems) == (None, "")
    assert _source_of("syn5100.mp4", stems) == (None, "")

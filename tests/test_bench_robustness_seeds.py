"""``bench_robustness --seed-offset``: a held-out set of sources and distractors (tune on one seed set, report on another)."""

from __future__ import annotations

from vscan.bench.bench_robustness import _plan


def test_a_seed_offset_moves_every_seed_and_keeps_the_lengths():
    for quick in (True, False):
        sources, distractors = _plan(quick)
        held_sources, held_distractors = _plan(quick, 1000)
        assert [s + 1000 for s, _ in sources] == [s for s, _ in held_sources]
        assert [s + 1000 for s, _ in distractors] == [s for s, _ in held_distractors]
        assert [t for _, t in sources + distractors] == [t for _, t in held_sources + held_distractors]
        assert not {s for s, _ in sources + distractors} & {s for s, _ in held_sources + held_distractors}


def test_rows_builds_the_bank_with_that_plan_beside_full(tmp_path):
    """``bench_robustness --rows sparse``: the shipped bank built with that row plan (its own file, full's kept),
    the plain bank once; recall per kind is then that plan's (issue 24: a plan under 5 rows a video-second)."""
    from vscan.bank.store import Bank
    from vscan.bench import synth
    from vscan.bench.bench_robustness import _bank_rows, build_banks

    clip = synth.make_clip(tmp_path / "src.mp4", seed=5, seconds=2.0, size=(128, 80), scenes=1)
    bank, plain, _ = build_banks(tmp_path, [clip], "sparse")
    assert bank.name == "reported-sparse.bank" and plain.exists()
    with Bank(bank) as b:
        assert b.meta.get("row_plan") == "sparse"
    sparse = _bank_rows(bank)
    assert 0 < sparse["rows_per_video_second"] <= 10 and "rotation" not in sparse["rows_per_video_second_by_kind"]
    assert not (tmp_path / "reported.bank").exists()  # full's name is left to the default plan

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

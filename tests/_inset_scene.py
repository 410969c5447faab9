"""A real bank of one generated clip, its matcher, and the clip's frames pasted as an inset over a background
made from them (tests of vscan.runtime.region_search's box placing: test_region_search, test_pane_search)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def inset_scene(tmp_path, seed: int, truth: tuple[int, int, int, int], background: Callable[[np.ndarray], np.ndarray]):
    """(matcher over a bank of a 3 s 320x180 clip of ``seed``, the canvases): every 30th prepared frame of the
    clip resized into ``truth`` (top, bottom, left, right) over ``background(frames)``."""
    from vscan import Bank
    from vscan.bank.matcher import Matcher
    from vscan.bank.query import MatchSettings
    from vscan.bench import synth
    from vscan.decode import EveryFrame
    from vscan.frames.prepare import iter_prepared, prepared_decoder
    from vscan.frames.resize import resize_bilinear

    src = synth.make_clip(tmp_path / "src.mp4", seed=seed, seconds=3, size=(320, 180), scenes=1, crf=20)
    bank = tmp_path / "b.bank"
    Bank.build(bank, [src], label="reported")
    with Bank.open(bank) as opened:
        matcher = Matcher(opened.load_index(), MatchSettings())
    frames = np.concatenate([b.rgb for b in iter_prepared(prepared_decoder(src), src, EveryFrame())])[::30]
    canvas = background(frames)
    canvas[:, truth[0] : truth[1], truth[2] : truth[3]] = resize_bilinear(frames, truth[1] - truth[0], truth[3] - truth[2])
    return matcher, canvas

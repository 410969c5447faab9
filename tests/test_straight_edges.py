"""vscan.frames.straight_edges takes the background median only where a line
can persist (issue 30: it was most of looks_reframed's cost on every adaptive
first pass): the scores are those of the every-block form it replaced (kept
below as the reference) on real sample frames, insets, split screens and
bars made from them, so the region probe escalates exactly the same files."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from vscan.decode import Keyframes, PyAVDecoder
from vscan.frames import straight_edges
from vscan.frames.straight_edges import _AROUND, _BLOCK, _MIN_STEP, _NEAR, _RIDGE, persistent_lines
from vscan.frames.luma import luma


def _reference_lines(y: np.ndarray) -> np.ndarray:
    """straight_edges._lines as it was (stop 34): the median at every block of every frame."""
    step = np.abs(y[:, 2:, :] - y[:, :-2, :])
    n, h, w = step.shape
    blocks = step[:, :, : w // _BLOCK * _BLOCK].reshape(n, h, w // _BLOCK, _BLOCK).mean(axis=3)
    padded = np.pad(blocks, ((0, 0), (_AROUND, _AROUND), (0, 0)), mode="edge")
    window = sliding_window_view(padded, 2 * _AROUND + 1, axis=1)
    keep = np.r_[0 : _AROUND - _NEAR, _AROUND + _NEAR + 1 : 2 * _AROUND + 1]
    background = np.median(window[..., keep], axis=-1)
    return (blocks >= _MIN_STEP) & (blocks >= _RIDGE * np.maximum(background, 1.0))


@pytest.fixture(scope="module")
def pictures(vpdq_dir) -> list[np.ndarray]:
    """Keyframes of the real sample videos at the scan's 256 px square."""
    if not vpdq_dir.is_dir():
        pytest.skip("needs ../shared/data/vpdq")
    decoder = PyAVDecoder()
    out = []
    for path in sorted(vpdq_dir.glob("*.mp4")):
        out.extend(np.concatenate([b.rgb for b in decoder.iter_frames(path, Keyframes(), size=(256, 256))])[:3])
    return out


def _reframed(pictures: list[np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """Frame sets as first passes see them: plain pairs and triples, and re-framed
    ones made of real pictures (inset, split screen, caption band, flat bars)."""
    sets = []
    for i in range(0, len(pictures) - 2, 2):
        a, b, c = pictures[i], pictures[i + 1], pictures[i + 2]
        sets.append(("plain", np.stack([a, b, c]), None))
        inset = np.stack([a, c]).copy()
        inset[:, 30:150, 100:240] = np.stack([b, pictures[i - 1]])[:, 40:160, 50:190]  # a picture-in-picture at one place
        sets.append(("inset", inset, None))
        split = np.stack([a, b]).copy()
        split[:, :, 128:] = np.stack([c, a])[:, :, 64:192]  # a split screen's seam
        sets.append(("split", split, None))
        band = np.stack([b, c]).copy()
        band[:, 200:232] = 235  # a caption band
        sets.append(("band", band, None))
        bars = np.stack([a, b]).copy()
        bars[:, :28], bars[:, -28:] = 0, 0
        sets.append(("bars", bars, np.array([28, 28, 0, 0])))
        sets.append(("bars, unknown", bars, None))
    return sets


def test_scores_are_the_every_block_reference_on_real_and_reframed_frames(pictures, monkeypatch):
    sets = _reframed(pictures)
    got = [persistent_lines(frames, box) for _, frames, box in sets]
    monkeypatch.setattr(straight_edges, "_lines", _reference_lines)
    want = [persistent_lines(frames, box) for _, frames, box in sets]
    assert got == want, [(kind, g, w) for (kind, _, _), g, w in zip(sets, got, want) if g != w]
    kinds = {kind for (kind, _, _), score in zip(sets, got) if max(score) >= straight_edges.MIN_BLOCKS}
    assert {"inset", "split", "band"} <= kinds and len(sets) >= 30  # the check covers files that escalate, not only ones that do not


def test_lines_are_reported_only_where_every_frame_has_a_step_near(pictures):
    """A strong edge in one frame that no other frame has near it cannot make a
    persistent line: no median is taken there and no line reported."""
    edge = np.stack([pictures[0], np.full_like(pictures[0], 128)])  # the second frame flat: no step anywhere
    edge[0, 100:, :] = 255 - edge[0, 100:, :]  # a sharp horizontal edge in the first frame only
    y = luma(edge)
    lines, reference = straight_edges._lines(y), _reference_lines(y)
    assert reference[0, 98].any() and not lines.any()
    both = np.logical_and.reduce(straight_edges._within_a_pixel(lines), axis=0)
    assert np.array_equal(both, np.logical_and.reduce(straight_edges._within_a_pixel(reference), axis=0))
    assert not (lines & ~reference).any()  # never a line the reference has not

"""Work the searches of a file that matched nothing do once, not again for every angle, box or file (issue #30):
the rotation gate resizes its frames to the file's aspect once for every angle it turns them by; a bank's crop and
grid-window shares are read from its prep names once per bank; region candidates compare boxes as Python ints."""

from __future__ import annotations

import cv2
import numpy as np

from vscan.frames import candidates
from vscan.frames.turns import turn_back, unsqueezed


class _NoRows:
    """A matcher whose bank has no row near anything."""

    def row_hits(self, hashes, radius, **_):
        empty = np.zeros(0, np.int64)
        return {"query": empty, "distance": empty, "entry": empty}


def test_the_rotation_gate_resizes_once_for_every_angle(monkeypatch):
    from vscan.runtime import rotation_search

    rng = np.random.default_rng(5)
    near = (rng.random((2, 128, 128)) * 255).astype(np.float32)
    for degrees in (-9.0, 6.5):  # the same turned frames as resizing for each angle
        np.testing.assert_array_equal(turn_back(near, 16 / 9, degrees, wide=unsqueezed(near, 16 / 9)), turn_back(near, 16 / 9, degrees))
    calls = []
    resize = cv2.resize
    monkeypatch.setattr(cv2, "resize", lambda *a, **k: calls.append(1) or resize(*a, **k))
    got = rotation_search._gated(_NoRows(), near, 16 / 9, rotation_search.COARSE_DEGREES, (0.9, 0.8), zoomed=True)
    assert got is None
    assert len(calls) == len(near)  # was one resize a frame per angle: 8 angles, 16


def test_a_banks_shares_are_read_once(monkeypatch):
    from vscan.frames import windows
    from vscan.runtime import offcentre, rotation_search

    class Bank:  # a MappedBank's prep names (unique to this test: the cache is keyed by them)
        preps = ["borders", "crop0.900", "crop0.800", "window:g55:2.5,12.5", "window:g55:12.5,2.5", "window:g60:20,20",
                 "borders+window:g55:2.5,2.5", "window:strip916", "window:rot+4", "window:x-test-search-once"]  # fmt: skip

    calls = []
    grid_window = windows.grid_window
    monkeypatch.setattr(windows, "grid_window", lambda name: calls.append(name) or grid_window(name))
    first = (rotation_search.bank_cuts(Bank()), offcentre.grid_share(Bank()), offcentre.grid_places(Bank(), 0.55))
    assert first == ((0.9, 0.8, 0.6), 0.55, ((0.025, 0.125), (0.025, 0.125)))
    read = len(calls)
    assert read > 0
    assert (rotation_search.bank_cuts(Bank()), offcentre.grid_share(Bank()), offcentre.grid_places(Bank(), 0.55)) == first
    assert len(calls) == read  # nothing parsed again for the same bank


def test_boxes_compare_as_before():
    def as_arrays(a, o):  # the comparison over int64 and float64 arrays it was
        side = np.array([min(a[1] - a[0], o[1] - o[0])] * 2 + [min(a[3] - a[2], o[3] - o[2])] * 2, np.float64)
        return bool((np.abs(a.astype(np.int64) - o) <= candidates._SAME * side).all())

    rng = np.random.default_rng(11)
    same = 0
    for _ in range(3000):
        a = np.concatenate([np.sort(rng.integers(0, 300, 2)), np.sort(rng.integers(0, 300, 2))]).astype(np.int32)
        o = (a + rng.integers(-12, 13, 4)).astype(np.int32)
        assert candidates._same(a, o) == as_arrays(a, o)
        same += as_arrays(a, o)
    assert 0 < same < 3000
    edge = np.array([0, 100, 0, 100], np.int32)  # a side exactly _SAME of the smaller box's side away: one box
    assert candidates._same(edge, edge + np.array([4, 4, 4, 4], np.int32)) == as_arrays(edge, edge + 4)

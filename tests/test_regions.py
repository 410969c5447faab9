"""Region search (vscan.frames.regions), bank windows (vscan.frames.windows) and
short strong runs (vscan.bank.short), plus one real scan of a re-framed copy."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.bank.align import align
from vscan.bank.short import is_strong_short
from vscan.bench.scenes import _Renderer
from vscan.frames.regions import add_region, detect_region
from vscan.frames.resize import resize_bilinear
from vscan.frames.windows import rotate_crop, window


def _clip(seed: int, size=(256, 256), n=12, other_seed=None):
    render = _Renderer(seed=seed, seconds=float(n), size=size, scenes=2)
    return np.stack([render(float(t)) for t in range(n)])


def _blur(frames: np.ndarray, k: int = 9) -> np.ndarray:
    out = frames.astype(np.float32)
    for axis in (1, 2):
        out = sum(np.roll(out, d, axis=axis) for d in range(-k, k + 1)) / (2 * k + 1)
    return out.astype(np.uint8)


def test_blur_fill_vertical_region_is_found():
    known = _clip(5, size=(256, 144))
    bg = _blur(resize_bilinear(known[:, :, 64:192], 256, 256))  # zoomed, blurred copy of itself
    frames = bg.copy()
    frames[:, 90:162] = resize_bilinear(known, 72, 256)  # the picture squeezed into the middle band
    box = detect_region(frames)
    assert box is not None
    assert abs(box.top - 90) <= 3 and abs(box.bottom - 162) <= 3 and box.left == 0 and box.right == 256


def test_picture_in_picture_over_moving_content():
    other = _clip(7)
    known = _clip(8, size=(112, 112))
    frames = other.copy()
    frames[:, 130:242, 16:128] = known
    box = detect_region(frames)
    assert box is not None
    assert [abs(a - b) <= 3 for a, b in zip(box.as_array(), (130, 242, 16, 128))] == [True] * 4
    payload = add_region({"frames": frames})
    assert payload["region_frames"].shape == frames.shape and payload["region_box"].tolist() == box.as_array().tolist()


def _fine_texture(seed: int, n: int, size: int) -> np.ndarray:
    """A fine texture panning under a window: pixels 3 apart barely correlate, so every line inside breaks."""
    big = np.random.default_rng(seed).integers(0, 256, (size + 4 * n, size + 4 * n, 3), dtype=np.uint8)
    return np.stack([big[3 * t : 3 * t + size, 2 * t : 2 * t + size] for t in range(n)])


def test_picture_in_picture_of_a_fine_texture_keeps_its_sides():
    # Inside a fine texture every line breaks about as strongly as the inset's edge: the
    # strongest line alone drifted inside (bench_robustness: an inset lost 18 of its 128 columns).
    frames = _blur(_clip(41))
    frames[:, 16:144, 112:240] = _fine_texture(42, 12, 128)
    box = detect_region(frames)
    assert box is not None
    assert [abs(a - b) <= 4 for a, b in zip(box.as_array(), (16, 144, 112, 240))] == [True] * 4


def test_split_screen_whose_halves_cut_at_other_times():
    # Each half brightens at a scene cut of its own: the steps correlate the pixels across
    # the seam (its break ~0.58 on bench_robustness, under the former 0.6 minimum).
    left = _clip(51, size=(128, 96)).astype(np.int16)
    right = _blur(_clip(52, size=(128, 256))).astype(np.int16)
    left[6:] += 25
    right[9:] += 25
    frames = np.zeros((12, 256, 256, 3), np.int16)
    frames[:, 80:176, :128] = left
    frames[:, :, 128:] = right
    box = detect_region(np.clip(frames, 0, 255).astype(np.uint8))
    assert box is not None
    assert [abs(a - b) <= 3 for a, b in zip(box.as_array(), (80, 176, 0, 128))] == [True] * 4


def test_plain_and_too_short_inputs_have_no_region():
    assert detect_region(_clip(11)) is None
    assert detect_region(_clip(11)[:3]) is None  # too few frames to tell
    assert "region_frames" not in add_region({"frames": _clip(12)})
    with pytest.raises(ValueError):
        detect_region(np.zeros((4, 64, 64), np.uint8))


def test_windows():
    frames = _clip(3, size=(320, 180), n=2)
    strip = window(frames, "strip916")
    assert strip.shape == (2, 180, 101, 3) and strip.flags.c_contiguous
    assert window(_clip(3, size=(100, 180), n=1), "strip916") is None  # already narrow
    rot = window(frames, "rot+4")
    assert rot.shape[0] == 2 and rot.shape[1] < 180 and rot.shape[2] < 320
    same = rotate_crop(frames, 0.0)
    assert same.shape == frames.shape and np.abs(same.astype(int) - frames).max() <= 1
    with pytest.raises(ValueError):
        window(frames, "nope")


def test_pane_windows_keep_the_centre_half_or_third_of_one_side():
    frames = _clip(3, size=(320, 180), n=2)
    band = window(frames, "hband33")
    assert band.shape == (2, 60, 320, 3) and band.flags.c_contiguous and (band == frames[:, 60:120]).all()
    strip = window(frames, "wstrip50")
    assert strip.shape == (2, 180, 160, 3) and (strip == frames[:, :, 80:240]).all()


def test_short_run_needs_close_frames():
    tq = np.array([10.0, 11.0, 12.0])
    tr = tq + 40.0
    a = align(tq, tr)
    assert a is not None and a.num_frames == 3
    assert is_strong_short(a, tq, tr, np.array([4, 6, 8]))
    assert not is_strong_short(a, tq, tr, np.array([4, 6, 22]))  # one frame too far (> 20 bits): not strong
    assert not is_strong_short(a, tq, tr, np.array([4, 18, 19]))  # median too far (> 16 bits)
    assert not is_strong_short(align(tq[:2], tr[:2]), tq[:2], tr[:2], np.array([2, 2]))  # two frames are not a run
    assert not is_strong_short(None, tq, tr, np.array([0, 0, 0]))


def test_a_short_run_s_end_frames_past_the_limit_are_its_edges():
    # An archive scan's second pass after a cut: 2 frames a second over 4 s from the cut; the cut's own frame 22 bits
    # off, the 8 after it within 10 (check split's pillarboxed portrait excerpt): strong without its edge frame.
    tq = 4.75 + 0.5 * np.arange(9)
    tr = tq - 2.65
    a = align(tq, tr)
    assert a is not None and a.num_frames == 9
    assert is_strong_short(a, tq, tr, np.array([22, 6, 6, 8, 10, 10, 6, 10, 2]))
    assert is_strong_short(a, tq, tr, np.array([6, 6, 8, 10, 10, 6, 10, 2, 24]))  # the last frame: the same
    assert not is_strong_short(a, tq, tr, np.array([6, 6, 8, 10, 30, 6, 10, 2, 8]))  # one inside: not an edge
    # What is left must hold on its own: 3 close frames over 1.5 s between far ends are not a run.
    assert not is_strong_short(a, tq, tr, np.array([22, 24, 26, 28, 6, 8, 10, 30, 40]))
    tq3 = np.array([10.0, 11.0, 12.0])
    assert not is_strong_short(align(tq3, tq3 + 40.0), tq3, tq3 + 40.0, np.array([4, 6, 22]))  # 2 s left: too short


def test_a_dense_short_run_keeps_a_few_frames_past_the_limit():
    tq = 24.0 + 0.2 * np.arange(13)  # a 5 fps second pass over 2.4 s
    tr = tq - 20.0
    a = align(tq, tr)
    assert a is not None and a.num_frames == 13
    close = np.array([24, 8, 10, 12, 14, 26, 12, 10, 14, 12, 10, 12, 28])  # 10 of 13 within 20 bits, median 12
    assert is_strong_short(a, tq, tr, close)
    tq6 = 24.0 + 0.45 * np.arange(6)  # a run of 6 frames over 2.25 s, under DENSE_MIN_FRAMES: every frame must be close
    six = align(tq6, tq6 - 20.0)
    assert not is_strong_short(six, tq6, tq6 - 20.0, np.array([24, 8, 10, 12, 14, 12]))
    assert is_strong_short(six, tq6, tq6 - 20.0, np.array([8, 10, 12, 14, 12, 10]))
    assert not is_strong_short(a, tq, tr, np.array([24, 8, 26, 12, 10, 26, 12, 28, 14, 24, 10, 26, 14]))  # 7 of 13 close, median 14
    assert not is_strong_short(a, tq, tr, np.array([18, 19, 18, 26, 19, 18, 19, 18, 19, 18, 19, 18, 28]))  # median 18 > 16


def test_still_gets_windows_that_find_an_offcentre_crop():
    from vscan.bank.match import match_frames
    from vscan.bank.store import BankIndex  # noqa: F401 - the index type match_frames takes
    from vscan.frames.regions import region_query

    frame = _clip(21, size=(256, 256), n=1)
    payload = add_region({"frames": frame, "frame_numbers": np.zeros(1, np.int64), "timestamps": np.zeros(1)})
    assert "region_frames" not in payload  # hashed where they were made (still_window_hashes), not shipped as images
    # 7 x 7 places of the 90% windows (about 1.5% of the frame apart: bench_quality_stills), 5 x 5 of the 80% ones
    assert payload["region_hashes"].shape == (74, 8, 32) and payload["region_quality"].shape == (74,) and payload["region_box"].shape == (74, 4)
    assert payload["region_rows"].tolist() == [0] * 74
    fh, var, boxes = region_query(payload, payload["region_hashes"], payload["region_quality"])
    assert len(fh) == 74 and var.shape == (74, 8, 32) and boxes.max() <= 1.0 and match_frames is not None
    assert np.array_equal(fh.hashes, payload["region_hashes"][:, 0]) and len({bytes(h) for h in fh.hashes}) > 60  # distinct windows


def test_still_windows_show_their_boxes():
    from PIL import Image

    from vscan.frames.regions import still_windows

    frame = _clip(22, size=(256, 256), n=1)
    windows, boxes = still_windows(frame)
    for k in (0, 7, 24, 48, 49, 60, 73):  # each window is its box of the frame, resized (both scales)
        t, b, l, r = boxes[k]
        ref = np.asarray(Image.fromarray(np.ascontiguousarray(frame[0, t:b, l:r])).resize((128, 128), Image.Resampling.BILINEAR))
        assert np.abs(windows[k].astype(int) - ref).mean() < 4, k


def test_translucent_box_is_found_and_undone():
    from vscan.frames.translucent import detect_translucent, undo_translucent

    clean = _clip(31)
    boxed = clean.astype(np.float32)
    boxed[:, 80:200, 40:125] = 0.45 * boxed[:, 80:200, 40:125] + 0.55 * 25.0
    boxed = boxed.astype(np.uint8)
    found = detect_translucent(boxed)
    assert found is not None
    box, gain, _ = found
    assert [abs(a - b) <= 3 for a, b in zip(box, (80, 200, 40, 125))] == [True] * 4
    assert np.allclose(gain, 0.45, atol=0.08)
    restored = undo_translucent(boxed, *found)
    err = np.abs(restored[:, 90:190, 50:115].astype(int) - clean[:, 90:190, 50:115]).mean()
    assert err < 8
    assert detect_translucent(clean) is None
    payload = add_region({"frames": boxed})
    assert "unoverlaid_frames" in payload and payload["overlay_box"].shape == (1, 4)

"""A bank build decodes each frame of a video once (vscan.bank.one_pass): the scan's square and
the 512 px frames of the extra rows come from the same decoded frame, to the same bits as two
separate decodes; the border box is found on keyframes (decoded alone)."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.bank.hashers import BANK_CROPS, BANK_GRID_WINDOWS, BANK_MAX_SIDE, BANK_WINDOWS, COMPACT_ROWS, FULL_ROWS, bank_hash_media
from vscan.decode import EveryFrame, PyAVDecoder
from vscan.decode import pyav_backend
from vscan.frames.prepare import SCAN_FRAME_SIDE_PX
from vscan.hashing.media import hash_media
from vscan.hashing.pdq import PDQHasher


@pytest.fixture(scope="module")
def hasher() -> PDQHasher:
    return PDQHasher(backend="onnx", device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from vscan.bench import synth

    # 4 s at 25 fps, a keyframe every 10 frames: 100 frames, 10 keyframes (the border box is found on them).
    return synth.make_clip(tmp_path_factory.mktemp("one") / "a.mp4", seed=11, seconds=4.0, size=(160, 96), scenes=2, gop=10)


@pytest.fixture(scope="module")
def one_key_clip(tmp_path_factory):
    # 100 frames, 1 keyframe: the border box is found during the pass itself.
    return synth_clip(tmp_path_factory.mktemp("key") / "b.mp4", gop=250)


def synth_clip(path, gop):
    from vscan.bench import synth

    return synth.make_clip(path, seed=12, seconds=4.0, size=(160, 96), scenes=1, gop=gop)


def _count_decoded(monkeypatch) -> list[int]:
    """Frames the codec decoded, summed over every PyAV pass from here on."""
    decoded: list[int] = []
    generate = pyav_backend.PyAVDecoder._generate

    def counting(self, *args, **kwargs):
        try:
            yield from generate(self, *args, **kwargs)
        finally:
            decoded.append(self.frames_decoded)

    monkeypatch.setattr(pyav_backend.PyAVDecoder, "_generate", counting)
    return decoded


@pytest.mark.parametrize("plan", [COMPACT_ROWS, FULL_ROWS], ids=lambda p: p.name)
def test_a_build_decodes_each_frame_once(clip, hasher, monkeypatch, plan):
    frames = PyAVDecoder().probe(clip)
    assert frames.num_frames == 100 and len(frames.keyframe_indices) == 10
    decoded = _count_decoded(monkeypatch)
    rows = bank_hash_media(clip, EveryFrame(), hasher, plan)
    # One pass over the 100 frames plus the 10 keyframes of the border probe (two or three passes before).
    assert sum(decoded) <= 100 + 10, decoded
    assert len(rows.extra.hashes) > 0 and set(rows.extra.frame_numbers.tolist()) <= set(rows.frames.frame_numbers.tolist())


def test_one_pass_rows_have_the_bits_of_two_decodes(clip, hasher, monkeypatch):
    """Every row of the one decode equals the row of a separate decode: the scan's square for frames, 512 px for extra rows."""
    decoded = _count_decoded(monkeypatch)
    one = bank_hash_media(clip, EveryFrame(), hasher, FULL_ROWS)
    assert sum(decoded) <= 100 + 10, decoded
    two = hash_media(clip, EveryFrame(), hasher=hasher, max_side=BANK_MAX_SIDE, borders=True, crops=BANK_CROPS, windows=BANK_WINDOWS,
                     grid_windows=BANK_GRID_WINDOWS, frame_side=SCAN_FRAME_SIDE_PX, batch_size=8)  # fmt: skip
    assert one.border_box == two.border_box
    np.testing.assert_array_equal(one.frames.hashes, two.frames.hashes)
    np.testing.assert_array_equal(one.frames.frame_numbers, two.frames.frame_numbers)
    a = {(int(f), p): h for f, p, h in zip(one.extra.frame_numbers, one.extra.preps, one.extra.hashes)}
    b = {(int(f), p): h for f, p, h in zip(two.extra.frame_numbers, two.extra.preps, two.extra.hashes)}
    assert a.keys() == b.keys() and len(a) > 100
    # a full build's extra rows come from luma pictures (vscan.bank.pictures): a few bits off the RGB ones at most
    bits = np.array([int(np.unpackbits(a[k] ^ b[k]).sum()) for k in a])
    assert np.median(bits) <= 6 and np.percentile(bits, 99) <= 32
    from vscan.bank import one_pass

    monkeypatch.setattr(one_pass, "extra_picture", lambda made, luma: made())  # RGB pictures: the bits of the separate decode
    rgb = bank_hash_media(clip, EveryFrame(), hasher, FULL_ROWS)
    assert {(int(f), p): h.tobytes() for f, p, h in zip(rgb.extra.frame_numbers, rgb.extra.preps, rgb.extra.hashes)} == {k: h.tobytes() for k, h in b.items()}


def test_a_file_with_one_keyframe_is_decoded_once_with_the_rows_of_the_old_passes(one_key_clip, hasher, monkeypatch):
    """Too few keyframes for a border probe: the box comes from frames of the pass, the extra rows' frames held till its end;
    the rows equal those of separate decodes (the frames at the scan's square, borders, crops, windows at 512 px)."""
    from vscan.bank.compact_rows import plan_entry

    decoded = _count_decoded(monkeypatch)
    one = bank_hash_media(one_key_clip, EveryFrame(), hasher, COMPACT_ROWS)
    assert sum(decoded) == 100, decoded
    monkeypatch.undo()
    full = hash_media(one_key_clip, EveryFrame(), hasher=hasher, max_side=BANK_MAX_SIDE, borders=True, crops=BANK_CROPS, windows=BANK_WINDOWS,
                      grid_windows=BANK_GRID_WINDOWS, frame_side=SCAN_FRAME_SIDE_PX, batch_size=8)  # fmt: skip
    assert one.border_box == full.border_box
    frames, extra = plan_entry(full.frames, full.extra, COMPACT_ROWS)  # the compact plan applied to every row of the old passes
    np.testing.assert_array_equal(one.frames.frame_numbers, frames.frame_numbers)
    np.testing.assert_array_equal(one.frames.hashes, frames.hashes)
    a = {(int(f), p): h.tobytes() for f, p, h in zip(one.extra.frame_numbers, one.extra.preps, one.extra.hashes)}
    b = {(int(f), p): h.tobytes() for f, p, h in zip(extra.frame_numbers, extra.preps, extra.hashes)}
    assert a == b and len(a) >= 30


def test_a_full_builds_extra_rows_hashed_behind_the_decode_are_the_same_rows(tmp_path, hasher, monkeypatch):
    """``behind`` (a local build): ``--rows full``'s extra rows hashed in a thread of their own while the source's own
    thread decodes on (a source hashed alone keeps a second core busy), the same rows in the same order; other plans
    hash them at once."""
    import threading

    from vscan.bank.one_pass import one_pass_rows
    from vscan.bench import synth
    from vscan.hashing import media

    # 4 batches of 8 frames, 9 keyframes: a keyframe probe (fewer: the pictures are held, hashed at the pass's end)
    clip = synth.make_clip(tmp_path / "a.mp4", seed=21, seconds=1.0, size=(192, 112), scenes=1, gop=3)
    where: list[str] = []
    add = media._ExtraRows.add
    monkeypatch.setattr(media._ExtraRows, "add", lambda self, frames, h: where.append(threading.current_thread().name) or add(self, frames, h))
    inline = one_pass_rows(clip, EveryFrame(), hasher, FULL_ROWS)
    assert where and set(where) == {threading.current_thread().name}
    where.clear()
    behind = one_pass_rows(clip, EveryFrame(), hasher, FULL_ROWS, behind=True)
    assert where and all(name.startswith("bank-extra") for name in where)
    assert behind.extra.preps == inline.extra.preps and len(inline.extra.preps) > 25 * 16
    for name in ("frame_numbers", "qualities", "hashes"):
        np.testing.assert_array_equal(getattr(behind.extra, name), getattr(inline.extra, name))
        np.testing.assert_array_equal(getattr(behind.frames, name), getattr(inline.frames, name))
    where.clear()
    one_pass_rows(clip, EveryFrame(), hasher, COMPACT_ROWS, behind=True)
    assert not any(name.startswith("bank-extra") for name in where)


def test_a_full_build_of_a_short_file_with_few_keyframes_decodes_it_once_to_the_same_rows(tmp_path, hasher, monkeypatch):
    """``--rows full`` on a file with too few keyframes for a keyframe probe, whose every 512 px luma picture fits
    ``FULL_DEFER_MAX_BYTES``: the border box comes from frames of the pass (the probe's rate, its RGB), the pictures held
    till its end and hashed there (a share in a second thread), and no second decode for the probe; the box and every row, in order, as the build with that probe."""
    from vscan.bank import border_probe
    from vscan.bench.edits import edit_clip
    from vscan.decode.base import output_size

    # 100 frames, one keyframe, a letterbox (the box is not empty)
    boxed = edit_clip(synth_clip(tmp_path / "b.mp4", gop=250), tmp_path / "boxed.mp4", "pad", mode="letterbox", fraction=0.125)
    meta = PyAVDecoder().probe(boxed)
    assert len(meta.keyframe_indices) < border_probe.MIN_PROBE_KEYFRAMES and meta.num_frames == 100
    import threading

    from vscan.hashing import media

    decoded, where, add = _count_decoded(monkeypatch), [], media._ExtraRows.add
    monkeypatch.setattr(media._ExtraRows, "add", lambda self, frames, h: where.append(threading.current_thread().name) or add(self, frames, h))
    held = bank_hash_media(boxed, EveryFrame(), hasher, FULL_ROWS, behind=True)
    assert sum(decoded) == 100, decoded  # before: 100 more for the probe (one keyframe: every frame decoded at its rate)
    # hashed at the pass's end, a share of the extra rows' batches in a second thread (a local build's second core)
    assert any(n.startswith("bank-extra") for n in where) and threading.current_thread().name in where
    decoded.clear()
    side = output_size(meta.width, meta.height, BANK_MAX_SIDE)
    monkeypatch.setattr(border_probe, "FULL_DEFER_MAX_BYTES", side[0] * side[1] * 99)  # a picture fewer than the file has: the probe decode
    probed = bank_hash_media(boxed, EveryFrame(), hasher, FULL_ROWS, behind=True)
    assert sum(decoded) > 100, decoded
    assert held.border_box == probed.border_box and not held.border_box.is_empty
    assert held.extra.preps == probed.extra.preps and len(held.extra.preps) > 100 * 16
    for name in ("frame_numbers", "qualities", "hashes"):
        np.testing.assert_array_equal(getattr(held.extra, name), getattr(probed.extra, name))
        np.testing.assert_array_equal(getattr(held.frames, name), getattr(probed.frames, name))
    np.testing.assert_array_equal(held.variants, probed.variants)


def test_a_thread_done_with_a_short_source_goes_on_with_a_later_one_while_a_long_one_hashes(monkeypatch):
    """``LocalMediaHasher`` queues sources beyond the next ``workers``: while the build waits for a long first source,
    the other thread hashes the ones after it (17ba414 queued only the next ``workers``: that core idled until the
    long one was taken, 19 of a 51 s build of 4 sources). Rows are still taken in the build's order."""
    import threading
    from pathlib import Path

    from vscan.bank import hashers as hs

    release, started = threading.Event(), []
    all_short_started = threading.Event()

    def work(path, policy, hasher, rows, stop, behind):  # each source's hashing (the decoder and model: other tests)
        started.append(path.name)
        if path.name == "long.mp4":
            assert release.wait(10)
        elif len(started) == 4:
            all_short_started.set()
        return path.name

    monkeypatch.setattr(hs, "bank_hash_media", work)
    monkeypatch.setattr(hs, "rows_of", lambda result: (result,))
    monkeypatch.setattr(hs, "PDQHasher", lambda **kw: object())
    paths = [Path(f"/nonexistent/{n}.mp4") for n in ("long", "a", "b", "c")]
    hasher = hs.LocalMediaHasher(paths, EveryFrame(), "cpu", workers=2)
    taken: list = []
    build = threading.Thread(target=lambda: taken.extend(hasher(p) for p in paths))
    build.start()
    try:
        assert all_short_started.wait(5), f"started while the long source hashes: {started}"  # 17ba414: ['long', 'a']
    finally:
        release.set()
        build.join(10)
        hasher.cancel()
    assert taken == [("long.mp4",), ("a.mp4",), ("b.mp4",), ("c.mp4",)]


def test_a_local_build_hashes_the_next_sources_in_threads_and_writes_the_same_bank(tmp_path, clip, one_key_clip):
    """vscan bank build hashes the next sources at once (one thread a core), rows taken in the build's order:
    the bank equals one built source by source."""
    import subprocess
    import sys

    from vscan.bank.hashers import LocalMediaHasher, media_hasher
    from vscan.bank.store import Bank, build_bank

    folder = tmp_path / "in"
    folder.mkdir()
    for p in (clip, one_key_clip):
        (folder / p.name).symlink_to(p)
    hasher = LocalMediaHasher(sorted(folder.iterdir()), EveryFrame(), "cpu", workers=2, rows=COMPACT_ROWS)
    first = hasher(sorted(folder.iterdir())[0])
    assert len(hasher._futures) == 1  # the second source was started before the first was taken
    hasher.cancel()
    assert len(first[0]) > 0
    run = subprocess.run([sys.executable, "-m", "vscan.cli", "bank", "build", str(tmp_path / "cli.bank"), str(folder), "--device", "cpu",
                          "--rows", "compact"], capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    build_bank(tmp_path / "one.bank", [folder], hash_media=media_hasher(EveryFrame(), "cpu", COMPACT_ROWS))
    with Bank(tmp_path / "cli.bank") as a, Bank(tmp_path / "one.bank") as b:
        assert a.rows("frame_hashes") == b.rows("frame_hashes") and a.rows("extra_hashes") == b.rows("extra_hashes")

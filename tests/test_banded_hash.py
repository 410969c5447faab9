"""A full build's extra rows hashed from the Jarosz operators' runs (``vscan.bank.banded_hash``) carry the hash
model's bits and quality: on the crops and windows of real decoded frames, and on every row of a build."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.bank.banded_hash import BandedHasher, banded_hash
from vscan.hashing.pdq import PDQHasher


@pytest.fixture(scope="module")
def model() -> PDQHasher:
    return PDQHasher(backend="onnx", device="cpu", threads=1)


def _same(a, b) -> None:
    """The model's answer ``a`` and ``b``: equal quality everywhere, equal bits (all 8 variants) wherever the picture has
    any detail; a flat picture's (quality 0: a black bar's window) coefficients are rounding noise, never matched."""
    np.testing.assert_array_equal(a.quality, b.quality)
    detail = a.quality > 0
    np.testing.assert_array_equal(a.hashes[detail], b.hashes[detail])


def test_the_crops_and_windows_of_real_frames_get_the_models_bits(vpdq_dir, model):
    from vscan.bank.one_pass import BANK_CROPS, BANK_MAX_SIDE
    from vscan.decode import FixedRate, PyAVDecoder
    from vscan.frames.windows import GRID_WINDOWS, window

    frames = next(iter(PyAVDecoder().iter_frames(vpdq_dir / "chair-19-sd-bar.mp4", FixedRate(2.0), batch_size=2, max_side=BANK_MAX_SIDE))).rgb
    h, w = frames.shape[1:3]
    parts = [frames, frames[:, 3:-5, 7:-2]]  # the frame, and an uneven cut (odd sides, off-centre)
    for scale in BANK_CROPS[::3]:  # 0.975, 0.9, 0.825, 0.75
        dy, dx = int(round(h * (1 - scale) / 2)), int(round(w * (1 - scale) / 2))
        parts.append(frames[:, dy : h - dy, dx : w - dx])
    parts += [window(frames, name) for name in ("strip916", "rot+4", GRID_WINDOWS[0], GRID_WINDOWS[-1], "wstrip33", "hband50")]
    detailed = 0
    for part in (p for p in parts if p is not None):
        part = np.ascontiguousarray(part)
        a = model.hash_frames(part)
        _same(a, banded_hash(part))
        detailed += int((a.quality > 0).sum())
    assert detailed >= 20


def test_small_and_empty_batches_answer_as_the_model(model):
    rng = np.random.default_rng(4)
    hasher = BandedHasher(model)
    for shape in ((3, 64, 64, 3), (2, 70, 130, 3), (1, 200, 90, 3), (0, 50, 50, 3), (2, 10, 40, 3)):
        frames = rng.integers(0, 256, shape, dtype=np.uint8)
        a, b = model.hash_frames(frames), hasher.hash_frames(frames)
        assert b.hashes.shape == a.hashes.shape and b.quality.shape == a.quality.shape
        _same(a, b)
    with pytest.raises(ValueError, match="Expected uint8 frames"):
        hasher.hash_frames(np.zeros((1, 64, 64), np.uint8))  # the model's own check
    with pytest.raises(ValueError, match="Expected uint8 frames"):
        banded_hash(np.zeros((1, 64, 64, 3), np.float32))


def test_a_full_builds_extra_rows_are_the_models(tmp_path, model, monkeypatch):
    """``one_pass_rows`` with every row (``--rows full``) of a short clip with bars: the same rows, prep by prep, as
    when the model hashes them (the frame rows are the model's either way; the extra rows' luma pictures as grey RGB)."""
    from vscan.bank.banded_hash import _model_input
    from vscan.bank.hashers import FULL_ROWS
    from vscan.bank.one_pass import one_pass_rows
    from vscan.bench import synth
    from vscan.decode import EveryFrame

    clip = synth.make_clip(tmp_path / "a.mp4", seed=21, seconds=1.0, size=(192, 112), scenes=1, gop=5)
    new = one_pass_rows(clip, EveryFrame(), model, FULL_ROWS)
    monkeypatch.setattr(BandedHasher, "hash_frames", lambda self, frames: self.hasher.hash_frames(_model_input(frames)))
    monkeypatch.setattr(BandedHasher, "hash_turned", lambda self, frames, degrees: None)  # the turned copies too
    old = one_pass_rows(clip, EveryFrame(), model, FULL_ROWS)
    assert new.extra.preps == old.extra.preps and len(new.extra.preps) >= 25 * 16
    np.testing.assert_array_equal(new.extra.frame_numbers, old.extra.frame_numbers)
    np.testing.assert_array_equal(new.extra.qualities, old.extra.qualities)
    detail = old.extra.qualities > 0
    np.testing.assert_array_equal(new.extra.hashes[detail], old.extra.hashes[detail])
    np.testing.assert_array_equal(new.frames.hashes, old.frames.hashes)


def test_every_extra_row_of_a_real_barred_frame_is_hashed_from_one_luma_with_the_same_bits(vpdq_dir, model, monkeypatch):
    """``_ExtraRows.add`` (borders removed, the 10 centre crops, strip, turned copies, grid windows) through
    ``BandedHasher.hash_boxes``: each batch's luma computed once for all its windows, and every row, flat ones
    included, bit for bit the row that ``banded_hash`` gives each window's own pixels (38b0dbe's full build); the turned
    copies through ``BandedHasher.hash_turned`` (17ba414 turned the uint8 pixels, then took their luma)."""
    from vscan.bank import banded_hash as bh
    from vscan.bank.one_pass import BANK_CROPS, BANK_GRID_WINDOWS, BANK_MAX_SIDE, BANK_WINDOWS
    from vscan.decode import FixedRate, PyAVDecoder
    from vscan.frames.borders import detect_borders
    from vscan.hashing.media import _ExtraRows

    batch = next(iter(PyAVDecoder().iter_frames(vpdq_dir / "pattern-sd-grey-bar.mp4", FixedRate(4.0), batch_size=3, max_side=BANK_MAX_SIDE)))
    box = detect_borders(batch.rgb)
    assert box is not None and not box.is_empty  # its grey bars: every window sits off the frame's origin

    class PerWindow:  # the hasher 38b0dbe's build used: each window's pixels hashed on their own
        device = "cpu"

        def hash_frames(self, frames):
            return BandedHasher(model).hash_frames(frames)

    def rows(hasher):
        extra = _ExtraRows(box, BANK_CROPS, BANK_WINDOWS, BANK_GRID_WINDOWS, 4.0)
        extra.add(batch, hasher)
        return extra.result()

    lumas = []
    monkeypatch.setattr(bh, "frame_luma", lambda frames, f=bh.frame_luma: lumas.append(len(frames)) or f(frames))
    new = rows(BandedHasher(model))
    gridded = {int(n) for n, p in zip(new.frame_numbers, new.preps) if p.split("window:")[-1] in BANK_GRID_WINDOWS}
    # the batch's 3 frames' cut windows from one luma, its grid frames' from one more; the 2 turned copies' lumas
    # straight from their blend (``turned_hashes``: the frames laid side by side once for both)
    assert lumas == [3, len(gridded)] and 1 <= len(gridded) < 3
    lumas.clear()
    old = rows(PerWindow())
    assert len(lumas) == len(set(old.preps)) > 30  # the per-window path: a luma per window
    assert new.preps == old.preps
    assert new.preps[0] == "borders" and all(p == "borders" or p.startswith("borders+") for p in new.preps)
    for name in ("frame_numbers", "qualities", "hashes"):
        np.testing.assert_array_equal(getattr(new, name), getattr(old, name))
    assert int((new.qualities > 0).sum()) >= 20
    with pytest.raises(ValueError, match="is not inside frames"):
        bh.banded_boxes(bh.frame_luma(batch.rgb), [(0, 0, batch.rgb.shape[1] + 1, 64)])


def test_the_compiled_luma_quality_and_bits_are_the_numpy_arithmetic(vpdq_dir):
    """``frame_luma`` (each row's luma, then the band written column by column), ``_quality`` (64 lanes of whole-number
    gradients) and ``_finish``'s bits (one median for a variant and its transpose, packed in one compiled pass) give
    numpy's formulas (``window_hash``: the model's arithmetic) to the last bit: on real frames of uneven sides (a band
    of 16 rows cut short), on a picture of few grey levels (ties at the median) and on flat ones (quality 0)."""
    from vscan.bank import banded_hash as bh
    from vscan.decode import FixedRate, PyAVDecoder
    from vscan.frames.window_hash import _bits, _model_luma, _pack, _turned
    from vscan.hashing.pdq_ops import dct_matrix_np

    frames = next(iter(PyAVDecoder().iter_frames(vpdq_dir / "chair-19-sd-bar.mp4", FixedRate(2.0), batch_size=3, max_side=300))).rgb
    frames = np.ascontiguousarray(frames[:, 1:, 2:])  # 299 x 198: neither side a multiple of 16
    luma = bh.frame_luma(frames)
    assert luma.tobytes() == np.ascontiguousarray(_model_luma(frames).transpose(0, 2, 1)).tobytes()
    four = np.empty((4, len(frames), 64, 64), np.float32)  # as is, mirrored, upside down, both
    bh._downsample_turned(luma, 3, 5, 190, *bh._band(280), *bh._band(190), np.empty((280, 64), np.float32), np.empty((280, 64), np.float32), four)
    alone = np.empty((len(frames), 64, 64), np.float32)
    bh._downsample(luma, 3, 5, *bh._band(280), *bh._band(190), np.empty((64, 280), np.float32), alone)
    assert alone.tobytes() == four[0].tobytes()  # the same sums, bit for bit
    pictures = np.moveaxis(four, 0, 1)  # [N, 4, 64, 64]
    pictures = np.concatenate([pictures, np.round(pictures / 48) * 48, np.zeros((1, 4, 64, 64), np.float32), np.full((1, 4, 64, 64), 7.5, np.float32)])
    got = bh._finish(np.ascontiguousarray(pictures, np.float32))
    a64 = pictures[:, 0]
    scale, div = np.float32(100.0), np.float32(255.0)
    dv = np.floor(np.abs(a64[:, 1:, :] - a64[:, :-1, :]) * scale / div).sum(axis=(-2, -1))
    dh = np.floor(np.abs(a64[:, :, 1:] - a64[:, :, :-1]) * scale / div).sum(axis=(-2, -1))
    quality = np.minimum(np.floor((dv + dh) / np.float32(90.0)), 100).astype(np.int32)
    dct = dct_matrix_np().astype(np.float32)
    np.testing.assert_array_equal(got.quality, quality)
    alone = np.empty(len(a64), np.int32)
    bh._quality(np.ascontiguousarray(a64, np.float32), alone)  # the compiled gradients on their own
    np.testing.assert_array_equal(alone, quality)
    np.testing.assert_array_equal(got.hashes, _pack(_bits(_turned(*np.moveaxis(dct @ pictures @ dct.T, 1, 0)))))
    assert (quality[:3] > 20).all() and (quality[-2:] == 0).all()


def test_the_operators_of_four_sources_hashed_at_once_stay_cached(vpdq_dir, model, monkeypatch):
    """A build hashes sources side by side (a thread each): every operator run (``_band``) that four sources of real
    sizes need stays cached, none built again when each source's next batch comes (a cache of 64 lengths evicted them
    all in turn: ~33 lengths a source, each ~7-35 ms to build, 9% of the extra rows' thread in a 4-source build)."""
    from vscan.bank import banded_hash as bh
    from vscan.bank.one_pass import BANK_CROPS, BANK_GRID_WINDOWS, BANK_MAX_SIDE, BANK_WINDOWS
    from vscan.decode import FixedRate, PyAVDecoder
    from vscan.frames.borders import detect_borders
    from vscan.hashing.media import _ExtraRows

    band, lengths = bh._band, []
    monkeypatch.setattr(bh, "_band", lambda n: lengths.append(n) or band(n))
    band.cache_clear()
    shapes = set()
    for name in ("chair-19-sd-bar", "pattern-hd-no-bar", "doorknob-hd-no-bar", "test-padded-dimensions"):
        batch = next(iter(PyAVDecoder().iter_frames(vpdq_dir / f"{name}.mp4", FixedRate(4.0), batch_size=1, max_side=BANK_MAX_SIDE)))
        _ExtraRows(detect_borders(batch.rgb), BANK_CROPS, BANK_WINDOWS, BANK_GRID_WINDOWS, 1e9).add(batch, BandedHasher(model))
        shapes.add(batch.rgb.shape)
    built = band.cache_info().misses
    assert len(shapes) == 4 and built == len(set(lengths)) > 64  # the four sources' lengths together
    for n in lengths:  # each source's next batch, in the same order
        band(n)
    assert band.cache_info().misses == built


def test_a_full_builds_frame_rows_are_the_models_the_model_asked_only_for_flat_frames(vpdq_dir, model):
    """``BandedHasher.hash_detailed`` (a full build's frame rows): every frame's bits, all 8 variants, and quality are
    the model's; only the flat frames (quality 0, whose bits are rounding noise) go to the model."""
    from vscan.decode import FixedRate, PyAVDecoder
    from vscan.frames.prepare import SCAN_FRAME_SIDE_PX

    frames = next(iter(PyAVDecoder().iter_frames(vpdq_dir / "pattern-sd-grey-bar.mp4", FixedRate(2.0), batch_size=4, max_side=SCAN_FRAME_SIDE_PX))).rgb
    flat = np.zeros((2, *frames.shape[1:]), np.uint8)
    flat[1] = 117
    frames = np.ascontiguousarray(np.concatenate([frames[:2], flat[:1], frames[2:], flat[1:]]))
    asked = []

    class Counting:
        device = "cpu"

        def hash_frames(self, part):
            asked.append(len(part))
            return model.hash_frames(part)

    got, want = BandedHasher(Counting()).hash_detailed(frames), model.hash_frames(frames)
    np.testing.assert_array_equal(got.quality, want.quality)
    np.testing.assert_array_equal(got.hashes, want.hashes)
    assert asked == [2] and (want.quality[[0, 1, 3, 4]] > 0).all() and (want.quality[[2, 5]] == 0).all()


def test_luma_pictures_are_near_the_rgb_luma_and_get_the_models_bits_of_their_grey_rgb(vpdq_dir, model):
    """A full build's extra rows take each frame's 512 px luma from the decoder's own plane (``_turned_luma``: no
    colour conversion): within a few levels of the model's luma of the RGB picture, and hashed (cut windows, turned
    copies) with the model's bits of that picture as grey RGB."""
    import av

    from vscan.bank.banded_hash import _model_input, banded_boxes, frame_luma, turned_hashes
    from vscan.decode.orient import IDENTITY
    from vscan.decode.pyav_reuse import _turned_luma, _turned_rgb

    with av.open(str(vpdq_dir / "pattern-sd-grey-bar.mp4")) as container:
        decoded = [f for _, f in zip(range(4), container.decode(video=0))][::3]
    native = (decoded[0].width, decoded[0].height)
    stored = (171, 256) if native[1] > native[0] else (256, 144)  # a smaller picture than a build's 512 px: the same arithmetic
    grey = np.stack([_turned_luma(f, stored, native, IDENTITY) for f in decoded])
    rgb = np.stack([_turned_rgb(f, stored, native, IDENTITY) for f in decoded])
    assert grey.shape == rgb.shape[:3] + (1,) and grey.dtype == np.uint8
    assert float(np.abs(frame_luma(grey) - frame_luma(rgb)).mean()) < 3.0
    as_rgb = _model_input(grey)
    assert as_rgb.shape == rgb.shape and (as_rgb == grey).all()
    hasher = BandedHasher(model)
    _same(model.hash_frames(as_rgb), hasher.hash_frames(grey))
    h, w = grey.shape[1:3]
    boxes = [(0, 0, h, w), (40, 8, h - 90, w - 20), (h // 3, 0, h // 2, w // 2)]
    for box, got in zip(boxes, banded_boxes(frame_luma(grey), boxes)):
        y, x, bh_, bw = box
        _same(model.hash_frames(np.ascontiguousarray(as_rgb[:, y : y + bh_, x : x + bw])), got)
    from vscan.frames.windows import rotate_crop

    for degrees, got in zip((4.0, -4.0), turned_hashes(grey[:, 20:-30], [4.0, -4.0])):
        _same(model.hash_frames(rotate_crop(np.ascontiguousarray(as_rgb[:, 20:-30]), degrees)), got)
    assert int((hasher.hash_frames(grey).quality > 0).sum()) == len(grey)


def test_a_full_builds_extra_rows_are_hashed_from_luma_pictures_within_a_few_bits_of_the_rgb_ones(tmp_path, model, monkeypatch):
    """``one_pass_rows`` (``--rows full``, the compiled hash on the CPU) hands ``_ExtraRows`` luma pictures
    ([N, H, W, 1]): the same rows, frame by frame and prep by prep, as from RGB pictures, most of them the same bits and
    none far off (the luma differs by rounding and the colour matrix); its frame rows are the scan's, unchanged."""
    from vscan.bank import one_pass
    from vscan.bank.hashers import FULL_ROWS
    from vscan.bench import synth
    from vscan.decode import EveryFrame
    from vscan.hashing import media

    clip = synth.make_clip(tmp_path / "b.mp4", seed=23, seconds=1.0, size=(320, 180), scenes=1, gop=10)
    channels = []
    add = media._ExtraRows.add
    monkeypatch.setattr(media._ExtraRows, "add", lambda self, batch, hasher: channels.append(batch.rgb.shape[-1]) or add(self, batch, hasher))
    new = one_pass.one_pass_rows(clip, EveryFrame(), model, FULL_ROWS)
    assert channels and set(channels) == {1}
    channels.clear()
    monkeypatch.setattr(one_pass, "extra_picture", lambda made, luma: made())  # RGB pictures, as before
    old = one_pass.one_pass_rows(clip, EveryFrame(), model, FULL_ROWS)
    assert channels and set(channels) == {3}
    assert new.extra.preps == old.extra.preps and len(new.extra.preps) >= 25 * 16
    np.testing.assert_array_equal(new.extra.frame_numbers, old.extra.frame_numbers)
    np.testing.assert_array_equal(new.frames.hashes, old.frames.hashes)
    detail = (old.extra.qualities >= 50) & (new.extra.qualities >= 50)
    bits = np.unpackbits(new.extra.hashes[detail] ^ old.extra.hashes[detail], axis=-1).sum(-1)
    assert detail.sum() >= 200 and np.median(bits) <= 6 and np.percentile(bits, 99) <= 24


def test_a_builds_boxes_and_turned_copies_are_hashed_as_they_are_only(vpdq_dir, model):
    """``BandedHasher.hash_boxes`` / ``hash_turned`` (a build's extra rows, which keep no other variant) give the first
    dihedral variant alone (``AsIs``, [N, 1, 32]): the bits and quality of ``banded_boxes`` / ``turned_hashes``' first
    variant, without the other seven (10.1 -> 4.3 us a row)."""
    from vscan.bank import banded_hash as bh
    from vscan.decode import FixedRate, PyAVDecoder

    batch = next(iter(PyAVDecoder().iter_frames(vpdq_dir / "pattern-sd-grey-bar.mp4", FixedRate(4.0), batch_size=3, max_side=256)))
    h, w = batch.rgb.shape[1:3]
    boxes = [(0, 0, h, w), (10, 20, h - 30, w - 40)]
    hasher = BandedHasher(model)
    for got, full in ((hasher.hash_boxes(batch.rgb, boxes), bh.banded_boxes(bh.frame_luma(batch.rgb), boxes)),
                      (hasher.hash_turned(batch.rgb, [4.0, -4.0]), bh.turned_hashes(batch.rgb, [4.0, -4.0]))):  # fmt: skip
        assert len(got) == len(full) == 2
        for a, b in zip(got, full):
            assert isinstance(a, bh.AsIs) and a.hashes.shape == (3, 1, 32)
            np.testing.assert_array_equal(a.hashes[:, 0], b.hashes[:, 0])
            np.testing.assert_array_equal(a.quality, b.quality)

"""Several candidate regions placed against the bank (issue #27): vscan.frames.candidates
finds where a re-framed picture may sit from several cues, vscan.runtime.region_search
places each box to the pixel against the bank's rows and matches it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vscan.frames.candidates import candidate_boxes, line_positions, span
from vscan.frames.luma import luma
from vscan.frames.regions import detect_region


def _texture(rng: np.random.Generator, h: int, w: int, n: int) -> np.ndarray:
    """n frames of a smooth texture panning under the frame (every pixel changes over time)."""
    base = np.asarray(Image.fromarray((rng.random((12, 24, 3)) * 255).astype(np.uint8)).resize((w * 2, h * 2), Image.Resampling.BICUBIC))
    return np.stack([base[k * 7 : k * 7 + h, k * 11 : k * 11 + w] for k in range(n)])


def _near(box, want, px: int = 3) -> bool:
    return bool(np.abs(np.asarray(box) - np.asarray(want)).max() <= px)


def test_span_bridges_small_gaps_and_keeps_the_longest_run():
    assert span(np.array([0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1]), 1) == (1, 7)
    assert span(np.array([1.0, 1.0, 1.0]), 1) == (0, 3)
    assert span(np.zeros(4), 1) is None


def test_a_fill_with_the_picture_at_the_canvas_edge_is_a_candidate():
    # A 9:16 re-post with the picture against the top edge: one inner side, which
    # region search cannot place (it needs two), over a solid fill.
    rng = np.random.default_rng(5)
    frames = np.full((6, 256, 256, 3), (40, 90, 160), np.uint8)
    frames[:, :82] = _texture(rng, 82, 256, 6)
    assert detect_region(frames) is None
    assert any(_near(b, (0, 82, 0, 256)) for b in candidate_boxes(frames))


@pytest.mark.parametrize("band", [20, 8])
def test_a_picture_under_a_thin_meme_band_is_a_candidate(band):
    # AugLy's meme_format over a tall clip: a white caption band of 8% (98 px over a 640 x 1138 picture) with black
    # text, the picture below it 92% of the frame (tune's portrait pattern clip: missed while boxes stopped at 92%);
    # a caption band of 3% (97%: missed while boxes stopped at 95%).
    rng = np.random.default_rng(12)
    frames = np.full((6, 256, 256, 3), 255, np.uint8)
    frames[:, band // 3 : band - band // 3, 60:190:12] = 0  # the caption's letters
    frames[:, band:] = _texture(rng, 256 - band, 256, 6)
    assert any(_near(b, (band, 256, 0, 256)) for b in candidate_boxes(frames)), candidate_boxes(frames)


def test_a_picture_over_a_blur_of_itself_is_found_by_its_detail():
    rng = np.random.default_rng(6)
    pic = _texture(rng, 96, 256, 6)
    frames = np.stack([np.asarray(Image.fromarray(p).resize((256, 256), Image.Resampling.BILINEAR)) for p in pic])
    frames = np.stack([np.asarray(Image.fromarray(f).resize((16, 16)).resize((256, 256), Image.Resampling.BILINEAR)) for f in frames])
    frames[:, 100:196] = pic
    assert any(_near(b, (100, 196, 0, 256)) for b in candidate_boxes(frames))


def test_a_video_inside_a_still_screenshot_template_is_found_by_its_motion():
    # AugLy's overlay_onto_screenshot: a still, detailed page around the video, which is fitted with bars of its own.
    rng = np.random.default_rng(9)
    page = _texture(rng, 256, 256, 1)[0] // 2 + 100
    frames = np.repeat(page[None], 6, axis=0)
    frames[:, 120:230, 30:220] = 0  # the player's black pillar bars
    frames[:, 120:230, 45:205] = _texture(rng, 110, 160, 6)
    assert any(_near(b, (120, 230, 45, 205)) for b in candidate_boxes(frames)), candidate_boxes(frames)


def test_a_portrait_clip_narrower_than_half_a_still_template_is_found_by_its_motion():
    # The same template with a portrait clip (tune split: 36 x 99 px of the 256 px square, 5.4% of the frame): no row
    # has half the frame's width moving, and the box is smaller than an inset keeping 25% of each side.
    rng = np.random.default_rng(10)
    page = _texture(rng, 256, 256, 1)[0] // 2 + 100
    frames = np.repeat(page[None], 6, axis=0)
    frames[:, 148:247, 54:167] = 0  # the player's black area, wider than the clip
    frames[:, 148:247, 93:129] = _texture(rng, 99, 160, 6)[:, :, 60:96]
    assert any(_near(b, (148, 247, 93, 129)) for b in candidate_boxes(frames)), candidate_boxes(frames)


def test_each_pane_of_a_split_screen_is_a_candidate():
    rng = np.random.default_rng(7)
    frames = np.concatenate([_texture(rng, 256, 85, 6), _texture(rng, 256, 86, 6), _texture(rng, 256, 85, 6)], axis=2)
    assert line_positions(luma(frames), 2) == [85, 171]
    boxes = candidate_boxes(frames)
    for want in ((0, 256, 0, 85), (0, 256, 85, 171), (0, 256, 171, 256)):
        assert any(_near(b, want) for b in boxes), (want, boxes)


def test_unrelated_whole_frame_footage_gives_few_candidates():
    rng = np.random.default_rng(8)
    assert len(candidate_boxes(_texture(rng, 256, 256, 6))) <= 1


def test_box_hashes_equal_window_hashes():
    from vscan.frames.window_hash import window_hashes
    from vscan.runtime.region_search import box_hashes

    rng = np.random.default_rng(1)
    frames = (rng.random((2, 256, 256, 3)) * 255).astype(np.uint8)
    for box in ((10, 150, 20, 230), (0, 256, 0, 100), (33, 97, 5, 250)):
        got = box_hashes(luma(frames), box)
        for f, g in zip(frames, got):
            want = window_hashes(f, box[1] - box[0], box[3] - box[2], np.array([box[0]]), np.array([box[2]]))[0, 0]
            assert np.unpackbits(g[0] ^ want[0]).sum() == 0  # as is (mirrored: the window turned, the next test)


def test_box_hashes_mirrored_is_the_mirrored_window_s_own_hash():
    """The mirrored hash is the PDQ of the window's pixels turned left-right, bit for bit, not the hash's own mirror
    (the DCT's odd columns negated), which lies 20-40 bits from it (issue #30: a mirrored copy's region or turned cut)."""
    from vscan.frames.window_hash import _FLIP_SIGNS, _bits, _pack
    from vscan.runtime.region_search import _operator, box_hashes

    rng = np.random.default_rng(3)
    lumas = luma(_texture(rng, 256, 256, 3))
    turned = np.ascontiguousarray(lumas[:, :, ::-1])
    for t, b, left, r in ((10, 150, 20, 230), (0, 256, 0, 256), (33, 97, 5, 250)):
        got = box_hashes(lumas, (t, b, left, r))
        assert np.array_equal(got[:, 1], box_hashes(turned, (t, b, 256 - r, 256 - left))[:, 0])
        coeffs = _operator(b - t) @ lumas[:, t:b, left:r] @ _operator(r - left).T
        own = _pack(_bits(coeffs * _FLIP_SIGNS))  # what it was
        assert np.bitwise_count(own ^ got[:, 1]).sum(axis=1).min() >= 10


_TRUTH = (40, 190, 60, 220)


def _region_query(lumas: np.ndarray, box):
    """A file's query from its luma frames [N, H, W]: the whole frames, and the window at ``box`` (px) as its region
    version (as is and mirrored), deciding on every frame, as the decode task hands a region box on."""
    from vscan.bank.query import FileQuery, QueryVersion
    from vscan.hashing.vpdq import FrameHashes
    from vscan.runtime.region_search import box_hashes

    n = len(lumas)
    whole, two = box_hashes(lumas, (0, lumas.shape[1], 0, lumas.shape[2])), box_hashes(lumas, box)
    vw, vr = np.repeat(whole[:, :1], 8, axis=1), np.repeat(two[:, :1], 8, axis=1)
    vr[:, 4] = two[:, 1]
    rows = (np.arange(n), np.arange(n) * 1.0, np.full(n, 100, np.int32))
    query = FileQuery((QueryVersion("frames", FrameHashes(*rows, np.ascontiguousarray(vw[:, 0])), vw),), {}, float(n))
    boxes = np.tile(np.asarray(box, np.float64) / lumas.shape[1], (n, 1))
    return query.with_version(QueryVersion("region", FrameHashes(*rows, np.ascontiguousarray(vr[:, 0])), vr, box=boxes, min_frames=n))


@pytest.fixture(scope="module")
def inset_on_black(tmp_path_factory):
    """(matcher, canvases) of ``_inset_scene.inset_scene``: a real bank, its clip inset at ``_TRUTH`` over black; made
    once for both shifts (the matcher is only read)."""
    from _inset_scene import inset_scene

    return inset_scene(tmp_path_factory.mktemp("inset"), 21, _TRUTH, np.zeros_like)


@pytest.mark.parametrize("shift", [(3, -2, 2, 3), (-4, 0, 0, -3)])
def test_a_box_a_few_pixels_off_is_placed_on_the_bank_rows(inset_on_black, shift):
    """A real bank and matcher: the inset's box, moved a few pixels, is moved back onto it (a few bits from the rows)."""
    from vscan.runtime.region_search import LOCATE_FRAMES, box_hashes, closest_rows, place_box

    truth = _TRUTH
    matcher, canvas = inset_on_black
    lumas = luma(canvas)[:LOCATE_FRAMES]
    found = place_box(matcher, lumas, np.add(truth, shift))
    before = int(closest_rows(matcher, box_hashes(lumas, np.add(truth, shift))).sum())
    assert found is not None and _near(found[0], truth, 5), found  # smooth content: a few px either way hash alike
    # <= 20 bits a frame: the clip's bytes (and so its rows) depend on which FFmpeg libraries the process has loaded
    # (decord's bundled ones interpose on PyAV's once imported: 34 bits alone, 52 after an in-process scan, before 140)
    assert found[1] <= 20 * len(lumas) and found[1] < before - 30, (found, before)
    # Unrelated content stops at the gate.
    assert place_box(matcher, luma(canvas[:, ::-1, ::-1][:, :, :, ::-1].copy() // 3), truth) is None


def test_a_region_match_needs_as_many_distinct_pictures_as_frames(inset_on_black):
    """A region version decides with ``min_frames`` matched frames, counted as distinct pictures: a still
    pattern (1,000 unrelated files: ffmpeg's pal75bars, one picture for 5 s) met a colour-bar window of a
    test-pattern entry at 0 bits on every frame, one picture that the frames which found the place repeat."""
    from vscan.runtime.region_search import box_hashes

    matcher, canvas = inset_on_black

    def region_match(lumas):
        query = _region_query(lumas, _TRUTH)
        return [m for m in matcher.for_file(query).match(query) if "region" in m.path]

    lumas = luma(canvas)
    assert len(lumas) >= 3 and len({bytes(x) for x in box_hashes(lumas, _TRUTH)[:, 0]}) == len(lumas)
    moving = region_match(lumas)
    assert moving and moving[0].is_match, moving
    still = region_match(np.repeat(lumas[:1], len(lumas), axis=0))  # the first picture on every frame
    assert still and still[0].distance_min <= 20 and not still[0].is_match, still


def _fill_copy(src, dst, top: int, fill=(30, 160, 90)):
    """A 9:16 re-post: the clip at the canvas's width, ``top`` px from its top edge, over a solid fill."""
    from vscan.bench.edits import _read_clip
    from vscan.bench.encoding import _encode
    from vscan.frames.resize import resize_bilinear

    frames, _, fps = _read_clip(src)
    h, w = frames[0].shape[:2]
    cw, ch = 2 * int(h * 9 / 16 * 1.5 / 2), 2 * int(h * 1.5 / 2)
    ph = 2 * int(h * cw / w / 2)

    def canvas(f):
        out = np.empty((ch, cw, 3), np.uint8)
        out[:] = fill
        out[top : top + ph] = resize_bilinear(f[None], ph, cw)[0]
        return out

    dst.parent.mkdir(parents=True, exist_ok=True)
    return _encode(dst, (canvas(f) for f in frames), fps=fps, codec="libx264", gop=None, crf=23, bitrate=None)


def test_a_fill_with_the_picture_at_the_edge_matches_through_a_placed_region(tmp_path):
    """End to end (CLI scan, default sampling): the picture against the canvas's top edge has one inner
    side, so the decode task's region search finds nothing; the candidate search finds and places it."""
    from _cli_scan import scan_records
    from vscan import Bank
    from vscan.bench import synth

    src = synth.make_clip(tmp_path / "src" / "wide.mp4", seed=31, seconds=6, size=(480, 270), scenes=2, crf=20)
    inbox = tmp_path / "in"
    copy = _fill_copy(src, inbox / "fill_top.mp4", top=0)
    other = synth.make_clip(tmp_path / "o" / "other.mp4", seed=97, seconds=6, size=(480, 270), scenes=2, crf=23)
    unrelated = _fill_copy(other, inbox / "unrelated_fill.mp4", top=0)
    bank = tmp_path / "reported.bank"
    Bank.build(bank, [src], label="reported")
    records = scan_records(inbox, bank, tmp_path / "r.jsonl")
    (match,) = [m for m in records[copy.name]["matches"] if m["is_match"]]
    assert match["bank_entry_id"] == "wide" and "region" in match["path"], match
    assert records[copy.name]["timings"]["match_regions"] > 0
    assert not any(m["is_match"] for m in records[unrelated.name]["matches"])


def test_an_inset_clip_with_bars_of_its_own_is_a_candidate_with_its_bars():
    # A pillarboxed clip (grey bars of its own: its bank rows have them) inset over a blur of itself:
    # the detail cue stops at the bars; the box out to the bars' outer lines is tried too (held-out pip).
    rng = np.random.default_rng(11)
    pic = _texture(rng, 92, 80, 6)
    back = np.stack([np.asarray(Image.fromarray(p).resize((8, 8)).resize((256, 256), Image.Resampling.BILINEAR)) for p in pic]) // 3
    frames = back.copy()
    frames[:, 85:177, 63:155] = 200  # the clip's own bars
    frames[:, 85:177, 69:149] = pic
    boxes = candidate_boxes(frames)
    assert any(_near(b, (85, 177, 63, 155), 1) for b in boxes), boxes


def test_a_fitted_pane_is_a_candidate_beside_bands_its_bars_draw():
    # Three panes side by side; the third holds a clip fitted with black bars above and below, whose edges
    # run across the frame as lines too: the columns' panes (the sharper seams) are tried, not crowded out.
    rng = np.random.default_rng(12)
    frames = np.concatenate([_texture(rng, 256, 85, 6), _texture(rng, 256, 86, 6), np.zeros((6, 256, 85, 3), np.uint8)], axis=2)
    frames[:, 85:171, 171:256] = _texture(rng, 86, 85, 6)
    # the other panes a little darker along the band: its edges are lines across the frame, weaker than the seams
    frames[:, 85:171, :171] = (frames[:, 85:171, :171] * 0.9 + 10).astype(np.uint8)
    boxes = candidate_boxes(frames)
    assert any(_near(b, (85, 171, 171, 256)) or _near(b, (0, 256, 171, 256)) for b in boxes), boxes


def test_an_inset_whose_rows_one_cue_finds_and_columns_another_is_a_candidate():
    """An inset (a panning picture, sharp) between a still sharp picture above and below it and a moving blur left and
    right of it: the moving cue finds its rows but runs the frame's width, the sharp cue its columns but runs the
    frame's height; the box crossing the two is a candidate (tune split: a pip over a blur of itself, AugLy's
    pip over a moving background: 10-18 bits there, none within 64 at either cue's box)."""
    rng = np.random.default_rng(8)
    n, (t, b, left, r) = 8, (60, 200, 50, 210)
    inset = _texture(rng, b - t, r - left, n)
    still = _texture(rng, 256, 256, 1)[0]
    blur = np.asarray(Image.fromarray(_texture(rng, 256, 256, 1)[0]).resize((16, 16)).resize((256, 256), Image.Resampling.BILINEAR))
    frames = np.empty((n, 256, 256, 3), np.uint8)
    for k in range(n):
        frames[k] = still
        frames[k][:, :left] = np.roll(blur, 9 * k, axis=1)[:, :left]
        frames[k][:, r:] = np.roll(blur, 9 * k, axis=1)[:, r:]
        frames[k][t:b, left:r] = inset[k]
    boxes = candidate_boxes(frames)
    assert any(_near(x, (t, b, left, r)) for x in boxes), boxes


def test_bars_of_some_frames_are_a_box_with_those_frames():
    """A portrait clip pillarboxed (bars of 34% a side) on frames 3-5 of 12 of landscape video: the box inside those
    bars, with those frames (vscan.frames.candidates.part_bars); none in frames without bars."""
    from vscan.frames.candidates import part_bars

    rng = np.random.default_rng(9)
    frames = _texture(rng, 256, 256, 12)
    frames[3:6, :, :87] = 0
    frames[3:6, :, 169:] = 0
    ((box, idx),) = part_bars(luma(frames))
    assert list(box) == [0, 256, 87, 169] and list(idx) == [3, 4, 5]
    assert part_bars(luma(np.delete(frames, [3, 4, 5], axis=0))) == []


def test_a_pane_holding_a_picture_with_bars_of_its_own_is_a_candidate_whole():
    """A meme-like frame: a flat caption band over a picture that has flat grey bars of its own. Trimmed, the pane is
    the picture without its bars (what the other cues find too); whole, it is the picture as the bank holds it."""
    rng = np.random.default_rng(11)
    frames = np.full((8, 256, 256, 3), 250, np.uint8)  # the caption band: flat white
    frames[:, 80:] = 128  # the picture's own grey bars
    frames[:, 80:, 30:226] = _texture(rng, 176, 196, 8)
    boxes = candidate_boxes(frames)
    assert any(_near(b, (80, 256, 0, 256)) for b in boxes), boxes


def test_a_region_box_short_of_one_side_is_placed_through_its_side_move(inset_on_black):
    """A real bank and matcher: the decode task's region box with its bottom at a line inside the picture, 22 px
    short of the inset's edge, lies beyond the gate on every frame; of its side moves (``side_moves``) one lies
    within it and is placed on the inset, and ``find_regions`` matches the file through a placed region."""
    from vscan.runtime.region_search import GATE_RADIUS, LOCATE_FRAMES, box_hashes, closest_rows, find_regions, place_box, side_moves

    matcher, canvas = inset_on_black
    lumas = luma(canvas)
    short = np.array([_TRUTH[0], _TRUTH[1] - 22, _TRUTH[2], _TRUTH[3]], np.int32)
    assert (closest_rows(matcher, box_hashes(lumas[:LOCATE_FRAMES], short)) > GATE_RADIUS).all()  # as handed over
    moved = side_moves(short, *lumas.shape[1:])
    assert len(moved) == 16 and all(np.count_nonzero(m != short) == 1 for m in moved)
    gates = [closest_rows(matcher, box_hashes(lumas[:LOCATE_FRAMES], m)) for m in moved]
    best = moved[int(np.argmin([g.mean() for g in gates]))]
    assert best[1] > short[1] and (gates[int(np.argmin([g.mean() for g in gates]))] <= GATE_RADIUS).any()
    placed = place_box(matcher, lumas[:LOCATE_FRAMES], best)
    assert placed is not None and _near(placed[0], _TRUTH, 5), placed

    # The whole search, the short box as the query's region version: matched through a placed region.
    found = find_regions(matcher, _region_query(lumas, short), canvas)
    assert found is not None and any(m.is_match and "region" in m.path for m in found[2]), found


def test_the_caller_s_luma_serves_the_cues_of_a_file_of_more_frames_than_they_read():
    """Of a file with more frames than the cues look at (an archive scan's second pass: 20), ``candidate_boxes`` reads
    the caller's luma at the frames it picks, not a luma of its own: the same boxes to the pixel."""
    from vscan.frames.candidates import _CUE_FRAMES

    frames = np.concatenate([_texture(np.random.default_rng(7 + k), 256, 256, 10) for k in range(2)])  # 20 frames
    inset = np.concatenate([_texture(np.random.default_rng(30 + k), 110, 140, 10) for k in range(2)])
    frames[:, 40:150, 60:200] = inset  # an inset over other moving texture
    assert len(frames) > _CUE_FRAMES
    lumas = luma(frames)
    own = candidate_boxes(frames)
    read = candidate_boxes(frames, lumas=lumas)
    assert own and [list(b) for b in own] == [list(b) for b in read]
    poisoned = lumas.copy()
    poisoned[:] = 0  # a flat picture: what the cues see is what they were handed
    assert [list(b) for b in candidate_boxes(frames, lumas=poisoned)] != [list(b) for b in own]

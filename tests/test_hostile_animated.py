"""Animated stills are clips (issue 23): a known clip hidden behind a
one-second title card in an animated WebP, an APNG, an animated GIF and a
HEIF holding several images (vscan.bench.hostile_media, written by Pillow
from the clip's own frames). Every frame is decoded as a viewer shows it,
at the times its durations give, and sampled over the whole file like any
video. The old code read the first frame of WebP, APNG and HEIF only: the
title card, so the file was "clear" (risk 0.0, frames_sampled 1).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from vscan.bench import synth
from vscan.bench.hostile_media import HEIF_NAME, TIFF_NAME, animated_copies, clip_frames
from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.decode import EveryFrame, FixedRate, ImageDecoder, is_still, open_decoder


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    root = tmp_path_factory.mktemp("animated")
    known = synth.make_clip(root / "known.mp4", seed=7, seconds=4.0, size=(160, 96))
    return root, known, animated_copies(known, root / "evidence")


@pytest.mark.parametrize("name", ["hidden.webp", "hidden.png"])
def test_lossless_animations_decode_every_frame_at_its_time(copies, name):
    _, known, written = copies
    frames, frame_ms = clip_frames(known)
    from vscan.decode.animated import AnimatedImageDecoder

    path = written[name]
    assert not is_still(path)
    decoder = open_decoder(path)
    assert isinstance(decoder, AnimatedImageDecoder)
    meta = decoder.probe(path)
    # Pillow merges a repeated frame into the one before (their durations add up): at most 1 + len(frames)
    assert 2 < meta.num_frames <= 1 + len(frames) and not meta.is_still_image
    assert meta.duration_seconds == pytest.approx(1.0 + len(frames) * round(frame_ms) / 1000)
    batches = list(decoder.iter_frames(path, FixedRate(1.0), batch_size=2))
    indices = np.concatenate([b.frame_indices for b in batches])
    times = np.concatenate([b.pts_seconds for b in batches])
    assert times.tolist() == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0], abs=0.05)  # over the whole duration
    for batch in batches:
        for at, rgb in zip(batch.pts_seconds, batch.rgb):
            if at >= 1.0:  # behind the title card: the clip's own frame at that time, bit for bit (lossless)
                assert np.array_equal(rgb, frames[round((at - 1.0) * 1000 / round(frame_ms))]), (name, at)
    assert indices[0] == 0 and decoder.frames_decoded == indices[-1] + 1


@pytest.mark.parametrize("name", [HEIF_NAME, TIFF_NAME])
def test_a_heif_with_several_images_or_a_multi_page_tiff_is_read_image_by_image(copies, name):
    """A TIFF's later pages are pictures too (a fax, a scan, or what an innocuous first page hides). Before,
    a TIFF went to FFmpeg, whose frames PyAV could not list (an InternalError for every TIFF)."""
    _, _, written = copies
    from vscan.decode.animated import AnimatedImageDecoder

    path = written[name]
    decoder = open_decoder(path)
    meta = decoder.probe(path)
    assert isinstance(decoder, AnimatedImageDecoder) and meta.num_frames == 4 and meta.duration_seconds == 4.0
    batch = next(decoder.iter_frames(path, EveryFrame(), size=(64, 64)))
    assert batch.frame_indices.tolist() == [0, 1, 2, 3] and batch.pts_seconds.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_one_frame_images_and_camera_jpegs_stay_stills(tmp_path):
    from PIL import Image

    picture = Image.fromarray(synth.render_frame(seed=3, t=0.0, size=(64, 48)))
    for name in ("one.webp", "one.png", "one.gif", "one.tif"):
        picture.save(tmp_path / name)
    picture.save(tmp_path / "camera.jpg", format="MPO", save_all=True, append_images=[picture.resize((32, 24))])  # a preview inside
    assert Image.open(tmp_path / "camera.jpg").format == "MPO"
    for name in ("one.webp", "one.png", "one.gif", "one.tif", "camera.jpg"):
        assert is_still(tmp_path / name), name
        assert isinstance(open_decoder(tmp_path / name), ImageDecoder), name


def test_a_scan_finds_the_clip_behind_the_title_card(copies, tmp_path):
    root, known, written = copies
    bank = tmp_path / "known.bank"
    build_bank(bank, [known], hash_media=media_hasher(EveryFrame(), "cpu"))
    out = tmp_path / "r.jsonl"
    run = subprocess.run([sys.executable, "-m", "vscan.cli", "scan", str(root / "evidence"), "--bank", str(bank), "--out", str(out),
                          "--device", "cpu", "-q"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = {r["path"].rsplit("/", 1)[1]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(records) == set(written)
    for name, r in records.items():
        assert r["status"] == "ok" and r["media"]["kind"] == "video", (name, r["error"])
        assert r["frames_sampled"] >= 3, (name, r["frames_sampled"])  # over the duration, not the first frame
        hit = next(m for m in r["matches"] if m["bank_entry_id"] == "known")
        assert hit["query_span_seconds"][0] >= 1.0, (name, hit)  # behind the title card
        if name != "hidden.gif":  # GIF's 256 colours keep it a partial match (FFmpeg's decoder, as before)
            assert r["media"]["decoder"] == "animated-image" and hit["is_match"] and r["risk"] > 0.5, (name, r["reasons"])


def test_frames_whose_side_data_pyav_cannot_list_still_decode(tmp_path):
    """FFmpeg newer than PyAV's list of side-data types attaches ones PyAV cannot name (FFmpeg 8's EXIF on a
    TIFF page; MV-HEVC's view id on a phone's spatial video): listing a frame's side data raises ValueError,
    which ended such a file as an InternalError. The display matrix is then taken from the frame's rotation."""
    from PIL import Image

    from vscan.decode.pyav_backend import PyAVDecoder

    path = tmp_path / "page.tif"
    Image.fromarray(synth.render_frame(seed=3, t=0.0, size=(64, 48))).save(path)
    decoder = PyAVDecoder()  # FFmpeg's TIFF decoder, as a TIFF named otherwise (or any such frame) reaches it
    meta = decoder.probe(path)
    assert (meta.width, meta.height) == (64, 48)
    batch = next(decoder.iter_frames(path, EveryFrame()))
    assert batch.rgb.shape == (1, 48, 64, 3)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_turn_rebuilt_from_the_frames_rotation_is_the_containers_matrix(tmp_path, degrees):
    """The fallback above: the matrix rebuilt from ``VideoFrame.rotation`` gives the orientation that the
    container's own display matrix gives (ffmpeg writes the turn into the MP4's track header)."""
    import shutil

    import av

    from vscan.decode.orient import orientation_from_matrix
    from vscan.decode.pyav_reuse import _rotation_matrix, display_matrix

    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg command (Debian's ffmpeg; .ci/run installs it)")
    plain = synth.make_clip(tmp_path / "plain.mp4", seed=3, seconds=0.5, size=(64, 48))
    turned = tmp_path / f"turned{degrees}.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(plain), "-c", "copy", "-metadata:s:v", f"rotate={degrees}", str(turned)],
                   check=True, timeout=60)  # fmt: skip
    with av.open(str(turned)) as container:
        frame = next(container.decode(video=0))
        real = display_matrix(frame)
        assert real is not None
        assert orientation_from_matrix(_rotation_matrix(frame.rotation)) == orientation_from_matrix(real)


def test_pages_of_different_sizes_are_letterboxed_into_the_first_pages_size(tmp_path):
    """A TIFF's pages (a HEIF collection's images) need not share a size, a clip's frames must: a bank build of
    such a TIFF stopped on ``np.stack`` ("all input arrays must have the same shape"). Each later page is
    scaled whole into the first page's size, centred on black, and hashed like any frame."""
    from PIL import Image

    from vscan.bank import Bank

    sizes = [(96, 64), (40, 80), (64, 64)]  # (w, h): landscape, then portrait, then square
    pages = [Image.fromarray(synth.render_frame(seed=20 + i, t=0.0, size=size)) for i, size in enumerate(sizes)]
    path = tmp_path / "pages.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    decoder = open_decoder(path)
    frames = np.concatenate([b.rgb for b in decoder.iter_frames(path, EveryFrame(), max_side=48)])
    assert frames.shape == (3, 32, 48, 3)
    portrait = frames[1]  # 40x80 into 48x32: 16x32 in the middle, black either side
    assert portrait[:, :15].max() == 0 and portrait[:, 33:].max() == 0 and portrait[:, 17:31].max() > 0
    bank = tmp_path / "b.bank"
    build_bank(bank, [path], hash_media=media_hasher(EveryFrame(), "cpu"))
    assert len(Bank(bank).load_index().hashes) >= 3


def test_a_tiff_of_more_pages_than_the_cap_reads_the_first_and_says_so(tmp_path, monkeypatch):
    """Pillow counts a TIFF's pages in time quadratic in them (an 8 MB TIFF of 200,000 one-pixel pages: 326 s
    before a frame was read); the first ``MAX_TIFF_PAGES`` are read and the record's ``partial`` says why."""
    from PIL import Image

    from vscan.decode import animated

    monkeypatch.setattr(animated, "MAX_TIFF_PAGES", 3)
    pages = [Image.fromarray(synth.render_frame(seed=30 + i, t=0.0, size=(32, 24))) for i in range(5)]
    path = tmp_path / "many.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    assert not is_still(path)
    decoder = open_decoder(path)
    meta = decoder.probe(path)
    assert meta.num_frames == 3 and meta.duration_seconds == 3.0
    assert meta.demux_partial == "a TIFF of more than 3 pages: its first 3 were read"
    batch = next(decoder.iter_frames(path, EveryFrame()))
    assert batch.frame_indices.tolist() == [0, 1, 2]
    short = tmp_path / "three.tif"
    pages[0].save(short, save_all=True, append_images=pages[1:3])
    assert open_decoder(short).probe(short).demux_partial is None  # exactly the cap: whole


def test_a_first_pass_holding_every_page_is_not_decoded_again():
    """A 3-page TIFF's first pass reads all 3 pages; the region probe's escalated pass (more frames for a file
    that looks re-framed) read them all again: frames_decoded 6 of a 3-frame file (issue #30: never decode
    more than the file has)."""
    import tempfile
    from pathlib import Path

    from PIL import Image

    import vscan
    from vscan.runtime.decode_task import decode_for_scan

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pages.tif"
        pages = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (32, 48, 3), np.uint8)) for i in range(3)]
        pages[0].save(path, save_all=True, append_images=pages[1:])
        summary, payload = decode_for_scan(str(path), vscan.ScanConfig(runtime=vscan.Runtime(device="cpu")))
    assert summary["error"] is None
    assert summary["frames_sampled"] == 3 and summary["frames_decoded"] == 3, summary


def test_vscan_hash_prints_a_line_per_page_of_a_multi_page_tiff(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    pages = [Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)) for _ in range(3)]
    path = tmp_path / "pages.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    run = subprocess.run([sys.executable, "-m", "vscan.cli", "hash", str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = [line.split(",") for line in run.stdout.splitlines()]
    assert [(n, t) for n, _, _, t in lines] == [("0", "0.000"), ("1", "1.000"), ("2", "2.000")]
    assert len({h for _, _, h, _ in lines}) == 3

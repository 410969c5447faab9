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
from vscan.bench.hostile_media import HEIF_NAME, animated_copies, clip_frames
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


def test_a_heif_with_several_images_is_read_image_by_image(copies):
    _, _, written = copies
    from vscan.decode.animated import AnimatedImageDecoder

    path = written[HEIF_NAME]
    decoder = open_decoder(path)
    meta = decoder.probe(path)
    assert isinstance(decoder, AnimatedImageDecoder) and meta.num_frames == 4 and meta.duration_seconds == 4.0
    batch = next(decoder.iter_frames(path, EveryFrame(), size=(64, 64)))
    assert batch.frame_indices.tolist() == [0, 1, 2, 3] and batch.pts_seconds.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_one_frame_images_and_camera_jpegs_stay_stills(tmp_path):
    from PIL import Image

    picture = Image.fromarray(synth.render_frame(seed=3, t=0.0, size=(64, 48)))
    for name in ("one.webp", "one.png", "one.gif"):
        picture.save(tmp_path / name)
    picture.save(tmp_path / "camera.jpg", format="MPO", save_all=True, append_images=[picture.resize((32, 24))])  # a preview inside
    assert Image.open(tmp_path / "camera.jpg").format == "MPO"
    for name in ("one.webp", "one.png", "one.gif", "camera.jpg"):
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

"""bench_generalise's randomised re-framing, and region search on it (issue #27)."""

from __future__ import annotations

import numpy as np

from vscan.bench.bench_generalise import origin
from vscan.bench.geometry_copies import _place_fitted, geometry_edit
from vscan.bench.scenes import _Renderer
from vscan.frames.resize import to_square
from vscan.frames.regions import detect_region


def _captioned(band_share: float, seed: int = 3) -> tuple[np.ndarray, int]:
    """8 frames of a 480x270 clip with a caption band of ``band_share`` under the picture (picture shrunk between)."""
    w, h = 480, 270
    render = _Renderer(seed=seed, seconds=8, size=(w, h), scenes=2)
    band = int(h * band_share)

    frames = []
    for t in np.linspace(0.2, 7.5, 8):
        canvas = np.full((h, w, 3), 255, np.uint8)
        _place_fitted(canvas, render(float(t)), 0, 0, w, h - band)
        frames.append(canvas)
    return to_square(np.stack(frames), 256), band


def test_region_search_finds_the_picture_above_a_thin_caption_band():
    """A band of 8% leaves a picture of ~0.85 of the frame: over the old 0.8 cap, so it was never looked for."""
    frames, band = _captioned(0.08)
    box = detect_region(frames)
    assert box is not None
    bottom = 256 * (270 - band) / 270
    assert abs(box.bottom - bottom) <= 3 and box.top <= 3, box
    assert 0.8 < box.fraction(256, 256) <= 0.9


def test_geometry_copies_are_drawn_from_their_seed():
    a = geometry_edit("pip", 480, 270, 6.0, np.random.default_rng(5), 12)[1]
    b = geometry_edit("pip", 480, 270, 6.0, np.random.default_rng(5), 12)[1]
    c = geometry_edit("pip", 480, 270, 6.0, np.random.default_rng(6), 12)[1]
    assert a == b != c


def test_same_origin_is_told_by_name():
    from pathlib import Path

    assert origin(Path("chair-19-sd-bar.mp4")) == origin(Path("chair-orig-22-sd-bar__augly_blur.mp4")) == "chair"
    assert origin(Path("syn5100__geo_pip0.mp4")) == "syn5100" != origin(Path("syn5101.mp4"))


def test_list_banks_of_the_three_kinds_exchanges_share(tmp_path):
    """vPDQ every frame, vPDQ 1 s/hash, and PDQ per image (no frame times) built into banks from lists alone."""
    import pytest

    pytest.importorskip("vpdq")
    from vscan import Bank
    from vscan.bench import synth
    from vscan.bench.list_banks import LIST_KINDS, list_bank

    src = synth.make_clip(tmp_path / "clip.mp4", seed=8, seconds=3.0, fps=10.0, size=(160, 90), scenes=1)
    rows = {}
    for kind in LIST_KINDS:
        bank = list_bank(tmp_path, [src], kind)
        assert list_bank(tmp_path, [src], kind) == bank  # kept and reused
        rows[kind] = len(Bank(bank).load_index())  # frame rows
    assert rows["list"] >= 25 and 2 <= rows["list1s"] <= 4 and rows["pdq"] == rows["list1s"]
    assert "," in (tmp_path / "pdqlists" / "clip.pdq").read_text().splitlines()[0]  # hash,quality: no times


def test_a_plan_bank_is_built_as_the_command_builds_it(tmp_path):
    """``--rows sparse``: the bench scores a bank of that plan beside the media bank, its rows per video-second told."""
    from vscan import Bank
    from vscan.bench import synth
    from vscan.bench.plan_banks import plan_bank, rows_per_second

    src = synth.make_clip(tmp_path / "clip.mp4", seed=9, seconds=4.0, fps=10.0, size=(160, 90), scenes=2)
    sparse, full = plan_bank(tmp_path / "media-sparse.bank", [src], "sparse"), plan_bank(tmp_path / "media-full.bank", [src], "full")
    stamp = sparse.stat().st_mtime_ns
    assert plan_bank(sparse, [src], "sparse") == sparse and sparse.stat().st_mtime_ns == stamp  # kept and reused
    with Bank(sparse) as bank:
        assert bank.meta.get("row_plan") == "sparse"
    assert 0 < rows_per_second(sparse) <= 5.0 < rows_per_second(full)


def test_the_benches_media_banks_keep_the_entry_geometry_the_command_keeps(tmp_path):
    """bench_generalise's (``build_banks``') and the pipeline benches' media banks hold each entry's size and picture inside its bars, as
    ``vscan bank build`` does: the off-centre search sizes a crop of a barred source from it (without it, tune's
    crop_offcentre copies of the two barred real clips were missed, 2/4 against 4/4 with it)."""
    import subprocess

    from vscan import Bank
    from vscan.bench import synth
    from vscan.bench.bench_generalise import media_bank
    from vscan.bench.pipeline_runs import make_bank

    clip = synth.make_clip(tmp_path / "clip.mp4", seed=11, seconds=1.0, fps=10.0, size=(128, 96), scenes=1)
    barred = tmp_path / "reported" / "barred.mp4"
    barred.parent.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-vf", "pad=192:96:32:0:black", "-c:v", "libx264", "-crf", "18", str(barred)],
                   check=True)  # fmt: skip
    with Bank.build(tmp_path / "command.bank", [barred]) as bank:
        want = bank.entry_geometry("barred")
    assert want is not None and want.width == 192 and 28 <= want.box[0] <= 36 and 156 <= want.box[2] <= 164  # the bars found
    with Bank(media_bank(tmp_path, [barred], 256)) as bank:
        assert bank.entry_geometry("barred") == want
    with Bank(make_bank(tmp_path / "pipeline.bank", [barred], "cpu")) as bank:
        assert bank.entry_geometry("barred") == want

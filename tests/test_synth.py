"""vscan.bench.synth: deterministic clips, edits, broken files, stills."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.decode import EveryFrame, PyAVDecoder
from vscan.bench.synth import TRANSFORMS, edit_clip, make_clip, make_corrupt, render_frame, write_image


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("synth") / "src.mp4", seed=11, seconds=2.0,
                     size=(160, 120), gop=25)  # fmt: skip


def frames(path):
    return np.concatenate([b.rgb for b in PyAVDecoder().iter_frames(path, EveryFrame())])


def test_deterministic_and_moving(tmp_path):
    a = render_frame(seed=3, t=0.5, size=(160, 120))
    np.testing.assert_array_equal(a, render_frame(seed=3, t=0.5, size=(160, 120)))
    b = render_frame(seed=3, t=0.54, size=(160, 120))
    c = render_frame(seed=4, t=0.5, size=(160, 120))
    step = np.abs(a.astype(int) - b).mean()
    other = np.abs(a.astype(int) - c).mean()
    assert 0 < step < other, (step, other)


EXPECTED = {  # transform -> (params, (frames, height, width)) for the 2 s 160x120 source
    "reencode": ({}, (50, 120, 160)),
    "downscale": ({"height": 60}, (50, 60, 80)),
    "crop": ({"fraction": 0.5}, (50, 60, 80)),
    "pad": ({"mode": "pillarbox"}, (50, 120, 160)),
    "rot90": ({}, (50, 160, 120)),
    "fps": ({"fps": 10}, (20, 120, 160)),
    "speed": ({"factor": 2.0}, (25, 120, 160)),
    "trim": ({"start": 0.5, "end": 1.5}, (25, 120, 160)),
    "compile": ({"other_seed": 5, "seconds": 1.0, "at": 0.4, "end": 0.4}, (35, 120, 160)),
}


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_edit_clip(tmp_path, src, transform):
    params, shape = EXPECTED.get(transform, ({}, (50, 120, 160)))
    out = frames(edit_clip(src, tmp_path / f"{transform}.mp4", transform, **params))
    assert out.shape[:3] == shape
    if transform == "hflip":
        assert np.abs(out.astype(int) - frames(src)[:, :, ::-1]).mean() < 4
    if transform == "grayscale":
        assert np.abs(out[..., 0].astype(int) - out[..., 2]).mean() < 3


def test_edit_clip_rejects_unknown(tmp_path, src):
    with pytest.raises(ValueError, match="Supported values are"):
        edit_clip(src, tmp_path / "x.mp4", "sepia")


@pytest.mark.parametrize("kind", ["truncated", "random", "text", "empty"])
def test_make_corrupt(tmp_path, kind):
    path = make_corrupt(tmp_path / f"{kind}.mp4", kind)
    assert path.exists() and (path.stat().st_size == 0) == (kind == "empty")


def test_write_image(tmp_path):
    from PIL import Image

    for suffix in (".png", ".jpg"):
        with Image.open(write_image(tmp_path / f"i{suffix}", seed=1, size=(64, 48))) as img:
            assert img.size == (64, 48)

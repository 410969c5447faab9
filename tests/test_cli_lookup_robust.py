"""`vscan bank lookup --robust` searches what a scan searches for a hash: a
cropped and mirrored copy of a banked picture, which --dihedral (frames only)
misses, is found through the bank's crop rows."""

from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image

VSCAN = [sys.executable, "-m", "vscan.cli"]


def test_lookup_robust_finds_a_crop_and_flip_that_dihedral_misses(tmp_path):
    from skimage import data  # public-domain test image (the test extra)

    picture = Image.fromarray(data.astronaut())
    picture.save(tmp_path / "ref.png")
    w, h = picture.size
    copy = picture.crop((int(w * 0.05), int(h * 0.05), int(w * 0.95), int(h * 0.95))).transpose(Image.FLIP_LEFT_RIGHT)
    copy.save(tmp_path / "copy.png")
    run = lambda *args: subprocess.run([*VSCAN, *map(str, args)], capture_output=True, text=True, cwd=tmp_path, timeout=300)  # noqa: E731
    built = run("bank", "build", "case.bank", "ref.png", "--device", "cpu")
    assert built.returncode == 0, built.stderr
    hashed = run("hash", "copy.png")
    assert hashed.returncode == 0, hashed.stderr
    (tmp_path / "copy.txt").write_text(hashed.stdout)

    plain = run("bank", "lookup", "case.bank", "--hashes", "copy.txt", "--dihedral")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["matches"] == []  # the frame rows alone: too far

    robust = run("bank", "lookup", "case.bank", "--hashes", "copy.txt", "--robust")
    assert robust.returncode == 0, robust.stderr
    hits = json.loads(robust.stdout)["matches"]
    assert hits and hits[0]["entry"] == "ref" and hits[0]["variant"] == "flip_h"
    assert hits[0]["prep"].startswith("crop0.9") and hits[0]["distance"] <= 31
    assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)

"""Damaged copies made at random (vscan.bench.fuzz_inputs: bit flips, cuts, zero and 0xff runs, repeated and swapped
pieces) of synthetic clips in three codecs and pictures in six formats: through a scan's decode task each gives
``status ok`` or a typed error of the file's own (``kind: input``), never an internal error or an exception."""

from __future__ import annotations

import random
import shutil

import pytest

from vscan.bench.fuzz_inputs import DAMAGE, default_sources, make_mutants, mutate, scan_mutants

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def test_each_kind_of_damage_changes_the_bytes_and_is_repeatable():
    data = bytes(range(256)) * 64
    for how in DAMAGE:
        once, again = (mutate(data, how, random.Random(7)) for _ in range(2))
        assert once == again and once != data, how
    with pytest.raises(ValueError, match="unknown damage"):
        mutate(data, "melt", random.Random(0))


def test_damaged_media_never_give_an_internal_error(tmp_path):
    sources = [s for s in default_sources(tmp_path / "sources") if "shared" not in s.parts]
    assert len(sources) >= 8  # three clips (as far as ffmpeg's encoders go) and six pictures
    report = scan_mutants(make_mutants(sources, tmp_path / "mutants", seed=11, per_source=4))
    assert report["not_the_files_own"] == [], report
    assert report["files"] == 4 * len(sources) and report["outcomes"].get("ok", 0) > 0

"""A reported file in a build's folders that cannot be read (cut off before its index, encrypted, a list of other
files) is skipped with a note saying why, and the build goes on: one such file among thousands of reports stopped
the whole ``vscan bank build``. Named directly it is still an error; a hash list with a bad line still fails."""

from __future__ import annotations

import numpy as np
import pytest

from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.bank.importers import NOT_ADDED
from vscan.bench import synth
from vscan.decode import FixedRate
from vscan.errors import BankError, UnsupportedMediaError


def test_unreadable_reported_files_in_a_folder_are_noted_and_the_build_goes_on(tmp_path, capsys):
    reported = tmp_path / "reported"
    synth.make_clip(reported / "clip.mp4", seed=3, seconds=1.0, size=(96, 64))
    synth.make_corrupt(reported / "cut.mp4", "truncated")
    (reported / "vault.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    (reported / "list.mp4").write_bytes(b"ffconcat version 1.0\nfile clip.mp4\n")
    hasher = media_hasher(FixedRate(2.0), "cpu")
    info = build_bank(tmp_path / "r.bank", [reported], hash_media=hasher)
    assert info.num_entries == 1
    assert sorted(info.skipped_inputs) == ["reported/cut.mp4", "reported/list.mp4", "reported/vault.mp4"]
    notes = {source: next(iter(n)) for source, n in info.import_notes.items()}
    assert notes["reported/cut.mp4"].startswith(NOT_ADDED + "UnsupportedMediaError") and "no index (moov box)" in notes["reported/cut.mp4"]
    assert "encrypted" in notes["reported/vault.mp4"] and "concat list" in notes["reported/list.mp4"]
    from vscan.cli.bank_cmd import _say_not_added

    _say_not_added(tmp_path / "r.bank", info)
    said = capsys.readouterr().err
    assert "3 file(s) could not be read and were not added (reported/cut.mp4, reported/list.mp4, reported/vault.mp4)" in said
    with pytest.raises(UnsupportedMediaError, match="no index"):  # named directly: the operator asked for that file
        build_bank(tmp_path / "one.bank", [reported / "cut.mp4"], hash_media=hasher)
    (reported / "bad.txt").write_text("0" * 64 + "\nnot a hash\n")
    with pytest.raises(BankError, match="bad.txt"):  # a hash list with a bad line still fails, naming file and line
        build_bank(tmp_path / "two.bank", [reported], hash_media=hasher)

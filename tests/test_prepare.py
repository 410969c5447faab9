"""One frame preparation (vscan.frames.prepare): a bank built from a file and a
scan of a byte-identical copy hash every frame they share to the same bits,
on the real sample videos and stills; the CLI reports distance 0, path original."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from _cli_scan import VSCAN, scan_records
from vscan.bank.hashers import bank_hash_media
from vscan.config import ScanConfig
from vscan.decode import EveryFrame, Keyframes
from vscan.frames.prepare import SCAN_FRAME_SIDE_PX
from vscan.hashing.media import hash_media
from vscan.hashing.pdq import PDQHasher
from vscan.runtime.decode_task import decode_for_scan

VIDEOS = ["chair-19-sd-bar", "chair-22-with-small-logo-bar", "doorknob-hd-no-bar", "pattern-hd-no-bar",
          "pattern-sd-grey-bar", "test-padded-dimensions"]  # fmt: skip
STILLS = ["bridge-mods/aaa-orig.jpg", "bridge-mods/square-512x512.jpg", "bridge-mods/shrink-a-lot.jpg", "misc-images/small.jpg"]


@pytest.fixture(scope="module")
def hasher() -> PDQHasher:
    return PDQHasher(backend="onnx", device="cpu")


def _scan_hashes(path, config: ScanConfig, hasher: PDQHasher) -> dict[int, np.ndarray]:
    summary, payload = decode_for_scan(str(path), config)
    assert summary["error"] is None and payload is not None
    hashes = hasher.hash_frames(payload["frames"]).hashes[:, 0]
    return dict(zip(payload["frame_numbers"].tolist(), hashes))


def _assert_same_bits(path, hasher: PDQHasher) -> int:
    config = ScanConfig()
    scanned = _scan_hashes(path, config, hasher)
    bank = hash_media(path, EveryFrame(), hasher=hasher, frame_side=SCAN_FRAME_SIDE_PX)  # a bank's original rows, every frame
    banked = dict(zip(bank.frames.frame_numbers.tolist(), bank.frames.hashes))
    shared = sorted(set(scanned) & set(banked))
    assert len(shared) == len(scanned), (sorted(scanned), sorted(banked))
    distances = [int(np.unpackbits(scanned[n] ^ banked[n]).sum()) for n in shared]
    assert distances == [0] * len(shared), f"{path.name}: per-frame distances {distances}"
    return len(shared)


def test_bank_hash_media_originals_are_the_prepared_frames(vpdq_dir, hasher):
    path = vpdq_dir / "test-padded-dimensions.mp4"
    bank = bank_hash_media(path, Keyframes(), hasher)
    plain = hash_media(path, Keyframes(), hasher=hasher, frame_side=SCAN_FRAME_SIDE_PX)
    np.testing.assert_array_equal(bank.frames.hashes, plain.frames.hashes)
    assert bank.extra is not None and len(bank.extra) > 0


@pytest.mark.parametrize("name", VIDEOS)
def test_bank_rows_equal_scan_hashes_of_sample_videos(vpdq_dir, hasher, name):
    assert _assert_same_bits(vpdq_dir / f"{name}.mp4", hasher) >= 1


@pytest.mark.parametrize("name", STILLS)
def test_bank_rows_equal_scan_hashes_of_sample_stills(pdq_dir, hasher, name):
    assert _assert_same_bits(pdq_dir / name, hasher) == 1


def test_identical_copy_matches_at_zero_through_the_cli(vpdq_dir, pdq_dir, tmp_path):
    """bank build from a sample video and a still; copies with one byte appended (no digest match) scan at distance 0."""
    reported, inbox = tmp_path / "reported", tmp_path / "inbox"
    reported.mkdir()
    inbox.mkdir()
    sources = {"clip.mp4": vpdq_dir / "doorknob-hd-no-bar.mp4", "photo.jpg": pdq_dir / "bridge-mods" / "aaa-orig.jpg"}
    for name, src in sources.items():
        shutil.copyfile(src, reported / name)
        (inbox / name).write_bytes(src.read_bytes() + b"\0")  # trailing byte: decoders ignore it, digests change
    bank = tmp_path / "r.bank"
    build = subprocess.run([*VSCAN, "bank", "build", str(bank), str(reported), "--label", "reported", "--device", "cpu"],
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert build.returncode == 0, build.stderr
    records = scan_records(inbox, bank, tmp_path / "out.jsonl")
    for name in sources:
        perceptual = [m for m in records[name]["matches"] if m["kind"] == "perceptual"]
        assert perceptual and all(m["kind"] != "exact" for m in records[name]["matches"]), records[name]["matches"]
        assert perceptual[0]["distance_min"] == 0 and perceptual[0]["path"] == ["original"], perceptual[0]


def test_vscan_hash_as_scanned_prints_the_scans_hashes(vpdq_dir, hasher):
    """``vscan hash --as-scanned``: lines a list bank or ``vscan bank lookup`` can take, equal to what a scan hashes."""
    from vscan.hashing.vpdq import read_vpdq

    path = vpdq_dir / "chair-19-sd-bar.mp4"
    run = subprocess.run([*VSCAN, "hash", str(path), "--keyframes", "--as-scanned", "--device", "cpu"], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    printed = read_vpdq(run.stdout)
    scanned = _scan_hashes(path, ScanConfig(), hasher)
    shared = [i for i, n in enumerate(printed.frame_numbers.tolist()) if n in scanned]
    assert shared, (printed.frame_numbers, sorted(scanned))
    for i in shared:
        assert printed.hashes[i].tobytes() == scanned[int(printed.frame_numbers[i])].tobytes()

"""Sparse files (vscan.inputs.digests.sparse_note): a file whose length is mostly holes reads as zeros,
and SHA-256, MD5 and SHA-1 of a 50 GB hole held a decode slot for 175 s here (a 10 TB one: hours; a
torrent client's unfinished download is sparse too). Such a file is not digested: its record says so in
``digest_skipped`` with null digests, and its frames are still read. Real files with real holes
(``truncate``), no mocks; a file system that stores no holes (the test's temp folder on some machines)
skips, saying why."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from vscan.bench import synth
from vscan.inputs import digests

GIB = 1 << 30


def _holey(path: Path, length: int, head: bytes = b"") -> Path:
    path.write_bytes(head)
    os.truncate(path, length)
    if os.stat(path).st_blocks * 512 > len(head) + (1 << 20):  # its head stored, the rest a hole
        pytest.skip(f"{path.parent}'s file system stores holes as data (st_blocks {os.stat(path).st_blocks})")
    return path


def test_a_sparse_file_is_not_digested_and_says_why(tmp_path):
    path = _holey(tmp_path / "hole.mp4", 2 * GIB)
    note = digests.sparse_note(path)
    assert note is not None and "sparse file, 2,147,483,648 bytes long with 0 of them stored" in note, note
    fields = digests.record_digests(path)
    assert fields["sha256"] is None and fields["md5"] is None and fields["sha1"] is None
    assert fields["size_bytes"] == 2 * GIB and fields["digest_skipped"] == note


def test_dense_and_small_files_are_digested(tmp_path, monkeypatch):
    small = _holey(tmp_path / "small-hole.bin", 64 << 20)  # a hole, but under SPARSE_MIN_BYTES
    assert digests.sparse_note(small) is None
    assert digests.record_digests(small)["sha256"] == digests.sha256_file(small)
    monkeypatch.setattr(digests, "SPARSE_MIN_BYTES", 1 << 20)
    dense = tmp_path / "dense.bin"
    dense.write_bytes(os.urandom(2 << 20))
    assert digests.sparse_note(dense) is None  # every byte stored
    half = _holey(tmp_path / "half.bin", 8 << 20, os.urandom(1 << 20))  # 1/8 stored: above the 1/16 share
    assert digests.sparse_note(half) is None
    mostly = _holey(tmp_path / "mostly-hole.bin", 64 << 20, os.urandom(1 << 20))  # 1/64 stored
    assert "with 1,048,576 of them stored" in (digests.sparse_note(mostly) or "")


def test_a_sparse_video_is_decoded_and_its_record_says_why_it_has_no_digest(tmp_path):
    from vscan.config import ScanConfig
    from vscan.runtime.decode_task import decode_for_scan
    from vscan.runtime.payload import FileSummary
    from vscan.verdict.risk import DefaultRiskPolicy
    from vscan.verdict.record import build_record

    clip = synth.make_clip(tmp_path / "clip.mp4", seed=3, seconds=2.0, size=(96, 64), faststart=True)
    path = _holey(tmp_path / "sparse.mp4", 2 * GIB, clip.read_bytes())  # a whole clip, then 2 GiB of hole
    summary, payload = decode_for_scan(str(path), ScanConfig())
    assert summary["error"] is None and payload is not None and summary["frames_decoded"] > 0, summary.get("error")
    assert summary["sha256"] is None and "sparse file" in summary["digest_skipped"]
    record = build_record(FileSummary.from_dict(summary).as_dict(), policy_text="test", risk_policy=DefaultRiskPolicy())
    assert record["digest_skipped"] == summary["digest_skipped"] and record["size_bytes"] == 2 * GIB
    schema = json.loads((Path(__file__).parents[1] / "scanner/verdict/schema/result.v1.json").read_text())
    jsonschema.validate(json.loads(json.dumps(record)), schema)
    with open(path, "rb") as fh:  # evidence untouched
        assert os.stat(path).st_size == 2 * GIB and fh.read(len(clip.read_bytes())) == clip.read_bytes()

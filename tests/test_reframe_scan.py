"""Re-framed copies found by a whole scan through the CLI, under the default
adaptive sampling with ``--first-pass-frames 6`` (region search needs at
least 4 frames of a file; the default first pass of a short clip has 2):
a vertical blur-fill re-post and a picture-in-picture of a banked clip match
it through the ``region`` path, with where in the frame; an unrelated clip
matches nothing. The per-kind recall table is vscan.bench.bench_robustness's."""

from __future__ import annotations

from _cli_scan import scan_records
from vscan import Bank
from vscan.bench import synth
from vscan.bench.reframe import reframe_clip

def test_reframed_copies_match_through_their_region_under_adaptive_sampling(tmp_path):
    src = synth.make_clip(tmp_path / "src" / "wide.mp4", seed=7, seconds=6, size=(640, 360), scenes=2, crf=20)
    inbox = tmp_path / "in"
    copies = [reframe_clip(src, inbox / f"copy_{kind}.mp4", kind, seed=7) for kind in ("blurfill_vertical", "pip")]
    other = synth.make_clip(inbox / "unrelated.mp4", seed=91, seconds=6, size=(640, 360), scenes=2, crf=23)
    bank = tmp_path / "reported.bank"
    Bank.build(bank, [src], label="reported")
    records = scan_records(inbox, bank, tmp_path / "r.jsonl", "--first-pass-frames", "6")
    assert set(records) == {c.name for c in copies} | {other.name}
    for copy in copies:
        record = records[copy.name]
        assert record["status"] == "ok" and record["frames_sampled"] >= 6
        (match,) = [m for m in record["matches"] if m["is_match"]]
        assert match["bank_entry_id"] == "wide" and "region" in match["path"], match
        box = match["region"]
        assert 0 <= box["left"] < box["right"] <= 1 and 0 <= box["top"] < box["bottom"] <= 1
    blur = next(m for m in records["copy_blurfill_vertical.mp4"]["matches"] if m["is_match"])["region"]  # 16:9 across the middle of 9:16
    assert blur["left"] < 0.05 and blur["right"] > 0.95 and 0.25 < blur["top"] < 0.4 and 0.6 < blur["bottom"] < 0.75
    inset = next(m for m in records["copy_pip.mp4"]["matches"] if m["is_match"])["region"]  # about half the size, in a corner
    assert 0.35 < inset["right"] - inset["left"] < 0.65 and 0.35 < inset["bottom"] - inset["top"] < 0.65
    assert not any(m["is_match"] for m in records[other.name]["matches"])

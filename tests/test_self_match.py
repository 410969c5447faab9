"""Numbers a reviewer reads (issue #14 point 8), from real scans of generated media.

An 8 s generated clip with a 6 s GOP has keyframes at 0 s and 6 s: sampled at its
keyframes, the last sample used to be credited with the median gap (6 s),
"12.0 s matched" on an 8 s file. The report is
rendered from the scan's own records and read back from headless Chromium.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from test_report import chromium, needs_chromium

from vscan.bank import Bank
from vscan.bank.match import match_frames
from vscan.bench import synth
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import Keyframes
from vscan.hashing.media import hash_media
from vscan.hashing.pdq import PDQHasher
from vscan.output.report import write_report
from vscan.output.sinks import JsonlSink
from vscan.runtime.driver import run_scan

SECONDS = 8.0


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("self")
    clips = root / "clips"
    clip = synth.make_clip(clips / "long" / "eight.mp4", seed=21, seconds=SECONDS, size=(192, 128), gop=150)
    other = synth.make_clip(clips / "short" / "eight.mp4", seed=22, seconds=3, size=(192, 128))  # same base name
    still = synth.write_image(clips / "still.png", seed=23, size=(160, 120))
    bank = Bank.build(root / "self.bank", [clip, other, still], device="cpu")
    return {"root": root, "clips": clips, "clip": clip, "other": other, "still": still, "bank": bank}


def test_last_sample_ends_at_the_duration(media):
    result = hash_media(media["clip"], Keyframes(), hasher=PDQHasher(device="cpu"), max_side=256)
    ts = result.frames.timestamps_seconds
    duration = result.metadata.duration_seconds
    median_gap = float(np.median(np.diff(ts)))
    assert len(ts) >= 2 and ts[-1] + median_gap > duration  # the sparse case
    index = media["bank"].load_index()
    (own, *_) = match_frames(result.frames, index, duration_seconds=duration)
    assert own.bank_entry_id == "eight" and own.query_pct == 100.0
    assert own.matched_seconds == pytest.approx(duration - ts[0])  # the last keyframe shows until the end
    # Without the duration the last sample shows for the median gap, past the end.
    assert match_frames(result.frames, index)[0].matched_seconds == pytest.approx(ts[-1] - ts[0] + median_gap)


@pytest.mark.parametrize("policy", ["keyframes", "adaptive"])
def test_banked_files_match_themselves_fully(media, tmp_path, ray_local, policy):
    out = tmp_path / "r.jsonl"
    config = ScanConfig(sampling=Sampling(policy=policy), runtime=Runtime(device="cpu"))
    with JsonlSink(out) as sink:
        run_scan([media["clips"]], sink=sink, bank_path=media["bank"].path, config=config)
    records = {r["path"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(records) == 3
    for path, r in records.items():
        perceptual = [m for m in r["matches"] if m["kind"] == "perceptual"]
        best = perceptual[0]
        assert best["is_match"] and best["query_pct"] == 100.0, (path, best)
        for m in r["matches"]:
            assert m["matched_seconds"] <= r["duration_seconds"] + 1e-9, (path, m)
        for reason in r["reasons"]:
            for seconds in re.findall(r"([\d.]+) s matched", reason):
                assert float(seconds) <= r["duration_seconds"] + 0.05, reason
    long = records[str(media["clip"])]
    assert long["duration_seconds"] == pytest.approx(SECONDS, abs=0.05)


@needs_chromium
def test_report_of_a_real_scan(media, tmp_path, ray_local):
    out = tmp_path / "r.jsonl"
    config = ScanConfig(sampling=Sampling(policy="keyframes"), runtime=Runtime(device="cpu"))
    with JsonlSink(out) as sink:
        run_scan([media["clips"]], sink=sink, bank_path=media["bank"].path, config=config)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    page = tmp_path / "report.html"
    write_report(records, page)
    for sort in ("risk:desc", "file:desc", "file:asc", "duration:desc"):
        dom = chromium(page.as_uri() + f"#sort={sort}", tmp_path, "--dump-dom")
        rows = re.findall(r'<tr id="row-\d+"[^>]*data-path="([^"]+)"[^>]*><td data-v="\d+">(\d+)</td><td[^>]*><a[^>]*>([^<]+)</a>', dom)
        assert len(rows) == 3, dom[:2000]
        # Rows numbered 1..N top to bottom in every order; the file column shows the full path.
        assert [int(n) for _, n, _ in rows] == [1, 2, 3], (sort, rows)
        assert all(shown == path for path, _, shown in rows)
        if sort.startswith("file"):
            paths = [p for p, _, _ in rows]
            assert paths == sorted(paths, key=str.lower, reverse=sort.endswith("desc"))
    # The two clips share a base name: only their full paths tell them apart.
    assert str(media["clip"]) in dom and str(media["other"]) in dom
    # A still gets a still's view (its size and match), no timeline; each video keeps its timeline.
    sections = dict(re.findall(r'<section class="file" id="file-\d+"><h3>.*?</span> ([^<]+)</h3>(.*?)</section>', dom))
    still = sections[str(media["still"])]
    assert "<svg" not in still and 'class="still"' in still and "still image, 160×120 px" in still
    assert re.search(r"perceptual match with [^<]*still", still)
    assert all("<svg" in sections[str(p)] for p in (media["clip"], media["other"]))

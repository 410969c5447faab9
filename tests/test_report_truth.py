"""One truth for match details in the report and on the terminal: the shaded stretch is the
seconds the reason names, a still says still, the strongest detection is the highest score,
and the page counts scanned / skipped / errors as vscan scan does."""

from __future__ import annotations

import re

from vscan.cli.progress import ScanOutcomes
from vscan.output.report import matched_stretch, render_report


def _video(matched_seconds: float, span: list[float], duration: float = 6.0, **extra) -> dict:
    match = {"bank_entry_id": "reported-1", "label": "reported", "kind": "perceptual", "is_match": True,
             "query_pct": 100.0, "compared_pct": 74.0, "matched_seconds": matched_seconds,
             "query_span_seconds": span, "reference_span_seconds": span}  # fmt: skip
    return {"path": "/e/upload-1.mp4", "status": "ok", "error": None, "risk": 1.0, "duration_seconds": duration,
            "media": {"kind": "video", "width": 320, "height": 240}, "matches": [match],
            "reasons": [f"perceptual match with reported-1 (reported): query 100%, compared 74%, {matched_seconds:.1f} s matched"],
            "detections": [], "detection_timeline": None, **extra}  # fmt: skip


def test_shaded_stretch_is_the_matched_seconds_the_reason_names():
    # Samples every 0.4 s from 0.0 to 5.6 s, each shown until the next (the last until 6.0 s): 6.0 s matched.
    record = _video(6.0, [0.0, 5.6])
    assert matched_stretch(record["matches"][0], 6.0) == (0.0, 6.0)
    page = render_report([record])
    assert "<title>matched 0.0–6.0 s</title>" in page and "6.0 s matched" in page
    (line,) = [x for x in _lines(record) if "upload-1.mp4" in x]
    assert "0.0-6.0 s of 6.0 s, 6.0 s matched" in line


def test_a_gapped_match_ends_at_its_last_sample_and_never_past_the_file():
    assert matched_stretch({"query_span_seconds": [1.0, 9.0], "matched_seconds": 3.0}, 10.0) == (1.0, 9.0)
    assert matched_stretch({"query_span_seconds": [4.0, 5.0], "matched_seconds": 3.0}, 6.0) == (4.0, 6.0)


def test_a_still_is_worded_as_a_still_not_zero_seconds():
    still = {**_video(0.0, [0.0, 0.0], duration=0.0), "path": "/e/grab.png", "media": {"kind": "image", "width": 64, "height": 64}}
    page = render_report([still])
    row = re.search(r'<tr id="row-0".*?</tr>', page, re.S).group(0)
    assert "still image" in row and "0.0 s)" not in row
    assert any("still image" in x for x in _lines(still))


def test_strongest_detection_is_the_highest_score_faces_included():
    detections = [
        {"model": "open_nsfw", "kind": "classifier", "label": "nsfw", "weight": 1.0, "frames": 8, "max_score": 0.03,
         "top_k": 3, "top_k_mean": 0.03, "threshold": 0.8, "frames_above": 0, "share_above": 0.0, "strongest": []},
        {"model": "blazeface", "kind": "face", "label": "face", "weight": 0.0, "frames": 8, "max_score": 0.63,
         "top_k": 3, "top_k_mean": 0.6, "threshold": 0.5, "frames_above": 2, "share_above": 0.25, "strongest": []},
    ]  # fmt: skip
    record = {**_video(6.0, [0.0, 5.6]), "detections": detections}
    row = re.search(r'<tr id="row-0".*?</tr>', render_report([record]), re.S).group(0)
    assert "blazeface/face 0.63" in row and "open_nsfw/nsfw 0.03" not in row


def test_the_report_counts_scanned_skipped_and_errors_apart():
    error = {"path": "/e/bad.mp4", "status": "error", "error": {"type": "DecodeError", "message": "x"}, "risk": None,
             "matches": [], "reasons": [], "detections": []}  # fmt: skip
    unchanged = {**_video(6.0, [0.0, 5.6]), "path": "/e/old.mp4", "skipped": "unchanged"}
    page = render_report([_video(6.0, [0.0, 5.6]), unchanged, error])
    assert "scanned 1, skipped 1 (1 unchanged), errors 1, matched 2" in page


def _lines(record: dict) -> list[str]:
    outcomes = ScanOutcomes()
    outcomes.add(record)
    return outcomes.lines()


def test_a_still_match_reason_says_still_image():
    from vscan.bank.prepared import Match
    from vscan.verdict.risk import DefaultRiskPolicy, Evidence

    match = Match(bank_entry_id="reported-1", label="reported", query_pct=100.0, compared_pct=2.0, matched_seconds=0.0,
                  query_span_seconds=(0.0, 0.0), reference_span_seconds=(1.0, 1.0), distance_min=4, is_match=True,
                  num_query_hashes_matched=1, num_reference_hashes_matched=1)  # fmt: skip
    still = DefaultRiskPolicy().assess(Evidence(path="/e/grab.png", matches=[match], duration_seconds=0.0))
    assert still.reasons == ("perceptual match with reported-1 (reported): query 100%, compared 2%, still image",)
    video = DefaultRiskPolicy().assess(Evidence(path="/e/clip.mp4", matches=[match], duration_seconds=4.0))
    assert video.reasons[0].endswith("0.0 s matched")

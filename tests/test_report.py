"""The HTML report, rendered by a real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from vscan.bench import synth
from vscan.output.report import read_records, render_report
from vscan.verdict.record import result_schema

SCHEMA = result_schema()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="headless Chromium not installed (apt-get install -y chromium; .ci/run installs it)",
)


def record(path, risk, *, status="ok", spans=(), series=None, duration=6.0):
    r = {
        "schema_version": 1, "path": path, "sha256": "0" * 64, "md5": "0" * 32, "size_bytes": 10, "status": status,
        "error": None if status == "ok" else {"type": "DecodeError", "message": "bad"},
        "media": None, "duration_seconds": duration if status == "ok" else None, "frames_decoded": 6, "frames_sampled": 6,
        "sampling": "fixed rate 1 fps", "risk": risk, "reasons": [f"reason for {Path(path).name}"] if risk else [],
        "matches": [
            {"bank_entry_id": "reported-1", "label": "reported", "kind": "perceptual", "is_match": True, "query_pct": 90.0,
             "compared_pct": 50.0, "matched_seconds": b - a, "query_span_seconds": [a, b], "reference_span_seconds": [a, b]}
            for a, b in spans
        ],
        "detections": [],
        "detection_timeline": None if series is None else {
            "timestamps_seconds": [float(t) for t in range(len(series))], "series": {"square/square": series}},
        "timings": {},
    }
    jsonschema.validate(r, SCHEMA)
    return r


RECORDS = [
    record("a/low.mp4", 0.1, series=[0, 0.1, 0.2, 0.1, 0, 0]),
    record("a/flagged.mp4", 0.94, spans=[(1.0, 4.0)], series=[0, 0.2, 0.9, 1.0, 0.8, 0.1]),
    record("a/broken.mp4", None, status="error"),
    record("a/mid.mp4", 0.45, series=[0.5, 0.5, 0.4, 0.6, 0.5, 0.5]),
    record("a/zero.mp4", 0.0),
]


class _Rows(HTMLParser):
    """File names of the table rows in document order, and what else a reader sees."""

    def __init__(self):
        super().__init__()
        self.rows, self.imgs, self.polylines, self.spans, self.sorted = [], 0, 0, 0, None
        self._in_row = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-path" in a:
            self.rows.append(Path(a["data-path"]).name)
        elif tag == "img":
            self.imgs += 1
        elif tag == "polyline":
            self.polylines += 1
        elif tag == "rect" and "span" in (a.get("class") or ""):
            self.spans += 1
        elif tag == "body":
            self.sorted = a.get("data-sorted")


def parse(html_text: str) -> _Rows:
    p = _Rows()
    p.feed(html_text)
    return p


def chromium(url: str, tmp_path: Path, *extra: str) -> str:
    assert CHROMIUM, "headless Chromium is required under CI=true (.ci/run installs it)"
    run = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=2000", *extra, url],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_static_page_is_self_contained_and_sorted_by_risk():
    page = render_report(RECORDS)
    p = parse(page)
    assert p.rows == ["flagged.mp4", "mid.mp4", "low.mp4", "zero.mp4", "broken.mp4"]
    assert p.imgs == 0  # reviewer safety: no frame images by default
    assert p.polylines == 3 and p.spans == 1
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "<link" not in page


def test_floods_are_listed_only_when_the_manifest_has_them(tmp_path):
    from vscan.output.read import read_floods

    assert '<section id="floods">' not in render_report(RECORDS)
    out = tmp_path / "r.jsonl"
    out.write_text("")
    assert read_floods(out) == []  # no manifest
    runs = [{"run_id": "r1", "started": "2026-01-01T00:00:00Z", "match_floods": [{"bank_entry_id": "intro", "label": "x", "files": 40, "share": 0.2}]},
            {"run_id": "r2", "started": "2026-01-02T00:00:00Z", "match_floods": []}]  # fmt: skip
    (tmp_path / "r.jsonl.manifest.json").write_text(json.dumps({"runs": runs}))
    floods = read_floods(out)
    assert floods == [{"bank_entry_id": "intro", "label": "x", "files": 40, "share": 0.2, "run_id": "r1", "started": "2026-01-01T00:00:00Z"}]
    page = render_report(RECORDS, floods=floods)
    assert '<section id="floods">' in page and "<td>intro</td>" in page and "20.0%" in page


def test_read_records_keeps_last_record_per_file(tmp_path):
    path = tmp_path / "r.jsonl"
    first, again = record("x.mp4", 0.2), record("x.mp4", 0.9)
    path.write_text("\n".join(json.dumps(r) for r in (first, record("y.mp4", 0.1), again)) + "\n")
    records = read_records(path)
    assert [r["path"] for r in records] == ["y.mp4", "x.mp4"] and records[1]["risk"] == 0.9


def test_thumbnails_are_opt_in_small_and_blurred(tmp_path):
    import base64
    import io

    import numpy as np
    from PIL import Image

    clip = synth.make_clip(tmp_path / "c.mp4", seed=3, seconds=2)
    page = render_report([record(str(clip), 0.5, duration=2.0)], thumbnails=True)
    uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    assert len(uris) >= 2
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(uris[0]))).convert("L"), np.float64)
    assert max(img.shape) <= 48
    # heavily blurred: neighbouring pixels barely differ
    assert np.abs(np.diff(img, axis=1)).mean() < 4.0


@needs_chromium
def test_report_in_headless_chromium(tmp_path):
    out = tmp_path / "report.html"
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    run = subprocess.run([sys.executable, "-m", "vscan.cli", "report", str(results), "-o", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    url = out.as_uri()
    shown = parse(chromium(url, tmp_path, "--dump-dom"))
    assert shown.sorted == "risk:desc"  # the script ran
    assert shown.rows == ["flagged.mp4", "mid.mp4", "low.mp4", "zero.mp4", "broken.mp4"]
    ascending = parse(chromium(url + "#sort=risk:asc", tmp_path, "--dump-dom"))
    assert ascending.sorted == "risk:asc"
    assert ascending.rows == ["broken.mp4", "zero.mp4", "low.mp4", "mid.mp4", "flagged.mp4"]
    by_name = parse(chromium(url + "#sort=file:asc", tmp_path, "--dump-dom"))
    assert by_name.rows == ["broken.mp4", "flagged.mp4", "low.mp4", "mid.mp4", "zero.mp4"]
    shot = tmp_path / "report.png"
    chromium(url, tmp_path, f"--screenshot={shot}", "--window-size=1000,900", "--hide-scrollbars")
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.size == (1000, 900)
    colours = set(img.getdata())
    assert (248, 208, 208) in colours  # the high-risk badge/cell colour is painted
    shutil.copy(shot, os.environ.get("VSCAN_REPORT_SCREENSHOT", tmp_path / "kept.png"))

"""``vscan export``: a real scan's results as a VICS case file that the VICS importer
reads back to the same media (MD5, SHA-1, category), and as CSV."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

import _onnx_models as tm
import vscan
from vscan.bank import Bank, build_bank
from vscan.bench import synth
from vscan.config import Models, Runtime, ScanConfig

V20 = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media"


def _digests(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    return hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest()


def test_export_vics_round_trips_through_the_importer(tmp_path, ray_local):
    ev = tmp_path / "evidence"
    known = synth.make_clip(ev / "known.mp4", seed=51, seconds=2, fps=10, size=(160, 120))
    other = synth.make_clip(ev / "other.mp4", seed=52, seconds=2, fps=10, size=(160, 120))
    red = ev / "red.png"
    Image.new("RGB", (64, 64), (230, 10, 10)).save(red)
    case = tmp_path / "lists" / "case.json"
    case.parent.mkdir()
    case.write_text(json.dumps({"@odata.context": V20, "value": [{"MediaID": 3, "Category": 1, "MD5": _digests(known)[0]}]}))
    build_bank(tmp_path / "b.bank", [case])
    config = ScanConfig(runtime=Runtime(device="cpu"), models=Models(detectors=(str(tm.colour_classifier(tmp_path / "m")),)))
    results = tmp_path / "results.jsonl"
    vscan.scan([ev], bank=tmp_path / "b.bank", out=results, config=config)

    out = tmp_path / "export" / "case.json"
    cli = [sys.executable, "-m", "vscan.cli", "export", str(results), "-o", str(out), "--detector-category", "2"]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{out}: 3 media" in done.stdout
    doc = json.loads(out.read_text())
    media = {m["RelativeFilePath"]: m for m in doc["value"][0]["Media"]}  # relative to the evidence folder
    assert media["known.mp4"]["Comments"].startswith("exact") and media["red.png"]["Comments"]
    assert media["known.mp4"]["MediaFiles"][0]["FilePath"] == str(known)

    build_bank(tmp_path / "again.bank", [out])
    with Bank(tmp_path / "again.bank") as bank:
        labels = {row[0]: row[1] for row in bank.rows("entries")}
        digests = {(a, d): e for e, a, d in bank.rows("file_digests")}
    expected = {}
    for path, category in ((known, "1"), (other, None), (red, "2")):
        md5, sha1 = _digests(path)
        entry = digests[("md5", md5)]
        assert digests[("sha1", sha1)] == entry and labels[entry] == category
        expected[entry] = category
    assert labels == expected and len(digests) == 6

    rows = tmp_path / "results.csv"
    done = subprocess.run([*cli[:5], "--format", "csv", "-o", str(rows)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    table = {r["path"]: r for r in csv.DictReader(rows.open())}
    assert table[str(known)]["category"] == "1" and table[str(other)]["category"] == ""
    assert [table[str(p)]["sha1"] for p in (known, other, red)] == [_digests(p)[1] for p in (known, other, red)]
    assert table[str(known)]["matched_entries"] == "case:3" and float(table[str(known)]["risk"]) == 1.0


def test_export_refuses_an_unknown_format(tmp_path):
    results = tmp_path / "r.jsonl"
    results.write_text("")
    done = subprocess.run([sys.executable, "-m", "vscan.cli", "export", str(results), "--format", "xml", "-o", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "Invalid export format ('xml'). Supported values are vics, csv" in done.stderr
    assert not (tmp_path / "x").exists()

"""Export details a case tool sees: VICS RelativeFilePath is relative, a CSV row names each entry once."""

from __future__ import annotations

import csv
import json

from vscan.output.export import export_results, relative_paths


def _record(path: str, matches: list[dict]) -> dict:
    return {"path": path, "status": "ok", "risk": 1.0, "md5": "0" * 32, "sha256": "1" * 64, "size_bytes": 10,
            "matches": matches, "reasons": ["exact match"], "detections": []}  # fmt: skip


def test_relative_paths_are_below_the_shared_folder_and_keep_members():
    got = relative_paths(["/case/disk1/a.mp4", "/case/disk1/sub/b.mp4", "/case/disk2/c.zip!/x/d.mp4"])
    assert got == {"/case/disk1/a.mp4": "disk1/a.mp4", "/case/disk1/sub/b.mp4": "disk1/sub/b.mp4",
                   "/case/disk2/c.zip!/x/d.mp4": "disk2/c.zip!/x/d.mp4"}  # fmt: skip
    assert relative_paths(["/case/one.mp4"]) == {"/case/one.mp4": "one.mp4"}


def test_vics_relative_file_path_is_relative_and_file_path_absolute(tmp_path):
    records = [_record("/evidence/laptop/a.mp4", []), _record("/evidence/phone/b.mp4", [])]
    export_results(records, "vics", tmp_path / "case.json")
    media = json.loads((tmp_path / "case.json").read_text())["value"][0]["Media"]
    assert [m["RelativeFilePath"] for m in media] == ["laptop/a.mp4", "phone/b.mp4"]
    assert [m["MediaFiles"][0]["FilePath"] for m in media] == ["/evidence/laptop/a.mp4", "/evidence/phone/b.mp4"]
    assert not any(m["RelativeFilePath"].startswith("/") for m in media)


def test_csv_names_an_entry_once_when_it_matched_exactly_and_perceptually(tmp_path):
    both = [{"bank_entry_id": "case:3", "label": "1", "kind": "exact", "is_match": True},
            {"bank_entry_id": "case:3", "label": "1", "kind": "perceptual", "is_match": True},
            {"bank_entry_id": "case:9", "label": "1", "kind": "perceptual", "is_match": True}]  # fmt: skip
    export_results([_record("/evidence/a.mp4", both)], "csv", tmp_path / "r.csv")
    (row,) = csv.DictReader((tmp_path / "r.csv").open())
    assert row["matched_entries"] == "case:3 case:9"

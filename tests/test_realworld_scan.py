"""Issue #13, done-when: what people actually upload matches its source in a
scan with the default settings.

A bank is built from four synthetic sources (``vscan.Bank.build``, as
``vscan bank build``); a stream-copy cut (edit list, negative keyframe
timestamps), a phone-style clip (stored sideways, a display matrix turns it
upright), a fragmented MP4 and a HEIC still are made from them with the
ffmpeg CLI and heif-enc (``vscan.bench.realworld.derive``) and scanned on
Ray with the default ScanConfig (device cpu). Each must match its own source
and no other. The HEIC's source is a PNG of the same picture: stills are
matched against image entries here (a still also matches a video entry by a
frame, query% >= 80, but its source is a picture).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import vscan
from vscan.bench import realworld, synth
from vscan.config import Runtime, ScanConfig

pytestmark = pytest.mark.skipif(bool(realworld.missing_tools()), reason=f"needs {realworld.missing_tools()}")

#: derived kind -> (source file name, how the source is made).
SOURCES = {
    "cut_mov": ("cut-source.mp4", lambda p: synth.make_clip(p, seed=71, seconds=3, fps=25, size=(160, 120), gop=25)),
    "phone90": ("phone-source.mp4", lambda p: synth.make_clip(p, seed=72, seconds=3, fps=25, size=(120, 160), gop=25)),
    "fragmented": ("fragmented-source.mp4", lambda p: synth.make_clip(p, seed=73, seconds=3, fps=25, size=(160, 120), gop=25)),
    "heic": ("heic-source.png", lambda p: synth.write_image(p, seed=74, size=(160, 120))),
}
SUFFIX = {"cut_mov": "mov", "phone90": "mp4", "fragmented": "mp4", "heic": "heic"}


def _probe(path: Path, entries: str) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", entries, "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return json.loads(out)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, ray_local):
    root = tmp_path_factory.mktemp("realworld-scan")
    sources, uploads = root / "sources", root / "uploads"
    sources.mkdir()
    uploads.mkdir()
    made = {}
    for kind, (name, make) in SOURCES.items():
        source = make(sources / name)
        made[kind] = (source, realworld.derive(kind, source, uploads / f"{kind}.{SUFFIX[kind]}"))
    vscan.Bank.build(root / "sources.bank", [sources], label="reported", device="cpu")
    out = root / "results.jsonl"
    vscan.scan([uploads], bank=root / "sources.bank", out=out, config=ScanConfig(runtime=Runtime(device="cpu")))
    records = {Path(r["path"]).stem: r for r in map(json.loads, out.read_text().splitlines())}
    return made, records


def test_the_uploads_are_what_they_claim_to_be(scanned):
    """The oracle agrees the files have the shapes under test."""
    made, _ = scanned
    cut = _probe(made["cut_mov"][1], "stream=start_time:packet=pts_time,flags")
    first_key = next(float(p["pts_time"]) for p in cut["packets"] if p["flags"].startswith("K"))
    assert first_key < 0, "the cut's first keyframe should lie before the edit list's start"
    phone = _probe(made["phone90"][1], "stream=width,height:stream_side_data=rotation")["streams"][0]
    assert (phone["width"], phone["height"]) == (160, 120) and phone["side_data_list"][0]["rotation"] != 0
    with open(made["fragmented"][1], "rb") as f:
        assert b"moof" in f.read(), "not fragmented"
    assert made["heic"][1].read_bytes()[4:12] == b"ftypheic"


@pytest.mark.parametrize("kind", list(SOURCES))
def test_upload_matches_its_own_source_only(kind, scanned):
    made, records = scanned
    record = records[kind]
    assert record["status"] == "ok", record["error"]
    assert record["media"]["fallback"] is None
    hits = {m["bank_entry_id"] for m in record["matches"] if m["is_match"]}
    assert hits == {Path(SOURCES[kind][0]).stem}
    if kind != "heic":
        own = next(m for m in record["matches"] if m["is_match"])
        # Displayed upright, as the source: no dihedral variant needed to match.
        assert own["dihedral"] == "original", own
    if kind == "phone90":
        assert (record["media"]["width"], record["media"]["height"]) == (120, 160), "not turned by its display matrix"

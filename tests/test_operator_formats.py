"""Operators' hash sets (VICS, NCMEC, StopNCII): what the importers count and
disable, pages read in order, and real scans of generated clips against banks
built from each format (by digest and, for PDQ, perceptually)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import vscan
from vscan.bank import Bank, build_bank
from vscan.bench import synth
from vscan.config import Runtime, ScanConfig
from vscan.decode import EveryFrame
from vscan.hashing.media import hash_media
from vscan.hashing.pdq import PDQHasher
from test_importers import H1, H2, MD5, make_ncmec_xml, make_stopncii_json, make_vics_json, _ncmec

V13 = "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media"
V20 = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/UK/$metadata#Cases"


def _ids(bank: Path) -> set[str]:
    with Bank(bank) as b:
        return {row[0] for row in b.rows("entries")}


def test_notes_count_what_was_not_added(tmp_path):
    """Unknown hash types, disabled records and hashless items are counted per file, never dropped silently."""
    vics = build_bank(tmp_path / "v.bank", make_vics_json(tmp_path / "v"))
    assert vics.import_notes == {"case.json": {"unknown hash PhotoDNA": 2, "media without MD5 or SHA1": 1}}
    assert vics.labels == {"": 1, "1": 1, "2": 1}
    ncmec = build_bank(tmp_path / "n.bank", make_ncmec_xml(tmp_path / "n"))
    assert ncmec.import_notes == {"ncmec_page.xml": {
        "unknown hash pdna": 1, "unknown hash tmk_pdqf": 1, "unknown hash videntifier": 1,
        "disabled (deletedImage)": 2, "record without md5, sha1 or pdq": 1}}
    assert _ids(tmp_path / "n.bank") == {"ncmec:image:101", "ncmec:image:102", "ncmec:video:201"}
    stop = build_bank(tmp_path / "s.bank", make_stopncii_json(tmp_path / "s"))
    assert stop.import_notes == {"stopncii_page.json": {
        "disabled (Withdrawn)": 1, "disabled (Deleted)": 1, "unknown hash VideoTMK": 1}}
    assert _ids(tmp_path / "s.bank") == {f"stopncii:{H1}", f"stopncii:{MD5}"}
    clean = tmp_path / "clean" / "case.json"
    clean.parent.mkdir()
    clean.write_text(json.dumps({"odata.metadata": V13, "value": [{"MediaID": 1, "MD5": MD5}]}))
    assert build_bank(tmp_path / "c.bank", [clean]).import_notes == {}
    with Bank(tmp_path / "c.bank") as b:  # nothing noted: no meta key, as in banks written before notes existed
        assert "import_notes" not in b.meta


def test_vics_both_versions_and_shapes_give_the_same_entries(tmp_path):
    """A 1.3 plain value[] of media with string booleans and a 2.0 (UK) case file with JSON booleans."""
    media = [{"MediaID": 5, "Category": 3, "MD5": MD5.upper(), "IsDistributed": "TRUE"}]
    v1 = tmp_path / "a" / "case.json"
    v1.parent.mkdir()
    v1.write_text(json.dumps({"odata.metadata": V13, "value": media}))
    media[0]["IsDistributed"] = True
    v2 = tmp_path / "b" / "case.json"
    v2.parent.mkdir()
    v2.write_text(json.dumps({"@odata.context": V20, "value": [{"CaseID": 4, "CaseNumber": "X", "Media": media}]}))
    one, two = build_bank(tmp_path / "1.bank", [v1]), build_bank(tmp_path / "2.bank", [v2])
    assert one.content_sha256 == two.content_sha256 and one.labels == {"3": 1}


@pytest.mark.parametrize("fmt", ["ncmec", "stopncii"])
def test_a_later_page_withdraws_an_earlier_record(tmp_path, fmt):
    """Pages are read in name order: page 2's deletion removes page 1's entry; page 3 brings it back."""
    if fmt == "ncmec":
        add = _ncmec(f"<images><image><id>7</id><fingerprints><pdq>{H2}</pdq></fingerprints></image></images>\n")
        drop = _ncmec("<images><deletedImage><id>7</id></deletedImage></images>\n")
        pages, entry = [("p1.xml", add), ("p2.xml", drop), ("p3.xml", add)], "ncmec:image:7"
    else:
        rec = lambda status: json.dumps({"hashRecords": [{"signalType": "ImagePDQ", "hashValue": H2, "hashStatus": status}]})  # noqa: E731
        pages, entry = [("p1.json", rec("Active")), ("p2.json", rec("Deleted")), ("p3.json", rec("Received"))], f"stopncii:{H2}"
    folder = tmp_path / "pages"
    folder.mkdir()
    for n in (1, 2, 3):
        for name, text in pages[:n]:
            (folder / name).write_text(text)
        build_bank(tmp_path / f"{n}.bank", [folder])
    assert [entry in _ids(tmp_path / f"{n}.bank") for n in (1, 2, 3)] == [True, False, True]


def _pdq_hexes(path: Path) -> list[str]:
    frames = hash_media(path, EveryFrame(), hasher=PDQHasher(device="cpu")).frames
    return [bytes(h).hex() for h in frames.hashes]


def _digest(path: Path, algorithm: str) -> str:
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


def test_banks_from_each_format_match_the_clips_they_describe(tmp_path, ray_local):
    """Real scans: VICS by MD5 (Category as the label), NCMEC by MD5 and perceptually by its PDQ
    fingerprints (a re-encode), StopNCII by VideoMD5 and ImagePDQ (a JPEG of the PNG);
    deleted and withdrawn records, and the unrelated clip, do not match."""
    ref, ev = tmp_path / "ref", tmp_path / "evidence"
    clip = lambda name, seed, **kw: synth.make_clip(ev / name, seed=seed, seconds=2, fps=10, size=(160, 120), **kw)  # noqa: E731
    vics_hit, ncmec_md5, deleted, stop_md5, withdrawn = (clip(f"{n}.mp4", s) for n, s in
        (("vics_hit", 41), ("ncmec_md5", 42), ("deleted", 43), ("stop_md5", 44), ("withdrawn", 45)))  # fmt: skip
    clip("unrelated.mp4", 46)
    original = synth.make_clip(ref / "orig.mp4", seed=47, seconds=2, fps=10, size=(160, 120))
    clip("reencoded.mp4", 47, crf=34)
    png = synth.write_image(ref / "photo.png", seed=48)
    from PIL import Image

    Image.open(png).convert("RGB").save(ev / "photo.jpg", quality=70)

    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "case.json").write_text(json.dumps({"@odata.context": V20, "value": [{"CaseID": 1, "Media": [
        {"MediaID": 1, "Category": 1, "MD5": _digest(vics_hit, "md5").upper(), "SHA1": _digest(vics_hit, "sha1").upper()}]}]}))
    pdqs = "".join(f"<pdq>{h}</pdq>" for h in _pdq_hexes(original))
    (lists / "page.xml").write_text(_ncmec(
        f"<videos><video><id>1</id><classification>A1</classification><fingerprints><md5>{_digest(ncmec_md5, 'md5')}</md5></fingerprints></video>"
        f"<video><id>2</id><classification>A1</classification><fingerprints>{pdqs}</fingerprints></video>"
        f"<video><id>3</id><fingerprints><md5>{_digest(deleted, 'md5')}</md5></fingerprints></video>"
        "<deletedVideo><id>3</id></deletedVideo></videos>\n"))
    records = [("VideoMD5", _digest(stop_md5, "md5"), "Active"), ("VideoMD5", _digest(withdrawn, "md5"), "Active"),
               ("VideoMD5", _digest(withdrawn, "md5"), "Withdrawn"), ("ImagePDQ", _pdq_hexes(png)[0], "Active")]
    (lists / "stop.json").write_text(json.dumps({"hashRecords": [
        {"signalType": s, "hashValue": v, "hashStatus": st} for s, v, st in records]}))
    build_bank(tmp_path / "all.bank", [lists])

    out = tmp_path / "results.jsonl"
    vscan.scan([ev], bank=tmp_path / "all.bank", out=out, config=ScanConfig(runtime=Runtime(device="cpu")))
    results = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    hits = {name: {(m["bank_entry_id"], m["kind"], m["label"]) for m in r["matches"] if m["is_match"]} for name, r in results.items()}
    assert hits == {
        "vics_hit.mp4": {("case:1", "exact", "1")},
        "ncmec_md5.mp4": {("ncmec:video:1", "exact", "A1")},
        "reencoded.mp4": {("ncmec:video:2", "perceptual", "A1")},
        "stop_md5.mp4": {(f"stopncii:{_digest(stop_md5, 'md5')}", "exact", None)},
        "photo.jpg": {(f"stopncii:{_pdq_hexes(png)[0]}", "perceptual", None)},
        "deleted.mp4": set(), "withdrawn.mp4": set(), "unrelated.mp4": set(),
    }
    assert all(results[n]["risk"] >= 0.7 for n in ("vics_hit.mp4", "reencoded.mp4", "photo.jpg"))

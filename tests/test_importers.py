"""Conformance of bank importers: every text format the registry knows round-trips
(import, export, import again: the same rows), and every malformed line is refused
with a BankError naming the file and the 1-based line (structured formats: the
line, or the element such as ``value[0].Media[1].MD5``).

Parametrised from ``IMPORTERS`` itself: registering an importer without adding
its generator and malformed lines here fails these tests. Media (videos,
images) is covered by test_bank, test_scan and test_robust_match.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest

from vscan.bank import EXPORTERS, IMPORTERS, Bank, BankWriter, build_bank, detect_input_type, export_entries, import_file
from vscan.errors import BankError
from vscan.hashing.vpdq import FrameHashes, hex_to_hashes

FORMATS = sorted(IMPORTERS)
TABLES = ("entries", "frame_hashes", "file_digests")


def _hex(seed: str, nbytes: int = 32) -> str:
    return random.Random(seed).randbytes(nbytes).hex()


H1, H2 = _hex("h1"), _hex("h2")
MD5, SHA1, SHA256 = (hashlib.new(a, b"x").hexdigest() for a in ("md5", "sha1", "sha256"))


# ----------------------------------------------------------------------------- generators: one per format


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def make_vpdq_txt(folder: Path) -> list[Path]:
    """Sparse frame numbers, millisecond timestamps, varied qualities; one file without timestamps."""
    timed = "".join(f"{f},{q},{_hex(f'v{f}')},{f / 30:.3f}\n" for f, q in ((0, 100), (15, 73), (30, 0), (45, 49)))
    untimed = "".join(f"{f},{q},{_hex(f'u{f}')}\n" for f, q in ((0, 88), (1, 90)))
    return [_write(folder, "clip_a.txt", timed), _write(folder, "clip_b.txt", untimed)]


def make_pdq_list(folder: Path) -> list[Path]:
    """With qualities, without (stored NULL), and a name with 'sha256' in it: .pdq says PDQ."""
    return [
        _write(folder, "faces.pdq", f"{H1},70\n{H2},20\n{_hex('p3')},100\n"),
        _write(folder, "plain.pdq", f"{H2}\n{H1}\n"),
        _write(folder, "sha256_named.pdq", f"{_hex('p4')}\n"),
    ]


def make_digest_list(folder: Path) -> list[Path]:
    """All three algorithms, bare digests and md5sum-style names (spaces in a name too)."""
    text = f"{MD5}  clip one.mp4\n{SHA1}\n{SHA256}  b.mov\n{_hex('d4', 16)}  c.mkv\n"
    return [_write(folder, "reported.md5", text)]


def make_pytx_csv(folder: Path) -> list[Path]:
    """PDQ and digest rows of every algorithm; labels from category, from tags, with a comma, none."""
    text = (
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{H1},c1,terror,\n"
        f"HASH_PDQ,{H2},c1,,tagA tagB\n"
        f"video_md5,{MD5},c1,\"abuse, severe\",\n"
        f"sha1,{SHA1},c1,,\n"
        f"sha256,{SHA256},c2,spam,t\n"
    )
    return [_write(folder, "signals.csv", text)]


def make_vics_json(folder: Path) -> list[Path]:
    """VICS 1.3, plain value[] of media: MD5 and SHA1 (upper case), either alone, string booleans,
    a PhotoDNA-only item and an AlternativeHashes item (noted, not added)."""
    media = [
        {"MediaID": 7, "Category": 1, "MD5": MD5.upper(), "SHA1": SHA1.upper(), "IsPrecategorized": "true",
         "MediaFiles": [{"MD5": MD5.upper(), "FileName": "a.mp4", "Unallocated": "false"}]},
        {"MediaID": 9, "Category": "2", "SHA1": _hex("vs", 20).upper(), "VictimIdentified": "False"},
        {"MediaID": 11, "MD5": _hex("vm", 16), "AlternativeHashes": [{"HashName": "PhotoDNA", "HashValue": "AAAA"}]},
        {"MediaID": 12, "PhotoDNA": "AAAA"},
    ]
    doc = {"odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media", "value": media}
    return [_write(folder, "case.json", json.dumps(doc))]


def _ncmec(records: str) -> str:
    return f'<?xml version="1.0"?>\n<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">\n{records}</queryResult>\n'


def make_ncmec_xml(folder: Path) -> list[Path]:
    """Images (PDQ + digests, MD5 only), a video, fingerprints vscan cannot use, and deletions:
    of an earlier record in the page and of one not in it."""
    fp = lambda *p: "<fingerprints>" + "".join(f"<{t}>{v}</{t}>" for t, v in p) + "</fingerprints>"  # noqa: E731
    text = _ncmec(
        '<images count="4" maxTimestamp="2024-05-01T00:00:00Z">\n'
        f'<image><member id="1">ESP</member><timestamp>2024-01-01T00:00:00Z</timestamp><id>101</id>'
        f'<classification>A1</classification>{fp(("md5", MD5), ("sha1", SHA1), ("pdq", H1), ("pdna", "x"))}</image>\n'
        f'<image><id>102</id><classification>B2</classification>{fp(("md5", _hex("n2", 16)))}</image>\n'
        f'<image><id>103</id>{fp(("pdq", H2))}</image>\n'
        '<deletedImage><id>103</id></deletedImage>\n<deletedImage><id>999</id></deletedImage>\n</images>\n'
        f'<videos count="2"><video><id>201</id><classification>A1</classification>'
        f'{fp(("md5", _hex("n3", 16)), ("tmk_pdqf", "x"))}</video>\n<video><id>202</id>{fp(("videntifier", "x"))}</video>\n'
        "</videos>\n"
    )
    return [_write(folder, "ncmec_page.xml", text)]


def make_stopncii_json(folder: Path) -> list[Path]:
    """Active and Received PDQ and MD5 records, one Withdrawn after its Active record, a Deleted one, a TMK."""
    records = [
        {"signalType": "ImagePDQ", "hashValue": H1, "hashStatus": "Active", "caseNumbers": {"u1": "Active"}},
        {"signalType": "VideoMD5", "hashValue": MD5.upper(), "hashStatus": "Received", "CSPFeedbacks": []},
        {"signalType": "ImagePDQ", "hashValue": H2, "hashStatus": "Active"},
        {"signalType": "ImagePDQ", "hashValue": H2, "hashStatus": "Withdrawn"},
        {"signalType": "VideoMD5", "hashValue": _hex("s1", 16), "hashStatus": "Deleted"},
        {"signalType": "VideoTMK", "hashValue": "tmk", "hashStatus": "Active"},
    ]
    page = {"count": len(records), "nextPageToken": "t", "hasMoreRecords": True, "hashRecords": records}
    return [_write(folder, "stopncii_page.json", json.dumps(page, indent=1))]


GENERATORS = {
    "vpdq_txt": make_vpdq_txt,
    "pdq_list": make_pdq_list,
    "digest_list": make_digest_list,
    "pytx_csv": make_pytx_csv,
    "vics_json": make_vics_json,
    "ncmec_xml": make_ncmec_xml,
    "stopncii_json": make_stopncii_json,
}

#: What an export in each format holds of a mixed bank: frame hashes ("all" with their
#: multiplicity, "set" when records of one hash collapse, None) and digest algorithms.
HOLDS = {
    "vpdq_txt": ("all", set()),
    "pdq_list": ("all", set()),
    "digest_list": (None, {"md5", "sha1", "sha256"}),
    "pytx_csv": ("all", {"md5", "sha1", "sha256"}),
    "vics_json": (None, {"md5", "sha1"}),
    "ncmec_xml": ("all", {"md5", "sha1"}),
    "stopncii_json": ("set", {"md5"}),
}


# ----------------------------------------------------------------------------- malformed lines: (file, text, line)

HEX63 = H1[:63]
MALFORMED = {
    "vpdq_txt": [
        ("bad_hex.txt", f"0,100,{H1},0.000\n1,100,{HEX63}z,0.033\n", 2),
        ("short_hex.txt", f"0,100,{H1[:10]},0.000\n", 1),
        ("two_fields.txt", f"0,100,{H1},0.000\n1,100\n", 2),
        ("five_fields.txt", f"0,100,{H1},0.000,x\n", 1),
        ("quality_word.txt", f"# comment\n\n0,high,{H1},0.000\n", 3),
        ("quality_range.txt", f"0,101,{H1},0.000\n", 1),
        ("frame_word.txt", f"0,100,{H1},0.000\nten,100,{H2},0.033\n", 2),
        ("timestamp_word.txt", f"0,100,{H1},soon\n", 1),
        ("duplicate_frame.txt", f"0,100,{H1},0.000\n1,100,{H2},0.033\n0,90,{H2},0.066\n", 3),
        ("not_utf8.txt", f"0,100,{H1},0.000\n\n".encode() + b"1,100,\xff\xfe,0.033\n", 3),
    ],
    "pdq_list": [
        ("bad_hex.pdq", f"{H1}\n\n{HEX63}g\n", 3),
        ("short_hex.pdq", f"{H1[:62]}\n", 1),
        ("three_fields.pdq", f"{H1},70\n{H2},70,extra\n", 2),
        ("quality_word.pdq", f"{H1},70\n{H2},x\n", 2),
        ("quality_range.pdq", f"{H1},-1\n", 1),
        ("quality_on_some.pdq", f"{H1},70\n# c\n{H2}\n", 3),
        ("quality_on_later.pdq", f"{H1}\n{H2},70\n", 2),
        ("not_utf8.pdq", f"{H1}\n".encode() + b"\xc3\x28\n", 2),
    ],
    "digest_list": [
        ("word.md5", f"{MD5}\nnot-a-digest\n", 2),
        ("bad_hex.md5", f"{MD5}  a.mp4\n{MD5[:-1]}g  b.mp4\n", 2),
        ("odd_length.md5", f"{MD5[:-1]}\n", 1),
        ("too_long.md5", f"# header\n{SHA256}0\n", 2),
        ("not_utf8.md5", f"{MD5}\n{SHA1}\n".encode() + b"\x80\n", 3),
    ],
    "pytx_csv": [
        ("unknown_type.csv", f"pdq,{H1},c,,\nTMK,abc,c,,\n", 2),
        ("one_field.csv", f"signal_type,signal_str,collab,category,tags\npdq\n", 2),
        ("six_fields.csv", f"pdq,{H1},c,cat,tag,more\n", 1),
        ("bad_pdq.csv", f"pdq,{HEX63},c,,\n", 1),
        ("pdq_not_hex.csv", f"sha1,{SHA1},c,,\npdq,{HEX63}z,c,,\n", 2),
        ("md5_length.csv", f"video_md5,{SHA1},c,,\n", 1),
        ("sha256_not_hex.csv", f"\nsha256,{SHA256[:-1]}x,c,,\n", 2),
        ("after_multiline.csv", f"pdq,{H1},c,\"two\nlines\",\nTMK,abc,c,,\n", 3),
        ("field_too_large.csv", f"pdq,{H1},c,,\nsha1,{'a' * 140_000},c,,\n", 2),
        ("not_utf8.csv", f"pdq,{H1},c,,\n".encode() + b"md5,\xff,c,,\n", 2),
    ],
    "vics_json": [
        ("syntax.json", '{"odata.metadata": "x",\n "value": [\n}', 3),
        ("version.json", json.dumps({"@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/3.0.xml/Default/$metadata#Media", "value": []}), "@odata.context"),
        ("v1_9.json", json.dumps({"odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.9.xml#Media", "value": []}), "odata.metadata"),
        ("no_value.json", json.dumps({"odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media"}), "value"),
        ("bad_md5.json", json.dumps({"odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.2.xml#Cases", "value": [{"CaseID": 1, "Media": [{"MD5": MD5}, {"MD5": MD5[:-1]}]}]}), "value[0].Media[1].MD5"),
        ("bad_sha1.json", json.dumps({"odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.1.xml#Media", "value": [{"SHA1": SHA256}]}), "value[0].SHA1"),
        ("bad_bool.json", json.dumps({"@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/UK/$metadata#Media", "value": [{"MD5": MD5, "IsDistributed": "yes"}]}), "value[0].IsDistributed"),
        ("bad_category.json", json.dumps({"@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media", "value": [{"MD5": MD5, "Category": "CAT-1"}]}), "value[0].Category"),
        ("media_not_list.json", json.dumps({"@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Cases", "value": [{"CaseID": 1, "Media": {}}]}), "value[0].Media"),
        ("not_utf8.json", b'{"odata.metadata": "x",\n"v": "\xff"}', 2),
    ],
    "ncmec_xml": [
        ("not_xml.xml", _ncmec("<images>\n<image><id>1</id>\n</images>\n"), 5),
        ("doctype.xml", '<?xml version="1.0"?>\n<!DOCTYPE q [<!ENTITY a "aaaa">]>\n<queryResult/>\n', 2),
        ("other_root.xml", '<?xml version="1.0"?>\n<result xmlns="https://hashsharing.ncmec.org/hashsharing/v2"/>\n', 2),
        ("other_ns.xml", '<?xml version="1.0"?>\n\n<queryResult xmlns="urn:x"/>\n', 3),
        ("unknown_record.xml", _ncmec("<images>\n<image><id>1</id></image>\n<photo><id>2</id></photo>\n</images>\n"), 5),
        ("no_id.xml", _ncmec("<videos>\n\n<video><fingerprints><md5>" + MD5 + "</md5></fingerprints></video>\n</videos>\n"), 5),
        ("bad_md5.xml", _ncmec("<images>\n<image><id>1</id><fingerprints>\n<md5>" + SHA1 + "</md5></fingerprints></image>\n</images>\n"), 5),
        ("bad_pdq.xml", _ncmec("<images><image><id>1</id><fingerprints>\n\n<pdq>" + HEX63 + "z</pdq></fingerprints></image></images>\n"), 5),
    ],
    "stopncii_json": [
        ("syntax.json", '{"hashRecords": [\n {"signalType": "ImagePDQ",}\n]}', 2),
        ("records_not_list.json", json.dumps({"hashRecords": {}}), "hashRecords"),
        ("status.json", json.dumps({"hashRecords": [{"signalType": "VideoMD5", "hashValue": MD5, "hashStatus": "Active"}, {"signalType": "VideoMD5", "hashValue": MD5, "hashStatus": "Pending"}]}), "hashRecords[1].hashStatus"),
        ("no_signal.json", json.dumps({"hashRecords": [{"hashValue": MD5, "hashStatus": "Active"}]}), "hashRecords[0].signalType"),
        ("bad_pdq.json", json.dumps({"hashRecords": [{"signalType": "ImagePDQ", "hashValue": HEX63, "hashStatus": "Active"}]}), "hashRecords[0].hashValue"),
        ("bad_md5.json", json.dumps({"hashRecords": [{"signalType": "VideoMD5", "hashValue": SHA1, "hashStatus": "Withdrawn"}]}), "hashRecords[0].hashValue"),
        ("record_not_object.json", json.dumps({"hashRecords": [1]}), "hashRecords[0]"),
    ],
}


# ----------------------------------------------------------------------------- tests


def test_every_registered_format_has_conformance_coverage():
    """A new importer needs a generator, malformed lines and an exporter here."""
    assert set(GENERATORS) == set(MALFORMED) == set(EXPORTERS) == set(IMPORTERS) == set(HOLDS)


def _rows(path: Path) -> dict[str, list[tuple]]:
    with Bank(path) as bank:
        return {table: bank.rows(table) for table in TABLES}


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, fmt):
    """Build from the format, export to it, build again: the same entries, hashes, digests and checksum."""
    assert fmt in GENERATORS, f"no generator for importer {fmt!r}: add one to GENERATORS"
    sources = GENERATORS[fmt](tmp_path / "src")
    assert {detect_input_type(p) for p in sources} == {fmt}
    first = build_bank(tmp_path / "first.bank", sources)
    assert first.num_entries >= 2 and first.num_frame_hashes + first.num_digests >= 2

    exporter = EXPORTERS[fmt]
    out = tmp_path / "out" if exporter.per_entry else tmp_path / "out" / sources[0].name
    assert exporter.per_entry or len(sources) == 1  # one-file formats: ids are <file stem>:<line>
    written = export_entries(tmp_path / "first.bank", fmt, out)
    assert sorted(p.name for p in written) == sorted(p.name for p in sources)
    assert {detect_input_type(p) for p in written} == {fmt}

    second = build_bank(tmp_path / "second.bank", written)
    assert _rows(tmp_path / "second.bank") == _rows(tmp_path / "first.bank")
    assert second.content_sha256 == first.content_sha256
    assert (second.labels, second.kinds) == (first.labels, first.kinds)


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_of_a_mixed_bank_reimports(tmp_path, fmt):
    """A bank built from every format, exported to one: what that format holds comes back unchanged."""
    sources = {name: make(tmp_path / "src" / name) for name, make in GENERATORS.items()}
    build_bank(tmp_path / "all.bank", [p for paths in sources.values() for p in paths])
    exporter = EXPORTERS[fmt]
    out = tmp_path / "out" if exporter.per_entry else tmp_path / "out" / sources[fmt][0].name  # a name detection reads as fmt
    written = export_entries(tmp_path / "all.bank", fmt, out)
    build_bank(tmp_path / "again.bank", written)
    with Bank(tmp_path / "all.bank") as a, Bank(tmp_path / "again.bank") as b:
        before, after = a.load_index(), b.load_index()
    hashes = lambda index: sorted(map(bytes, index.hashes))  # noqa: E731
    frames, algorithms = HOLDS[fmt]
    if frames == "all":  # every frame hash of every entry
        assert hashes(after) == hashes(before) and len(hashes(before)) > 0
    if frames == "set":  # every distinct frame hash
        assert set(hashes(after)) == set(hashes(before)) and len(hashes(before)) > 0
    if frames is None:
        assert len(after.hashes) == 0
    if algorithms:  # every digest of the algorithms the format holds
        held = {key for key in before.digests if key[0] in algorithms}
        assert {key for key in after.digests if key[0] in algorithms} == held and held
    assert {key[0] for key in after.digests} <= algorithms
    if exporter.per_entry:  # one file per entry with frames, named by its id
        assert after.entry_ids == sorted({before.entry_ids[r] for r in before.entry_rows})
    if fmt == "vpdq_txt":  # frame numbers and qualities too
        assert after.frame_numbers.tolist() == before.frame_numbers.tolist()
        assert after.qualities.tolist() == before.qualities.tolist()


def _malformed_cases():
    for fmt in FORMATS:
        for case in MALFORMED.get(fmt) or [None]:
            yield pytest.param(fmt, case, id=f"{fmt}-{case[0] if case else 'missing'}")


@pytest.mark.parametrize("fmt, case", list(_malformed_cases()))
def test_malformed_line_is_refused_naming_file_and_line(tmp_path, fmt, case):
    assert case is not None, f"no malformed-line cases for importer {fmt!r}: add some to MALFORMED"
    name, text, line = case
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    bank = tmp_path / "b.bank"
    with pytest.raises(BankError) as caught:
        with BankWriter(bank) as writer:
            import_file(writer, path, input_type=fmt)
    assert f"{path}:{line}: " in str(caught.value)
    assert not bank.exists()  # the writer keeps nothing of a failed import


@pytest.mark.parametrize("fmt", FORMATS)
def test_malformed_line_fails_the_whole_build(tmp_path, fmt):
    """Through build_bank (detection, then the importer): no bank, and the error names file and line."""
    good = GENERATORS[fmt](tmp_path / "in")
    bad_name, bad_text, line = next(c for c in MALFORMED[fmt] if isinstance(c[1], str) and (isinstance(c[2], str) or c[2] > 1))
    bad = tmp_path / "in" / bad_name
    bad.write_text(bad_text, encoding="utf-8")
    with pytest.raises(BankError, match=re.escape(f"{bad}:{line}: ")):
        build_bank(tmp_path / "b.bank", [*good, bad])
    assert not (tmp_path / "b.bank").exists()


def test_export_refuses_unknown_format_and_unsafe_ids(tmp_path):
    build_bank(tmp_path / "b.bank", make_digest_list(tmp_path / "src"))
    with pytest.raises(BankError, match=r"Invalid export format \('tmk'\). Supported values are vpdq_txt"):
        export_entries(tmp_path / "b.bank", "tmk", tmp_path / "out")
    with BankWriter(tmp_path / "api.bank") as writer:
        writer.add_frame_hashes("../escape", None, "api", "image", FrameHashes([0], [0.0], [100], hex_to_hashes([H1])))
    with pytest.raises(BankError, match="cannot be a file name"):
        export_entries(tmp_path / "api.bank", "vpdq_txt", tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_a_vpdq_list_with_spaces_after_its_commas_imports_as_the_plain_one(tmp_path):
    """A list tidied by hand or saved by a spreadsheet (``0, 100, e271..., 0.000``): the same rows, not a refusal."""
    plain = tmp_path / "plain" / "clip.txt"
    spaced = tmp_path / "spaced" / "clip.txt"
    for path in (plain, spaced):
        path.parent.mkdir()
    plain.write_text(f"0,100,{H1},0.000\n1,90,{H2},0.033\n", encoding="utf-8")
    spaced.write_text(f"0, 100, {H1}, 0.000\n1 ,90 , {H2.upper()} ,0.033\n", encoding="utf-8")
    rows = []
    for path in (plain, spaced):
        build_bank(path.parent / "b.bank", [path])
        index = Bank(path.parent / "b.bank").load_index()
        rows.append((index.hashes.tobytes(), index.qualities.tolist(), index.frame_numbers.tolist()))
    assert rows[0] == rows[1]


@pytest.mark.parametrize(
    "name, header",
    [
        ("clip.txt", "frame_number,quality,hash,timestamp"),
        ("clip.csv", '"Frame_Number","Quality","Hash","Timestamp"'),
        ("clip.vpdq", "frame, quality, pdq_hash"),
    ],
)
def test_a_vpdq_list_with_a_header_line_imports_as_the_plain_one(tmp_path, name, header):
    """A list a spreadsheet or a database exported opens with its column names: the same rows as without."""
    plain = tmp_path / "plain" / "clip.txt"
    headed = tmp_path / "headed" / name
    for path in (plain, headed):
        path.parent.mkdir()
    body = f"0,100,{H1},0.000\n1,90,{H2},0.033\n" if header.count(",") == 3 else f"0,100,{H1}\n1,90,{H2}\n"
    plain.write_text(body, encoding="utf-8")
    headed.write_text(f"{header}\n{body}", encoding="utf-8")
    rows = []
    for path in (plain, headed):
        assert detect_input_type(path) == "vpdq_txt"
        build_bank(path.parent / "b.bank", [path])
        index = Bank(path.parent / "b.bank").load_index()
        rows.append((index.hashes.tobytes(), index.qualities.tolist(), index.frame_numbers.tolist()))
    assert rows[0] == rows[1]
    from vscan.hashing.vpdq import read_vpdq

    assert read_vpdq(headed).frame_numbers.tolist() == [0, 1]


def test_a_vpdq_header_in_another_order_is_refused_naming_file_and_line(tmp_path):
    """Read as vPDQ's order, ``hash,frame_number,quality`` would put names on the wrong columns: refused."""
    path = _write(tmp_path / "src", "clip.vpdq", f"# exported 2026-12-06\nhash,frame_number,quality,timestamp\n0,100,{H1},0.000\n")
    with pytest.raises(BankError, match=r"clip\.vpdq:2: header .* expected frame_number,quality,hash"):
        build_bank(tmp_path / "b.bank", [path])
    from vscan.hashing.vpdq import read_vpdq

    with pytest.raises(BankError, match=r"clip\.vpdq:2: header"):
        read_vpdq(path)
    # a header is the first line only: the same names further down are a bad data line
    late = _write(tmp_path / "late", "clip.txt", f"0,100,{H1},0.000\nframe_number,quality,hash,timestamp\n")
    with pytest.raises(BankError, match=r"clip\.txt:2: invalid number"):
        build_bank(tmp_path / "late.bank", [late])

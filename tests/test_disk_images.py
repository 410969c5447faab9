"""Disk images scanned in place: an E01 (split segments) of an MBR disk with
an NTFS partition, a raw GPT disk with FAT32 and ext4 partitions, a bare
ext4 volume; images made by Debian tools (vscan.bench.disk_images), real
scans, images unchanged and nothing extracted."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import jsonschema
import pytest

from vscan.bank.mapped import prepare
from vscan.bank.store import build_bank
from vscan.bench import disk_images as di
from vscan.bench import synth
from vscan.config import Archives, Inputs, Runtime, Sampling, ScanConfig
from vscan.decode import EveryFrame, FixedRate
from vscan.hashing.media import hash_media
from vscan.hashing.pdq import PDQHasher
from vscan.inputs.archives import ArchiveLimits
from vscan.inputs.discover import discover
from vscan.output.sinks import JsonlSink
from vscan.runtime.decode_task import decode_for_scan
from vscan.runtime.driver import run_scan
from vscan.verdict.record import result_schema

SCHEMA = result_schema()


def _hash_for_bank(path):
    result = hash_media(path, EveryFrame(), hasher=PDQHasher(device="cpu"), max_side=512)
    return result.frames, result.metadata.duration_seconds


def _need_tools() -> None:
    missing = di.missing_tools()
    if missing:
        message = f"Debian tools missing: {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; under CI=true they are required (.ci/run installs them)")
        pytest.skip(message)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    """Source clips, a bank of one, and a folder of disk images holding copies."""
    _need_tools()
    root = tmp_path_factory.mktemp("disks")
    src = root / "src"
    a = synth.make_clip(src / "a.mp4", seed=11, seconds=2, size=(160, 96))
    b = synth.make_clip(src / "b.mp4", seed=12, seconds=2, size=(160, 96))
    still = synth.write_image(src / "s.png", seed=13, size=(64, 48))
    notes = src / "notes.txt"
    notes.write_text("not media: no record")
    bank = root / "bank.db"
    build_bank(bank, [a], hash_media=_hash_for_bank)
    prepare(bank)  # its scan index, as `vscan bank build` leaves it: the scan below writes nothing beside the bank

    ev, work = root / "evidence", root / "work"
    ev.mkdir()
    work.mkdir()
    ntfs = di.ntfs_volume(work / "ntfs.part", {"zq8-a.mp4": a, "s.png": still, "notes.txt": notes})
    di.to_e01(di.mbr_disk(work / "mbr.raw", [ntfs], ["7"]), ev / "laptop", segment_mib=1, compression="none")
    fat = di.fat32_volume(work / "fat.part", {"DCIM/Cam/zq8-a.mp4": a, "notes.txt": notes})
    ext = di.ext4_volume(
        work / "ext.part", {"home/u/Videos/b.mp4": b, "home/u/s.png": still}, links={"home/u/Videos/zq8-link.mp4": "b.mp4"}
    )
    di.gpt_disk(ev / "phone.img", [fat, ext, 1], ["0700", "8300", "8300"])  # p3: no file system
    bare = di.ext4_volume(ev / "stick.dd", {"zq8-b.mp4": b})
    (ev / "junk.img").write_bytes(os.urandom(8192))
    return {"root": root, "ev": ev, "bank": bank, "a": _sha256(a), "b": _sha256(b), "s": _sha256(still)}


def _files_under(root: Path) -> set[str]:
    return {os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs}


def test_disk_images_scanned_in_place(disks, tmp_path, ray_local):
    ev, out = disks["ev"], tmp_path / "r.jsonl"
    images = sorted(ev.iterdir())
    segments = [p.name for p in images if p.name.startswith("laptop.E")]
    assert len(segments) > 2 and segments == [f"laptop.E{i:02d}" for i in range(1, len(segments) + 1)]  # split E01
    before = {p.name: (_sha256(p), p.stat().st_mtime_ns) for p in images}
    files_before = _files_under(disks["root"]) | _files_under(tmp_path)
    config = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu"))

    with JsonlSink(out) as sink:
        summary = run_scan([ev], sink=sink, bank_path=disks["bank"], config=config)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    for r in records:
        jsonschema.validate(r, SCHEMA)
    by_path = {r["path"]: r for r in records}
    assert len(by_path) == len(records) == summary.files

    e01, gpt, bare, junk = (str(ev / n) for n in ("laptop.E01", "phone.img", "stick.dd", "junk.img"))
    ok = {
        f"{e01}!/p1/zq8-a.mp4": "a", f"{e01}!/p1/s.png": "s",
        f"{gpt}!/p1/DCIM/Cam/zq8-a.mp4": "a", f"{gpt}!/p2/home/u/Videos/b.mp4": "b", f"{gpt}!/p2/home/u/s.png": "s",
        f"{bare}!/zq8-b.mp4": "b",
    }  # fmt: skip
    refused = {f"{gpt}!/p2/home/u/Videos/zq8-link.mp4": ("ArchiveMemberError", "link: not followed")}
    image_level = {f"{gpt}!/p3": ("ArchiveError", "no file system"), junk: ("ArchiveError", "no partition table")}
    assert set(by_path) == set(ok) | set(refused) | set(image_level)  # one record per media file, none for notes.txt

    for path, name in ok.items():
        r = by_path[path]
        assert r["status"] == "ok" and r["frames_sampled"] >= 1, (path, r["error"])
        assert r["sha256"] == disks[name]  # the file's own bytes, read from the image
    for path in (f"{e01}!/p1/zq8-a.mp4", f"{gpt}!/p1/DCIM/Cam/zq8-a.mp4"):
        assert by_path[path]["matches"][0]["kind"] == "exact" and by_path[path]["risk"] == 1.0
    assert not any(m["is_match"] for m in by_path[f"{bare}!/zq8-b.mp4"]["matches"])
    assert by_path[f"{e01}!/p1/s.png"]["media"]["kind"] == "image"
    for path, (kind, words) in {**refused, **image_level}.items():
        r = by_path[path]
        assert r["status"] == "error" and r["error"]["type"] == kind and words in r["error"]["message"], r
    assert "not read" in by_path[f"{gpt}!/p2/home/u/Videos/zq8-link.mp4"]["error"]["message"]

    # Nothing extracted anywhere; every image (all E01 segments) unchanged, bytes and mtime.
    assert _files_under(disks["root"]) | _files_under(tmp_path) == files_before | {str(out), f"{out}.manifest.json", f"{out}.lock"}
    assert {p.name: (_sha256(p), p.stat().st_mtime_ns) for p in images} == before

    # Resume skips member paths like file paths.
    with JsonlSink(out) as sink:
        again = run_scan([ev], sink=sink, bank_path=disks["bank"], config=config)
    assert again.files == 0 and len(out.read_text().splitlines()) == len(records)


def test_limits_and_all_files_in_the_worker(disks):
    """The archive limits refuse disk image members unread; --all-files lists non-media files."""
    ev = disks["ev"]
    gpt = str(ev / "phone.img")
    members = list(discover([gpt]))
    assert members[:2] == [f"{gpt}!/p1/DCIM/Cam/zq8-a.mp4", f"{gpt}!/p2/home/u/s.png"]

    small = ScanConfig(archives=Archives(member_max_bytes=4096))  # the still passes, the clips do not
    summary, payload = decode_for_scan(members[0], small)
    assert payload is None and summary["error"]["type"] == "ArchiveMemberError"
    assert "archive_member_max_bytes" in summary["error"]["message"] and "not read" in summary["error"]["message"]
    assert decode_for_scan(members[1], small)[0]["error"] is None

    clip = disks["root"] / "src" / "a.mp4"
    total = ScanConfig(archives=Archives(total_max_bytes=clip.stat().st_size + 10))  # p1's clip fits, p2's still does not
    assert decode_for_scan(members[0], total)[0]["error"] is None
    late = decode_for_scan(members[1], total)[0]["error"]
    assert late["type"] == "ArchiveMemberError" and "archive_total_max_bytes" in late["message"]

    capped = list(discover([gpt], archive_limits=ArchiveLimits(max_entries=1)))
    assert capped == [members[0], gpt]  # listing stopped: the image gets its own record
    assert "archive_max_entries" in decode_for_scan(gpt, ScanConfig(archives=Archives(max_entries=1)))[0]["error"]["message"]

    everything = list(discover([str(ev / "laptop.E01")], all_files=True))
    assert f"{ev / 'laptop.E01'}!/p1/notes.txt" in everything and not any("$MFT" in p for p in everything)
    notes = decode_for_scan(f"{ev / 'laptop.E01'}!/p1/notes.txt", ScanConfig(inputs=Inputs(all_files=True)))[0]
    assert notes["sha256"] == _sha256(disks["root"] / "src" / "notes.txt")

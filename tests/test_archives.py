"""Zip and tar inputs scanned in place (vscan.inputs.archives), through the real Ray pipeline.

Archives are real files made here from vscan.bench.synth clips; bombs are real
(200 MB of zeros deflated to about 200 KB); nothing is mocked.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import jsonschema
import pytest

from vscan.bench import synth
from vscan.errors import ArchiveMemberError
from vscan.inputs.archives import ArchiveLimits, iter_member_paths, open_member, split_member
from vscan.bank.mapped import prepare
from vscan.bank.store import build_bank
from vscan.decode import EveryFrame
from vscan.hashing.pdq import PDQHasher
from vscan.hashing.media import hash_media
from vscan.decode import FixedRate
from vscan.config import Archives, Runtime, Sampling, ScanConfig
from vscan.runtime.decode_task import decode_for_scan
from vscan.inputs.discover import discover
from vscan.runtime.driver import run_scan
from vscan.output.sinks import JsonlSink
from vscan.verdict.record import result_schema

SCHEMA = result_schema()
BOMB_BYTES = 200 << 20
#: Names archive entries carry: no new file by any of them may appear under /tmp or the test folders.
ENTRY_NAMES = {f"zq7-{n}.mp4" for n in ("escape", "evil", "bomb", "link", "hard", "dev", "copy")}


def _hash_for_bank(path):
    result = hash_media(path, EveryFrame(), hasher=PDQHasher(device="cpu"), max_side=512)
    return result.frames, result.metadata.duration_seconds


def _zeros(n: int):
    block = bytes(1 << 20)
    for _ in range(n // len(block)):
        yield block


def _add_zip_bomb(zf: zipfile.ZipFile, name: str) -> None:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as dst:
        for block in _zeros(BOMB_BYTES):
            dst.write(block)


class _ZeroReader(io.RawIOBase):
    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


def _tar_add(tf: tarfile.TarFile, name: str, data: bytes | None = None, *, size: int | None = None, **kw) -> None:
    info = tarfile.TarInfo(name)
    for key, value in kw.items():
        setattr(info, key, value)
    if data is not None:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    elif size is not None:
        info.size = size
        tf.addfile(info, io.BufferedReader(_ZeroReader(size), 1 << 20))
    else:
        tf.addfile(info)


def _files_under(root: Path) -> set[str]:
    return {os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs}


def _walk_files(root: str):
    """Every file name under root, walked with a stack: /tmp may hold trees deeper
    than Python's recursion limit (the hostile-evidence suite makes 1,200 levels),
    which os.walk on Python 3.11 cannot descend."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        yield folder, entry.name
        except OSError:
            continue


def _entry_names_on_disk(*roots: Path) -> set[str]:
    found = set()
    for root in {"/tmp", *map(str, roots)}:
        found |= {os.path.join(d, f) for d, f in _walk_files(root) if f in ENTRY_NAMES}
    return found | {p for p in ("/zq7-escape.mp4", "/abs/zq7-evil.mp4") if os.path.lexists(p)}


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    """A bank from a source clip and a folder of archives holding it."""
    root = tmp_path_factory.mktemp("archives")
    src = synth.make_clip(root / "src" / "source.mp4", seed=3, seconds=3, size=(192, 128))
    re_encoded = synth.edit_clip(src, root / "src" / "re.mp4", "reencode")
    still = synth.write_image(root / "src" / "still.png", seed=8, size=(96, 64))
    bank = root / "bank.db"
    build_bank(bank, [src], hash_media=_hash_for_bank)
    prepare(bank)  # its scan index, as `vscan bank build` leaves it: the scan below writes nothing beside the bank
    ev = root / "evidence"
    ev.mkdir()
    src_bytes = src.read_bytes()

    with zipfile.ZipFile(ev / "case.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("clips/zq7-copy.mp4", src_bytes)
        zf.write(re_encoded, "clips/re.mp4")
        zf.write(still, "stills/still.png")
        zf.writestr("notes.txt", "no record: not media")
        zf.writestr("../../zq7-escape.mp4", src_bytes)
        zf.writestr("/abs/zq7-evil.mp4", src_bytes)
        link = zipfile.ZipInfo("clips/zq7-link.mp4")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../../../etc/passwd")
        _add_zip_bomb(zf, "clips/zq7-bomb.mp4")

    with tarfile.open(ev / "plain.tar", "w") as tf:
        _tar_add(tf, "t/zq7-copy.mp4", src_bytes)
        _tar_add(tf, "t/zq7-link.mp4", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        _tar_add(tf, "t/zq7-hard.mp4", type=tarfile.LNKTYPE, linkname="t/zq7-copy.mp4")
        _tar_add(tf, "t/zq7-dev.mp4", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        _tar_add(tf, "../zq7-escape.mp4", src_bytes)

    with tarfile.open(ev / "packed.tar.gz", "w:gz") as tf:
        _tar_add(tf, "g/zq7-copy.mp4", src_bytes)
        _tar_add(tf, "g/zq7-bomb.mp4", size=BOMB_BYTES)

    (ev / "broken.zip").write_bytes(os.urandom(4096))
    return {"root": root, "ev": ev, "bank": bank, "src_sha256": hashlib.sha256(src_bytes).hexdigest()}


def _state(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def test_archives_scanned_in_place(evidence, tmp_path, ray_local):
    ev, out = evidence["ev"], tmp_path / "r.jsonl"
    archives = sorted(ev.iterdir())
    before = {p.name: _state(p) for p in archives}
    files_before = _files_under(evidence["root"]) | _files_under(tmp_path)
    names_before = _entry_names_on_disk(evidence["root"].parent, tmp_path)

    with JsonlSink(out) as sink:
        summary = run_scan([ev], sink=sink, bank_path=evidence["bank"], config=ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu")))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    for r in records:
        jsonschema.validate(r, SCHEMA)
    by_path = {r["path"]: r for r in records}
    assert len(by_path) == len(records) == summary.files

    z, t, g, b = (str(ev / n) for n in ("case.zip", "plain.tar", "packed.tar.gz", "broken.zip"))
    ok = {f"{z}!/clips/zq7-copy.mp4", f"{z}!/clips/re.mp4", f"{z}!/stills/still.png", f"{t}!/t/zq7-copy.mp4", f"{g}!/g/zq7-copy.mp4"}
    refused = {
        f"{z}!/../../zq7-escape.mp4": "path traversal", f"{z}!//abs/zq7-evil.mp4": "path traversal",
        f"{z}!/clips/zq7-link.mp4": "link member", f"{z}!/clips/zq7-bomb.mp4": "decompression bomb",
        f"{t}!/t/zq7-link.mp4": "link member", f"{t}!/t/zq7-hard.mp4": "link member", f"{t}!/t/zq7-dev.mp4": "not a regular member",
        f"{t}!/../zq7-escape.mp4": "path traversal", f"{g}!/g/zq7-bomb.mp4": "decompression bomb",
    }  # fmt: skip
    archive_level = {b: "cannot open archive", g: "decompression bomb"}  # packed.tar.gz: listing stopped at the bomb
    assert set(by_path) == ok | set(refused) | set(archive_level)

    for path in ok:
        r = by_path[path]
        assert r["status"] == "ok" and r["frames_sampled"] >= 1, (path, r["error"])
    for path in (f"{z}!/clips/zq7-copy.mp4", f"{t}!/t/zq7-copy.mp4", f"{g}!/g/zq7-copy.mp4"):
        r = by_path[path]
        assert r["sha256"] == evidence["src_sha256"]  # digests of the member's bytes
        assert r["matches"] and r["matches"][0]["kind"] == "exact" and r["risk"] == 1.0
    re_match = [m for m in by_path[f"{z}!/clips/re.mp4"]["matches"] if m["is_match"]]
    assert re_match and re_match[0]["kind"] == "perceptual"
    assert by_path[f"{z}!/stills/still.png"]["media"]["kind"] == "image"
    for path, words in refused.items():
        r = by_path[path]
        assert r["status"] == "error" and r["error"]["type"] == "ArchiveMemberError" and words in r["error"]["message"], r
        assert r["sha256"] is None
    assert all("not read" in by_path[p]["error"]["message"] for p in refused)  # refused before inflating a byte
    for path, words in archive_level.items():
        assert by_path[path]["error"]["type"] == "ArchiveError" and words in by_path[path]["error"]["message"]
    assert summary.errors_by_type == {"ArchiveMemberError": len(refused), "ArchiveError": 2}

    # Nothing was extracted anywhere; the evidence is unchanged.
    assert _files_under(evidence["root"]) | _files_under(tmp_path) == files_before | {str(out), f"{out}.manifest.json", f"{out}.lock"}
    assert not _entry_names_on_disk(evidence["root"].parent, tmp_path) - names_before
    assert {p.name: _state(p) for p in archives} == before

    # Resume: member paths are skipped like file paths; no record twice.
    with JsonlSink(out) as sink:
        again = run_scan([ev], sink=sink, bank_path=evidence["bank"], config=ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu")))
    assert again.files == 0 and len(out.read_text().splitlines()) == len(records)


def test_listing_streams_and_limits_apply_in_the_worker(evidence, tmp_path):
    ev = evidence["ev"]
    paths = list(discover([ev / "case.zip", ev / "packed.tar.gz", tmp_path / "missing.zip"]))
    assert paths[0] == f"{ev / 'case.zip'}!/clips/zq7-copy.mp4" and paths[-1] == str(tmp_path / "missing.zip")
    assert split_member(paths[0]) == (str(ev / "case.zip"), "clips/zq7-copy.mp4")
    # A low member limit refuses a real clip before reading it.
    small = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), archives=Archives(member_max_bytes=10_000))
    summary, payload = decode_for_scan(paths[0], small)
    assert payload is None and summary["error"]["type"] == "ArchiveMemberError"
    assert "archive_member_max_bytes" in summary["error"]["message"]
    # The member is read with its real bytes, into memory only.
    with open_member(f"{ev / 'plain.tar'}!/t/zq7-copy.mp4", ArchiveLimits()) as fd_path:
        assert str(fd_path).startswith("/proc/self/fd/")
        assert hashlib.sha256(fd_path.read_bytes()).hexdigest() == evidence["src_sha256"]
    with pytest.raises(ArchiveMemberError, match="no such member"):
        with open_member(f"{ev / 'plain.tar'}!/t/nope.mp4", ArchiveLimits()):
            pass
    # decord reads members from memory too; so do xz-compressed tars.
    summary, payload = decode_for_scan(paths[0], ScanConfig(sampling=Sampling(decoder="decord")))
    assert summary["error"] is None and summary["media"]["decoder"] == "decord" and len(payload["frames"]) >= 1
    with tarfile.open(tmp_path / "x.tar.xz", "w:xz") as tf:
        _tar_add(tf, "zq7-copy.mp4", (ev / "plain.tar").read_bytes()[512 : 512 + 1000])
    assert list(discover([tmp_path])) == [f"{tmp_path / 'x.tar.xz'}!/zq7-copy.mp4"]
    summary, _ = decode_for_scan(f"{tmp_path / 'x.tar.xz'}!/zq7-copy.mp4", ScanConfig(sampling=Sampling(policy=FixedRate(1.0))))
    assert summary["size_bytes"] == 1000 and summary["error"]["type"] == "UnsupportedMediaError"
    assert str(tmp_path / "x.tar.xz") in summary["error"]["message"] and "/proc/self/fd" not in summary["error"]["message"]
    # A missing archive is a missing file; a corrupt one is one record.
    assert decode_for_scan(str(tmp_path / "missing.zip"), ScanConfig(sampling=Sampling(policy=FixedRate(1.0))))[0]["error"]["type"] == "FileAccessError"
    assert list(iter_member_paths(ev / "broken.zip")) == [str(ev / "broken.zip")]
    # A total limit stops listing: members past it are not listed, the archive gets its record.
    listed = list(iter_member_paths(ev / "plain.tar", limits=ArchiveLimits(total_max_bytes=2048)))
    assert listed == [f"{ev / 'plain.tar'}!/t/zq7-copy.mp4", str(ev / "plain.tar")]


def test_cli_archive_limits_and_throughput_options(tmp_path):
    import subprocess
    import sys

    clip = synth.make_clip(tmp_path / "c.mp4", seed=8, seconds=2, size=(160, 90))
    archive = tmp_path / "in" / "a.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.write(clip, "clip.mp4")
    size_mb = clip.stat().st_size / 2**20
    bank = tmp_path / "c.bank"  # vscan scan refuses to check nothing (no --bank, no --model)
    build_bank(bank, [clip], hash_media=_hash_for_bank)
    vscan = [sys.executable, "-m", "vscan.cli", "scan", str(archive.parent), "--device", "cpu", "--small-file-group", "1",
             "--batch-frames", "16", "--bank", str(bank)]  # fmt: skip
    results = {}
    for name, limit in [("under", size_mb * 2), ("over", size_mb / 2)]:
        out = tmp_path / f"{name}.jsonl"
        run = subprocess.run([*vscan, "--out", str(out), "--archive-member-max-mb", str(limit)], capture_output=True, text=True,
                             env={**os.environ, "COLUMNS": "250"})  # fmt: skip
        assert run.returncode == 0, run.stderr
        (results[name],) = [json.loads(line) for line in out.read_text().splitlines()]
        # The summary says which stage bounded the run (when the model stage ran).
        assert ("frames per model call" in run.stdout) == (name == "under"), run.stdout
    assert results["under"]["status"] == "ok" and results["under"]["path"].endswith("a.zip!/clip.mp4")
    assert results["over"]["status"] == "error" and results["over"]["error"]["type"] == "ArchiveMemberError"
    bad = subprocess.run([*vscan, "--out", str(tmp_path / "x.jsonl"), "--small-file-group", "0"], capture_output=True, text=True)
    assert bad.returncode != 0 and "small_file_group (0)" in bad.stderr and ">= 1" in bad.stderr

"""Disk images (issue 23): a name that is not UTF-8 keeps its raw bytes, and
a folder tree deeper than the walk's cap ends in one FileAccessError entry
while the rest of the image is listed. The old code decoded names with
backslashreplace (the bytes were lost) and walked folders recursively."""

from __future__ import annotations

import os

import pytest

from vscan.bench import disk_images as images
from vscan.bench import synth
from vscan.errors import FileAccessError
from vscan.inputs import disk_images
from vscan.inputs.archive_reader import ArchiveLimits
from vscan.inputs.paths import MAX_DIR_DEPTH, path_fields, record_key

pytestmark = pytest.mark.skipif(bool(images.missing_tools()), reason=f"disk image tools missing: {images.missing_tools()}")


def test_disk_image_names_keep_their_bytes_and_deep_folders_end_in_a_record(tmp_path):
    clip = synth.make_clip(tmp_path / "c.mp4", seed=4, seconds=1.0, size=(96, 64))
    deep = "/".join(["d"] * (MAX_DIR_DEPTH + 4)) + "/bottom.mp4"
    latin1 = os.fsdecode(b"caf\xe9.mp4")
    image = images.ext4_volume(tmp_path / "fs.img", {latin1: clip, deep: clip, "plain.mp4": clip}, mib=8)
    members = list(disk_images.iter_member_paths(image, limits=ArchiveLimits()))
    names = [m.split("!/", 1)[1] for m in members]
    assert latin1 in names and "plain.mp4" in names
    stop = "/".join(["d"] * (MAX_DIR_DEPTH + 1))  # the image root is level 0: the first folder past the cap
    assert stop in names and not any(n.endswith("bottom.mp4") for n in names)
    assert record_key(path_fields(f"{image}!/{latin1}")) == os.fsencode(f"{image}!/") + b"caf\xe9.mp4"
    with disk_images.open_member(f"{image}!/{latin1}", ArchiveLimits()) as fd_path:
        assert open(fd_path, "rb").read() == clip.read_bytes()
    with pytest.raises(FileAccessError, match=f"deeper than {MAX_DIR_DEPTH} levels"):
        with disk_images.open_member(f"{image}!/{stop}", ArchiveLimits()):
            pass


def test_an_nsrl_list_in_a_case_folder_with_hash_in_its_name_is_the_file_named(tmp_path):
    """Old code built an SQLite URI from the raw path: '#' began a fragment and another file was opened."""
    import sqlite3

    from vscan.inputs.known_benign import load_list

    folder = tmp_path / "case #12 ?x"
    folder.mkdir()
    nsrl = folder / "RDS_2024.12.1_modern_minimal.db"
    db = sqlite3.connect(nsrl)
    db.execute("CREATE TABLE FILE (sha256 TEXT, sha1 TEXT, md5 TEXT, crc32 TEXT, file_name TEXT, file_size INTEGER, package_id INTEGER)")
    db.execute("CREATE TABLE VERSION (version TEXT, build_set TEXT, build_date TEXT, release_date TEXT, description TEXT)")
    db.execute("INSERT INTO VERSION VALUES ('2024.12.1', 'Modern', '2024-12-01', '2024-12-02', 'test')")
    db.execute("INSERT INTO FILE VALUES (?, ?, ?, '0', 'a.mp4', 1, 1)", ("A" * 64, "B" * 40, "C" * 32))
    db.commit()
    db.close()
    rds = load_list(nsrl)
    assert rds.lookup(sha256="a" * 64) is not None

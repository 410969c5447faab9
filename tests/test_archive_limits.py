"""Archive limits and the compressed-tar reader (vscan.inputs.archive_reader), on real archives.

Members are real generated images (vscan.bench.synth) and real bytes; the
decompressed byte counts are the reader's own (every inflated byte passes
through vscan.inputs.archive_reader.Inflater).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import pytest

from vscan.bench import synth
from vscan.config import Archives, Sampling, ScanConfig
from vscan.errors import ArchiveError, ArchiveMemberError, ConfigError
from vscan.inputs.archive_reader import ArchiveLimits, cached_reader
from vscan.inputs.archives import archive_error, iter_member_paths, open_member
from vscan.runtime.decode_task import decode_for_scan


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """A tar.gz of 200 generated PNG stills."""
    root = tmp_path_factory.mktemp("many")
    path = root / "many.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for i in range(200):
            png = synth.write_image(root / "src" / f"{i:03d}.png", seed=i, size=(48, 32))
            tf.add(png, f"stills/{i:03d}.png")
    return path, len(gzip.decompress(path.read_bytes()))


def test_many_members_are_read_in_one_pass(many):
    path, tar_bytes = many
    members = list(iter_member_paths(path))
    assert len(members) == 200
    config = ScanConfig(sampling=Sampling(policy="fps", fps=1.0))
    for member in members:  # the decode task's own function, in archive order as dispatched
        summary, payload = decode_for_scan(member, config)
        assert summary["error"] is None and summary["media"]["kind"] == "image" and payload is not None
    inflater = cached_reader(str(path), ArchiveLimits.from_config(config.archives)).inflater
    # Linear: about the archive's own decompressed size for all 200 members, not 200 passes.
    assert inflater.rewinds == 0
    assert tar_bytes * 0.9 <= inflater.inflated <= tar_bytes, (inflater.inflated, tar_bytes)
    # A member behind the stream's position is still right: one pass from the start, counted.
    first = members[0]
    with open_member(first, ArchiveLimits.from_config(config.archives)) as fd_path:
        assert fd_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert inflater.rewinds == 1 and inflater.inflated < 1.1 * tar_bytes


def test_compressed_tar_ratio_is_per_member(tmp_path):
    """A bomb beside a big incompressible member: the whole archive's ratio is
    low (the old check passed it), the member's own ratio is about 1000."""
    path = tmp_path / "mixed.tar.gz"
    noise = np.random.default_rng(1).integers(0, 256, 2 << 20, dtype=np.uint8).tobytes()
    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        _add(tf, "noise.mp4", noise)
        _add(tf, "bomb.mp4", bytes(64 << 20))
        _add(tf, "after.mp4", noise[:1000])
    limits = ArchiveLimits()
    assert (64 << 20) < limits.max_ratio * path.stat().st_size  # the whole-archive ratio would pass it
    listed = list(iter_member_paths(path, limits=limits))
    # Listing stops inside the bomb; the archive gets its own record, naming the member.
    assert listed == [f"{path}!/noise.mp4", f"{path}!/bomb.mp4", str(path)]
    error = archive_error(str(path), limits)
    assert "bomb.mp4: decompression bomb" in str(error) and "archive_max_ratio 100" in str(error)
    with open_member(listed[0], limits) as fd_path:
        assert fd_path.read_bytes() == noise
    with pytest.raises(ArchiveMemberError, match="decompression bomb.*archive_max_ratio 100"):
        with open_member(listed[1], limits):
            pass
    inflated = cached_reader(str(path), limits).inflater.inflated
    assert inflated < len(noise) + (4 << 20), inflated  # stopped near the floor, not 64 MiB in
    # A higher limit reads it.
    with open_member(listed[1], ArchiveLimits(max_ratio=5000)) as fd_path:
        assert os.path.getsize(fd_path) == 64 << 20


@pytest.mark.parametrize("mode", ["gz", "xz"])  # (bzip2 inflates a whole block of up to 900 kB at once, whatever it is handed)
def test_the_compressed_position_follows_what_the_decompressor_consumed(tmp_path, monkeypatch, mode):
    # A member's ratio is its content over the compressed bytes read while it inflates. A decompressor reading far
    # ahead (Python 3.12's gzip: 128 KiB) puts a small archive's every compressed byte before its first member, and a
    # member after it measured against 0 bytes is called a bomb: the decompressor is handed a few KiB at a time.
    from vscan.inputs import archive_reader

    monkeypatch.setattr(archive_reader, "_RAW_READ", 1024)
    path = tmp_path / f"noise.tar.{mode}"
    with tarfile.open(path, f"w:{mode}") as tf:
        _add(tf, "noise.mp4", np.random.default_rng(2).integers(0, 256, 256 << 10, dtype=np.uint8).tobytes())
    assert path.stat().st_size > 64 << 10
    inflater = archive_reader.Inflater(str(path), next(op for prefix, op in archive_reader._OPENERS
                                                       if path.read_bytes().startswith(prefix)), ArchiveLimits())  # fmt: skip
    for _ in range(8):
        inflater.read(4096)
        # incompressible content: the bytes consumed are about the bytes out, never more than one read ahead of them
        assert inflater._raw.tell() <= inflater.pos + 2048 + 1024, (inflater._raw.tell(), inflater.pos)


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.xz"])
def test_entry_count_limit(tmp_path, kind):
    path = tmp_path / f"a.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            for i in range(6):
                zf.writestr(f"{i}.mp4", b"x" * 10)
    else:
        with tarfile.open(path, "w:xz" if kind == "tar.xz" else "w") as tf:
            for i in range(6):
                _add(tf, f"{i}.mp4", b"x" * 10)
    assert len(list(iter_member_paths(path, limits=ArchiveLimits(max_entries=6)))) == 6
    limits = ArchiveLimits(max_entries=4)
    listed = list(iter_member_paths(path, limits=limits))
    # A zip's end record declares its count: refused before its directory is read; a tar stops at the limit.
    expected = [] if kind == "zip" else [f"{path}!/{i}.mp4" for i in range(4)]
    assert listed == expected + [str(path)]
    error = archive_error(str(path), limits)
    assert type(error) is ArchiveError and "more than archive_max_entries (4)" in str(error)
    summary, payload = decode_for_scan(str(path), ScanConfig(archives=Archives(max_entries=4)))
    assert payload is None and summary["error"]["type"] == "ArchiveError"
    assert "archive_max_entries (4)" in summary["error"]["message"]


def test_entry_limit_config_and_cli(tmp_path):
    with pytest.raises(ConfigError, match=r"max_entries \(0\)"):
        Archives(max_entries=0)
    assert ScanConfig().archives.max_entries == ArchiveLimits().max_entries == 100_000
    shown = subprocess.run([sys.executable, "-m", "vscan.cli", "config", "show", "--archive-max-entries", "7"],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "max_entries = 7" in shown
    bad = subprocess.run([sys.executable, "-m", "vscan.cli", "config", "show", "--archive-max-entries", "0"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "max_entries (0)" in bad.stderr, bad.stderr
    assert json.loads(json.dumps(ScanConfig(archives=Archives(max_entries=7)).to_dict()))["archives"]["max_entries"] == 7

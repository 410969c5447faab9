"""Limits hold before the damage (issue 23): archive headers that lie, sparse
members, zip end records that under-count, trees deeper than recursion,
folders that cannot be listed. Old code: a PAX header was read whole before
any check (RSS grew by its declared size), sparse members passed the ratio
and total limits, the zip limit trusted the end record, os.walk raised
RecursionError past ~1,000 levels and skipped unlistable folders silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from vscan.bench import synth
from vscan.bench.hostile import _deep_tree, _lying_zip, _pax_header_bomb, _sparse_tar, remove_tree
from vscan.errors import ArchiveError, ArchiveMemberError
from vscan.inputs.archive_reader import ArchiveLimits, ArchiveReader
from vscan.inputs.archives import iter_member_paths
from vscan.inputs.discover import Refused, discover
from vscan.inputs.paths import MAX_DIR_DEPTH
from vscan.runtime.driver import model_call


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    return synth.make_clip(tmp_path_factory.mktemp("clip") / "c.mp4", seed=5, seconds=1.0, size=(96, 64)).read_bytes()


def _peak_rss_mib(code: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter: (its peak RSS growth in MiB, its stdout)."""
    script = textwrap.dedent("""
        import resource, sys
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        from vscan.inputs.archives import iter_member_paths, archive_error, ArchiveLimits
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    """) + textwrap.dedent(code) + "\nprint((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    *lines, peak = out.stdout.strip().splitlines()
    return float(peak), "\n".join(lines)


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar"])
def test_a_pax_header_declaring_a_gigabyte_is_refused_before_it_is_read(tmp_path, suffix):
    bomb = tmp_path / f"bomb{suffix}"
    _pax_header_bomb(tmp_path / "bomb.tar.gz", 1 << 30, filled_bytes=128 << 20)  # old code: RSS +128 MiB (+1 GiB when filled)
    if suffix == ".tar":  # the same header, uncompressed
        import gzip
        import shutil

        with gzip.open(tmp_path / "bomb.tar.gz") as src, open(bomb, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    grew_mib, out = _peak_rss_mib(f"""
        print(list(iter_member_paths({str(bomb)!r})))
        print(archive_error({str(bomb)!r}, ArchiveLimits()))
    """)
    assert f"['{bomb}']" in out and "a tar header declares 1073741824 bytes" in out and "header bomb" in out
    assert grew_mib < 64, f"listing grew RSS by {grew_mib:.0f} MiB"


def test_sparse_members_are_measured_at_their_declared_size(tmp_path, clip):
    _sparse_tar(tmp_path / "s.tar", clip, members=3, declared_bytes=512 << 20)
    reader = ArchiveReader(str(tmp_path / "s.tar"), ArchiveLimits())
    try:
        entries = list(reader.iter_entries())
        assert len(entries) == 3
        for entry in entries:
            with pytest.raises(ArchiveMemberError, match="decompression bomb"):
                reader.check(entry)
    finally:
        reader.close()
    # the total limit sums declared sizes (holes included), not archive offsets
    limits = ArchiveLimits(max_ratio=1e9, total_max_bytes=1 << 30)
    reader = ArchiveReader(str(tmp_path / "s.tar"), limits)
    try:
        entries = list(reader.iter_entries())
        reader.check(entries[0])  # 512 MiB: within
        with pytest.raises(ArchiveMemberError, match="archive_total_max_bytes"):
            reader.check(entries[2])  # 1.5 GiB of content by its end
    finally:
        reader.close()


def test_the_zip_entry_limit_counts_the_central_directory_not_the_end_record(tmp_path, clip):
    _lying_zip(tmp_path / "l.zip", clip, entries=300)
    with pytest.raises(ArchiveError, match="central directory holds more than archive_max_entries \\(200\\).*says 1"):
        ArchiveReader(str(tmp_path / "l.zip"), ArchiveLimits(max_entries=200))
    assert list(iter_member_paths(tmp_path / "l.zip", limits=ArchiveLimits(max_entries=200))) == [str(tmp_path / "l.zip")]
    assert len(list(iter_member_paths(tmp_path / "l.zip", limits=ArchiveLimits(max_entries=300)))) == 1  # first.mp4


def test_a_tree_deeper_than_recursion_is_walked_to_the_cap_and_the_rest_recorded(tmp_path, clip):
    (tmp_path / "deep").mkdir()
    _deep_tree(tmp_path / "deep", clip, 1200)
    (tmp_path / "side.mp4").write_bytes(clip)
    try:
        found = list(discover([tmp_path]))
    finally:
        remove_tree(tmp_path / "deep")  # os.walk over /tmp elsewhere must not meet it
    assert len(found) == 2
    refused = next(p for p in found if isinstance(p, Refused))
    assert refused == os.path.join(tmp_path, "deep", *["d"] * MAX_DIR_DEPTH)  # level MAX_DIR_DEPTH + 1 below tmp_path
    assert refused.error["type"] == "FileAccessError" and f"deeper than {MAX_DIR_DEPTH} levels" in refused.error["message"]
    assert str(tmp_path / "side.mp4") in found


def test_a_folder_that_cannot_be_listed_gets_a_record_and_the_walk_goes_on(tmp_path, clip):
    # A path longer than PATH_MAX cannot be listed, even by root: ENAMETOOLONG.
    root = tmp_path / "long"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    name = "n" * 250
    for _ in range(17):
        os.mkdir(name, dir_fd=fd)
        nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
    (tmp_path / "z.mp4").write_bytes(clip)
    try:
        found = list(discover([tmp_path]))
    finally:
        remove_tree(root)
    refused = [p for p in found if isinstance(p, Refused)]
    assert len(refused) == 1 and "folder cannot be listed" in refused[0].error["message"]
    assert str(tmp_path / "z.mp4") in found


def test_model_calls_are_bounded():
    frames = [10, 200, 30, 30, 600, 5]
    calls, ready = [], list(range(len(frames)))
    while ready:
        call, ready = model_call(ready, lambda i: frames[i], 256)
        calls.append(call)
    assert calls == [[0, 1, 2], [3], [4], [5]]  # a file over the bound goes alone


# --------------------------------------------------------------------------
# two scans on one output
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["jsonl", "parquet", "sqlite", "postgres"])
def test_a_second_scan_on_one_output_is_refused_with_a_clear_message(tmp_path, clip, kind, pg_database):
    from vscan.output.sinks import SinkError, open_sink

    target = pg_database() if kind == "postgres" else str(tmp_path / f"r.{kind}")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mp4").write_bytes(clip)
    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import build_bank
    from vscan.decode import EveryFrame

    bank = tmp_path / "b.bank"
    build_bank(bank, [tmp_path / "in" / "a.mp4"], hash_media=media_hasher(EveryFrame(), "cpu"))
    first = open_sink(target)  # a scan running on it (this process)
    try:
        first.write({"path": "/x.mp4", "sha256": None, "status": "ok", "error": None, "risk": 0.0})
        # a second scan, a second process, through the CLI: refused before anything starts
        run = subprocess.run([sys.executable, "-m", "vscan.cli", "scan", str(tmp_path / "in"), "--out", target, "--device", "cpu",
                              "--bank", str(bank), "-q"], capture_output=True, text=True, timeout=120)  # fmt: skip
        with pytest.raises(SinkError, match="being written by another vscan scan .pid"):
            open_sink(target)
    finally:
        first.close()
    assert run.returncode == 2 and "being written by another vscan scan (pid" in run.stderr, run.stderr
    second = open_sink(target)  # the first one ended: free again
    try:
        assert [r["path"] for r in second.records()] == ["/x.mp4"]
    finally:
        second.close()

"""A scan's start digests its bank file and its known-benign lists: kept between runs while the file is unchanged
(vscan.inputs.kept_digests), read again the moment it is not."""

import hashlib
import os

import pytest

from vscan.inputs import kept_digests
from vscan.inputs.kept_digests import kept_sha256


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """Every file is kept (no size floor), the cache in tmp_path; returns the list of files actually read."""
    monkeypatch.setenv("VSCAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(kept_digests, "MIN_KEPT_BYTES", 0)
    reads = []
    real = kept_digests.sha256_file
    monkeypatch.setattr(kept_digests, "sha256_file", lambda p: reads.append(str(p)) or real(p))
    return reads


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _settled(path, seconds: float = 100.0):
    """``path`` as if last written ``seconds`` ago (a digest is kept only for a file written a while before its read)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))
    return path


def test_an_unchanged_file_is_read_once_then_its_digest_is_kept(counted, tmp_path):
    f = tmp_path / "bank.db"
    f.write_bytes(os.urandom(100_000))
    _settled(f)
    assert kept_sha256(f) == _sha(f)
    assert kept_sha256(f) == _sha(f) and kept_sha256(str(f)) == _sha(f)
    assert len(counted) == 1


def test_a_file_written_in_place_with_its_times_set_back_is_read_again(counted, tmp_path):
    f = tmp_path / "bank.db"
    f.write_bytes(b"a" * 50_000)
    st = _settled(f).stat()
    first = kept_sha256(f)
    with open(f, "r+b") as fh:  # same size, same inode: one byte changed ...
        fh.write(b"b")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and its modification time put back
    assert f.stat().st_mtime_ns == st.st_mtime_ns and f.stat().st_size == st.st_size
    assert kept_sha256(f) == _sha(f) != first  # its change time moved: read again
    assert len(counted) == 2


def test_a_file_put_in_its_place_is_read_again(counted, tmp_path):
    f, other = tmp_path / "bank.db", tmp_path / "new.db"
    f.write_bytes(b"x" * 4096)
    first = kept_sha256(_settled(f))
    other.write_bytes(b"y" * 4096)
    os.utime(other, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns))
    os.replace(other, f)  # a rebuild renamed over the bank: the same size and times, another inode
    assert kept_sha256(f) == _sha(f) != first
    assert len(counted) == 2


def test_a_cache_that_cannot_be_made_still_gives_the_digest(counted, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("VSCAN_CACHE_DIR", str(blocker / "vscan"))
    f = tmp_path / "list.txt"
    f.write_bytes(b"0123456789abcdef" * 1000)
    assert kept_sha256(f) == kept_sha256(f) == _sha(f)
    assert len(counted) == 2  # computed each time


def test_small_files_are_read_every_time(monkeypatch, tmp_path):
    monkeypatch.setenv("VSCAN_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "small.txt"
    f.write_bytes(b"z" * 100)
    assert kept_sha256(f) == _sha(f)
    assert not (tmp_path / "cache").exists()  # under MIN_KEPT_BYTES: no cache touched


def test_a_missing_file_raises_as_reading_it_would(counted, tmp_path):
    with pytest.raises(OSError):
        kept_sha256(tmp_path / "gone.db")


def test_the_scan_manifest_names_a_rebuilt_bank_by_its_new_bytes(counted, tmp_path):
    """Through the ledger a scan starts with: the manifest's bank file digest, kept, and new after a rebuild."""
    from vscan.bank.store import build_bank
    from vscan.output.audit import bank_digests

    bank, lists = tmp_path / "reported.bank", [tmp_path / "a" / "pdq.txt", tmp_path / "b" / "pdq.txt"]
    for i, hashes in enumerate(lists):  # plain PDQ hex lists (vscan bank build reads them as hash lists)
        hashes.parent.mkdir()
        hashes.write_text("".join(f"{os.urandom(32).hex()}\n" for _ in range(3 + i)))
    build_bank(bank, [lists[0]])  # its info() reads the fresh file (written just now: not kept yet)
    first = bank_digests(_settled(bank))
    assert first["file_sha256"] == _sha(bank) and bank_digests(bank)["file_sha256"] == first["file_sha256"]
    build_bank(bank, [lists[1]])  # rebuilt at the same path (replace)
    again = bank_digests(bank)
    assert again["file_sha256"] == _sha(bank) != first["file_sha256"]
    assert len(counted) == 4  # each build's info() and the scans' first look: the fresh file read, then the settled one


def test_a_file_written_just_before_it_is_read_is_not_kept(counted, tmp_path):
    """A file system with coarse times (FAT: 2 s) could take a write right after the read within the same tick, the
    stat unchanged: a file written less than SETTLED_SECONDS before it was read is read again next time."""
    f = tmp_path / "list.txt"
    f.write_bytes(b"q" * 10_000)
    assert kept_sha256(f) == kept_sha256(f) == _sha(f)
    assert len(counted) == 2
    _settled(f, 2 * kept_digests.SETTLED_SECONDS)
    assert kept_sha256(f) == kept_sha256(f) == _sha(f)
    assert len(counted) == 3

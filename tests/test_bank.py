"""Banks: importers end to end, determinism, atomic writes, reading, Bank.build."""

import hashlib
import sqlite3

import numpy as np
import pytest

from vscan.bank import Bank, BankWriter, build_bank, detect_input_type
from vscan.bank.hashers import BANK_CROPS, media_hasher
from vscan.bench import synth
from vscan.decode import EveryFrame, FixedRate
from vscan.errors import BankError
from vscan.hashing.vpdq import FrameHashes, hex_to_hashes, read_vpdq

H1 = "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c"
H2 = "c0f11178372c6aaccddea259648fbfd62f434c89c9e99b249772be216c8d055c"
MD5 = hashlib.md5(b"x").hexdigest()
SHA1 = hashlib.sha1(b"x").hexdigest()
SHA256 = hashlib.sha256(b"x").hexdigest()


def fake_hash_media(path):
    """Fixed frames: enough to test the bank's handling of media, not a hasher."""
    fh = FrameHashes([0, 30], [0.0, 1.0], [100, 90], hex_to_hashes([H1, H2]))
    return fh, 2.0


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    (d / "clip.txt").write_text(f"0,100,{H1},0.000\n1,80,{H2},0.033\n")
    (d / "list_pdq.txt").write_text(f"{H1}\n{H2}\n")
    (d / "list_q_pdq.txt").write_text(f"{H1},70\n{H2},20\n")
    (d / "files.md5").write_text(f"{MD5}  a.mp4\n{MD5.upper()} *b.mp4\n")
    (d / "mixed.txt").write_text(f"{SHA1}\n{MD5}\n")
    (d / "sub" / "hashes.sha256").write_text(f"{SHA256}\n")
    (d / "sub" / "pytx.csv").write_text(
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{H1},c1,terror,\nHASH_VIDEO_MD5,{MD5},c1,,tagA tagB\nHASH_PDQ,{H2},c1,,\n"
    )
    (d / "sub" / "clip.mp4").write_bytes(b"not really a video")
    (d / "README.md").write_text("hello")
    return d


def test_build_all_importers(tmp_path, inputs):
    info = build_bank(tmp_path / "bank.db", [inputs], hash_media=fake_hash_media)
    assert info.skipped_inputs == ("in/README.md",)
    with Bank(tmp_path / "bank.db") as bank:
        entries = {r[0]: r for r in bank.rows("entries")}
        index = bank.load_index()
    assert info.num_entries == len(entries) == 1 + 1 + 1 + 2 + 2 + 1 + 3 + 1
    # vPDQ text, id = stem; the media file with the same stem gets a deterministic suffix
    assert entries["clip"][2:6] == ("in/clip.txt", "vpdq_txt", None, "video")
    media_id = [k for k in entries if k.startswith("clip-")][0]
    assert entries[media_id][2:] == ("in/sub/clip.mp4", "media", None, "video", 2.0, 2)
    assert entries["list_pdq"][5:] == ("pdq_list", None, 2)
    assert entries["files:2"][4] == "2:b.mp4"
    assert entries["pytx:2"][1] == "terror" and entries["pytx:2"][5] == "image"
    assert entries["pytx:3"][1] == "tagA tagB" and entries["pytx:3"][5] == "file_digest"
    assert index.digests[("md5", MD5)] == ["files:1", "files:2", "mixed:2", "pytx:3"]
    assert index.digests[("sha1", SHA1)] == ["mixed:1"]
    assert index.digests[("sha256", SHA256)] == ["hashes:1"]
    # frames: quality NULL in the file (pdq list without quality), loaded as 100
    row = index.entry_ids.index("list_pdq")
    assert index.qualities[index.entry_rows == row].tolist() == [100, 100]
    row = index.entry_ids.index("list_q_pdq")
    assert index.qualities[index.entry_rows == row].tolist() == [70, 20]
    assert index.hashes.shape == (info.num_frame_hashes, 32)
    assert np.all(np.diff(index.entry_rows) >= 0)


def test_label_override_and_info(tmp_path, inputs):
    info = build_bank(tmp_path / "b.db", [inputs / "sub" / "pytx.csv", inputs / "clip.txt"], label="L")
    assert info.labels == {"L": 4} and info.kinds == {"file_digest": 1, "image": 2, "video": 1}
    assert info.num_frame_hashes == 4 and info.num_digests == 1 and info.format_version == 1


def test_build_is_deterministic(tmp_path, inputs):
    a = build_bank(tmp_path / "a.db", [inputs], hash_media=fake_hash_media)
    b = build_bank(tmp_path / "b.db", [inputs], hash_media=fake_hash_media)
    with Bank(tmp_path / "a.db") as x, Bank(tmp_path / "b.db") as y:
        for table in ("entries", "frame_hashes", "file_digests"):
            assert x.rows(table) == y.rows(table)
    assert a.content_sha256 == b.content_sha256
    assert a.file_sha256 == b.file_sha256  # no timestamps anywhere: the same bytes


def test_writer_is_atomic(tmp_path):
    out = tmp_path / "bank.db"
    with pytest.raises(RuntimeError):
        with BankWriter(out) as w:
            w.add_file_digest("x", None, "api", "md5", MD5)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_values(tmp_path):
    with BankWriter(tmp_path / "b.db") as w:
        with pytest.raises(BankError, match="md5"):
            w.add_file_digest("x", None, "api", "md5", SHA1)
        with pytest.raises(BankError, match="algorithm"):
            w.add_file_digest("x", None, "api", "crc32", "abcd")
        with pytest.raises(BankError, match="kind"):
            w.add_frame_hashes("y", None, "api", "movie", FrameHashes.empty())
        fh = FrameHashes([0, 0], [0.0, 0.0], [1, 1], np.zeros((2, 32), np.uint8))
        with pytest.raises(BankError, match="duplicate frame"):
            w.add_frame_hashes("z", None, "api", "video", fh)


@pytest.mark.parametrize(
    "name, text, where",
    [
        ("v.txt", f"0,100,{H1},0.0\n1,100,{H1[:10]},0.1\n", "v.txt:2"),
        ("p_pdq.txt", f"{H1}\n\n{H2}zz\n", "p_pdq.txt:3"),
        ("p_pdq.txt", f"{H1},70\n{H2},x\n", "p_pdq.txt:2"),
        ("d.md5", f"{MD5}\nnot-a-digest\n", "d.md5:2"),
        ("t.csv", f"pdq,{H1},c,,\nTMK,abc,c,,\n", "t.csv:2"),
        ("t.csv", f"pdq,{H1[:-1]},c,,\n", "t.csv:1"),
        ("t.csv", f"video_md5,{SHA1},c,,\n", "t.csv:1"),
        ("x.txt", "hello world\n", "x.txt:1"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, name, text, where):
    (tmp_path / name).write_text(text)
    with pytest.raises(BankError, match=where):
        build_bank(tmp_path / "b.db", [tmp_path / name])
    assert not (tmp_path / "b.db").exists()


def test_ambiguous_64_hex_list_needs_a_name(tmp_path):
    (tmp_path / "hashes.txt").write_text(f"{H1}\n")
    with pytest.raises(BankError, match="PDQ hashes or SHA-256"):
        detect_input_type(tmp_path / "hashes.txt")
    (tmp_path / "hashes_sha256.txt").write_text(f"{H1}\n")
    assert detect_input_type(tmp_path / "hashes_sha256.txt") == "digest_list"


def test_media_without_hasher_and_unknown_file_are_errors(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "a.bin").write_bytes(b"")
    with pytest.raises(BankError, match="hash_media"):
        build_bank(tmp_path / "b.db", [tmp_path / "a.mp4"])
    with pytest.raises(BankError, match="not a hash list"):
        build_bank(tmp_path / "b.db", [tmp_path / "a.bin"])
    with pytest.raises(BankError, match="not found"):
        build_bank(tmp_path / "b.db", [tmp_path / "missing.txt"])


def test_open_errors(tmp_path):
    with pytest.raises(BankError, match="not found"):
        Bank(tmp_path / "nope.db")
    (tmp_path / "junk.db").write_bytes(b"junk" * 100)
    with pytest.raises(BankError, match="not a vscan bank"):
        Bank(tmp_path / "junk.db")
    build_bank(tmp_path / "old.db", [])
    with sqlite3.connect(tmp_path / "old.db") as c:
        c.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    c.close()
    with pytest.raises(BankError, match="version 99"):
        Bank(tmp_path / "old.db")


def test_real_vpdq_files_roundtrip_through_bank(tmp_path, vpdq_dir):
    files = sorted(vpdq_dir.glob("*.txt"))
    info = build_bank(tmp_path / "b.db", files)
    assert info.num_entries == len(files)
    with Bank(tmp_path / "b.db") as bank:
        index = bank.load_index()
    for path in files:
        expected = read_vpdq(path)
        rows = index.entry_rows == index.entry_ids.index(path.stem)
        np.testing.assert_array_equal(index.hashes[rows], expected.hashes)
        np.testing.assert_array_equal(index.frame_numbers[rows], expected.frame_numbers)
        np.testing.assert_array_equal(index.qualities[rows], expected.qualities)
        np.testing.assert_array_equal(index.timestamps_seconds[rows], expected.timestamps_seconds)


def test_bank_build_hashes_media_as_bank_build_does(tmp_path):
    """Bank.build: every frame, extra rows for the crops, the file's digests; the same rows as build_bank."""
    folder = tmp_path / "in"
    synth.make_clip(folder / "clip.mp4", seed=4, seconds=1.0, fps=10, size=(96, 64))
    (folder / "list_pdq.txt").write_text(f"{H1}\n")
    with Bank.build(tmp_path / "a.bank", [folder], label="reported", device="cpu") as bank:
        info = bank.info()
        extra = bank.rows("extra_hashes")
    assert info.labels == {"reported": 2} and info.kinds == {"pdq_list": 1, "video": 1}
    assert info.num_frame_hashes == 10 + 1 and info.num_digests == 2  # every frame; md5 and sha256 of the clip
    crops = {f"crop{c:.3f}" for c in BANK_CROPS}
    assert {prep for _, _, prep, _, _ in extra} >= crops
    assert sum(prep in crops for _, _, prep, _, _ in extra) == 10 * len(crops)  # each crop of each frame
    expected = build_bank(tmp_path / "b.bank", [folder], label="reported", hash_media=media_hasher(EveryFrame(), "cpu"))
    assert info.content_sha256 == expected.content_sha256
    with Bank.open(tmp_path / "a.bank") as reopened:
        assert reopened.info() == info
    sparse = Bank.build(tmp_path / "c.bank", [folder / "clip.mp4"], device="cpu", policy=FixedRate(2.0))
    with sparse:
        assert sparse.info().num_frame_hashes == 2

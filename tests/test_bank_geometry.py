"""Each media entry's decoded frame size and border box, kept in the bank (issue 27: the off-centre search sizes
its window from the box of the picture inside a source's own bars): written by ``vscan bank build`` and
``vscan bank import``, kept when a bank's rows are rewritten (``derive_bank``), and read per entry by ``Bank``,
the in-memory ``BankIndex`` and the scan's ``MappedBank`` (its narrowed index as arrays). Entries from hash
lists, and every entry of a bank built before the table existed, read None; such banks still open."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vscan.bank.entry_table import NO_GEOMETRY, EntryGeometry
from vscan.bank.mapped import MappedBank, prepare
from vscan.bank.store import Bank
from vscan.errors import BankError

VIDEO = EntryGeometry(192, 96, (32, 0, 160, 96))  # 128 x 96 of picture between two 32 px side bars
STILL = EntryGeometry(160, 160, (0, 32, 160, 128))  # 160 x 96 of picture between two 32 px bars, top and bottom


def _cli(*args) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    run = subprocess.run([sys.executable, "-m", "vscan.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr


def _picture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A textured picture (smooth blobs: PDQ quality well above the scan's minimum)."""
    from vscan.bench.scenes import _texture

    return _texture(rng, h, w)


def _barred_clip(path: Path, *, seed: int, inner=(128, 96), bars=(32, 0)) -> Path:
    """A 2 s 25 fps clip of a moving scene ``inner`` (w, h) px, with black bars of ``bars`` (x, y) px on each side."""
    from vscan.bench.encoding import _encode, _rate
    from vscan.bench.scenes import _Renderer

    render, rate = _Renderer(seed=seed, seconds=2.0, size=inner, scenes=1), _rate(25.0)
    (bx, by), (w, h) = bars, inner

    def frames():
        for i in range(50):
            out = np.zeros((h + 2 * by, w + 2 * bx, 3), np.uint8)
            out[by : by + h, bx : bx + w] = render(float(i / rate))
            yield out

    return _encode(path, frames(), fps=float(rate), codec="libx264", gop=10, crf=None, bitrate=None)


def _barred_still(path: Path) -> Path:
    from PIL import Image

    out = np.zeros((160, 160, 3), np.uint8)
    out[32:128] = _picture(np.random.default_rng(3), 96, 160)
    Image.fromarray(out).save(path)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """``vscan bank build`` (sparse rows: cheap) of a pillarboxed clip, a letterboxed still and a vPDQ list."""
    root = tmp_path_factory.mktemp("geometry")
    src = root / "reported"
    src.mkdir()
    _barred_clip(src / "barred.mp4", seed=5)
    _barred_still(src / "still.png")
    (src / "listed.txt").write_text("".join(f"{i},100,{'0f' * 32 if i % 2 else 'f' * 64},{i / 25:.3f}\n" for i in range(4)))
    _cli("bank", "build", root / "r.bank", src, "--rows", "sparse", "--device", "cpu")
    return root / "r.bank"


def test_a_cli_built_bank_keeps_each_media_entrys_decoded_size_and_border_box(built):
    with Bank(built) as bank:
        assert bank.entry_geometry("barred") == VIDEO
        assert bank.entry_geometry("still") == STILL
        assert bank.entry_geometry("listed") is None  # a hash list's entry: no pictures, no geometry
        index = bank.load_index()
        assert bank.content_digest() == bank.info().content_sha256
    width, height, box = index.entry_geometry("barred")  # unpacks as (w, h, box)
    assert (width, height, box) == VIDEO and VIDEO.box_shares == (128 / 192, 1.0)
    rows = {e: index.geometry[i].tolist() for i, e in enumerate(index.entry_ids)}
    assert rows == {"barred": [192, 96, 32, 0, 160, 96], "still": [160, 160, 0, 32, 160, 128], "listed": list(NO_GEOMETRY)}
    assert index.entry_geometry(index.entry_ids.index("listed")) is None


def test_the_scans_mapped_bank_and_its_narrowed_index_read_the_geometry(built, tmp_path):
    bank_path = tmp_path / "r.bank"
    shutil.copy(built, bank_path)
    prepare(bank_path)
    with Bank(bank_path) as bank:
        full = bank.load_index()
    mapped = MappedBank.open(bank_path)
    try:
        assert mapped.entry_geometry("barred") == VIDEO and mapped.entry_geometry("listed") is None
        assert mapped.entry_geometry(mapped.rows.entry_of("still", add=False)) == STILL
        # narrowed to the clip's entry by one of its own frame rows: the subset's arrays carry its geometry
        one = full.hashes[full.entry_rows == full.entry_ids.index("barred")][:1]
        narrowed = mapped.narrow([one], 8, 0)
        assert narrowed.entry_ids == ["barred"]
        assert narrowed.geometry.tolist() == [[192, 96, 32, 0, 160, 96]] and narrowed.entry_geometry("barred") == VIDEO
        listed = mapped.narrow([full.hashes[full.entry_rows == full.entry_ids.index("listed")][:1]], 0, 0)
        assert listed.entry_ids == ["listed"] and listed.geometry is None and listed.entry_geometry(0) is None
    finally:
        mapped.close()


def test_a_bank_built_before_the_geometry_was_kept_opens_and_reads_none(built, tmp_path):
    old = tmp_path / "old.bank"
    shutil.copy(built, old)
    with sqlite3.connect(old) as conn:  # the same bank as written before: format 1 without the optional table
        conn.execute("DROP TABLE entry_geometry")
    prepare(old)
    with Bank(old) as bank:
        assert bank.entry_geometry("barred") is None and bank.rows("entry_geometry") == []
        index = bank.load_index()
    assert index.geometry is None and index.entry_geometry("barred") is None
    mapped = MappedBank.open(old)
    try:
        assert mapped.entry_geometry("barred") is None
        one = index.hashes[index.entry_rows == index.entry_ids.index("barred")][:1]
        narrowed = mapped.narrow([one], 8, 0)
        assert narrowed.entry_ids == ["barred"] and narrowed.geometry is None and narrowed.entry_geometry("barred") is None
    finally:
        mapped.close()


def test_an_import_writes_the_geometry_of_the_media_it_adds_and_a_derived_bank_keeps_it(built, tmp_path):
    from vscan.bank.compact_rows import derive_bank
    from vscan.bank.hashers import SPARSE_ROWS

    bank_path = tmp_path / "r.bank"
    shutil.copy(built, bank_path)
    more = tmp_path / "more"
    more.mkdir()
    _barred_clip(more / "boxed.mp4", seed=6, inner=(160, 64), bars=(0, 16))  # letterboxed: 16 px bars top and bottom
    _cli("bank", "import", bank_path, more, "--device", "cpu")
    derived = tmp_path / "derived.bank"
    derive_bank(bank_path, derived, SPARSE_ROWS)
    for path in (bank_path, derived):
        with Bank(path) as bank:
            assert bank.entry_geometry("boxed") == EntryGeometry(160, 96, (0, 16, 160, 80))
            assert bank.entry_geometry("barred") == VIDEO and bank.entry_geometry("listed") is None


def test_media_geometry_gives_the_box_found_on_the_builds_frames_in_decoded_pixels():
    """The box is found on the build's 512 px frames; the bank keeps it in the decoded frame's pixels."""
    from vscan.bank.hashers import media_geometry
    from vscan.decode.metadata import VideoMetadata
    from vscan.frames.borders import BorderBox
    from vscan.hashing.media import MediaHashes
    from vscan.hashing.vpdq import FrameHashes

    meta = VideoMetadata(path="x.mp4", backend="pyav", codec="h264", width=1280, height=720, fps=25.0, num_frames=1,
                         duration_seconds=0.04, keyframe_indices=(0,))  # fmt: skip

    def geometry(box):
        return media_geometry(MediaHashes(meta, FrameHashes.empty(), np.zeros((0, 8, 32), np.uint8), border_box=box))

    # 512 x 288 frames with 64 px side bars: 160 px of 1,280 each side
    assert geometry(BorderBox(left=64, right=64, height=288, width=512)) == EntryGeometry(1280, 720, (160, 0, 1120, 720))
    assert geometry(BorderBox(top=36, bottom=0, height=288, width=512)) == EntryGeometry(1280, 720, (0, 90, 1280, 720))
    assert geometry(None) == geometry(BorderBox(height=288, width=512)) == EntryGeometry(1280, 720, (0, 0, 1280, 720))


def test_the_writer_refuses_a_box_outside_its_frame(tmp_path):
    from vscan.bank.writer import BankWriter
    from vscan.hashing.vpdq import FrameHashes

    with pytest.raises(BankError, match="invalid or repeated geometry"):
        with BankWriter(tmp_path / "w.bank") as writer:
            writer.add_frame_hashes("a", None, "api", "image", FrameHashes([0], [np.nan], [100], np.zeros((1, 32), np.uint8)))
            writer.add_geometry("a", EntryGeometry(100, 50, (0, 0, 120, 50)))
    assert not (tmp_path / "w.bank").exists()


def test_one_reader_gives_the_picture_sizes_of_a_bank_its_index_and_the_scans_mapped_bank(built, tmp_path):
    """``vscan.bank.entry_table.picture_sizes``: the same (w, h) of the pictures inside their bars, most shared first,
    from the bank file, an open ``Bank``, its in-memory index (kept in its cache) and a scan's ``MappedBank``."""
    from vscan.bank.entry_table import entry_geometries, has_geometry, picture_sizes

    bank_path = tmp_path / "r.bank"
    shutil.copy(built, bank_path)
    with sqlite3.connect(bank_path) as conn:  # one more pillarboxed entry: its 128 x 96 picture is shared by two
        conn.execute("INSERT INTO entry_geometry VALUES ('twin', 256, 96, 64, 0, 192, 96)")
    prepare(bank_path)
    both = ((128, 96), (160, 96))
    with Bank(bank_path) as bank:
        index = bank.load_index()
        assert picture_sizes(bank) == both and picture_sizes(bank, 1) == ((128, 96),)
        assert has_geometry(bank._conn) and set(entry_geometries(bank._conn)) == {"barred", "still", "twin"}
        assert entry_geometries(bank._conn, ["still", "listed"]) == {"still": STILL}
    # the in-memory index holds only its own entries' geometry ('twin' has no rows, so no entry there)
    assert picture_sizes(index) == ((128, 96), (160, 96)) and index.cache["entry_table.pictures.None"] == both
    mapped = MappedBank.open(bank_path)
    try:
        assert picture_sizes(mapped, 8) == both and picture_sizes(mapped, 8) is picture_sizes(mapped, 8)  # read once
    finally:
        mapped.close()
    with sqlite3.connect(bank_path) as conn:
        assert picture_sizes(conn) == both
        conn.execute("DROP TABLE entry_geometry")
        assert picture_sizes(conn) == () and entry_geometries(conn) == {} and not has_geometry(conn)

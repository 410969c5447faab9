import io
import math

import numpy as np
import pytest

from vscan.errors import BankError
from vscan.hashing.vpdq import (
    FrameHashes,
    format_vpdq_line,
    hashes_to_hex,
    hex_to_hashes,
    read_vpdq,
    vpdq_text,
    write_vpdq,
)

HEX = "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c"


def test_hex_roundtrip_and_byte_layout():
    arr = hex_to_hashes([HEX, HEX.upper()])
    assert arr.dtype == np.uint8 and arr.shape == (2, 32)
    assert arr[0].tobytes() == bytes.fromhex(HEX)
    assert hashes_to_hex(arr) == [HEX, HEX]


@pytest.mark.parametrize("bad", ["", "xyz", HEX[:-1], HEX + "0", "g" * 64, None])
def test_hex_rejects_bad_values(bad):
    with pytest.raises(BankError):
        hex_to_hashes([bad])


def test_frame_hashes_validates_shapes():
    with pytest.raises(BankError, match=r"\[N, 32\]"):
        FrameHashes(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros((2, 31), np.uint8))
    with pytest.raises(BankError, match="qualities"):
        FrameHashes(np.zeros(2), np.zeros(2), np.zeros(3), np.zeros((2, 32), np.uint8))
    fh = FrameHashes([0, 1, 2], [0.0, 0.5, 1.0], [10, 60, 90], np.zeros((3, 32), np.uint8))
    assert len(fh) == 3 and fh.frame_numbers.dtype == np.int64
    assert fh.filter_quality(50).frame_numbers.tolist() == [1, 2]
    both = FrameHashes.concat([fh, fh.filter_quality(90)])
    assert len(both) == 4 and both.qualities.tolist() == [10, 60, 90, 90]
    assert len(FrameHashes.concat([])) == 0


def test_format_vpdq_line_matches_upstream():
    assert format_vpdq_line(3, 100, HEX, 0.1) == f"3,100,{HEX},0.100"
    assert format_vpdq_line(3, 100, HEX, 22.4) == f"3,100,{HEX},22.400"
    assert format_vpdq_line(3, 7, HEX, None) == f"3,7,{HEX}"


def test_read_three_fields_gives_nan_timestamps():
    fh = read_vpdq(f"0,100,{HEX}\n1,49,{HEX}\n")
    assert fh.qualities.tolist() == [100, 49]
    assert all(math.isnan(t) for t in fh.timestamps_seconds)
    assert vpdq_text(fh) == f"0,100,{HEX}\n1,49,{HEX}\n"


@pytest.mark.parametrize(
    "text, where",
    [
        (f"0,100,{HEX},0.000\n1,100,{HEX[:-2]},0.033\n", ":2"),
        (f"0,100,{HEX},0.000\n\n2,abc,{HEX},0.1\n", ":3"),
        (f"0,100\n", ":1"),
        (f"0,101,{HEX},0.0\n", ":1"),
    ],
)
def test_read_malformed_names_line(text, where):
    with pytest.raises(BankError, match=where):
        read_vpdq(text)


def test_write_to_stream_and_path(tmp_path):
    fh = read_vpdq(f"0,100,{HEX},0.000\n1,99,{HEX},0.033\n")
    buf = io.StringIO()
    write_vpdq(fh, buf)
    write_vpdq(fh, tmp_path / "x.txt")
    assert buf.getvalue() == (tmp_path / "x.txt").read_text() == f"0,100,{HEX},0.000\n1,99,{HEX},0.033\n"
    assert len(read_vpdq(tmp_path / "x.txt")) == 2
    assert len(read_vpdq(str(tmp_path / "x.txt"))) == 2


def test_upstream_files_roundtrip_byte_for_byte(shared_dir):
    files = sorted((shared_dir / "data" / "vpdq").glob("*.txt"))
    assert len(files) >= 9
    for path in files:
        fh = read_vpdq(path)
        assert len(fh) > 0
        assert vpdq_text(fh).encode() == path.read_bytes(), path.name

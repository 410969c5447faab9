"""Decode processes' answers over a pipe with their arrays out of band (vscan.runtime.framed, issue #30)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np

from vscan.runtime.framed import read_message

_WRITER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from vscan.runtime.framed import write_message

    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    frames = np.arange(3 * 64 * 48 * 3, dtype=np.uint8).reshape(3, 64, 48, 3)
    for i in range(3):
        write_message(out, {"i": i, "frames": frames + i, "fortran": np.asfortranarray(frames[0, :, :, 0]),
                            "strided": frames[:, ::2], "empty": np.zeros((0, 32), np.uint8), "times": np.linspace(0, 1, 5),
                            "labels": np.array(["a", None], object), "text": "x" * 70000})
    """
)


def _expected(i: int) -> dict:
    frames = np.arange(3 * 64 * 48 * 3, dtype=np.uint8).reshape(3, 64, 48, 3)
    return {"i": i, "frames": frames + i, "fortran": np.asfortranarray(frames[0, :, :, 0]), "strided": frames[:, ::2],
            "empty": np.zeros((0, 32), np.uint8), "times": np.linspace(0, 1, 5), "labels": np.array(["a", None], object), "text": "x" * 70000}  # fmt: skip


def test_messages_come_back_whole_in_order_and_their_arrays_writable():
    proc = subprocess.Popen([sys.executable, "-c", _WRITER], stdout=subprocess.PIPE, bufsize=0)
    try:
        got = [read_message(proc.stdout.fileno()) for _ in range(3)]
    finally:
        proc.stdout.close()
        proc.wait()
    assert proc.returncode == 0
    for i, message in enumerate(got):
        want = _expected(i)
        assert message.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, np.ndarray):
                assert message[key].dtype == value.dtype and message[key].shape == value.shape, key
                assert np.array_equal(message[key], value) if value.dtype != object else list(message[key]) == list(value), key
                assert message[key].flags.writeable, key  # as an array pickled in band comes back
            else:
                assert message[key] == value
    assert got[0]["fortran"].flags.f_contiguous


def test_a_writer_that_ends_mid_message_is_an_eof_not_a_short_array():
    read, write = os.pipe()
    data = pickle.dumps(np.ones(100, np.uint8), protocol=5, buffer_callback=lambda b: None)
    head = len(data).to_bytes(8, "little") + (1).to_bytes(4, "little") + (100).to_bytes(8, "little")
    os.write(write, head + data + b"\x01" * 40)  # 40 of the buffer's 100 bytes, then the writer is gone
    os.close(write)
    try:
        read_message(read)
    except EOFError:
        pass
    else:
        raise AssertionError("a cut message was read")
    finally:
        os.close(read)

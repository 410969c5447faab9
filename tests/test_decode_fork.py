"""A process that decoded with vscan can still fork one that decodes (PyAV 17+).

PyAV 17 scales and converts frames on a pool of libswscale threads by default and keeps one scaling context per
thread. A process forked after such a conversion inherits the context without its threads, and the child's next
conversion at another size hangs for ever freeing it (seen: the robustness bench's pool of forked generators). vscan
converts on one thread (``vscan.decode.pyav_reuse.SWS_THREADS``), so a program that scans and then forks, as
``multiprocessing`` does by default on Linux, is not left with a child that never ends."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from vscan.decode import PyAVDecoder
from vscan.decode.sampling import FixedRate


def _clip(path, size: str) -> str:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=10", "-t", "1",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)  # fmt: skip
    return str(path)


def _decode(path: str, max_side: int | None) -> int:
    return sum(len(batch.rgb) for batch in PyAVDecoder().iter_frames(path, FixedRate(5.0), batch_size=4, max_side=max_side))


@pytest.mark.parametrize("max_side", [None, 96], ids=["native-size", "scaled"])
def test_a_child_forked_after_a_decode_decodes_another_size_and_ends(tmp_path, max_side):
    first, other = _clip(tmp_path / "a.mp4", "320x240"), _clip(tmp_path / "b.mp4", "160x120")
    assert _decode(first, max_side) > 0
    pid = os.fork()
    if pid == 0:  # the child: SIGALRM ends it if the conversion hangs
        code = 1
        try:
            signal.alarm(20)
            code = 0 if _decode(other, max_side) > 0 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert not os.WIFSIGNALED(status), f"the forked decode hung (signal {os.WTERMSIG(status)})"
    assert os.WEXITSTATUS(status) == 0

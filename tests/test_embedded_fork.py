"""The decode processes of a scan without Ray after the first are forked from it once it has imported the decoders
(vscan.runtime.embedded_decode, issue #30: each started an interpreter and imported them again, ~0.35 CPU-s a process):
they answer as the first does, end with the scan, and their CPU is still counted among the scan's children."""

from __future__ import annotations

import os
import resource
import select
import time

import numpy as np
import pytest

from vscan.bench import synth
from vscan.config import ScanConfig
from vscan.runtime.embedded_procs import _Decoders
from vscan.runtime.outcome import Task


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _answers(decoders: _Decoders, count: int) -> dict:
    got = {}
    deadline = time.monotonic() + 120
    while len(got) < count and time.monotonic() < deadline:
        ready, _ = decoders.wait([], 60.0)
        for proc in ready:
            task, answer, _ = decoders.take(proc, False)
            assert answer is not None, "a decode process died"
            got[(proc is decoders.procs[0], task.path)] = answer
    return got


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc (Linux)")
def test_the_second_decode_process_is_forked_from_the_first_and_answers_as_it_does(tmp_path):
    clip = str(synth.make_clip(tmp_path / "c.mp4", seed=11, seconds=3))
    config = ScanConfig()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    decoders = _Decoders(2, None, ())
    first, second = decoders.procs
    assert _parent(second.proc.pid) == first.proc.pid  # forked by the first, not started here
    for proc in (first, second):
        proc.decode(Task(key=1, path=clip, attempt_decoder="auto", submitted=time.monotonic()), config)
    got = _answers(decoders, 2)
    (_, a_summary, a_file), (_, b_summary, b_file) = got[(True, clip)], got[(False, clip)]
    assert a_summary.error is None and a_summary.frames_sampled > 0
    assert a_summary.frames_sampled == b_summary.frames_sampled and np.array_equal(a_file.frames, b_file.frames)
    pids = [p.proc.pid for p in decoders.procs]
    decoders.close()
    assert decoders.cpu_seconds is not None and decoders.cpu_seconds > 0
    assert not [pid for pid in pids if os.path.exists(f"/proc/{pid}")]  # both gone (the forked one reaped by the first)
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    counted = children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime
    assert decoders.cpu_seconds <= counted + 0.05  # the forked one's CPU reached this process through the first


def test_a_forked_decode_process_that_dies_reads_as_ended_and_its_answer_pipe_ends(tmp_path):
    import signal

    decoders = _Decoders(2, None, ())
    second = decoders.procs[1]
    os.kill(second.proc.pid, signal.SIGKILL)
    assert second.proc.wait(timeout=30) is not None and second.proc.poll() is not None
    assert select.select([second], [], [], 30)[0] and second.answer() is None  # as a crash of a started one reads
    decoders.close()



@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc (Linux)")
def test_a_forked_id_taken_by_another_process_is_never_signalled():
    """A forked process outlived by the first is reaped by init and its id may go to another process: the driver
    knows its own by the start time it had when its id was read, and signals nothing else."""
    decoders = _Decoders(2, None, ())
    forked = decoders.procs[1].proc
    pid = forked.pid
    assert forked.poll() is None  # alive, the same process
    forked._ids._started[forked._index] -= 1  # as if another process held the id now
    assert forked.poll() == 0
    forked.kill()  # nothing sent
    time.sleep(0.2)
    with open(f"/proc/{pid}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[0] != "Z"  # still running
    forked._ids._started[forked._index] += 1
    decoders.close()
    assert not os.path.exists(f"/proc/{pid}")

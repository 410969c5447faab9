"""A file that kills its node is quarantined, not sent round the cluster (issue 23).

vscan.runtime.faults.InfraFaults decides what a Ray failure means for a
file. A node that dies while decoding a file is not the file's fault the
first time: the file is decoded again, alone, elsewhere. When a second node
dies while decoding it (that time alone in its task), the file is recorded
with a QuarantinedError (an input error: final, resume does not try it
again) instead of being sent on to kill more of the cluster (the old
behaviour: up to NODE_FAULT_LIMIT = 20 nodes).

These tests drive InfraFaults and the real record path (Outcomes, the
record builder) with Ray's own exception types on a live local Ray, and a
real worker crash. Why not a node really killed by a file: no input makes a
decoder kill its raylet (only a test hook in the decode task could), and on
a 2-raylet loopback cluster the retry goes where Ray places it: the test
could not make the second death land on the file's node without steering
the scheduler. tests/test_cluster.py kills a real worker raylet mid-scan and
checks that the files it held are decoded again, not recorded as errors.
"""

from __future__ import annotations

import os
import time

import pytest

from vscan.errors import is_permanent
from vscan.runtime.faults import NODE_FAULT_LIMIT, QUARANTINE_DEATHS, InfraFaults
from vscan.runtime.outcome import Outcomes, Task
from vscan.runtime.summary import ScanSummary
from vscan.verdict.risk import DefaultRiskPolicy


@pytest.fixture
def faults(ray_local):
    records, resubmitted, to_model = [], [], []
    outcomes = Outcomes(records.append, policy_text="test", risk_policy=DefaultRiskPolicy(), timeout_seconds=60.0)
    handler = InfraFaults(outcomes, ScanSummary(), to_model=to_model.append, resubmit_alone=resubmitted.append,
                          file_timeout_seconds=60.0, dead_nodes=set())  # fmt: skip
    return handler, records, resubmitted, to_model


def _task(key: int, name: str, group_size: int = 1) -> Task:
    return Task(key=key, path=f"/evidence/{name}", attempt_decoder="auto", submitted=time.monotonic(), group_size=group_size)


def test_a_second_node_death_on_a_file_quarantines_it(faults):
    from ray.exceptions import NodeDiedError

    handler, records, resubmitted, _ = faults
    poison = _task(1, "poison.mp4")
    handler.decode_failed([poison], NodeDiedError("node a died"))  # the first death: not the file's fault
    assert records == [] and resubmitted == [poison]
    handler.decode_failed([poison], NodeDiedError("node b died"))
    assert QUARANTINE_DEATHS == 2 and resubmitted == [poison]  # not sent to a third node
    (record,) = records
    assert record["path"] == "/evidence/poison.mp4" and record["status"] == "error"
    assert record["error"]["type"] == "QuarantinedError" and record["error"]["kind"] == "input"
    assert "2 nodes died while decoding it" in record["error"]["message"]
    assert is_permanent(record["error"])  # final: resume and --state keep it, nothing sends it round again


def test_deaths_in_a_group_split_the_group_first(faults):
    from ray.exceptions import NodeDiedError

    handler, records, resubmitted, _ = faults
    group = [_task(k, f"small{k}.jpg", group_size=3) for k in range(3)]
    handler.decode_failed(group, NodeDiedError("node a died"))
    handler.decode_failed(group, NodeDiedError("node b died"))  # twice, never alone: which file was it?
    assert records == [] and resubmitted == group + group
    alone = _task(0, "small0.jpg")  # decoded alone, its node dies again: now it is the file
    handler.decode_failed([alone], NodeDiedError("node c died"))
    assert [r["error"]["type"] for r in records] == ["QuarantinedError"]


def test_a_worker_crash_on_a_live_node_is_the_decoders_not_a_quarantine(faults):
    import ray
    from ray.exceptions import WorkerCrashedError

    @ray.remote(max_retries=0)
    def abort():
        os._exit(134)  # as a decoder abort ends its worker

    try:
        ray.get(abort.remote())
    except WorkerCrashedError as exc:
        crash = exc
    handler, records, resubmitted, _ = faults
    task = _task(5, "crashes-decord.mp4")
    handler.decode_failed([task], crash)
    assert resubmitted == [task] and task.attempt_decoder == "pyav"  # once more with PyAV
    handler.decode_failed([task], crash)
    (record,) = records
    assert record["error"]["type"] == "DecoderCrashError" and not is_permanent(record["error"])  # transient: resume tries it


def test_a_cluster_that_keeps_losing_nodes_stops_the_scan(faults):
    from ray.exceptions import ActorUnavailableError
    from vscan.errors import ModelError

    handler, records, _, to_model = faults
    task = _task(9, "clip.mp4")
    gone = ActorUnavailableError("the model actor's node went away", None)
    for _ in range(NODE_FAULT_LIMIT):
        handler.model_call_failed([task], gone)  # never the file's fault: its frames go to another actor
    assert len(to_model) == NODE_FAULT_LIMIT and records == []
    with pytest.raises(ModelError, match="the cluster is failing"):
        handler.model_call_failed([task], gone)

"""Errors never become verdicts (issue 23): one kind per error, one retry policy.

On the old code an unexpected exception was a permanent ``InternalError``
record that resume never retried and ``--state`` replayed every night, and
a state lookup that failed gave every later file that error.
"""

from __future__ import annotations

import pytest

from vscan import errors
from vscan.errors import error_info, error_kind, is_permanent
from vscan.output.resume import RunLedger
from vscan.output.sinks import JsonlSink

VERSIONS = {"bank_sha256": "b", "model_sha256": "m", "vscan": "t"}


def test_every_error_class_has_a_kind_and_only_input_errors_are_permanent():
    classes = [getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)]
    assert {c.kind for c in classes} <= set(errors.ERROR_KINDS)
    for cls in classes:
        info = error_info(cls("x"))
        assert info["kind"] == cls.kind and is_permanent(info) == (cls.kind == "input")
    assert error_info(KeyError("k")) == {"type": "InternalError:KeyError", "message": "'k'", "kind": "internal"}
    assert errors.FileAccessError.kind == errors.ArchiveMemberError.kind == errors.QuarantinedError.kind == "input"
    assert errors.DecodeTimeoutError.kind == errors.DecoderCrashError.kind == errors.ModelError.kind == "transient"
    # records written before kinds: judged by their type
    assert error_kind({"type": "InternalError:ValueError", "message": ""}) == "internal"
    assert error_kind({"type": "DecodeError", "message": ""}) == "input"
    assert error_kind({"type": "DecoderCrashError", "message": ""}) == "transient"


def _record(path: str, error: dict | None) -> dict:
    return {"path": path, "status": "error" if error else "ok", "error": error, "sha256": path[-1] * 64, "versions": VERSIONS}


def test_resume_retries_internal_and_transient_errors_and_skips_input_errors(tmp_path):
    with JsonlSink(tmp_path / "r.jsonl") as sink:
        sink.write_many([
            _record("/e/bug.mp4", {"type": "InternalError:KeyError", "message": "'x'"}),  # an old record, no kind
            _record("/e/bug2.mp4", error_info(RuntimeError("boom"))),
            _record("/e/slow.mp4", error_info(errors.DecodeTimeoutError("t"))),
            _record("/e/broken.mp4", error_info(errors.DecodeError("bad"))),
            _record("/e/fine.mp4", None),
        ])  # fmt: skip
        ledger = RunLedger(sink, VERSIONS)
        try:
            again = list(ledger.filter(["/e/bug.mp4", "/e/bug2.mp4", "/e/slow.mp4", "/e/broken.mp4", "/e/fine.mp4", "/e/new.mp4"]))
        finally:
            ledger.close()
    assert again == ["/e/bug.mp4", "/e/bug2.mp4", "/e/slow.mp4", "/e/new.mp4"]
    assert ledger.skipped_resumed == 2 and ledger.retried_transient == 3


def test_state_remembers_only_input_errors(tmp_path):
    state = tmp_path / "state.sqlite"
    with JsonlSink(tmp_path / "r.jsonl") as sink:
        ledger = RunLedger(sink, VERSIONS, state_path=state)
        for path, error in (("/e/a", error_info(ValueError("bug"))), ("/e/b", error_info(errors.ModelError("m"))),
                            ("/e/c", error_info(errors.UnsupportedMediaError("text"))), ("/e/d", None)):  # fmt: skip
            ledger.recorded(_record(path, error))
        known = ledger.known_sha256()
        ledger.close()
    assert known == {"c" * 64, "d" * 64}


def test_a_failed_state_lookup_means_decode_the_file(ray_local, tmp_path):
    import ray

    from vscan.runtime.known import start_known_content

    known = start_known_content(tmp_path / "state.sqlite", VERSIONS)
    assert ("0" * 64 in known) is False  # the reader answers
    ray.kill(known._reader, no_restart=True)  # the reader actor dies
    assert ("0" * 64 in known) is False  # not an error for the file: it is decoded


def test_a_model_actor_never_placed_is_retired_once_another_answers(tmp_path, ray_local, monkeypatch):
    """Old code: the pool raised ModelError after START_TIMEOUT (300 s) however
    many other actors worked, and stopped the sweep."""
    import time
    from dataclasses import replace

    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import build_bank
    from vscan.bench import synth
    from vscan.config import Runtime, ScanConfig
    from vscan.decode import EveryFrame
    from vscan.runtime import model_pool
    from vscan.runtime.ray_start import cluster_nodes

    clip = synth.make_clip(tmp_path / "c.mp4", seed=3, seconds=1.0, size=(96, 64))
    bank = tmp_path / "b.bank"
    build_bank(bank, [clip], hash_media=media_hasher(EveryFrame(), "cpu"))
    config = ScanConfig(runtime=Runtime(device="cpu"))
    nodes = cluster_nodes()
    plan = model_pool.plan_actors(nodes, config)[0]
    # the second actor asks for more CPUs than the cluster has: never placed
    monkeypatch.setattr(model_pool, "plan_actors", lambda nodes, config: [replace(plan, num_cpus=0), replace(plan, num_cpus=64)])
    pool = model_pool.ModelPool(config, model_pool.put_bank_index(bank, config, nodes, [clip]), nodes)
    try:
        deadline = time.monotonic() + 120
        while not pool.answering():
            assert time.monotonic() < deadline, "no model actor answered"
            time.sleep(0.2)
        assert pool.usable() == [0]  # only an actor that answered takes calls
        assert not pool.retired  # within the limit, the unplaced actor is still waited for
        # The limit runs out 2 s from now (a fixed 10 s was a race: at load 30 actor 0 itself answered after it).
        monkeypatch.setattr(model_pool, "START_TIMEOUT", time.monotonic() - pool._t0 + 2.0)
        assert pool.started() is False  # not yet: actor 1 is still waited for
        while time.monotonic() - pool._t0 <= model_pool.START_TIMEOUT:
            time.sleep(0.5)
        assert pool.started() is True  # not ModelError: actor 0 answers
        assert list(pool.retired) == [1] and "not placed" in pool.retired[1]
        assert pool.cluster()[1]["retired"] == pool.retired[1]
        assert pool.usable() == [0]
    finally:
        pool.close()


def test_error_messages_are_safe_to_show_and_store():
    info = error_info(errors.FileAccessError("/ev/a\x00b\udce9\n.mp4: cannot read"))
    assert info["message"] == "/ev/a\\x00b\\xe9\\x0a.mp4: cannot read"
    info["message"].encode("utf-8")  # no lone surrogate


def test_a_known_benign_list_changed_in_place_changes_the_versions(tmp_path):
    """Old code stamped records with the lists' paths only: a list updated in place kept stale skips on resume."""
    from vscan.config import Matching, ScanConfig
    from vscan.output.audit import scan_versions

    listed = tmp_path / "benign.txt"
    listed.write_text("a" * 64 + "\n")
    config = ScanConfig(matching=Matching(ignore=(str(listed),)))
    before = scan_versions(config, None, {})
    listed.write_text("b" * 64 + "\n")
    after = scan_versions(config, None, {})
    assert before["ignore_sha256"] != after["ignore_sha256"] and before["config_sha256"] == after["config_sha256"]
    assert "ignore_sha256" not in scan_versions(ScanConfig(), None, {})  # stamps without lists are as before

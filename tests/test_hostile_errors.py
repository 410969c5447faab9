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

"""A file whose first pass decides costs one decode task and one model call
(issue #30): its confirmation is decoded ahead by the first pass's decoder
and matched in the first pass's model call, the first pass's hashes reused
(vscan.runtime.confirm_ahead); the records say what the two-task way says."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import Adaptive, Confirm, PyAVDecoder
from vscan.decode.adaptive import confirm_pass
from vscan.runtime.confirm_ahead import AHEAD_WINDOW, AheadSwitch
from vscan.runtime.decode_task import decode_for_scan

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

_PATTERN = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=24"]


def _ff(*args) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True, timeout=300)


@pytest.fixture(scope="module")
def known(tmp_path_factory) -> tuple[Path, list[Path]]:
    """A bank of one clip (every frame hashed) and two copies of it: H.264 GOP 100 and VP9 GOP 128."""
    from vscan.bank.hashers import media_hasher
    from vscan.bank.store import build_bank
    from vscan.decode import EveryFrame

    d = tmp_path_factory.mktemp("ahead")
    _ff(*_PATTERN, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-g", "250", "-pix_fmt", "yuv420p", d / "banked.mp4")
    _ff(*_PATTERN, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "26", "-g", "100", "-bf", "2", "-pix_fmt", "yuv420p", d / "copy.mp4")
    _ff(*_PATTERN, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "128", d / "copy.webm")
    bank = d / "bank.db"
    build_bank(bank, [d / "banked.mp4"], hash_media=media_hasher(EveryFrame(), "cpu"))
    return bank, [d / "copy.mp4", d / "copy.webm"]


def _config(ahead: bool | None) -> ScanConfig:
    return ScanConfig(sampling=Sampling(policy=Adaptive(confirm_ahead=ahead)), runtime=Runtime(device="cpu"))


def test_the_confirmation_is_decoded_ahead_by_the_same_task(known):
    """The first pass's decode task also decodes the Confirm pass refine would
    ask for, those very frames, and never more than the file has."""
    _, copies = known
    for path in copies:
        summary, file = decode_for_scan(str(path), _config(True))
        assert file.ahead is not None and isinstance(file.ahead_policy, Confirm), path
        assert file.ahead_policy == confirm_pass(file.timestamps, file.duration_seconds, 1, Adaptive().confirm_reach_seconds)
        alone, alone_file = decode_for_scan(str(path), replace(_config(None), sampling=Sampling(policy=file.ahead_policy)))
        assert np.array_equal(file.ahead.frame_numbers, alone_file.frame_numbers), path
        assert np.array_equal(file.ahead.frames, alone_file.frames), path
        ahead = summary["ahead"]
        assert ahead.frames_sampled == len(file.ahead.frame_numbers) and ahead.sampling.startswith("Confirm")
        frames = PyAVDecoder().probe(path).num_frames
        assert summary["frames_decoded"] + ahead.frames_decoded <= frames, (path, summary["frames_decoded"], ahead.frames_decoded, frames)
        assert decode_for_scan(str(path), _config(None))[1].ahead is None  # not asked: nothing decoded ahead


def test_the_model_call_confirms_with_the_first_pass_hashes_reused(known):
    """One model call with the confirmation decoded ahead gives the result
    that the two calls (first pass, then both passes) give."""
    from vscan.runtime.model_actor import ModelWorker

    bank, copies = known
    worker = ModelWorker(_config(None), str(bank))
    for path in copies:
        summary, file = decode_for_scan(str(path), _config(True))
        (one,) = worker.run([(0, summary["sha256"], summary["md5"], 1)], file)
        assert one.refine is None and one.confirmed == file.ahead_policy.describe(), path
        (first,) = worker.run([(0, summary["sha256"], summary["md5"], 1)], replace(file, ahead=None, ahead_policy=None))
        assert first.refine == file.ahead_policy  # the pass decoded ahead is the one the first pass asks for
        (two,) = worker.run([(0, summary["sha256"], summary["md5"], 2)], replace(file, ahead=None), file.ahead)
        assert one.frames_sampled == two.frames_sampled and np.array_equal(one.qualities, two.qualities)
        key = lambda m: (m.bank_entry_id, m.is_match, round(m.query_pct, 6), m.query_span_seconds, m.num_query_hashes_matched)  # noqa: E731
        assert [key(m) for m in one.matches] == [key(m) for m in two.matches], path


def test_a_known_copy_takes_one_decode_task_and_one_model_call(known, ray_local, tmp_path):
    """Scanned as `vscan scan` does: one decode task and one model call per
    file (before: two of each), the same match and frames as the two-task
    way, and the record says the confirmation was decoded ahead."""
    from vscan.output.sinks import JsonlSink
    from vscan.runtime.driver import run_scan
    from vscan.verdict.record import result_schema

    bank, copies = known
    runs = {}
    for ahead in (True, False):
        out = tmp_path / f"{ahead}.jsonl"
        with JsonlSink(out) as sink:
            summary = run_scan(copies, sink=sink, bank_path=bank, config=_config(ahead), ray_address=ray_local)
        runs[ahead] = (summary.pipeline, {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())})
    (pipe, records), (pipe_before, before) = runs[True], runs[False]
    in_calls = lambda p: round(p["model_calls"] * p["mean_files_per_call"])  # noqa: E731 - files handed to model calls, a file in two calls twice
    assert pipe["decode_files"] == len(copies) and in_calls(pipe) == len(copies), pipe  # one decode task, one model call each
    assert pipe["confirmations_matched_ahead"] == len(copies), pipe
    assert pipe_before["decode_files"] == 2 * len(copies) and in_calls(pipe_before) == 2 * len(copies), pipe_before  # the two-task way
    for name, record in records.items():
        old = before[name]
        assert record["second_pass"]["sampling"] == f"{old['second_pass']['sampling']}, decoded ahead in the first pass's decode task"
        jsonschema.validate(record, result_schema())
        assert "sparse frames" in record["sampling"]
        assert record["frames_sampled"] == old["frames_sampled"]
        assert [m["is_match"] for m in record["matches"]] == [m["is_match"] for m in old["matches"]] and any(m["is_match"] for m in record["matches"])
        assert record["frames_decoded"] <= PyAVDecoder().probe(copies[0].parent / name).num_frames


def test_the_switch_decodes_ahead_while_most_first_passes_decide():
    auto = AheadSwitch(_config(None))
    assert not auto.on  # no answer yet: a sweep must not pay for it
    for decided in (True, True):
        auto.observe(decided)
    assert not auto.on  # too few answers to tell
    auto.observe(False)
    assert auto.on  # 2 of 3 decided
    for _ in range(AHEAD_WINDOW // 2 + 1):
        auto.observe(False)
    assert not auto.on  # a sweep: first passes that do not decide
    for _ in range(AHEAD_WINDOW // 2):
        auto.observe(True)
    assert auto.on  # an archive of known material: half the last 8 decided
    for _ in range(AHEAD_WINDOW):
        auto.observe(False)  # a stretch of unknown files: off again
    assert not auto.on
    assert AheadSwitch(_config(True)).on and not AheadSwitch(_config(False)).on
    assert not AheadSwitch(replace(_config(True), sampling=Sampling(policy=Adaptive(confirm_frames=None, confirm_ahead=True)))).on

"""What `vscan scan` tells a person at the end: the files that matched and
where, the counts (scanned / skipped and why / errors) that agree with the
API summary and the manifest, the command that opens the report; a run with
nothing left to scan says so, and starts no Ray."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vscan.bench import synth
from vscan.cli.progress import ScanOutcomes, summary_lines
from vscan.runtime.summary import ScanSummary

VSCAN = [sys.executable, "-m", "vscan.cli"]


def cli(*args, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*VSCAN, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli_output")
    # The clips are encoded in a fresh interpreter: in this process their bytes depend on what earlier tests
    # loaded (native libraries loaded before PyAV's; decord's bundled FFmpeg alone changes some clips' bytes),
    # and such a copy matched 2 of its 3 frames (risk 0.90, the short-file rule) in a full run, deterministically
    # for those bytes. From a fresh process the re-encoded copy (CRF 34) sits 8 bits from the bank on every frame.
    subprocess.run([sys.executable, "-c", (
        "import sys; from pathlib import Path; from vscan.bench import synth; root = Path(sys.argv[1]); "
        "synth.make_clip(root / 'reported' / 'known.mp4', seed=11, seconds=3, size=(96, 64)); "
        "synth.make_clip(root / 'inbox' / 'copy-of-known.mp4', seed=11, seconds=3, size=(96, 64), crf=34); "
        "synth.make_clip(root / 'inbox' / 'unrelated.mp4', seed=12, seconds=3, size=(96, 64))"), str(root)], check=True)  # fmt: skip
    (root / "inbox" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 500)
    built = cli("bank", "build", "case.bank", "reported", "--label", "reported", "--device", "cpu", cwd=root)
    assert built.returncode == 0, built.stderr
    return root


@pytest.fixture(scope="module")
def first_and_again(work) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """The same scan twice over one output: the second finds nothing left (its own Ray, as a user's would)."""
    runs = []
    for _ in range(2):
        run = cli("scan", "inbox", "--bank", "case.bank", "--out", "out.jsonl", "--device", "cpu", cwd=work)
        assert run.returncode == 0, run.stderr
        runs.append(run)
    return runs[0], runs[1]


def test_scan_ends_with_the_matched_files_counts_and_report_command(first_and_again):
    out = first_and_again[0].stdout
    assert "Matched or flagged: 1 file" in out, out
    line = next(x for x in out.splitlines() if "copy-of-known.mp4" in x)
    # risk (1.00 where every frame decides, 0.90 through the short-file rule: which depends on the encode's bytes),
    # the path as given (relative), the entry and label, where in the file
    assert float(line.split()[0]) >= 0.9 and "inbox/copy-of-known.mp4" in line and "known (reported)" in line
    assert " s of 3.0 s" in line and "s matched" in line
    assert "unrelated.mp4" not in out.split("Could not be scanned")[0].split("Matched or flagged")[1]
    assert "Could not be scanned: 1" in out and "inbox/broken.mp4" in out
    assert "scanned 2, skipped 0, errors 1" in out and "matched 1" in out
    assert "report:  vscan report out.jsonl -o report.html" in out
    assert all(len(x) <= 200 for x in out.splitlines())


def test_a_scan_with_nothing_left_says_so_and_starts_no_ray(work, first_and_again):
    again = first_and_again[1].stdout
    assert "Nothing left to scan" in again and "skipped 3 (3 already recorded)" in again
    assert "scanned 0" in again and "video-s/s" not in again and "throughput" not in again
    assert "Matched or flagged" not in again  # no record in this run: nothing to list
    runs = json.loads((work / "out.jsonl.manifest.json").read_text())["runs"]
    first, second = runs[-2], runs[-1]
    assert first["counts"]["scanned"] == 2 and first["counts"]["errors"] == 1 and first["counts"]["skipped"] == 0
    assert second["status"] == "completed"
    assert second["counts"]["skipped_already_recorded"] == second["counts"]["skipped"] == 3
    assert second["counts"]["scanned"] == 0 and second["counts"]["files"] == 0
    assert "cluster" not in second  # Ray was never started: no nodes, no model actors
    assert len((work / "out.jsonl").read_text().splitlines()) == 3  # no record written twice


def test_api_summary_counts_skipped_files_apart(work, first_and_again):
    import vscan

    summary = vscan.scan([work / "inbox"], bank=work / "case.bank", out=work / "out.jsonl",
                         config=vscan.ScanConfig(runtime=vscan.Runtime(device="cpu")))  # fmt: skip
    assert (summary.scanned, summary.skipped, summary.skipped_already_recorded, summary.errors) == (0, 3, 3, 0)
    assert summary.nothing_scanned


def _record(path: str, *, skipped: str | None = None, matched: bool = False, kind: str = "video") -> dict:
    match = {"bank_entry_id": "e1", "label": "reported", "kind": "perceptual", "is_match": True, "query_pct": 100.0,
             "compared_pct": 90.0, "matched_seconds": 4.0, "query_span_seconds": [0.0, 3.5]}  # fmt: skip
    record = {"path": path, "status": "ok", "error": None, "risk": 1.0 if matched else 0.0, "duration_seconds": 4.0,
              "frames_sampled": 4, "matches": [match] if matched else [], "media": {"kind": kind}, "reasons": []}  # fmt: skip
    if skipped:
        record["skipped"] = skipped
    return record


def test_unchanged_and_known_benign_files_are_not_counted_as_scanned_seconds():
    summary = ScanSummary()
    summary.add(_record("/a.mp4", matched=True))
    summary.add(_record("/b.mp4", skipped="unchanged", matched=True))
    summary.add(_record("/c.mp4", skipped="known-benign"))
    summary.add({"path": "/d.mp4", "status": "error", "error": {"type": "DecodeError", "message": "x"}, "matches": []})
    assert (summary.files, summary.scanned, summary.skipped_unchanged, summary.skipped_known_benign) == (4, 1, 1, 1)
    assert summary.video_seconds == 4.0 and summary.frames_sampled == 4  # only /a.mp4 was decoded this run
    assert summary.matched == 2  # both records say matched
    summary.wall_seconds = 2.0
    text = "\n".join(summary_lines(summary, "r.jsonl"))
    assert "scanned 1, skipped 2 (1 unchanged, 1 known-benign), errors 1 (DecodeError 1), matched 2" in text
    assert "2.0 video-s/s" in text


def test_a_still_says_still_image_not_zero_seconds():
    outcomes = ScanOutcomes()
    outcomes.add(_record("/evidence/photo.jpg", matched=True, kind="image"))
    (line,) = [x for x in outcomes.lines() if "photo.jpg" in x]
    assert "still image" in line and "s matched" not in line


def test_the_end_lists_files_by_path_and_marks_a_cut_error_message():
    outcomes = ScanOutcomes(show_unmatched=True)
    for name in ("holiday-1.mp4", "holiday-3.mp4", "holiday-2.mp4"):  # in the order they finished
        outcomes.add({"path": f"/a/{name}", "status": "ok", "risk": 0.0, "matches": [], "reasons": []})
    long = "PyAV failed after 0 of 1 selected frames: InvalidDataError: [Errno 1094995529] Invalid data found when processing input: 'x' and more, and more, and more"
    for name in ("z.mp4", "b.mp4"):
        outcomes.add({"path": f"/a/{name}", "status": "error", "error": {"type": "DecodeError", "message": f"/a/{name}: {long}"}})
    lines = outcomes.lines()
    assert any(line.endswith("holiday-1.mp4, /a/holiday-2.mp4, /a/holiday-3.mp4") for line in lines), lines
    errors = [line for line in lines if "DecodeError" in line]
    assert [e.split()[0] for e in errors] == ["/a/b.mp4", "/a/z.mp4"] and all(e.endswith("...") and len(e) < 150 for e in errors)


def test_ctrl_c_says_one_record_is_saved_in_the_singular():
    from vscan.cli.progress import interrupted_message

    assert "1 record from this run is saved in r.jsonl" in interrupted_message(1, "r.jsonl")
    assert "2 records from this run are saved" in interrupted_message(2, "r.jsonl")


def test_bank_info_says_none_and_no_label_instead_of_python_reprs(work):
    from dataclasses import replace

    from vscan.bank.store import Bank
    from vscan.cli.bank_cmd import bank_info_lines

    with Bank(work / "case.bank") as bank:
        info = bank.info()
    unlabelled = replace(info, labels={"": 2}, skipped_inputs=())
    text = "\n".join(bank_info_lines(unlabelled))
    assert "(no label): 2" in text and "()" not in text and ": 2" in text
    assert "  skipped_inputs" in text and text.split("skipped_inputs", 1)[1].split("\n")[0].strip() == "none"
    assert info.content_sha256 in text  # the digest whole, not cut at 80 columns
    shown = cli("bank", "info", "case.bank", cwd=work).stdout
    assert info.content_sha256 in shown and "reported: 1" in shown and "│" not in shown


def test_decord_errors_reach_records_without_its_cpp_log_prefix(tmp_path):
    """decord's Check-failed errors carry "[hh:mm:ss] /github/workspace/src/...cc:NN: " (a
    build path and the time); the reason stored in a record keeps only the message."""
    import decord

    from vscan.decode.base import _reason

    damaged = synth.make_corrupt(tmp_path / "damaged.mp4", "truncated") or tmp_path / "damaged.mp4"
    try:
        reader = decord.VideoReader(str(damaged))
        reader.get_batch(list(range(len(reader))))
    except Exception as exc:  # noqa: BLE001 - decord raises RuntimeError or DECORDError
        raw, reason = str(exc), _reason(exc)
    else:
        pytest.skip("this decord build decodes the truncated clip")
    assert "\n" not in reason and ".cc:" not in reason and "/github/workspace" not in reason
    assert re.sub(r"\[\d\d:\d\d:\d\d\] \S+\.cc:\d+: ", "", raw).strip() in reason


def test_a_url_input_is_refused_with_a_hint_not_just_no_such_file(work):
    # (s3://, gs://, az:// and http(s):// are read; an Alibaba OSS bucket is not.)
    run = cli("scan", "oss://evidence-bucket/case-12/", "--bank", "case.bank", "--device", "cpu", cwd=work)
    assert run.returncode == 2
    assert "evidence-bucket/case-12: no such file or folder" in run.stderr
    assert "oss:// is a URL" in run.stderr and "Mount the bucket" in run.stderr
    plain = cli("scan", "missing-folder", "--bank", "case.bank", "--device", "cpu", cwd=work)
    assert plain.returncode == 2 and "URL" not in plain.stderr


def test_shell_completion_completes_commands_and_options(tmp_path):
    import shutil

    # The console script: completion is keyed by the program's name (_VSCAN_COMPLETE).
    script_path = Path(sys.executable).parent / "vscan"
    vscan_bin = str(script_path) if script_path.exists() else shutil.which("vscan")
    assert vscan_bin, "the vscan console script is not installed"
    env = {**os.environ, "_VSCAN_COMPLETE": "complete_bash", "COMP_WORDS": "vscan scan --dev", "COMP_CWORD": "2"}
    done = subprocess.run([vscan_bin], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["--device"]
    env.update(COMP_WORDS="vscan ba", COMP_CWORD="1")
    assert subprocess.run([vscan_bin], capture_output=True, text=True, env=env, timeout=60).stdout.split() == ["bank"]
    # --show-completion names the shell it runs under (shellingham reads the parent processes): run it from bash,
    # as a user does, not from a process whose parent is init (pytest started by `nohup ... &` found no shell).
    from_bash = ["bash", "-c", '"$0" --show-completion; status=$?; exit $status', vscan_bin]
    script = subprocess.run(from_bash, capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "_VSCAN_COMPLETE" in script.stdout and "complete -o default" in script.stdout


def test_a_state_run_with_every_file_unchanged_starts_no_ray_and_repeats_the_records(work, first_and_again):
    """--state: a second output over unchanged content gets the earlier results as
    "unchanged" records, digested in the command itself (no Ray, no model stage)."""
    args = ["scan", "inbox", "--bank", "case.bank", "--device", "cpu", "--state", "state.sqlite"]
    first = cli(*args, "--out", "state-1.jsonl", cwd=work)
    assert first.returncode == 0, first.stderr
    again = cli(*args, "--out", "state-2.jsonl", cwd=work)
    assert again.returncode == 0, again.stderr
    assert "scanned 0, skipped 3 (3 unchanged), errors 0, matched 1" in again.stdout
    assert "video-s/s" not in again.stdout and "copy-of-known.mp4" in again.stdout  # the match is still listed
    (run,) = json.loads((work / "state-2.jsonl.manifest.json").read_text())["runs"]
    assert "cluster" not in run and run["counts"]["skipped_unchanged"] == 3 and run["counts"]["video_seconds"] == 0
    before = {Path(r["path"]).name: r for r in map(json.loads, (work / "state-1.jsonl").read_text().splitlines())}
    after = {Path(r["path"]).name: r for r in map(json.loads, (work / "state-2.jsonl").read_text().splitlines())}
    assert set(after) == set(before) == {"copy-of-known.mp4", "unrelated.mp4", "broken.mp4"}
    for name, record in after.items():
        assert record["skipped"] == "unchanged" and record["previous_scan"]
        assert {k: v for k, v in record.items() if k not in ("skipped", "previous_scan", "timings", "ran_on")} == \
               {k: v for k, v in before[name].items() if k not in ("timings", "ran_on")}


def test_the_progress_bar_says_what_the_scan_waits_for_before_the_first_record():
    code = (
        "from vscan.cli.progress import waiting_for, WAITING_FOR_RAY, WAITING_FOR_FIRST\n"
        "before = waiting_for()\n"
        "import ray\n"
        "imported = waiting_for()\n"
        "ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)\n"
        "started = waiting_for()\n"
        "ray.shutdown()\n"
        "print(before == WAITING_FOR_RAY, imported == WAITING_FOR_RAY, started == WAITING_FOR_FIRST, started)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[:3] == ["True", "True", "True"] and "model stage" in run.stdout


def test_the_bar_survives_ray_being_half_imported(monkeypatch):
    """The scan's thread may be importing ray while the bar asks: still 'starting Ray', no exception."""
    import types

    from vscan.cli.progress import WAITING_FOR_RAY, waiting_for

    monkeypatch.setitem(sys.modules, "ray", types.ModuleType("ray"))  # no is_initialized yet
    assert waiting_for() == WAITING_FOR_RAY


def test_preflight_gives_up_past_its_file_limit_and_leaves_the_counts(work, first_and_again, monkeypatch):
    """More inputs than PREFLIGHT_MAX_FILES: the scan proper starts (no second walk of a
    big sweep before its first decode) and the ledger's counts are as they were."""
    from vscan.config import Runtime, ScanConfig
    from vscan.output.resume import RunLedger
    from vscan.output.sinks import open_sink
    from vscan.runtime import preflight

    import shutil

    config = ScanConfig(runtime=Runtime(device="cpu"))
    shutil.copy(work / "out.jsonl", work / "limit.jsonl")  # the same records; its own manifest
    sink = open_sink(str(work / "limit.jsonl"))
    try:
        ledger = RunLedger.begin(sink, [str(work / "inbox")], config=config, bank_path=str(work / "case.bank"))
        assert preflight.nothing_to_scan([str(work / "inbox")], config, ledger)  # all 3 recorded
        assert ledger.skipped_resumed == 3
        ledger.skipped_resumed = 0
        monkeypatch.setattr(preflight, "PREFLIGHT_MAX_FILES", 2)
        assert not preflight.nothing_to_scan([str(work / "inbox")], config, ledger)
        assert ledger.skipped_resumed == 0
        ledger.close()
    finally:
        sink.close()


def test_the_error_line_says_why_a_file_cut_before_its_index_cannot_be_opened(tmp_path):
    # The record keeps the whole message; the console's line (120 characters) showed only FFmpeg's generic words, its
    # errno and its copy of the path, and cut the reason vscan found (vscan.inputs.truncated) off the end.
    from vscan.cli.progress import console_error
    from vscan.decode.pyav_reuse import open_container
    from vscan.errors import UnsupportedMediaError

    cut = synth.make_corrupt(tmp_path / "cut.mp4", "truncated")
    with pytest.raises(UnsupportedMediaError) as raised:
        open_container(cut)
    message = str(raised.value)
    assert "Errno" in message and f"'{cut}'" in message and "no index (moov box)" in message  # what the record keeps
    outcomes = ScanOutcomes()
    outcomes.add({"path": str(cut), "status": "error", "error": {"type": "UnsupportedMediaError", "message": message}})
    line = outcomes.errors[0].where
    assert line.startswith("cannot be opened: an MP4/MOV with no index (moov box): it ends inside its media data"), line
    assert "Errno" not in line and str(cut) not in line and len(line) <= 120
    plain = console_error(f"{cut}: PyAV cannot open it: InvalidDataError: [Errno 1094995529] Invalid data found when "
                          f"processing input: '{cut}'", str(cut))  # fmt: skip
    assert plain == "PyAV cannot open it: InvalidDataError: Invalid data found when processing input"

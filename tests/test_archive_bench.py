"""`vscan bench --archive` says what files that matched nothing cost, search by search (issue #30)."""

from vscan.bench.bench_archive import summarise


def _record(name: str, matched: bool, **timings: float) -> dict:
    return {"path": f"/a/{name}", "status": "ok", "duration_seconds": 10.0, "frames_decoded": 5, "frames_sampled": 4, "codec": "h264",
            "matched": matched, "second_pass": None, "timings": timings}  # fmt: skip


def test_the_searches_are_measured_per_file_on_files_that_matched_nothing():
    recs = [_record("copy.mp4", True, match=0.010),  # a match: no search ran
            _record("other1.mp4", False, match=0.030, match_regions=0.010, match_rotation=0.008, match_offcentre=0.006),
            _record("other2.mp4", False, match=0.020, match_regions=0.004, match_rotation=0.002, match_offcentre=0.010)]  # fmt: skip
    s = summarise({"records": recs}, {"copy.mp4": "src", "other1.mp4": None, "other2.mp4": None})
    u = s["unmatched"]
    assert u["files"] == 2 and s["false_positives"] == 0 and s["recall"] == 1.0
    assert [round(u["ms_per_file"][k], 3) for k in ("match", "match_regions", "match_rotation", "match_offcentre")] == [25.0, 7.0, 5.0, 8.0]


def test_timed_vscan_processes_run_with_their_bytecode_cached_as_installed(tmp_path):
    """With PYTHONDONTWRITEBYTECODE set (a shared checkout) each timed process compiled vscan from source every run,
    which an installed vscan never does: the bench's processes cache it under its own folder, not beside the sources."""
    import os
    import subprocess
    import sys

    from vscan.bench.bench_archive import as_installed

    env = as_installed({**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, tmp_path)
    assert "PYTHONDONTWRITEBYTECODE" not in env
    subprocess.run([sys.executable, "-c", "import vscan.runtime.framed"], env=env, check=True, timeout=120)
    cached = [p.name for p in (tmp_path / "pycache").rglob("*.pyc")]
    assert any(name.startswith("framed.") for name in cached), cached


def test_fixed_ahead_gives_the_baseline_the_same_sampling_as_the_main_run(monkeypatch, tmp_path):
    """--fixed-ahead: the switch that decides when confirmations are decoded ahead turns on after a number of files that
    depends on timing, so two runs of the same code decoded ~230 frames apart; fixed, both versions sample alike."""
    from vscan.bench import bench_archive

    calls = []
    monkeypatch.setattr(bench_archive, "run_subprocess", lambda name, *a, **options: calls.append((name, options)) or {})
    monkeypatch.setattr(bench_archive, "package_checkout", lambda worktree, into, **kw: into)
    for fixed in ("always", "never", None):
        options = bench_archive.fixed_options(fixed)
        bench_archive.run_baseline(tmp_path, [], tmp_path / "bank.db", tmp_path, "cpu", **options)
    assert calls[0] == ("baseline", {"pythonpath": tmp_path / "baseline-pkg", "confirm_ahead": "always"})
    assert calls[1][1]["confirm_ahead"] == "never" and "confirm_ahead" not in calls[2][1]
    args = bench_archive._parser().parse_args(["--fixed-ahead", "always"])
    assert bench_archive.fixed_options(args.fixed_ahead) == {"confirm_ahead": "always"}
    assert bench_archive._parser().parse_args([]).fixed_ahead is None


def test_baseline_first_times_the_baseline_before_this_code_and_keeps_the_rows_order(monkeypatch, tmp_path):
    """Issue #30: the same code timed twice in one run was 10-25% faster in the first position on a 2-core machine;
    --baseline-first times the baseline first (the rows stay main, variants, baseline), so a before/after can be read
    from both orders."""
    from vscan.bench import bench_archive

    order = []
    monkeypatch.setattr(bench_archive, "run_subprocess", lambda name, *a, **options: order.append(name) or {"name": name})
    monkeypatch.setattr(bench_archive, "run_baseline", lambda *a, **options: order.append("baseline") or {"name": "baseline"})
    for argv, want in ((["--baseline-worktree", str(tmp_path), "--local-model"], ["vscan", "vscan_local_model", "baseline"]),
                       (["--baseline-worktree", str(tmp_path), "--local-model", "--baseline-first"], ["baseline", "vscan", "vscan_local_model"]),
                       (["--baseline-first"], ["vscan"])):  # fmt: skip
        order.clear()
        rows = bench_archive.scan_runs(bench_archive._parser().parse_args([*argv, "--no-command"]), [], tmp_path / "bank.db", tmp_path, {})
        assert order == want
        assert [r["name"] for r in rows] == ["vscan", "vscan local model", "vscan baseline"][: len(want)]


def test_the_command_a_user_types_is_timed_last_for_this_code_and_the_baseline(monkeypatch, tmp_path):
    """The in-process runs leave out the interpreter's start, the CLI's imports and its end (~0.4 s of a 5 s archive
    scan here): the command itself is timed after them, this code's and then the baseline's (its package)."""
    from vscan.bench import bench_archive

    order = []
    monkeypatch.setattr(bench_archive, "run_subprocess", lambda name, *a, **options: order.append(name) or {"name": name})
    monkeypatch.setattr(bench_archive, "run_baseline", lambda *a, **options: order.append("baseline") or {"name": "baseline"})
    monkeypatch.setattr(bench_archive, "package_checkout", lambda worktree, into, **kw: into)
    monkeypatch.setattr(bench_archive, "run_command", lambda name, *a, pythonpath=None: order.append((name, pythonpath)) or {"name": name})
    bench_archive.scan_runs(bench_archive._parser().parse_args(["--baseline-worktree", str(tmp_path)]), [], tmp_path / "bank.db", tmp_path, {})
    assert order == ["vscan", "baseline", ("vscan command", None), ("baseline command", tmp_path / "baseline-pkg")]


def test_the_command_run_reads_back_what_vscan_scan_wrote(tmp_path):
    """A real `vscan scan` in a fresh interpreter: its records, their matches, and its wall and CPU (the process tree's)."""
    from vscan.bench import synth
    from vscan.bench.bench_archive import run_command, summarise
    from vscan.bench.pipeline_runs import make_bank

    clips = [synth.make_clip(tmp_path / f"c{i}.mp4", seed=60 + i, seconds=2, size=(96, 64), scenes=1) for i in range(2)]
    bank = make_bank(tmp_path / "bank.db", clips[:1], "cpu")
    (tmp_path / "vscan command.jsonl").write_text('{"stale": true}\n')  # a run before: never resumed from
    row = run_command("vscan command", clips, bank, tmp_path, "cpu")
    assert row["files"] == 2 and row["command"] and row["video_seconds"] > 3.5
    assert row["wall_seconds"] > 0 and row["tree_cpu_seconds"] > 0.5  # an interpreter, its imports and a decode process at least
    s = summarise(row, {"c0.mp4": "c0", "c1.mp4": None})
    assert s["recall"] == 1.0 and s["false_positives"] == 0

"""The command line, through real ``python -m vscan.cli`` subprocesses: options
and their choices, configuration files, usage errors that stop before Ray,
``vscan report`` over every sink kind a real scan writes, ``vscan bench --help``.

One small scan per sink kind (two 2 s clips, one of them banked) is shared by
the module; PostgreSQL needs VSCAN_TEST_POSTGRES_DSN (required under CI=true).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

import vscan
from vscan.bench import synth
from vscan.config import ScanConfig
from vscan.output.read import read_records
from vscan.output.sinks import ParquetSink

VSCAN = [sys.executable, "-m", "vscan.cli"]
MIB = 2**20
#: Nothing listens here: a command that reached Ray would fail to connect, not exit 2.
NO_RAY = "127.0.0.1:1"


def cli(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    # The environment as it is now: the session's Ray sets RAY_AUTH_MODE for the processes that join it.
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*VSCAN, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Two short clips and a bank of the first, built with `vscan bank build`."""
    root = tmp_path_factory.mktemp("cli")
    synth.make_clip(root / "clips" / "a.mp4", seed=1, seconds=2, size=(96, 64))
    synth.make_clip(root / "clips" / "b.mp4", seed=2, seconds=2, size=(96, 64))
    built = cli("bank", "build", root / "a.bank", root / "clips" / "a.mp4", "--device", "cpu")
    assert built.returncode == 0, built.stderr
    (root / "empty").mkdir()
    return root


@pytest.fixture(scope="module")
def scans(work, ray_address) -> dict[str, subprocess.CompletedProcess]:
    """`vscan scan` to a JSONL, a Parquet and a SQLite sink. The JSONL scan
    takes its configuration from a file (every frame, CPU, batches of 16) with
    --fps 2 given on the command line."""
    (work / "sweep.toml").write_text('[sampling]\npolicy = "every-frame"\n\n[runtime]\ndevice = "cpu"\nbatch_frames = 16\n')
    runs = {}
    for kind in ("jsonl", "parquet", "sqlite"):
        extra = ["--config", work / "sweep.toml", "--fps", "2"] if kind == "jsonl" else ["--device", "cpu", "--quiet"]
        runs[kind] = cli("scan", work / "clips", "--bank", work / "a.bank", "--out", work / f"r.{kind}",
                         "--ray-address", ray_address, *extra)  # fmt: skip
        assert runs[kind].returncode == 0, runs[kind].stderr
    return runs


# -- options -----------------------------------------------------------------


def test_version():
    run = cli("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"vscan {vscan.__version__}"


def test_scan_help_names_units_flags_and_the_default_sampling():
    run = cli("scan", "--help")
    assert run.returncode == 0, run.stderr
    text = " ".join(run.stdout.split())
    for option in ("--timeout-seconds S", "--small-file-mb MIB", "--archive-member-max-mb MIB", "--archive-total-max-mb MIB",
                   "--batch-frames N", "--fps R", "--config FILE", "--device <auto|cpu|cuda>", "--match-mode <robust|vpdq>"):
        assert option in text, option  # fmt: skip
    assert "--timeout " not in text and "--timeout=" not in text  # renamed: the unit is in the name
    assert "<bool>" not in text and "--no-" not in text  # flags read as flags
    assert "--every-frame Hash every frame" in text and "--adaptive Adaptive sampling, the default" in text
    assert "Sampling is adaptive by default" in text


@pytest.mark.parametrize("option, bad, valid", [
    ("--device", "gpu", ["auto", "cpu", "cuda"]),
    ("--decoder", "ffmpeg", ["auto", "decord", "pyav"]),
    ("--match-mode", "fuzzy", ["robust", "vpdq"]),
    ("--hash-backend", "tensorflow", ["onnx", "torch"]),
])  # fmt: skip
def test_unknown_choice_exits_2_and_lists_the_valid_values(work, option, bad, valid):
    run = cli("scan", work / "clips", "--bank", work / "a.bank", "--out", work / "never.jsonl", option, bad)
    assert run.returncode == 2
    assert option in run.stderr and bad in run.stderr
    assert all(f"'{v}'" in run.stderr for v in valid), run.stderr
    assert not (work / "never.jsonl").exists()


def test_bad_configuration_values_exit_2_with_the_reason(work, tmp_path):
    base = ["scan", work / "clips", "--bank", work / "a.bank", "--out", tmp_path / "x.jsonl", "--ray-address", NO_RAY]
    zero = cli(*base, "--batch-frames", "0")
    assert zero.returncode == 2 and "runtime.batch_frames (0)" in zero.stderr and ">= 1" in zero.stderr
    both = cli(*base, "--every-frame", "--fps", "2")
    assert both.returncode == 2 and "--every-frame with --fps" in both.stderr
    (tmp_path / "typo.toml").write_text("[runtime]\nbatch_frame = 8\n")
    typo = cli(*base, "--config", tmp_path / "typo.toml")
    assert typo.returncode == 2 and "unknown key runtime.batch_frame" in typo.stderr and "batch_frames" in typo.stderr
    missing = cli(*base, "--config", tmp_path / "nope.toml")
    assert missing.returncode == 2 and "nope.toml" in missing.stderr
    model = cli(*base, "--model", "no-such-model")
    assert model.returncode == 2 and "no-such-model" in model.stderr and "Installed models" in model.stderr
    assert not (tmp_path / "x.jsonl").exists()


# -- usage mistakes stop before Ray --------------------------------------------


def test_missing_path_exits_2_before_ray_and_writes_nothing(work, tmp_path):
    out = tmp_path / "r.jsonl"
    t0 = time.monotonic()
    run = cli("scan", work / "clips" / "a.mp4", tmp_path / "missing.mp4", "--bank", work / "a.bank", "--out", out,
              "--ray-address", NO_RAY, timeout=60)  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert f"{tmp_path / 'missing.mp4'}: no such file or folder" in run.stderr
    assert time.monotonic() - t0 < 30  # no Ray start or connection attempt
    assert list(tmp_path.iterdir()) == []  # no results file, no manifest


def test_folder_without_media_exits_2(work, tmp_path):
    (work / "notes").mkdir(exist_ok=True)
    (work / "notes" / "readme.txt").write_text("not media")
    for folder in (work / "empty", work / "notes"):
        run = cli("scan", folder, "--bank", work / "a.bank", "--out", tmp_path / "r.jsonl", "--ray-address", NO_RAY)
        assert run.returncode == 2 and "holds no media files" in run.stderr and "--all-files" in run.stderr
    assert not (tmp_path / "r.jsonl").exists()


def test_scan_without_bank_or_model_refuses(work, tmp_path):
    run = cli("scan", work / "clips", "--out", tmp_path / "r.jsonl", "--ray-address", NO_RAY)
    assert run.returncode == 2
    assert "--bank" in run.stderr and "--model" in run.stderr and "clear" in run.stderr
    assert not (tmp_path / "r.jsonl").exists()


# -- configuration files ------------------------------------------------------


def test_config_show_file_then_given_flags_and_round_trip(tmp_path):
    (tmp_path / "base.toml").write_text(
        '[sampling]\npolicy = "fps"\nfps = 4.0\n\n[runtime]\ndevice = "cpu"\nbatch_frames = 16\n\n'
        f"[archives]\nmember_max_bytes = {5 * MIB}\n"
    )
    shown = cli("config", "show", "--config", tmp_path / "base.toml", "--batch-frames", "7", "--archive-total-max-mb", "3",
                "--match-mode", "vpdq")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    got = tomllib.loads(shown.stdout)
    # From the file, untouched by options not given:
    assert got["sampling"]["policy"] == "fps" and got["sampling"]["fps"] == 4.0 and got["runtime"]["device"] == "cpu"
    assert got["archives"]["member_max_bytes"] == 5 * MIB
    # From the command line (MiB options become bytes):
    assert got["runtime"]["batch_frames"] == 7 and got["archives"]["total_max_bytes"] == 3 * MIB
    assert got["matching"]["mode"] == "vpdq"
    # Round trip: what config show prints, --config reads back to the same configuration.
    (tmp_path / "shown.toml").write_text(shown.stdout)
    again = cli("config", "show", "--config", tmp_path / "shown.toml")
    assert again.returncode == 0 and again.stdout == shown.stdout
    assert ScanConfig.from_toml(tmp_path / "shown.toml").to_toml() == shown.stdout
    # Options replace the file's sampling: --adaptive keeps the file's rate.
    adaptive = tomllib.loads(cli("config", "show", "--config", tmp_path / "base.toml", "--adaptive").stdout)
    assert adaptive["sampling"]["policy"] == "adaptive" and adaptive["sampling"]["fps"] == 4.0


def test_default_sampling_is_adaptive():
    shown = cli("config", "show")
    assert shown.returncode == 0, shown.stderr
    assert tomllib.loads(shown.stdout)["sampling"]["policy"] == "adaptive" == ScanConfig().sampling.policy_name


def test_scan_runs_with_the_file_and_the_given_flags(work, scans):
    run = scans["jsonl"]
    assert "files" in run.stdout and "matched" in run.stdout  # the summary table
    (manifest,) = json.loads((work / "r.jsonl.manifest.json").read_text())["runs"]
    config = manifest["config"]
    assert config["runtime"]["device"] == "cpu" and config["runtime"]["batch_frames"] == 16  # the file
    assert config["sampling"]["policy"] == "fps" and config["sampling"]["fps"] == 2.0  # --fps 2 over every-frame
    records = {Path(r["path"]).name: r for r in read_records(work / "r.jsonl")}
    assert records["a.mp4"]["frames_sampled"] == records["b.mp4"]["frames_sampled"] == 4  # 2 s at 2 fps
    assert records["a.mp4"]["risk"] == 1.0 and not [m for m in records["b.mp4"]["matches"] if m["is_match"]]


# -- vscan report over every sink ---------------------------------------------


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "sqlite"])
def test_report_reads_every_file_sink(work, scans, kind, tmp_path):
    html = tmp_path / "report.html"
    run = cli("report", work / f"r.{kind}", "-o", html)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"{html}: 2 files"
    page = html.read_text()
    assert "a.mp4" in page and "b.mp4" in page
    records = {r["path"]: (r["sha256"], r["risk"]) for r in read_records(work / f"r.{kind}")}
    assert records == {r["path"]: (r["sha256"], r["risk"]) for r in read_records(work / "r.jsonl")}


def test_report_reads_records_still_in_the_parquet_write_ahead_log(work, scans, tmp_path):
    target = tmp_path / "open.parquet"
    shutil.copy2(work / "r.parquet", target)
    extra = {**read_records(target)[0], "path": str(tmp_path / "c.mp4")}
    sink = ParquetSink(target)
    try:
        sink.write(extra)  # durable in open.parquet.wal.jsonl; the Parquet file is folded on close only
        assert (tmp_path / "open.parquet.wal.jsonl").exists()
        run = cli("report", target, "-o", tmp_path / "report.html")
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip().endswith(": 3 files")
        assert "c.mp4" in (tmp_path / "report.html").read_text()
    finally:
        sink.close()
    assert not (tmp_path / "open.parquet.wal.jsonl").exists()
    assert sorted(Path(r["path"]).name for r in read_records(target)) == ["a.mp4", "b.mp4", "c.mp4"]  # not twice


def test_report_refuses_what_is_not_a_results_sink(work, tmp_path):
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    run = cli("report", other, "-o", tmp_path / "r.html")
    assert run.returncode == 2 and "not a vscan results database" in run.stderr
    with sqlite3.connect(other) as db:
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)  # reading created nothing
    for target, message in ((work / "a.bank", "Supported values are *.jsonl"), (tmp_path / "none.jsonl", "no such file")):
        run = cli("report", target, "-o", tmp_path / "r.html")
        assert run.returncode == 2 and message in run.stderr, run.stderr
    assert not (tmp_path / "r.html").exists()


@pytest.fixture
def pg_dsn(pg_database):
    """A fresh PostgreSQL database, dropped afterwards."""
    return pg_database()


def test_report_reads_a_postgres_sink(work, ray_address, pg_dsn, tmp_path):
    scan = cli("scan", work / "clips", "--bank", work / "a.bank", "--out", pg_dsn, "--device", "cpu", "--quiet",
               "--ray-address", ray_address)  # fmt: skip
    assert scan.returncode == 0, scan.stderr
    run = cli("report", pg_dsn, "-o", tmp_path / "report.html")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith(": 2 files")
    assert sorted(Path(r["path"]).name for r in read_records(pg_dsn)) == ["a.mp4", "b.mp4"]


# -- tools -------------------------------------------------------------------------


def test_bench_help_lists_the_benchmark_options():
    run = cli("bench", "--help", timeout=120)
    assert run.returncode == 0, run.stderr
    for option in ("--clips", "--seconds", "--size", "--small-files", "--json"):
        assert option in run.stdout, option
    assert run.stdout.startswith("usage: vscan bench")

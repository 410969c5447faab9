"""The public Python API: vscan.scan / scan_iter / hash_file, ScanConfig's
sections and validation, the versions stamp, usage errors."""

from __future__ import annotations

import json
import tomllib
import typing
from dataclasses import fields, replace
from pathlib import Path

import pytest

import vscan
from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.bench import synth
from vscan.config import RESULT_SECTIONS
from vscan.decode import EveryFrame, FixedRate
from vscan.output.audit import scan_versions

CPU = vscan.ScanConfig(sampling=vscan.Sampling(policy="fps", fps=1.0), runtime=vscan.Runtime(device="cpu"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("api")
    known = synth.make_clip(root / "sources" / "known.mp4", seed=11, seconds=6.0, size=(320, 240))
    evidence = root / "evidence"
    evidence.mkdir()
    synth.edit_clip(known, evidence / "reupload.mp4", "reencode", seed=1)
    synth.make_clip(evidence / "other.mp4", seed=12, seconds=6.0, size=(320, 240))
    bank = root / "known.bank"
    build_bank(bank, [known], label="reported", hash_media=media_hasher(EveryFrame(), "cpu"))
    return {"root": root, "known": known, "evidence": evidence, "bank": bank}


def test_scan_writes_records_and_returns_the_summary(corpus, ray_local, tmp_path):
    out = tmp_path / "results.jsonl"
    summary = vscan.scan([corpus["evidence"]], bank=corpus["bank"], out=out, config=CPU)
    records = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert isinstance(summary, vscan.ScanSummary)
    assert summary.files == 2 and summary.ok == 2 and summary.matched == 1
    assert records["reupload.mp4"]["matches"][0]["is_match"] and not records["other.mp4"]["matches"]
    # Paths travel as absolute paths (a worker's working directory is not the caller's).
    assert all(Path(r["path"]).is_absolute() for r in records.values())


def test_scan_iter_streams_durable_records_then_the_summary(corpus, ray_local, tmp_path):
    out = tmp_path / "results.jsonl"
    run = vscan.scan_iter(str(corpus["evidence"]), bank=str(corpus["bank"]), out=str(out), config=CPU)
    seen = []
    for record in run:
        # each record is in the sink before it is handed out (a group commit
        # writes several, then hands them out one by one)
        assert len(out.read_text().splitlines()) >= len(seen) + 1
        seen.append(record["path"])
    assert run.summary is not None and run.summary.files == len(seen) == 2
    assert len(out.read_text().splitlines()) == 2
    # The same call again resumes: nothing left to do, nothing written twice.
    again = vscan.scan([corpus["evidence"]], bank=corpus["bank"], out=out, config=CPU)
    assert again.files == 0 and len(out.read_text().splitlines()) == 2


def test_usage_mistakes_stop_before_anything_runs(corpus, tmp_path):
    out = tmp_path / "never.jsonl"
    with pytest.raises(vscan.InputError, match="no such file"):
        vscan.scan([tmp_path / "missing"], bank=corpus["bank"], out=out, config=CPU)
    (tmp_path / "empty").mkdir()
    with pytest.raises(vscan.InputError, match="holds no media"):
        vscan.scan([tmp_path / "empty"], bank=corpus["bank"], out=out, config=CPU)
    with pytest.raises(vscan.ConfigError, match="nothing to check against"):
        vscan.scan([corpus["evidence"]], out=out, config=CPU)
    with pytest.raises(vscan.BankError):
        vscan.scan([corpus["evidence"]], bank=corpus["evidence"] / "other.mp4", out=out, config=CPU)
    assert not out.exists()


def test_hash_file_gives_vpdq_frame_hashes(corpus):
    hashes = vscan.hash_file(corpus["known"], policy=FixedRate(2.0), device="cpu")
    assert len(hashes) == 12 and hashes.hashes.shape == (12, 32)
    assert (hashes.qualities >= 0).all() and (hashes.timestamps_seconds[1:] > hashes.timestamps_seconds[:-1]).all()
    with pytest.raises(vscan.InputError):
        vscan.hash_file(corpus["root"] / "nope.mp4")


# -- ScanConfig ----------------------------------------------------------------

SECTIONS = {f.name: f.type for f in fields(vscan.ScanConfig)}


def _literal_fields():
    for section in (vscan.Sampling, vscan.Matching, vscan.Models, vscan.Inputs, vscan.Archives, vscan.Runtime):
        hints = typing.get_type_hints(section)
        for f in fields(section):
            if typing.get_origin(hints[f.name]) is typing.Literal:
                yield section, f.name, typing.get_args(hints[f.name])


LITERALS = list(_literal_fields())


def test_every_literal_choice_is_checked():
    assert len(LITERALS) >= 4  # decoder, mode, device, hash_backend
    for section, name, choices in LITERALS:
        for ok in choices:
            section(**{name: ok})
        with pytest.raises(vscan.ConfigError) as err:
            section(**{name: "nope"})
        message = str(err.value)
        assert f".{name} ('nope')" in message and all(repr(c) in message for c in choices)


@pytest.mark.parametrize(
    "section, values, message",
    [
        ("runtime", {"device": "gpu"}, "runtime.device"),
        ("sampling", {"decoder": "nope"}, "sampling.decoder"),
        ("matching", {"mode": "fuzzy"}, "matching.mode"),
        ("sampling", {"policy": "sometimes"}, "sampling.policy"),
        ("sampling", {"fps": 0}, "sampling.fps"),
        ("sampling", {"frame_size": 8}, "sampling.frame_size"),
        ("matching", {"distance_threshold": 300}, "matching.distance_threshold"),
        ("runtime", {"batch_frames": 0}, "runtime.batch_frames"),
        ("runtime", {"file_timeout_seconds": -1.0}, "runtime.file_timeout_seconds"),
        ("runtime", {"model_inflight": True}, "runtime.model_inflight"),
        ("inputs", {"all_files": "yes"}, "inputs.all_files"),
        ("archives", {"max_ratio": 0.5}, "archives.max_ratio"),
        ("models", {"detectors": "one.toml"}, "models.detectors"),
        ("runtime", {"nope": 1}, "unknown key runtime.nope"),
        ("colour", {}, "unknown section [colour]"),
    ],
)
def test_invalid_values_are_refused(section, values, message):
    with pytest.raises(vscan.ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        vscan.ScanConfig.from_dict({section: values})


def test_toml_round_trip_and_layered_updates(tmp_path):
    config = vscan.ScanConfig.from_dict(
        {"sampling": {"policy": "fps", "fps": 2.0, "decoder": "pyav"}, "runtime": {"device": "cpu", "batch_frames": 16},
         "models": {"detectors": ["a/manifest.toml"]}, "archives": {"member_max_bytes": 1000}}  # fmt: skip
    )
    path = tmp_path / "scan.toml"
    path.write_text(config.to_toml())
    assert vscan.ScanConfig.from_toml(path) == config
    assert tomllib.loads(config.to_toml())["sampling"]["policy"] == "fps"
    later = config.updated({"sampling": {"fps": 4.0}, "runtime": {"batch_frames": 32}})
    assert later.sampling.policy == FixedRate(4.0) and later.sampling.decoder == "pyav" and later.runtime.batch_frames == 32
    (tmp_path / "bad.toml").write_text("[sampling]\nfps = 'fast'\n")
    with pytest.raises(vscan.ConfigError, match="bad.toml"):
        vscan.ScanConfig.from_toml(tmp_path / "bad.toml")


def test_one_sampling_default_adaptive():
    assert vscan.ScanConfig().sampling.policy_name == "adaptive"
    assert vscan.ScanConfig().to_dict()["sampling"]["policy"] == "adaptive"


def test_versions_stamp_covers_result_sections_only():
    base = vscan.ScanConfig()
    stamp = scan_versions(base, None, {})["config_sha256"]
    speed_only = [
        replace(base, runtime=replace(base.runtime, **{k: v}))
        for k, v in {"device": "cpu", "batch_frames": 7, "hash_batch_frames": 8, "decode_inflight": 3, "model_inflight": 5,
                     "file_timeout_seconds": 9.0, "small_file_bytes": 1, "small_file_group": 1, "hash_backend": "torch"}.items()  # fmt: skip
    ] + [replace(base, inputs=vscan.Inputs(all_files=True))]
    for config in speed_only:
        assert scan_versions(config, None, {})["config_sha256"] == stamp, config
    results = [
        base.updated({"sampling": {"fps": 2.0}}),
        base.updated({"sampling": {"decoder": "pyav"}}),
        base.updated({"matching": {"mode": "vpdq"}}),
        base.updated({"models": {"detectors": ["x.toml"]}}),
        base.updated({"archives": {"max_ratio": 50.0}}),
    ]
    for config in results:
        assert scan_versions(config, None, {})["config_sha256"] != stamp, config
    assert set(RESULT_SECTIONS) == {"sampling", "matching", "models", "archives"}

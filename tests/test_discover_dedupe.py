"""One record per real file: overlapping inputs (a folder given twice, a
file inside it given as well, a symlink to a file, the same archive through
a link) are discovered once each, under the first path that reached them;
a real scan on Ray then writes exactly one record per real file."""

from __future__ import annotations

import os
import zipfile

from vscan.bench import synth
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import FixedRate
from vscan.inputs.discover import discover
from vscan.output.sinks import JsonlSink
from vscan.runtime.driver import run_scan


def make_inputs(root):
    for i in range(3):
        synth.make_clip(root / "case" / f"clip{i}.mp4", seed=i, seconds=1.0, size=(96, 64))
    (root / "case" / "link-to-clip0.mp4").symlink_to(root / "case" / "clip0.mp4")
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "alias.mp4").symlink_to(root / "case" / "clip1.mp4")
    with zipfile.ZipFile(root / "case" / "bundle.zip", "w") as zf:
        zf.write(root / "case" / "clip2.mp4", "inner/clip2.mp4")
    (root / "bundle-link.zip").symlink_to(root / "case" / "bundle.zip")
    inputs = [root / "case", root / "case", root / "case" / "clip1.mp4", root / "elsewhere",
              root / "case" / ".." / "case" / "clip2.mp4", root / "bundle-link.zip"]  # fmt: skip
    real = {str(root / "case" / f"clip{i}.mp4") for i in range(3)} | {str(root / "case" / "bundle.zip") + "!/inner/clip2.mp4"}
    return inputs, real


def test_discover_yields_each_real_file_once(tmp_path):
    inputs, real = make_inputs(tmp_path)
    found = list(discover(inputs))
    assert len(found) == len(real) == 4
    assert {os.path.realpath(p.split("!/")[0]) + ("!/" + p.split("!/")[1] if "!/" in p else "") for p in found} == real
    assert found[0] == str(tmp_path / "case" / "bundle.zip!/inner/clip2.mp4")  # the first path that reached it


def test_scan_writes_one_record_per_real_file(tmp_path, ray_local):
    inputs, real = make_inputs(tmp_path)
    config = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu"))
    with JsonlSink(tmp_path / "r.jsonl") as sink:
        summary = run_scan(inputs, sink=sink, config=config)
        paths = [r["path"] for r in sink.records()]
    assert summary.files == len(paths) == len(set(paths)) == len(real)

"""Archives are listed in Ray tasks, never in the driver (vscan.runtime.listing).

A compressed tar is decompressed to be listed; that happens in a worker. The
driver process is watched with a Python audit hook: it must never open an
archive, while the scan still gives every member its record, and the paths
come out in discovery order, each real file once.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import zipfile

from vscan.bench import synth
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import FixedRate
from vscan.inputs.discover import discover
from vscan.output.sinks import JsonlSink
from vscan.runtime.driver import run_scan
from vscan.runtime.listing import ListedInputs

_WATCHED: set[str] = set()  # real paths whose opens in this process are recorded
_OPENED: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _WATCHED and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path in _WATCHED:
            _OPENED.append(path)


sys.addaudithook(_audit)  # (hooks stay for the process; this one records only while _WATCHED is set)


def _evidence(root):
    clip = synth.make_clip(root / "src.mp4", seed=4, seconds=1.0, size=(96, 64))
    ev = root / "ev"
    ev.mkdir()
    synth.make_clip(ev / "a-first.mp4", seed=5, seconds=1.0, size=(96, 64))
    with tarfile.open(ev / "b-packed.tar.gz", "w:gz") as tf:
        for i in range(3):
            tf.add(clip, f"m/{i}.mp4")
    with zipfile.ZipFile(ev / "c-case.zip", "w") as zf:
        zf.write(clip, "z/one.mp4")
    (ev / "d-broken.tar.gz").write_bytes(os.urandom(2048))
    synth.make_clip(ev / "e-last.mp4", seed=6, seconds=1.0, size=(96, 64))
    return ev


def test_the_driver_never_opens_an_archive(tmp_path, ray_local):
    ev = _evidence(tmp_path)
    archives = {str(ev / n) for n in ("b-packed.tar.gz", "c-case.zip", "d-broken.tar.gz")}
    out = tmp_path / "r.jsonl"
    _WATCHED.update(os.path.realpath(p) for p in archives)
    try:
        with JsonlSink(out) as sink:
            run_scan([ev], sink=sink, config=ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu")))
    finally:
        _WATCHED.clear()
    assert not _OPENED, f"the driver opened {sorted(set(_OPENED))}"
    records = {r["path"]: r for r in map(json.loads, out.read_text().splitlines())}
    packed, case, broken = sorted(archives)
    assert set(records) == {str(ev / "a-first.mp4"), str(ev / "e-last.mp4"), *(f"{packed}!/m/{i}.mp4" for i in range(3)),
                            f"{case}!/z/one.mp4", broken}  # fmt: skip
    assert all(records[p]["status"] == "ok" for p in records if p != broken)
    assert records[broken]["error"]["type"] == "ArchiveError"  # the archive's own record
    # The audit hook does see this process open an archive: the check can fail.
    _WATCHED.add(os.path.realpath(packed))
    try:
        list(discover([packed]))
    finally:
        _WATCHED.clear()
    assert _OPENED


def test_listed_inputs_keep_discovery_order_and_each_file_once(tmp_path, ray_local):
    ev = _evidence(tmp_path)
    (tmp_path / "link.zip").symlink_to(ev / "c-case.zip")
    member = f"{ev / 'b-packed.tar.gz'}!/m/1.mp4"  # also inside the archive listed before it
    paths = [ev, member, tmp_path / "link.zip", ev / "e-last.mp4"]
    inputs = ListedInputs(paths, ScanConfig())
    taken = []
    while not inputs.done:
        path = inputs.take()
        if path is None and not inputs.done:
            import ray

            ray.wait(inputs.pending())  # the next path waits for its archive's listing
        elif path is not None:
            taken.append(path)
    assert taken == list(discover(paths))  # as discovery lists them in the driver: order, once each
    assert len(taken) == 7 and member in taken

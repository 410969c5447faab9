"""Region search only where the plain match leaves something to find (issue
#30): a file with frames enough to search has its region search deferred
from its decode task to the model call (vscan.runtime.deferred_regions),
which skips it when the whole-frame match decides the file and runs it
otherwise: a known copy costs no region search, an inset copy is still found."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from vscan.bench import synth
from vscan.bench.reframe import reframe_clip
from vscan.config import Runtime, ScanConfig
from vscan.runtime.decode_task import decode_for_scan
from vscan.runtime.deferred_regions import closer_weak_hits, search_deferred

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def _gop25(src: Path, out: Path) -> Path:
    """A re-encode with a keyframe a second: a first pass of 8 frames, enough for region search without the probe."""
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "23", "-g", "25", "-pix_fmt", "yuv420p", str(out)], check=True, timeout=300)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(bank of a 16:9 clip, a plain re-encode of it, a picture-in-picture copy of it), both copies at GOP 25."""
    from vscan.bank import Bank

    d = tmp_path_factory.mktemp("deferred")
    src = synth.make_clip(d / "wide.mp4", seed=7, seconds=8, size=(640, 360), scenes=2, crf=20)
    pip = _gop25(reframe_clip(src, d / "pip-gop250.mp4", "pip", seed=7), d / "pip.mp4")
    plain = _gop25(src, d / "plain.mp4")
    bank = d / "reported.bank"
    Bank.build(bank, [src], label="reported")
    return bank, plain, pip


def test_region_search_is_left_to_the_model_call(clips):
    _, plain, pip = clips
    config = ScanConfig(runtime=Runtime(device="cpu"))
    for path in (plain, pip):
        summary, file = decode_for_scan(str(path), config)
        assert len(file.frames) >= 4 and "looks re-framed" not in summary["sampling"], summary["sampling"]
        assert file.regions_deferred and file.region is None, path  # (before: searched here, 100-300 ms a file)


def test_a_decided_file_skips_it_and_an_inset_copy_is_still_found(clips):
    from vscan.runtime.model_actor import ModelWorker

    bank, plain, pip = clips
    config = ScanConfig(runtime=Runtime(device="cpu"))
    worker = ModelWorker(config, str(bank))
    summary, file = decode_for_scan(str(plain), config)
    (result,) = worker.run([(0, summary["sha256"], summary["md5"], 1)], file)
    assert any(m.is_match for m in result.matches)
    assert search_deferred(file, result.matches) is None  # the whole-frame match decides: no region search
    summary, file = decode_for_scan(str(pip), config)
    assert search_deferred(file, []) is not None and search_deferred(file, []).region is not None  # undecided: searched
    (result,) = worker.run([(0, summary["sha256"], summary["md5"], 1)], file)
    (match,) = [m for m in result.matches if m.is_match]
    assert "region" in match.path and result.timings["regions"] > 0, (match, result.timings)


def test_a_file_matched_through_a_part_of_its_frames_is_not_searched_again(clips):
    """An off-centre crop found by the off-centre search (a match through a region version) does not decide the
    file (its span comes from part of the frame), but a region search then would put its own region in that
    version's place and the rematch loses the match (session 42: both tune pattern crops). Only a weak hit, or a
    match of the whole frame that does not decide, leaves the search to run."""
    import dataclasses

    from vscan.bank.prepared import Match

    _, _, pip = clips
    summary, file = decode_for_scan(str(pip), ScanConfig(runtime=Runtime(device="cpu")))
    found = Match("e1", "reported", 88.9, 50.0, 6.0, (0.0, 6.0), (0.0, 6.0), 12, True, num_query_hashes_matched=8,
                  path=("off-centre", "grid-window"), decided_by="vpdq", region=(0.1, 0.8, 0.1, 0.8))  # fmt: skip
    assert search_deferred(file, [found]) is None
    assert search_deferred(file, [dataclasses.replace(found, is_match=False, decided_by=None)]) is not None  # a weak hit: searched
    assert search_deferred(file, [dataclasses.replace(found, path=(), region=None, query_pct=50.0)]) is not None  # whole frame, undecided


def test_the_rematch_keeps_the_closer_weak_hit_for_the_second_pass():
    """The plain match's weak hit at 18 bits, the region rematch's at 22 (held-out pattern excerpt, session 42):
    the closer one stays, so the second pass is short evidence's 5 frames/s, not 1."""
    from vscan.bank.prepared import Match
    from vscan.decode import Adaptive

    def hit(entry, distance, decided=False, span=(34.8, 35.8)):
        return Match(entry, "reported", 10.0, 5.0, 1.0, span, (1.0, 2.0), distance, decided, num_query_hashes_matched=1)

    plain = [hit("a", 18), hit("b", 30)]
    region = [hit("a", 22, span=(34.8, 36.8)), hit("b", 24)]
    kept = closer_weak_hits(plain, region)
    assert [(m.bank_entry_id, m.distance_min) for m in kept] == [("a", 18), ("b", 24)]
    policy = Adaptive()
    assert policy.refine(region, 40.0).fps == 1.0 and policy.refine(kept, 40.0).fps == 5.0
    decided = [hit("a", 22, decided=True)]
    assert closer_weak_hits(plain, decided)[0] is decided[0]  # a decision stands

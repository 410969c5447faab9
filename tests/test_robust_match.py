"""Robust matching: temporal alignment, border detection, dihedral variants end to end."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from vscan.bench import synth
from vscan.bank.align import align
from vscan.bank import Bank, BankWriter, build_bank
from vscan.frames.borders import BorderTap, detect_borders
from vscan.decode import EveryFrame, FixedRate
from vscan.hashing.vpdq import ExtraHashes, FrameHashes
from vscan.hashing.pdq import PDQHasher
from vscan.bank.match import match_frames
from vscan.config import Matching, Runtime, Sampling, ScanConfig
from vscan.runtime.driver import run_scan
from vscan.output.sinks import JsonlSink
from vscan.verdict.record import result_schema

SCHEMA = result_schema()


# ----------------------------------------------------------------------------- alignment


def planted(rng, rate, offset, seconds=8.0, n_noise=40, query_seconds=30.0):
    """1 fps query; an aligned run of `seconds` plus random coincidental hits."""
    tq = np.arange(10.0, 10.0 + seconds)
    tr = rate * tq + offset
    # Dense references: each query frame also hits the reference frames around it.
    tq_all = np.repeat(tq, 5)
    tr_all = np.repeat(tr, 5) + np.tile(np.arange(-2, 3) * 0.04, tq.size)
    noise_q = rng.integers(0, int(query_seconds), n_noise).astype(float)
    noise_r = rng.uniform(0, 60, n_noise)
    return np.concatenate([tq_all, noise_q]), np.concatenate([tr_all, noise_r])


@pytest.mark.parametrize("rate", [1.0, 1.25, 0.8])
def test_align_finds_planted_run_among_noise(rate):
    rng = np.random.default_rng(int(rate * 100))
    tq, tr = planted(rng, rate, offset=-3.0)
    a = align(tq, tr)
    assert a is not None
    assert a.rate == pytest.approx(rate, rel=0.02)
    assert a.offset_seconds == pytest.approx(-3.0, abs=0.6)
    assert a.num_frames >= 8 and 7.5 <= a.seconds <= 10
    assert a.query_span_seconds[0] <= 10.0 and a.query_span_seconds[1] >= 17.0


@pytest.mark.parametrize("seed", range(5))
def test_align_random_hits_do_not_form_a_run(seed):
    rng = np.random.default_rng(seed)
    # 30 coincidental hits over a 30 s query and a 60 s reference.
    tq = rng.integers(0, 30, 30).astype(float)
    tr = rng.uniform(0, 60, 30)
    a = align(tq, tr)
    assert a is not None and (a.seconds < 5.0 or a.num_frames < 4)


def test_align_rejects_bad_input():
    assert align(np.array([np.nan]), np.array([1.0])) is None
    with pytest.raises(ValueError):
        align(np.zeros(2), np.zeros(3))


def flip(rng, h, n):
    bits = np.unpackbits(h)
    bits[rng.choice(256, n, replace=False)] ^= 1
    return np.packbits(bits)


def index_of(tmp_path, ref: FrameHashes):
    with BankWriter(tmp_path / "b.db") as w:
        w.add_frame_hashes("ref", "reported", "api", "video", ref)
    with Bank(tmp_path / "b.db") as bank:
        return bank.load_index()


def test_excerpt_in_compilation_matches_by_alignment_only(tmp_path):
    rng = np.random.default_rng(3)
    ref_hashes = rng.integers(0, 256, (60, 32), dtype=np.uint8)  # 60 s reference, 1 hash/s
    ref = FrameHashes(np.arange(60), np.arange(60.0), np.full(60, 100), ref_hashes)
    index = index_of(tmp_path, ref)
    # 30 s query: seconds 12..19 show reference seconds 40..47 (near copies), the rest is other content.
    q = rng.integers(0, 256, (30, 32), dtype=np.uint8)
    q[12:20] = [flip(rng, ref_hashes[40 + k], 8) for k in range(8)]
    query = FrameHashes(np.arange(30), np.arange(30.0), np.full(30, 100), q)
    variants = np.repeat(q[:, None], 8, axis=1)
    [plain] = match_frames(query, index)
    assert not plain.is_match  # vPDQ: query 27%, compared 13%
    [m] = match_frames(query, index, variants=variants)
    assert m.is_match and m.decided_by == "alignment"
    assert m.align_rate == pytest.approx(1.0, abs=0.02) and m.align_offset_seconds == pytest.approx(28.0, abs=0.5)
    assert m.aligned_query_span_seconds == (12.0, 19.0) and m.aligned_frames == 8
    # The same 8 hits scattered in time (coincidental): no match.
    scattered = rng.integers(0, 256, (30, 32), dtype=np.uint8)
    picks = rng.permutation(60)[:8]
    slots = np.sort(rng.choice(30, 8, replace=False))
    scattered[slots] = [flip(rng, ref_hashes[k], 8) for k in picks]
    query2 = FrameHashes(np.arange(30), np.arange(30.0), np.full(30, 100), scattered)
    [m2] = match_frames(query2, index, variants=np.repeat(scattered[:, None], 8, axis=1))
    assert not m2.is_match and m2.decided_by is None


# ----------------------------------------------------------------------------- borders


@pytest.mark.parametrize("mode", ["letterbox", "pillarbox"])
def test_border_detection_on_generated_padded_frames(tmp_path, mode):
    src = synth.make_clip(tmp_path / "s.mp4", seed=4, seconds=3, size=(320, 240))
    padded = synth.edit_clip(src, tmp_path / "p.mp4", "pad", mode=mode, fraction=0.15)
    from vscan.decode import FixedRate, open_decoder

    dec = open_decoder(str(padded), "auto")
    frames = np.concatenate([b.rgb for b in dec.iter_frames(str(padded), FixedRate(2.0), batch_size=64)])
    box = detect_borders(frames)
    bars = (box.top, box.bottom) if mode == "letterbox" else (box.left, box.right)
    size = 240 if mode == "letterbox" else 320
    assert all(abs(b - 0.15 * size) <= 3 for b in bars), box
    assert box.kind in (mode, "windowbox")
    src_frames = np.concatenate([b.rgb for b in open_decoder(str(src), "auto").iter_frames(str(src), FixedRate(2.0), batch_size=64)])
    assert detect_borders(src_frames).is_empty
    # The tap decides on its look-ahead and crops every frame with the same box.
    tap = BorderTap(lookahead_frames=3)
    for k in range(0, len(frames), 2):
        tap.push(frames[k : k + 2])
    out = tap.unbordered()
    assert out is not None and out.shape[0] == len(frames)
    assert out.shape[1:3] == (240 - box.top - box.bottom, 320 - box.left - box.right)


def test_flat_or_plain_frames_have_no_borders():
    assert detect_borders(np.full((4, 64, 64, 3), 17, np.uint8)).is_empty
    rng = np.random.default_rng(0)
    assert detect_borders(rng.integers(0, 256, (4, 64, 80, 3), dtype=np.uint8)).is_empty


# ----------------------------------------------------------------------------- end to end


def test_hflip_and_letterbox_match_end_to_end(tmp_path, ray_local):
    from vscan.hashing.media import hash_media

    src = synth.make_clip(tmp_path / "src" / "source.mp4", seed=11, seconds=8, scenes=2)
    archive = tmp_path / "archive"
    synth.edit_clip(src, archive / "flipped.mp4", "hflip")
    synth.edit_clip(src, archive / "letterboxed.mp4", "pad", mode="letterbox", fraction=0.12)
    synth.make_clip(archive / "unrelated.mp4", seed=12, seconds=8)
    hasher = PDQHasher(device="cpu")

    def hash_file(path):
        r = hash_media(path, EveryFrame(), hasher=hasher, max_side=512, borders=True, crops=(0.9, 0.8))
        assert isinstance(r.extra, ExtraHashes) and len(r.extra) == 2 * len(r.frames)
        return r.frames, r.metadata.duration_seconds, r.extra

    bank = tmp_path / "bank.db"
    build_bank(bank, [src], hash_media=hash_file)
    out = tmp_path / "r.jsonl"
    with JsonlSink(out) as sink:
        run_scan([archive], sink=sink, bank_path=bank, config=ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu")))
    records = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines()) if "path" in r}
    for r in records.values():
        jsonschema.validate(r, SCHEMA)
    [flipped] = [m for m in records["flipped.mp4"]["matches"] if m["is_match"]]
    assert flipped["dihedral"] == "flip_h" and "flip_h" in flipped["path"]
    # Two still scenes sampled at 1 fps pin the rate only to within a sample over the span (~1/7): its fit has come out
    # 1.018 and 0.965 as the frames' mirrored hashes moved by a few bits (stop 46, 47), both a copy at its own speed.
    assert flipped["alignment"]["rate"] == pytest.approx(1.0, abs=0.06)
    assert flipped["alignment"]["seconds"] >= 6
    [boxed] = [m for m in records["letterboxed.mp4"]["matches"] if m["is_match"]]
    assert any(p.endswith("box-removed") for p in boxed["path"])
    assert not any(m["is_match"] for m in records["unrelated.mp4"]["matches"])
    # Plain vPDQ on the same files misses the flip.
    out2 = tmp_path / "plain.jsonl"
    with JsonlSink(out2) as sink:
        run_scan([archive / "flipped.mp4"], sink=sink, bank_path=bank, config=ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), matching=Matching(mode="vpdq"), runtime=Runtime(device="cpu")))
    plain = [json.loads(line) for line in out2.read_text().splitlines() if '"path"' in line]
    assert not any(m["is_match"] for r in plain for m in r["matches"])

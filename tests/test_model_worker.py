"""The model stage's per-file results (vscan.runtime.model_actor.ModelWorker), in-process."""

from __future__ import annotations

import pytest

from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.bench import synth
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import FixedRate
from vscan.runtime.decode_task import decode_for_scan
from vscan.runtime.model_actor import ModelWorker


def test_matched_seconds_end_at_the_files_end(tmp_path):
    # 4.6 s sampled at 1 fps: frames at 0..4 s, the last one shows for the
    # 0.6 s left (not the 1 s median gap): 4.6 s matched, exactly.
    clip = synth.make_clip(tmp_path / "clip.mp4", seed=7, seconds=4.6, size=(160, 120))
    bank = tmp_path / "bank.db"
    build_bank(bank, [clip], hash_media=media_hasher(FixedRate(1.0), "cpu"))
    config = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu"))
    summary, payload = decode_for_scan(str(clip), config)
    assert summary["error"] is None and summary["duration_seconds"] == pytest.approx(4.6)
    (result,) = ModelWorker(config, bank).run([(0, None, None, 1)], payload)  # no digests: the perceptual matcher decides
    (match,) = [m for m in result.matches if m.signal == "pdq"]
    assert result.frames_sampled == summary["frames_sampled"] == 5
    assert match.matched_seconds == pytest.approx(4.6)


def test_frames_both_passes_took_are_hashed_and_counted_once(tmp_path):
    # Two passes over one file (adaptive sampling sends them together): 1 fps
    # and 2 fps share the frames at whole seconds, 5 + 10 taken, 10 distinct.
    clip = synth.make_clip(tmp_path / "clip.mp4", seed=8, seconds=5.0, size=(160, 120))
    first = decode_for_scan(str(clip), ScanConfig(sampling=Sampling(policy=FixedRate(1.0))))
    second = decode_for_scan(str(clip), ScanConfig(sampling=Sampling(policy=FixedRate(2.0))))
    assert (first[0]["frames_sampled"], second[0]["frames_sampled"]) == (5, 10)
    config = ScanConfig(runtime=Runtime(device="cpu"))
    (result,) = ModelWorker(config).run([(0, None, None, 2)], first[1], second[1])
    assert result.frames_sampled == 10 and len(result.qualities) == 10


def test_on_cpu_the_last_batch_is_not_padded_and_hashes_as_alone():
    # A call of 40 frames on CPU: batches of 32 and 8 (the tail was padded to 32 for GPU memory's sake, and on CPU
    # those 24 blank frames were hashed for nothing); each frame's hash is the one it gets hashed alone.
    import numpy as np

    worker = ModelWorker(ScanConfig(runtime=Runtime(device="cpu")))
    worker._banded = None  # the model's own batches (the banded hash asks it only for flat frames: test below)
    frames = np.random.default_rng(3).integers(0, 256, (40, 64, 64, 3), dtype=np.uint8)
    shapes = []
    real = worker.hasher.hash_frames
    worker.hasher.hash_frames = lambda chunk: shapes.append(len(chunk)) or real(chunk)
    hashes, quality = worker._hash_all([frames[:25], frames[25:]])
    assert shapes == [32, 8]
    alone = real(frames[37:38])
    assert np.array_equal(hashes[37], alone.hashes[0]) and quality[37] == alone.quality[0]


def test_on_cpu_one_model_thread_hashes_in_runs_of_four_with_the_same_hashes():
    # Issue #30: one onnxruntime thread hashed real archive frames at 0.28 ms a frame in runs of 4 against 0.40 in runs
    # of 32 (a run's frames and intermediates stay in the core's cache); the hashes are those of one run of 32.
    import numpy as np

    worker = ModelWorker(ScanConfig(runtime=Runtime(device="cpu")), threads=1)
    worker._banded = None
    frames = np.random.default_rng(4).integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
    shapes = []
    real = worker.hasher.hash_frames
    worker.hasher.hash_frames = lambda chunk: shapes.append(len(chunk)) or real(chunk)
    hashes, quality = worker._hash_all([frames[:7], frames[7:]])
    assert shapes == [4, 4, 2]
    whole = real(frames)
    assert np.array_equal(hashes, whole.hashes) and np.array_equal(quality, whole.quality)
    assert ModelWorker(ScanConfig(runtime=Runtime(device="cpu")), threads=3)._auto_hash_batch() == 32  # (not measured: as before)


def test_a_calls_runs_are_its_files_frames_not_a_copy_of_them_all():
    # Issue #30: _hash_all concatenated every set of every file of a call before cutting it into runs (a fresh array of
    # ~3 MB an archive file); the runs are now views of the files' own arrays, read-only, but for a run across two
    # arrays (copied), with the same hashes.
    import numpy as np

    worker = ModelWorker(ScanConfig(runtime=Runtime(device="cpu")), threads=1)
    worker._banded = None
    frames = np.random.default_rng(5).integers(0, 256, (11, 64, 64, 3), dtype=np.uint8)
    parts = [frames[:5].copy(), frames[5:].copy()]
    runs = []
    real = worker.hasher.hash_frames
    worker.hasher.hash_frames = lambda chunk: runs.append(chunk) or real(chunk)
    hashes, quality = worker._hash_all(parts)
    assert [len(r) for r in runs] == [4, 4, 3]
    assert np.shares_memory(runs[0], parts[0]) and np.shares_memory(runs[2], parts[1]) and not runs[0].flags.writeable
    assert np.array_equal(runs[1], frames[4:8]) and all(r.flags.c_contiguous for r in runs)
    whole = real(frames)
    assert np.array_equal(hashes, whole.hashes) and np.array_equal(quality, whole.quality)


def test_on_cpu_frames_are_hashed_by_the_banded_products_with_the_models_bits(vpdq_dir, tmp_path):
    # Issue #30: with a memory-mapped bank (numba up for its search anyway), the scan's frames on the CPU through
    # vscan.bank.banded_hash (0.60 -> 0.16 ms a 256 px frame), the model asked only for flat frames: every variant's
    # bits and the quality are the model's, frame for frame. Without a bank, the model as before (no numba start-up).
    import numpy as np

    from vscan.decode import PyAVDecoder
    from vscan.frames.prepare import SCAN_FRAME_SIDE_PX
    from vscan.frames.resize import to_square

    clip = synth.make_clip(tmp_path / "clip.mp4", seed=9, seconds=2.0, size=(160, 120))
    build_bank(tmp_path / "bank.db", [clip], hash_media=media_hasher(FixedRate(1.0), "cpu"))
    config = ScanConfig(runtime=Runtime(device="cpu"))
    assert ModelWorker(config, threads=1)._banded is None
    worker = ModelWorker(config, tmp_path / "bank.db", threads=1)
    assert worker._banded is not None
    batch = next(iter(PyAVDecoder().iter_frames(vpdq_dir / "pattern-sd-grey-bar.mp4", FixedRate(2.0), batch_size=6,
                                                max_side=SCAN_FRAME_SIDE_PX)))  # fmt: skip
    real = to_square(batch.rgb, SCAN_FRAME_SIDE_PX)  # the scan's square frames
    flat = np.full((2, *real.shape[1:]), 117, np.uint8)
    frames = np.ascontiguousarray(np.concatenate([real[:3], flat[:1], real[3:], flat[1:]]))
    asked = []
    model = worker.hasher.hash_frames
    worker.hasher.hash_frames = lambda chunk: asked.append(len(chunk)) or model(chunk)
    hashes, quality = worker._hash_all([frames[:5], frames[5:]])
    want = model(frames)
    assert np.array_equal(hashes, want.hashes) and np.array_equal(quality, want.quality)
    assert sum(asked) == 2 and (want.quality[[3, len(frames) - 1]] == 0).all() and (np.delete(want.quality, [3, len(frames) - 1]) > 0).all()

"""bench/gpu_check.py's pdq part: decoded frames through PDQ on the device
(torch, and onnxruntime where it has a CUDA provider) against onnxruntime on
the CPU in the same run, ModelWorker end to end, detector pre-processing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .gpu_check_measure import Recorder, SkipPart, _memory, _rate, _reset_memory, write_test_video
from .gpu_check_plan import Plan


def _decoded_payloads(plan: Plan, work: Path) -> tuple[list[dict], dict[str, Any]]:
    """Real clips through the decode stage (decode_for_scan, in-process):
    the frames the model stage gets, at the model's input size."""
    from vscan.config import Sampling, ScanConfig
    from vscan.runtime.decode_task import decode_for_scan

    try:
        import av  # noqa: F401
    except ImportError as exc:  # the carried av did not install: the model stage still gets measured, on frames said to be generated
        return _generated_payloads(plan), {"source": f"generated in numpy, not decoded (PyAV not importable: {exc})", "clips": []}
    config = ScanConfig(sampling=Sampling(policy="fps", fps=5.0, decoder="pyav"))
    payloads, info = [], {"source": "decode_for_scan (PyAV) of generated H.264 clips", "clips": [], "decode_seconds": 0.0}
    for k in range(plan.pdq_clips):
        clip = write_test_video(work / f"pdq{k}.mp4", plan.pdq_clip_size, plan.pdq_clip_seconds, 30, 30, seed=100 + k)
        t0 = time.perf_counter()
        summary, payload = decode_for_scan(clip["path"], config)
        info["decode_seconds"] += time.perf_counter() - t0
        if payload is None:
            raise RuntimeError(f"decode_for_scan failed on a generated clip: {summary.get('error')}")
        payloads.append(payload)
        info["clips"].append({"size": list(plan.pdq_clip_size), "frames_sampled": int(len(payload["frames"]))})
    return payloads, info


def _generated_payloads(plan: Plan) -> list[dict]:
    """What decode_for_scan returns for a video, with frames made in numpy (see _decoded_payloads)."""
    import numpy as np

    out = []
    for k in range(plan.pdq_clips):
        rng = np.random.default_rng(100 + k)
        small = rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
        n = len(small)
        out.append({"frames": np.ascontiguousarray(np.repeat(np.repeat(small, 16, axis=1), 16, axis=2)),
                    "frame_numbers": np.arange(n, dtype=np.int64) * 6, "timestamps": np.arange(n) / 5.0,
                    "duration_seconds": np.float64(n / 5.0), "sha1": np.array(f"{k:040x}"),
                    "source_size": np.array(plan.pdq_clip_size, np.int64)})  # fmt: skip
    return out


def _tiled(frames, n: int):
    """``n`` frames cut from the decoded files in turn (a cross-file batch)."""
    import numpy as np

    reps = -(-n // len(frames))
    return np.ascontiguousarray(np.concatenate([frames] * reps)[:n])


def part_pdq(plan: Plan, rec: Recorder, deadline: float, work: Path) -> None:
    import numpy as np
    import torch

    from vscan.hashing.pdq import PDQHasher

    dev = plan.device
    if dev == "cuda" and not torch.cuda.is_available():
        raise SkipPart("torch sees no CUDA device")
    payloads, info = _decoded_payloads(plan, work)
    rec["decoded"] = info
    frames = np.concatenate([p["frames"] for p in payloads])
    rec["frame_shape"] = list(frames.shape[1:])
    # Per phase a slice of what is left, so the later phases still get time.
    phase_end = lambda share: time.monotonic() + share * max(deadline - time.monotonic(), 0)  # noqa: E731

    # The same-run baseline: the CPU path's hasher (onnxruntime, 32 frames a call).
    cpu = PDQHasher(backend="onnx", device="cpu")
    base = _tiled(frames, 32)
    rec["cpu_baseline"] = {"provider": cpu.provider, "batch": 32,
                          **_rate(lambda: len(cpu.hash_frames(base)), 2 * plan.pdq_timed_calls, phase_end(0.1), "cpu")}

    torch_hasher = PDQHasher(backend="torch", device=dev)
    sample = _tiled(frames, 64)
    a, b = torch_hasher.hash_frames(sample), cpu.hash_frames(sample)
    bits = np.unpackbits(a.hashes[:, 0] ^ b.hashes[:, 0], axis=1).sum(axis=1)
    rec["agreement_with_cpu"] = {"frames": len(sample), "identical_hashes": int((bits == 0).sum()), "max_bits_apart": int(bits.max()),
                                 "quality_equal": int((a.quality == b.quality).sum())}  # fmt: skip

    by_batch = {}
    end = phase_end(0.45)
    for batch in plan.pdq_batches:
        chunk = _tiled(frames, batch)
        _reset_memory(dev)
        row = {"provider": torch_hasher.provider, **_rate(lambda: len(torch_hasher.hash_frames(chunk)), plan.pdq_timed_calls, end, dev)}
        row["memory"] = _memory(dev)
        by_batch[str(batch)] = row
        rec["torch"] = by_batch
    rec["onnx_device"] = _onnx_on_device(plan, frames, phase_end(0.15))
    rec["model_worker"] = _model_worker_rates(plan, payloads, phase_end(0.6))
    rec["detector_preprocess"] = _preprocess_rates(plan, frames, deadline)


def _onnx_on_device(plan: Plan, frames, end: float) -> dict[str, Any]:
    import onnxruntime as ort

    from vscan.hashing.pdq import PDQHasher

    available = ort.get_available_providers()
    if plan.device != "cuda":
        return {"status": "skipped", "reason": "dry run: the CPU provider is the baseline above", "providers": available}
    if "CUDAExecutionProvider" not in available:
        return {"status": "skipped", "reason": f"onnxruntime {ort.__version__} has no CUDAExecutionProvider ({available})", "providers": available}
    hasher = PDQHasher(backend="onnx", device="cuda")
    out = {"status": "ok", "provider": hasher.provider, "batches": {}}
    for batch in plan.pdq_batches:
        chunk = _tiled(frames, batch)
        _reset_memory("cuda")
        out["batches"][str(batch)] = {**_rate(lambda: len(hasher.hash_frames(chunk)), plan.pdq_timed_calls, end, "cuda"), "memory": _memory("cuda")}
    return out


def _model_worker_rates(plan: Plan, payloads: list[dict], end: float) -> dict[str, Any]:
    """The GPU stage in-process: ModelWorker.run on cross-file calls (no bank:
    the search is the hamming part), torch backend on the device."""
    from vscan.config import Runtime, ScanConfig
    from vscan.runtime.model_actor import ModelWorker

    out = {}
    for batch in plan.pdq_batches:
        config = ScanConfig(runtime=Runtime(device=plan.device, hash_backend="torch", batch_frames=batch, hash_batch_frames=batch))
        worker = ModelWorker(config, None)
        files, parts, n = [], [], 0
        while n < 2 * batch:  # two device batches a call, files mixed in them
            p = payloads[len(files) % len(payloads)]
            files.append((len(files), None, None, 1))
            parts.append(p)
            n += len(p["frames"])

        def call() -> int:
            worker.run(files, *parts)
            return n

        _reset_memory(plan.device)
        row = _rate(call, plan.pdq_timed_calls, end, plan.device)
        stats = worker.stats()
        row["frames_sampled_per_second"] = row.pop("items_per_second")
        row["frames_hashed_per_call"] = stats["frames"] / max(stats["calls"], 1)  # + border-free/overlay-filled versions
        row["files_per_call"] = len(files)
        row["provider"] = worker.provider()
        row["memory"] = _memory(plan.device)
        out[str(batch)] = row
        if time.monotonic() > end:
            break
    return out


def _preprocess_rates(plan: Plan, frames, end: float) -> dict[str, Any]:
    """Detector input preparation on the device (vscan.kernels.preprocess):
    letterboxed to a 224 px NCHW float input from 1080p-sourced squares."""
    import torch

    from vscan.kernels.preprocess import prepare

    out = {}
    for batch in plan.pdq_batches:
        chunk = torch.from_numpy(_tiled(frames, batch)).to(plan.device)
        sizes = [(1920, 1080)] * batch

        def call() -> int:
            x, _ = prepare(chunk, sizes, height=plan.detector_size, width=plan.detector_size, letterbox=True)
            return len(x)

        out[str(batch)] = _rate(call, plan.pdq_timed_calls, end, plan.device)
        if time.monotonic() > end:
            break
    return out

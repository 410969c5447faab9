"""The model stage's work: hash, detect and match frames of many files.

Frames of many files go through the hash model, and every detector, in
shared device batches; each file is then matched against the bank. It runs
in the actors of vscan.runtime.model_pool (or in-process in tests) and keeps
no state between calls: a file's second sampling pass arrives with its
first, so any actor (or a restarted one) can take any call.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vscan.config import ScanConfig
from vscan.detect.triage_io import add_triage, run_triage
from vscan.runtime.decode_task import merge_passes
from vscan.runtime.file_match import FileMatcher

__all__ = ["ModelWorker"]


def _limit_kernel_threads(threads: int) -> None:
    """Run the bank's multi-index kernel (vscan.bank.mih_kernel: numba,
    parallel) on this call's thread with at most ``threads`` threads, as the
    hash model runs (Ray already runs a decode per core): with numba's default
    (every core) each file's bank narrowing took 50-75 ms on a loaded 2-core
    machine, 4 ms on one thread (issue #30). numba's setting is per thread."""
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


class ModelWorker:
    """Hashes frames from many files in shared batches, then matches each
    file against the bank. Lives in one Ray actor (or in-process in tests)."""

    def __init__(self, config: ScanConfig, bank: Any = None, *, threads: int = 0) -> None:
        """``bank``: a bank file's path, or its loaded BankIndex (shared
        read-only through Ray's object store); ``threads``: onnxruntime
        threads per model (0: onnxruntime's default)."""
        from vscan.hashing.pdq import PDQHasher

        self.config = config
        self._kernel_threads = max(1, int(threads))
        self._stats = {"calls": 0, "files": 0, "frames": 0, "max_frames_per_call": 0, "busy_seconds": 0.0}
        self.hasher = PDQHasher(backend=config.runtime.hash_backend, device=config.runtime.device, threads=threads)
        self.index = None
        self.detectors = []
        if config.models.detectors:
            from vscan.models.manifest import load_manifest
            from vscan.detect.adapters import Detector

            self.detectors = [Detector(load_manifest(m), device=config.runtime.device, threads=threads) for m in config.models.detectors]
        from vscan.detect.registry import build_triage

        self.triage = build_triage(config, threads=threads)  # the shipped NSFW + face models (vscan.detect.triage), or None
        from vscan.runtime.bank_share import open_bank

        self.index = open_bank(bank, config)  # a MappedBank (memory-mapped, vscan.bank.mapped) or a loaded BankIndex
        self.matcher = FileMatcher(config, self.index)  # vscan.runtime.file_match: each file against the bank

    def provider(self) -> str:
        return self.hasher.provider

    def run(self, files: list[tuple[int, str | None, str | None, int]], *payloads: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """``files``: (key, sha256, md5, passes) per file, whose ``passes``
        payloads (1, or 2: an adaptive first pass, then its second) follow in
        ``payloads`` in order. One result dict per file: ``key``,
        ``qualities``, ``matches``, ``timings`` (seconds per stage), and
        ``refine`` (the second pass to decode) when the sampling policy asks.

        Everything the call hashes (every file's frames, and their
        border-free and overlay-filled versions) goes through the device in
        shared batches (``hash_batch_frames``), and so does every detector: a
        call's cost is its frame count, not its file count."""
        t0 = time.perf_counter()
        _limit_kernel_threads(self._kernel_threads)
        final = [passes > 1 for *_, passes in files]
        parts = iter(payloads)
        firsts: list[np.ndarray] = []  # each file's first-pass frame numbers (vscan.output.hash_store keeps them)

        def merged(passes: int) -> dict[str, np.ndarray]:
            first = next(parts)
            firsts.append(first["frame_numbers"])
            return merge_passes(first, next(parts)) if passes > 1 else first

        payloads = tuple(merged(passes) for *_, passes in files)
        files = [(key, sha256, md5) for key, sha256, md5, _ in files]
        sets = [(i, "frames") for i in range(len(payloads))]
        if self.index is not None:
            sets += [(i, k) for i, p in enumerate(payloads) for k in ("unbordered_frames", "unoverlaid_frames", "region_frames")
                     if p.get(k) is not None and not (k == "region_frames" and "region_rows" in p)]  # fmt: skip
        arrays = [payloads[i][k] for i, k in sets]
        hashes, quality = self._hash_all(arrays)
        hashed: list[dict[str, tuple[np.ndarray, np.ndarray]]] = [{} for _ in payloads]  # per file: set -> (variants, quality)
        offset = 0
        for (i, kind), array in zip(sets, arrays):
            hashed[i][kind] = (hashes[offset : offset + len(array)], quality[offset : offset + len(array)])
            offset += len(array)
        for i, p in enumerate(payloads):  # a still's small windows (vscan.frames.regions.still_windows): their own batches
            if self.index is not None and "region_hashes" in p:  # hashed where they were made (still_window_hashes)
                hashed[i]["region_frames"] = (p["region_hashes"], p["region_quality"])
            elif self.index is not None and "region_rows" in p:
                hashed[i]["region_frames"] = self._hash_all([p["region_frames"]])
                offset += len(p["region_frames"])
        t1 = time.perf_counter()
        hash_share = (t1 - t0) / max(offset, 1)
        detected = self._detect_all(payloads) if self.detectors else None
        triaged = run_triage(self.triage, payloads) if self.triage is not None else None
        detect_share = (time.perf_counter() - t1) / max(sum(len(p["frames"]) for p in payloads), 1)
        out = []
        for i, ((key, sha256, md5), payload, is_final) in enumerate(zip(files, payloads, final)):
            result = self.matcher.file_result(payload, hashed[i], sha256, md5)
            result["key"] = key
            if self.config.runtime.keep_frame_hashes:  # vscan scan --hash-store: the driver stores them, the record never carries them
                from vscan.output.hash_store import kept_hashes

                result["frame_hashes"] = kept_hashes(payload, hashed[i], firsts[i])
            modelled = [q for k, (_, q) in hashed[i].items() if k != "region_frames" or "region_hashes" not in payload]  # not decode-hashed windows
            result["timings"]["hash"] = hash_share * sum(len(q) for q in modelled)
            if detected is not None:
                result["detections"], result["detection_timeline"] = detected[i]
                result["timings"]["detect"] = detect_share * len(payload["frames"])
            if triaged is not None:
                add_triage(result, triaged[i])  # evidence, timeline series, triage summary, moments
                result["timings"]["detect"] = detect_share * len(payload["frames"])
            refine = getattr(self.config.sampling.policy, "refine", None)
            if refine is not None and not is_final:
                # Adaptive sampling: the policy decides, the pipeline decodes again.
                moments = {"moments": result.pop("triage_moments")} if result.get("triage_moments") else {}
                # The first pass's frame times: a first pass that decides is confirmed, not densified (Adaptive.confirm_frames).
                second = refine(result["matches"], float(payload.get("duration_seconds", 0.0)), sampled_seconds=payload["timestamps"], **moments)
                if second is not None:
                    result["refine"] = second
            out.append(result)
        self._stats["calls"] += 1
        self._stats["files"] += len(files)
        self._stats["frames"] += offset
        self._stats["max_frames_per_call"] = max(self._stats["max_frames_per_call"], offset)
        self._stats["busy_seconds"] += time.perf_counter() - t0
        return out

    def stats(self) -> dict[str, float]:
        """Work done so far: calls, files, frames hashed, busy seconds; the bank's rows in memory and mapped."""
        from vscan.runtime.bank_share import bank_stats

        return {**self._stats, **bank_stats(self.index)}

    def _hash_all(self, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Frames of many files -> (hashes uint8 [N, 8, 32], quality int32 [N]),
        in device batches of ``batch_frames`` that mix files."""
        total = sum(len(f) for f in frames)
        hashes = np.zeros((total, 8, 32), np.uint8)
        quality = np.zeros(total, np.int32)
        if not total:
            return hashes, quality
        stacked = np.concatenate(frames)
        step = self.config.runtime.hash_batch_frames or (32 if self.hasher.device == "cpu" else self.config.runtime.batch_frames)
        for start in range(0, total, step):
            chunk = stacked[start : start + step]
            n = len(chunk)
            if n < step and total > step:
                # A few fixed batch shapes keep GPU memory flat (onnxruntime
                # grows its arena per new shape): pad the tail batch.
                chunk = np.concatenate([chunk, np.zeros((step - n, *chunk.shape[1:]), np.uint8)])
            result = self.hasher.hash_frames(chunk)
            hashes[start : start + n] = result.hashes[:n]
            quality[start : start + n] = result.quality[:n]
        return hashes, quality

    def _detect_all(self, payloads: tuple[dict[str, np.ndarray], ...]) -> list[tuple[list, dict[str, Any] | None]]:
        """Every classifier/detector over all files' frames in shared batches:
        (LabelEvidence list, timeline) per file."""
        from vscan.detect.adapters import detections_for_files

        items = []
        for payload in payloads:
            frames = payload["frames"]
            size = payload.get("source_size")
            source_size = (int(size[0]), int(size[1])) if size is not None and min(size) > 0 else frames.shape[2:0:-1]
            items.append((frames, payload["timestamps"], source_size))
        return detections_for_files(self.detectors, items, batch_frames=self.config.runtime.batch_frames)

"""The model stage's work: hash, detect and match frames of many files.

Frames of many files go through the hash model, and every detector, in
shared device batches; each file is then matched against the bank. It runs
in the actors of vscan.runtime.model_pool (or in-process in tests) and keeps
no state between calls: a file's second sampling pass arrives with its
first, so any actor (or a restarted one) can take any call.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Iterator

import numpy as np

from vscan.config import ScanConfig
from vscan.detect.triage_io import add_triage, run_triage
from vscan.runtime.blas_check import load_without_blas_check
from vscan.runtime.confirm_ahead import confirm_in_call
from vscan.runtime.decode_task import merge_passes
from vscan.runtime.deferred_regions import closer_weak_hits, new_sets, search_deferred
from vscan.runtime.file_match import FileMatcher
from vscan.runtime.payload import DecodedFile, ModelResult

__all__ = ["ModelWorker"]

def _limit_kernel_threads(threads: int) -> None:
    """Run the bank's multi-index kernel (vscan.bank.mih_kernel: numba,
    parallel) on this call's thread with at most ``threads`` threads, as the
    hash model runs (Ray already runs a decode per core): with numba's default
    (every core) each file's bank narrowing took 50-75 ms on a loaded 2-core
    machine, 4 ms on one thread (issue #30). numba's setting is per thread.
    OpenCV's pool too, where it is loaded (the rotation search's resizes and turns: its default, every core, took
    2x the CPU of one thread on 2 cores for the same pixels, issue #30); its setting is the process's."""
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and cv2.getNumThreads() != max(1, threads):
        cv2.setNumThreads(max(1, threads))
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _banded_hasher(hasher: Any, index: Any) -> Any:
    """What hashes the scan's frames on the CPU: ``vscan.bank.banded_hash.BandedHasher.hash_detailed`` over the ONNX
    model (the model's bits and quality, bit for bit: its products over the Jarosz operators' non-zero runs; the model
    itself for flat frames), or None (CUDA, the torch backend: the model as it is). Archive frames, 256 px, one thread:
    0.60 -> 0.16 ms a frame; all 1,266 frames a scan of the archive bench hashed (every set) came out the same (issue #30).
    Only with a memory-mapped bank (``index``), whose search kernels start numba anyway: a scan without one (hashes
    kept, triage) would pay numba's import and first compiled call (~0.6 CPU-s) for ~0.44 ms a frame."""
    from vscan.bank.mapped import MappedBank

    if hasher.device != "cpu" or hasher.backend != "onnx" or not isinstance(index, MappedBank):
        return None
    from vscan.bank.banded_hash import BandedHasher

    return BandedHasher(hasher)


def _merged_passes(files: list[tuple], payloads: tuple) -> tuple[list[DecodedFile], list[np.ndarray]]:
    """Each file's payload (two passes merged: DecodedFile.merged), and its
    first pass's frame numbers (vscan.output.hash_store keeps them)."""
    parts = iter(payloads)
    decoded, firsts = [], []
    for *_, passes in files:
        first = next(parts)
        first = first if isinstance(first, DecodedFile) else DecodedFile.from_dict(first)  # a dict: built in-process (tests, benches)
        firsts.append(first.frame_numbers)
        decoded.append(merge_passes(first, next(parts)) if passes > 1 else first)
    return decoded, firsts


def _runs(frames: list[np.ndarray], step: int) -> Iterator[np.ndarray]:
    """The frames of the arrays ``frames`` (uint8 [n, ...] each, in order) in runs of ``step`` (the last shorter), C-contiguous:
    the runs their concatenation would be cut into, with no concatenation. A run inside one array is a view of it; only a run
    across two arrays is copied. ``_hash_all`` concatenated every frame of a call first: a fresh array of every set's frames
    (~3 MB an archive file at 256 px), ~0.3 of the archive bench's 3.1 model CPU-s (issue #30), for runs of 4 on one thread."""
    pending: list[np.ndarray] = []
    have = 0
    for array in frames:
        at = 0
        if have:  # the run begun in the arrays before
            take = array[: step - have]
            pending.append(take)
            have += len(take)
            at = len(take)
            if have == step:
                yield np.concatenate(pending)
                pending, have = [], 0
            else:
                continue
        while len(array) - at >= step:
            yield _read_only(array[at : at + step])
            at += step
        if at < len(array):
            pending, have = [array[at:]], len(array) - at
    if have:
        yield np.concatenate(pending) if len(pending) > 1 else _read_only(pending[0])


def _read_only(run: np.ndarray) -> np.ndarray:
    """``run`` C-contiguous (a view where it is), never written through: its frames are the file's, matched after hashing."""
    run = np.ascontiguousarray(run).view()
    run.flags.writeable = False
    return run


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
        self._hash_threads = int(threads)  # the hash model's onnxruntime threads (0: its own default)
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
        self._banded = _banded_hasher(self.hasher, self.index)
        self.matcher = FileMatcher(config, self.index)  # vscan.runtime.file_match: each file against the bank
        self._warm_bank_search()

    def _warm_bank_search(self) -> None:
        """The memory-mapped bank's search kernel loaded now, while the first files decode: its first search
        imports numba (and the scipy BLAS numba checks for) and loads the compiled kernel from numba's cache,
        0.6-1.3 s that the first model call, and so the scan's first record, waited for (issue #30). A search
        for one hash at radius 0; its answer is not used."""
        from vscan.bank.mapped import MappedBank

        if isinstance(self.index, MappedBank):
            _limit_kernel_threads(self._kernel_threads)
            load_without_blas_check(self._load_kernels)  # (vscan.runtime.blas_check: numba's scipy.linalg not imported)
            import cv2  # noqa: F401  (the rotation search's resize: ~40 ms of CPU a first model call waited for)

            _limit_kernel_threads(self._kernel_threads)  # cv2's pool, now that it is loaded

    def _load_kernels(self) -> None:
        self.index.candidates(np.zeros((1, 32), np.uint8), 0, self.config.matching.min_quality)
        from vscan.hashing import hamming_numba  # the brute force's compiled loop (gates at 64 bits)

        # the tiles' threaded loops too where a gate lookup of 32 hashes (a file's fewest, about) reaches them
        hamming_numba.warm(large=hamming_numba.on_threads(32, len(self.index.index)))
        if self._banded is not None:  # its compiled loops from numba's cache (~30 ms once numba is up), not in the first call
            self._banded.hash_detailed(np.full((1, 16, 16, 3), 128, np.uint8) + np.arange(16, dtype=np.uint8)[:, None, None])

    def provider(self) -> str:
        return self.hasher.provider

    def run(self, files: list[tuple[int, str | None, str | None, int]], *payloads: DecodedFile) -> list[ModelResult]:
        """``files``: (key, sha256, md5, passes) per file, whose ``passes``
        payloads (1, or 2: an adaptive first pass, then its second) follow in
        ``payloads`` in order. One ModelResult per file: ``qualities``,
        ``matches``, ``timings`` (seconds per stage), and ``refine`` (the
        second pass to decode) when the sampling policy asks.

        Everything the call hashes (every file's frames, and their
        border-free and overlay-filled versions) goes through the device in
        shared batches (``hash_batch_frames``), and so does every detector: a
        call's cost is its frame count, not its file count."""
        t0 = time.perf_counter()
        _limit_kernel_threads(self._kernel_threads)
        decoded, firsts = _merged_passes(files, payloads)
        hashed, frames_hashed = self._hash_sets(decoded)
        t1 = time.perf_counter()
        hash_share = (t1 - t0) / max(frames_hashed, 1)
        detected = self._detect_all(decoded) if self.detectors else None
        triaged = run_triage(self.triage, decoded) if self.triage is not None else None
        detect_share = (time.perf_counter() - t1) / max(sum(len(f.frames) for f in decoded), 1)
        out = []
        # A first pass with its confirmation decoded ahead keeps its plain match's searches for the confirmation's (the same
        # frames and one more: only the new frame's hashes are searched where the bank it narrows to is the same).
        kept = [{} if f.ahead is not None else None for f in decoded]
        for i, ((key, sha256, md5, passes), file) in enumerate(zip(files, decoded)):
            result = self._matched(key, file, hashed[i], sha256, md5, firsts[i], kept=kept[i])
            result, decoded[i] = self._deferred_regions(result, file, hashed[i], sha256, md5, firsts[i])
            file = decoded[i]
            decode_hashed = file.region is not None and file.region.hashes is not None  # a still's windows, hashed where they were made
            result["timings"]["hash"] = hash_share * sum(len(q) for k, (_, q) in hashed[i].items() if k != "region_frames" or not decode_hashed)
            if detected is not None:
                result["detections"], result["detection_timeline"] = detected[i]
                result["timings"]["detect"] = detect_share * len(file.frames)
            if triaged is not None:
                add_triage(result, triaged[i])  # evidence, timeline series, triage summary, moments
                result["timings"]["detect"] = detect_share * len(file.frames)
            if passes == 1:
                self._refine(result, file)
            out.append(result)
        # A first pass that decides, with its confirmation decoded ahead: matched again with it here (no second decode or call).
        match = lambda i, both, sets: self._matched(files[i][0], both, sets, files[i][1], files[i][2], firsts[i], kept=kept[i])  # noqa: E731
        frames_hashed += confirm_in_call(decoded, hashed, out, self._hash_sets, match)[1]
        out = [ModelResult.from_dict(r) for r in out]
        for name, value in (("calls", 1), ("files", len(files)), ("frames", frames_hashed), ("busy_seconds", time.perf_counter() - t0)):
            self._stats[name] += value
        self._stats["max_frames_per_call"] = max(self._stats["max_frames_per_call"], frames_hashed)
        return out

    def _matched(self, key: int, file: DecodedFile, hashed: dict, sha256: str | None, md5: str | None, first_numbers: np.ndarray,
                 *, kept: dict | None = None) -> dict[str, Any]:  # fmt: skip
        """One file's match result (vscan.runtime.file_match), keyed, with its frame hashes where kept (``kept``:
        the plain match's searches kept between a first pass and its confirmation, ``FileMatcher.file_result``)."""
        result = self.matcher.file_result(file, hashed, sha256, md5, kept=kept)
        result["key"] = key
        if self.config.runtime.keep_frame_hashes:  # vscan scan --hash-store: the driver stores them, the record never carries them
            from vscan.output.hash_store import kept_hashes

            result["frame_hashes"] = kept_hashes(file, hashed, first_numbers)
        return result

    def _deferred_regions(self, result: dict[str, Any], file: DecodedFile, hashed: dict, sha256: str | None, md5: str | None,
                          first_numbers: np.ndarray) -> tuple[dict[str, Any], DecodedFile]:  # fmt: skip
        """The file's region search, left to this call by its decode task, where its plain match
        does not decide (vscan.runtime.deferred_regions): what it adds hashed, matched again."""
        if not file.regions_deferred or self.index is None:
            return result, file
        t0 = time.perf_counter()
        found = search_deferred(file, result["matches"])
        searched = time.perf_counter() - t0
        if found is None:
            result["timings"]["regions"] = result["timings"].get("regions", 0.0) + searched
            return result, file
        sets = new_sets(found, hashed)
        hashes, quality = self._hash_all([frames for _, frames in sets])
        offset = 0
        for name, frames in sets:
            hashed[name] = (hashes[offset : offset + len(frames)], quality[offset : offset + len(frames)])
            offset += len(frames)
        searched = time.perf_counter() - t0  # the search and hashing what it added
        again = self._matched(result["key"], found, hashed, sha256, md5, first_numbers)
        again["timings"] = {k: result["timings"].get(k, 0.0) + again["timings"].get(k, 0.0) for k in {*result["timings"], *again["timings"]}}
        again["timings"]["regions"] = again["timings"].get("regions", 0.0) + searched
        again["matches"] = closer_weak_hits(result["matches"], again["matches"])
        return again, found

    def _refine(self, result: dict[str, Any], file: DecodedFile) -> None:
        """Adaptive sampling: the policy decides on a first pass whether to decode again (``refine``)."""
        refine = getattr(self.config.sampling.policy, "refine", None)
        if refine is None:
            return
        moments = {"moments": result.pop("triage_moments")} if result.get("triage_moments") else {}
        # The first pass's frame times: a first pass that decides is confirmed, not densified (Adaptive.confirm_frames).
        cuts = {"cut_seconds": file.cut_seconds} if file.cut_seconds else {}  # looked after if the first pass does not decide
        second = refine(result["matches"], file.duration_seconds, sampled_seconds=file.timestamps, **moments, **cuts)
        if second is not None:
            result["refine"] = second

    def _hash_sets(self, decoded: list[DecodedFile]) -> tuple[list[dict[str, tuple[np.ndarray, np.ndarray]]], int]:
        """Every file's frame sets hashed in shared batches: per file, set name
        -> (variants [n, 8, 32], quality [n]); and the frames hashed. Without a
        bank only the original frames (the triage and detectors need no others)."""
        sets = [(i, "frames", f.frames) for i, f in enumerate(decoded)]
        if self.index is not None:
            for i, f in enumerate(decoded):
                inset = f.region is not None and f.region.frames is not None and f.region.rows is None
                sets += [(i, k, v.frames) for k, v in (("unbordered_frames", f.unbordered), ("unoverlaid_frames", f.unoverlaid)) if v is not None]
                sets += [(i, "region_frames", f.region.frames)] if inset else []
        hashes, quality = self._hash_all([array for *_, array in sets])
        hashed: list[dict[str, tuple[np.ndarray, np.ndarray]]] = [{} for _ in decoded]
        offset = 0
        for i, kind, array in sets:
            hashed[i][kind] = (hashes[offset : offset + len(array)], quality[offset : offset + len(array)])
            offset += len(array)
        for i, f in enumerate(decoded):  # a still's small windows (vscan.frames.regions.still_windows): their own batches
            if self.index is None or f.region is None or f.region.rows is None:
                continue
            if f.region.hashes is not None:  # hashed where they were made (still_window_hashes)
                hashed[i]["region_frames"] = (f.region.hashes, f.region.quality)
            else:
                hashed[i]["region_frames"] = self._hash_all([f.region.frames])
                offset += len(f.region.frames)
        return hashed, offset

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
        step = self.config.runtime.hash_batch_frames or self._auto_hash_batch()
        for start, chunk in zip(range(0, total, step), _runs(frames, step)):
            n = len(chunk)
            if n < step and total > step and self.hasher.device != "cpu":
                # A few fixed batch shapes keep GPU memory flat (onnxruntime
                # grows its arena per new shape): pad the tail batch. Not on CPU, where
                # calls of up to one batch have every shape anyway and the padding was hashed
                # for nothing (a sweep's call of 46 frames hashed 64; the hashes are the same
                # in any batch: 204 archive frames in batches of 1-31, alone and padded to 32).
                chunk = np.concatenate([chunk, np.zeros((step - n, *chunk.shape[1:]), np.uint8)])
            result = self._banded.hash_detailed(chunk) if self._banded is not None else self.hasher.hash_frames(chunk)
            hashes[start : start + n] = result.hashes[:n]
            quality[start : start + n] = result.quality[:n]
        return hashes, quality

    def _auto_hash_batch(self) -> int:
        """Frames per hash-model run where ``hash_batch_frames`` is None: on CUDA ``batch_frames``; on CPU 4 with one
        model thread (a 2- or 3-core node's model), else 32. One thread hashed real archive frames at 0.28 ms a frame
        in runs of 4 against 0.40 in runs of 32 (AMD EPYC, 1 MiB L2 a core, 3 passes each, load 22): a run's frames
        and its float intermediates stay in the core's cache; the hashes are the same in any run. More threads were
        not measured (a 2-core machine), so they keep 32."""
        if self.hasher.device != "cpu":
            return self.config.runtime.batch_frames
        return 4 if self._hash_threads == 1 else 32

    def _detect_all(self, decoded: list[DecodedFile]) -> list[tuple[list, dict[str, Any] | None]]:
        """Every classifier/detector over all files' frames in shared batches:
        (LabelEvidence list, timeline) per file."""
        from vscan.detect.adapters import detections_for_files

        items = []
        for f in decoded:
            size = f.source_size
            source_size = (int(size[0]), int(size[1])) if size is not None and min(size) > 0 else f.frames.shape[2:0:-1]
            items.append((f.frames, f.timestamps, source_size))
        return detections_for_files(self.detectors, items, batch_frames=self.config.runtime.batch_frames)

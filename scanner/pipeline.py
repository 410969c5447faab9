"""The streaming scan pipeline on Ray.

    discover ──paths──▶ decode tasks (Ray workers: decode, sample, resize,
                        digest; one file each, may crash or hang harmlessly)
                 ──uint8 frames [n, S, S, 3] (object store, never the driver)──▶
                        model actor (one long-lived process: batches frames
                        across files, runs the ONNX hash model, matches
                        against the bank with the Hamming kernels)
                 ──hashes + matches──▶ driver: risk policy, record, sink

Backpressure: at most ``decode_inflight`` decode tasks and ``model_inflight``
model calls are outstanding, and the driver submits a decode only when it
has room; memory therefore stays bounded whatever the number of files.
Every file yields exactly one record, written as soon as that file is done.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal

import numpy as np

from scanner._errors import ConfigError, DecodeTimeoutError, VscanError
from scanner.decode import FixedRate, SamplingPolicy
from scanner.hashes import file_digests
from scanner.risk import DefaultRiskPolicy, Evidence, RiskPolicy
from scanner.sinks import Sink

__all__ = ["ScanConfig", "ScanSummary", "scan", "discover", "decode_for_scan", "ModelWorker", "MEDIA_SUFFIXES"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MEDIA_SUFFIXES = frozenset(
    ".mp4 .mov .mkv .avi .webm .m4v .wmv .flv .mpg .mpeg .ts .3gp .gif .jpg .jpeg .png .webp .bmp .tif .tiff".split()
)


@dataclass(frozen=True)
class ScanConfig:
    """Everything that decides what a scan computes (recorded in the output)."""

    policy: SamplingPolicy = field(default_factory=lambda: FixedRate(1.0))
    decoder: Literal["auto", "decord", "pyav"] = "auto"
    #: Frames are decoded straight to ``frame_size`` x ``frame_size`` for
    #: hashing: PDQ maps any frame to 64x64, and one size lets batches mix files.
    frame_size: int = 256
    max_frames_per_file: int = 4096
    device: Literal["auto", "cpu", "cuda"] = "auto"
    hash_backend: Literal["onnx", "torch"] = "onnx"
    #: Frames the driver gathers (across files) before a model call.
    batch_frames: int = 128
    #: Frames per hash-model run inside a call; None: 32 on CPU (onnxruntime
    #: PDQ ran 2,500 frames/s at 32 and 1,700 at 128: cache-sized batches),
    #: ``batch_frames`` on CUDA.
    hash_batch_frames: int | None = None
    decode_inflight: int | None = None
    model_inflight: int = 2
    file_timeout_seconds: float = 600.0
    min_quality: int = 50
    distance_threshold: int = 31
    all_files: bool = False
    #: False lets sparse sampling take the next reference frame instead of a
    #: skipped B-frame (PyAV skip_frame=NONREF): about half the decoding.
    exact_frames: bool = False
    #: "robust": border removal, all 8 dihedral variants, bank extra rows and
    #: temporal alignment (scanner.match); "vpdq": plain vPDQ matching.
    match_mode: Literal["robust", "vpdq"] = "robust"
    #: Classifier/detector manifest paths (models/_manifest.py); every model
    #: runs on the same decoded frames as the hash model.
    models: tuple[str, ...] = ()
    #: zip/tar inputs (scanner.archives): a member is refused, never
    #: inflated, past this size, this uncompressed/compressed ratio, or
    #: past this much uncompressed content in its archive.
    archive_member_max_bytes: int = 1 << 30
    archive_max_ratio: float = 100.0
    archive_total_max_bytes: int = 16 << 30
    #: Files under ``small_file_bytes`` are decoded up to ``small_file_group``
    #: to one Ray task while every decode slot is busy: for them the per-task
    #: cost (scheduling, object store entries, a result round trip) is a large
    #: part of the work.
    small_file_bytes: int = 2 << 20
    small_file_group: int = 8

    def __post_init__(self) -> None:
        if min(self.archive_member_max_bytes, self.archive_total_max_bytes) < 1 or not self.archive_max_ratio >= 1:
            raise ConfigError(
                "Invalid archive limits. Supported values are archive_member_max_bytes >= 1, "
                "archive_total_max_bytes >= 1 and archive_max_ratio >= 1."
            )
        if self.frame_size < 16:
            raise ConfigError(f"Invalid frame_size ({self.frame_size}). Supported values are >= 16.")
        if self.file_timeout_seconds <= 0:
            raise ConfigError(f"Invalid file_timeout_seconds ({self.file_timeout_seconds}). Supported values are > 0.")
        if self.small_file_group < 1 or self.small_file_bytes < 0:
            raise ConfigError(
                f"Invalid small-file grouping ({self.small_file_group} files under {self.small_file_bytes} bytes). "
                "Supported values are small_file_group >= 1 and small_file_bytes >= 0."
            )
        if self.hash_batch_frames is not None and self.hash_batch_frames < 1:
            raise ConfigError(f"Invalid hash_batch_frames ({self.hash_batch_frames}). Supported values are >= 1 or None.")
        if self.batch_frames < 1:
            raise ConfigError(f"Invalid batch_frames ({self.batch_frames}). Supported values are >= 1.")


@dataclass
class ScanSummary:
    files: int = 0
    ok: int = 0
    errors: int = 0
    matched: int = 0
    video_seconds: float = 0.0
    frames_sampled: int = 0
    wall_seconds: float = 0.0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    #: Queue depths and stage utilisation (_QueueStats.report), for profiling.
    pipeline: dict[str, Any] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> None:
        self.files += 1
        if record["status"] == "ok":
            self.ok += 1
            self.video_seconds += record.get("duration_seconds") or 0.0
            self.frames_sampled += record.get("frames_sampled") or 0
            if any(m.get("is_match") for m in record["matches"]):
                self.matched += 1
        else:
            self.errors += 1
            kind = record["error"]["type"]
            self.errors_by_type[kind] = self.errors_by_type.get(kind, 0) + 1

    @property
    def video_seconds_per_second(self) -> float:
        return self.video_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def files_per_second(self) -> float:
        return self.files / self.wall_seconds if self.wall_seconds > 0 else 0.0


# --------------------------------------------------------------------------
# discover
# --------------------------------------------------------------------------


def discover(paths: Iterable[str | os.PathLike], *, all_files: bool = False, archive_limits=None) -> Iterator[str]:
    """Stream input files: named files always, folders walked in sorted order
    (media suffixes only unless ``all_files``). A missing path is yielded too,
    so it gets its own error record. Zip/tar files yield their media members
    as ``archive.zip!/member`` (scanner.archives)."""
    from scanner.archives import ArchiveLimits, expand, is_archive

    limits = archive_limits or ArchiveLimits()
    for root in paths:
        root = Path(root)
        if not root.is_dir():
            yield from expand(str(root), all_files=all_files, limits=limits)
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            # A folder (or a link to one) named like media is not silently
            # passed over: it gets its own error record, and is still walked.
            media_dirs = [d for d in dirnames if Path(d).suffix.lower() in MEDIA_SUFFIXES]
            for name in sorted(filenames + media_dirs):
                if all_files or Path(name).suffix.lower() in MEDIA_SUFFIXES or is_archive(name):
                    yield from expand(os.path.join(dirpath, name), all_files=all_files, limits=limits)


# --------------------------------------------------------------------------
# decode (runs in Ray worker processes; plain functions, testable alone)
# --------------------------------------------------------------------------


def _to_square(rgb: np.ndarray, size: int) -> np.ndarray:
    if rgb.shape[1:3] == (size, size):
        return rgb
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(rgb).permute(0, 3, 1, 2).to(torch.float32)
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def error_info(exc: BaseException) -> dict[str, str]:
    kind = type(exc).__name__ if isinstance(exc, VscanError) else f"InternalError:{type(exc).__name__}"
    return {"type": kind, "message": str(exc) or repr(exc)}


def decode_for_scan(
    path: str, config: ScanConfig, known_sha256: frozenset[str] | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Digest, decode, sample and resize one file.

    Returns ``(summary, payload)``: a small dict for the driver, and the
    frames for the model actor (None on error). Never raises for a bad file.
    """
    from scanner import archives
    from scanner.decode import check_readable, choose_backend, open_decoder

    if archives.handles(path):  # a zip/tar member, read into memory (or an archive that failed listing)
        return archives.decode_member_for_scan(path, config, known_sha256, decode_for_scan)
    t0 = time.perf_counter()
    summary: dict[str, Any] = {"path": path, "sha256": None, "md5": None, "size_bytes": None, "error": None}
    try:
        check_readable(path)
        summary["sha256"], summary["md5"], summary["size_bytes"] = file_digests(path)
        if known_sha256 is not None and summary["sha256"] in known_sha256:
            # Same content already scanned with these versions (scanner.resume --state).
            summary["unchanged"] = True
            summary["timings"] = {"digest": time.perf_counter() - t0}
            return summary, None
        t1 = time.perf_counter()
        decoder = open_decoder(path, choose_backend(config.policy, config.decoder))
        if not config.exact_frames and hasattr(decoder, "skip_nonref"):
            decoder.skip_nonref = True  # sparse samples: a frame or two off target, half the decoding
        if hasattr(decoder, "thread_type"):
            # Ray already runs one decode per core; frame threads would add ~26 ms
            # of start-up per file (35 vs 9.5 ms for a keyframe pass, measured).
            decoder.thread_type = "SLICE"
        meta = decoder.probe(path)
        summary["media"] = {
            "kind": "image" if meta.is_still_image else "video",
            "decoder": meta.backend,
            "codec": meta.codec,
            "width": meta.width,
            "height": meta.height,
            "fps": meta.fps,
        }
        summary["duration_seconds"] = float(meta.duration_seconds)
        frames, numbers, times = [], [], []
        count = 0
        from scanner.borders import BorderTap  # borders found on the decoded frames
        from scanner.overlays import add_unoverlaid

        tap = BorderTap(lambda rgb: _to_square(rgb, config.frame_size), enabled=config.match_mode == "robust")
        square = (config.frame_size, config.frame_size)  # straight to the model's input size: no resize pass
        for batch in tap.watch(decoder.iter_frames(path, config.policy, batch_size=64, size=square)):
            take = min(len(batch), config.max_frames_per_file - count)
            frames.append(batch.rgb[:take])
            numbers.append(batch.frame_indices[:take])
            times.append(batch.pts_seconds[:take])
            count += take
            if count >= config.max_frames_per_file:
                break
        t2 = time.perf_counter()
        if count == 0:
            payload = _empty_payload(config)
        else:
            payload = {
                "frames": np.concatenate(frames),
                "frame_numbers": np.concatenate(numbers).astype(np.int64),
                "timestamps": np.concatenate(times).astype(np.float64),
            }
        summary["frames_sampled"] = count
        payload["duration_seconds"] = np.float64(meta.duration_seconds)
        summary["sampling"] = config.policy.describe()
        tap.add_to(payload)
        # scanner.overlays: static logo/box filled. Two frames suffice here: a
        # wrong overlay only adds a query version that can decide a match
        # through a >= 5 s aligned run alone, and adaptive first passes
        # (keyframes) often have just two or three frames.
        add_unoverlaid(payload, enabled=config.match_mode == "robust", min_frames=2)
        payload["source_size"] = np.array([meta.width, meta.height], np.int64)  # (w, h): detectors letterbox with it
        summary["frames_decoded"] = max(int(decoder.frames_decoded), count)
        summary["timings"] = {"digest": t1 - t0, "decode": t2 - t1}
        return summary, payload
    except Exception as exc:  # a bad file is a record, never a crash of the scan
        summary["error"] = error_info(exc)
        summary["timings"] = {"decode": time.perf_counter() - t0}
        return summary, None


#: Payload entries with one row per sampled frame (the rest are per file).
PER_FRAME_KEYS = ("frames", "frame_numbers", "timestamps", "unbordered_frames", "unoverlaid_frames")


def _merge_passes(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One payload from two sampling passes over a file, in frame order."""
    merged = {**second, **{k: v for k, v in first.items() if k not in PER_FRAME_KEYS}}
    if ("unbordered_frames" in first) != ("unbordered_frames" in second):
        merged.pop("unbordered_frames", None)  # border finding disagreed: keep only plain frames
        merged.pop("border_box", None)
    if ("unoverlaid_frames" in first) != ("unoverlaid_frames" in second):
        merged.pop("unoverlaid_frames", None)  # overlay finding disagreed: likewise
        merged.pop("overlay_box", None)
    numbers = np.concatenate([first["frame_numbers"], second["frame_numbers"]])
    _, keep = np.unique(numbers, return_index=True)  # sorted by frame number, first pass wins ties
    for key in PER_FRAME_KEYS:
        if key in first and key in second:
            merged[key] = np.concatenate([first[key], second[key]])[keep]
    return merged


def _empty_payload(config: ScanConfig) -> dict[str, np.ndarray]:
    size = config.frame_size
    return {
        "frames": np.zeros((0, size, size, 3), np.uint8),
        "frame_numbers": np.zeros(0, np.int64),
        "timestamps": np.zeros(0, np.float64),
    }


def _merge_summaries(first: dict[str, Any], second: dict[str, Any], policy_text: str) -> dict[str, Any]:
    merged = {**first}
    for key in ("frames_decoded", "frames_sampled"):
        merged[key] = int(first.get(key, 0)) + int(second.get(key, 0))
    timings = dict(first.get("timings", {}))
    for key, value in second.get("timings", {}).items():
        timings[key] = timings.get(key, 0.0) + value
    merged["timings"] = timings
    merged["sampling"] = f"{first.get('sampling') or ''} + {policy_text}".strip(" +")
    return merged


def _decode_task(paths: list[str], config: ScanConfig, known_sha256=None):
    """decode_for_scan of one file, or of a group of small files, in a Ray
    worker, each file under the per-file time limit.

    Returns ``(summaries, *payloads)``: the summaries go to the driver, each
    payload to the object store for the model actor. The clock starts when
    decoding of that file really starts (not when the driver queued the
    task), and faulthandler's watchdog thread ends the process even when the
    decoder hangs inside C code (decord's get_batch can): the driver sees the
    worker die and records DecodeTimeoutError (a group is first split).
    """
    import faulthandler

    summaries, payloads = [], []
    for path in paths:
        faulthandler.dump_traceback_later(config.file_timeout_seconds, exit=True)
        try:
            summary, payload = decode_for_scan(path, config, known_sha256)
        finally:
            faulthandler.cancel_dump_traceback_later()
        summaries.append(summary)
        payloads.append(payload)
    return (summaries, *payloads)


def _is_small(path: str, limit: int) -> bool:
    """A plain file under ``limit`` bytes (archive members and unreadable paths are not)."""
    from scanner.archives import handles

    if limit <= 0 or handles(path):
        return False
    try:
        return os.stat(path).st_size < limit
    except OSError:
        return False


class _QueueStats:
    """Time-weighted depths of the pipeline's queues, sampled by the driver
    loop: how busy the decode slots are, how many finished files wait for
    the model stage, and how many model calls are in flight. Says which
    stage is the bottleneck: decode-bound when the slots are always full and
    the model stage waits; model-bound when files queue up in front of it."""

    def __init__(self, slots: int, model_inflight: int) -> None:
        self.slots, self.model_inflight = slots, model_inflight
        self.t0 = self.last = time.monotonic()
        self.sums = {"decode_running": 0.0, "ready_files": 0.0, "ready_frames": 0.0, "model_calls": 0.0}
        self.all_slots_busy = self.model_idle = self.model_full = 0.0
        self.max_ready_frames = 0
        self.calls: list[tuple[int, int]] = []  # (files, frames) per model call
        self.decode_tasks = self.decode_files = 0
        self.sink_seconds = 0.0  # in sink.write (the driver's thread)

    def sample(self, decode_running: int, ready_files: int, ready_frames: int, model_calls: int) -> None:
        now = time.monotonic()
        dt, self.last = now - self.last, now
        for key, value in zip(self.sums, (decode_running, ready_files, ready_frames, model_calls)):
            self.sums[key] += value * dt
        self.all_slots_busy += dt * (decode_running >= self.slots)
        self.model_idle += dt * (model_calls == 0)
        self.model_full += dt * (model_calls >= self.model_inflight)
        self.max_ready_frames = max(self.max_ready_frames, ready_frames)

    def report(self, model: dict[str, float] | None) -> dict[str, Any]:
        wall = max(self.last - self.t0, 1e-9)
        out: dict[str, Any] = {f"mean_{k}": round(v / wall, 3) for k, v in self.sums.items()}
        out.update(
            decode_slots=self.slots,
            decode_all_slots_busy_fraction=round(self.all_slots_busy / wall, 3),
            model_no_call_fraction=round(self.model_idle / wall, 3),
            model_calls_at_limit_fraction=round(self.model_full / wall, 3),
            max_ready_frames=self.max_ready_frames,
            sink_seconds=round(self.sink_seconds, 4),
            decode_tasks=self.decode_tasks,
            decode_files=self.decode_files,
            model_calls=len(self.calls),
            mean_files_per_call=round(float(np.mean([c[0] for c in self.calls])), 2) if self.calls else 0.0,
            mean_frames_per_call=round(float(np.mean([c[1] for c in self.calls])), 1) if self.calls else 0.0,
        )
        if model:
            out["model_busy_seconds"] = round(model["busy_seconds"], 3)
            out["model_busy_fraction"] = round(model["busy_seconds"] / wall, 3)
            out["model_frames_hashed"] = int(model["frames"])
        return out


# --------------------------------------------------------------------------
# model stage: one long-lived actor per device
# --------------------------------------------------------------------------


class ModelWorker:
    """Hashes frames from many files in shared batches, then matches each
    file against the bank. Lives in one Ray actor (or in-process in tests)."""

    def __init__(self, config: ScanConfig, bank_path: str | None) -> None:
        from scanner.hashing import PDQHasher

        self.config = config
        self._first_pass: dict[int, dict[str, np.ndarray]] = {}  # key -> payload awaiting its second pass
        self._stats = {"calls": 0, "files": 0, "frames": 0, "max_frames_per_call": 0, "busy_seconds": 0.0}
        self.hasher = PDQHasher(backend=config.hash_backend, device=config.device)
        self.index = None
        self.detectors = []
        if config.models:
            from models._manifest import load_manifest
            from scanner.detect import Detector

            self.detectors = [Detector(load_manifest(m), device=config.device) for m in config.models]
        if bank_path is not None:
            from scanner.bank import Bank

            with Bank(bank_path) as bank:
                self.index = bank.load_index()

    def provider(self) -> str:
        return self.hasher.provider

    def run(self, files: list[tuple[int, str | None, str | None]], *payloads: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """``files``: (key, sha256, md5) per payload. One result dict per file:
        ``key``, ``qualities``, ``matches``, ``timings`` (seconds per stage).

        Everything the call hashes (every file's frames, and their
        border-free and overlay-filled versions) goes through the device in
        shared batches (``hash_batch_frames``), and so does every detector: a
        call's cost is its frame count, not its file count."""
        t0 = time.perf_counter()
        final = [key in self._first_pass for key, *_ in files]
        payloads = tuple(_merge_passes(self._first_pass.pop(key), p) if key in self._first_pass else p for (key, *_), p in zip(files, payloads))
        sets = [(i, "frames") for i in range(len(payloads))]
        if self.index is not None:
            sets += [(i, k) for i, p in enumerate(payloads) for k in ("unbordered_frames", "unoverlaid_frames") if p.get(k) is not None]
        arrays = [payloads[i][k] for i, k in sets]
        hashes, quality = self._hash_all(arrays)
        hashed: list[dict[str, tuple[np.ndarray, np.ndarray]]] = [{} for _ in payloads]  # per file: set -> (variants, quality)
        offset = 0
        for (i, kind), array in zip(sets, arrays):
            hashed[i][kind] = (hashes[offset : offset + len(array)], quality[offset : offset + len(array)])
            offset += len(array)
        t1 = time.perf_counter()
        hash_share = (t1 - t0) / max(offset, 1)
        detected = self._detect_all(payloads) if self.detectors else None
        detect_share = (time.perf_counter() - t1) / max(sum(len(p["frames"]) for p in payloads), 1)
        out = []
        for i, ((key, sha256, md5), payload, is_final) in enumerate(zip(files, payloads, final)):
            result = self._file_result(payload, hashed[i], sha256, md5)
            result["key"] = key
            result["timings"]["hash"] = hash_share * sum(len(q) for _, q in hashed[i].values())
            if detected is not None:
                result["detections"], result["detection_timeline"] = detected[i]
                result["timings"]["detect"] = detect_share * len(payload["frames"])
            refine = getattr(self.config.policy, "refine", None)
            if refine is not None and not is_final:
                # Adaptive sampling: the policy decides, the pipeline decodes again.
                second = refine(result["matches"], float(payload.get("duration_seconds", 0.0)))
                if second is not None:
                    self._first_pass[key] = payload
                    result["refine"] = second
            out.append(result)
        self._stats["calls"] += 1
        self._stats["files"] += len(files)
        self._stats["frames"] += offset
        self._stats["max_frames_per_call"] = max(self._stats["max_frames_per_call"], offset)
        self._stats["busy_seconds"] += time.perf_counter() - t0
        return out

    def stats(self) -> dict[str, float]:
        """Work done so far: calls, files, frames hashed, busy seconds."""
        return dict(self._stats)

    def _hash_all(self, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Frames of many files -> (hashes uint8 [N, 8, 32], quality int32 [N]),
        in device batches of ``batch_frames`` that mix files."""
        total = sum(len(f) for f in frames)
        hashes = np.zeros((total, 8, 32), np.uint8)
        quality = np.zeros(total, np.int32)
        if not total:
            return hashes, quality
        stacked = np.concatenate(frames)
        step = self.config.hash_batch_frames or (32 if self.hasher.device == "cpu" else self.config.batch_frames)
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

    def _file_result(
        self, payload: dict[str, np.ndarray], hashed: dict[str, tuple[np.ndarray, np.ndarray]], sha256: str | None, md5: str | None
    ) -> dict[str, Any]:
        """One file's matches from its hashed frame sets (``frames`` and, when
        present, ``unbordered_frames`` / ``unoverlaid_frames``: (variants, quality))."""
        from scanner.hashes import FrameHashes

        t0 = time.perf_counter()
        numbers, times = payload["frame_numbers"], payload["timestamps"]

        def frame_hashes(kind: str):
            variants, quality = hashed[kind]
            return FrameHashes(numbers, times, quality, np.ascontiguousarray(variants[:, 0])), variants

        query, variants = frame_hashes("frames")
        unbordered = None
        if "unbordered_frames" in hashed:
            unbordered = (*frame_hashes("unbordered_frames"), payload.get("border_box"))
        unoverlaid = frame_hashes("unoverlaid_frames") if "unoverlaid_frames" in hashed else None
        matches = self._match(query, variants, sha256, md5, unbordered=unbordered, unoverlaid=unoverlaid)
        return {"qualities": query.qualities, "matches": matches, "timings": {"match": time.perf_counter() - t0}}

    def _detect_all(self, payloads: tuple[dict[str, np.ndarray], ...]) -> list[tuple[list, dict[str, Any] | None]]:
        """Every classifier/detector over all files' frames in shared batches:
        (LabelEvidence list, timeline) per file."""
        from scanner.detect import detections_for_files

        items = []
        for payload in payloads:
            frames = payload["frames"]
            size = payload.get("source_size")
            source_size = (int(size[0]), int(size[1])) if size is not None and min(size) > 0 else frames.shape[2:0:-1]
            items.append((frames, payload["timestamps"], source_size))
        return detections_for_files(self.detectors, items, batch_frames=self.config.batch_frames)

    def _match(self, query, variants: np.ndarray, sha256: str | None, md5: str | None, unbordered=None, unoverlaid=None) -> list:
        """Exact digest hits first (one per entry, SHA-256 preferred), then perceptual matches.

        Robust mode matches all 8 dihedral ``variants`` [N, 8, 32] and, for a
        file with borders, ``unbordered`` = (FrameHashes, variants, border box)
        of the same samples with the borders removed, and for a file with a
        static overlay ``unoverlaid`` = (FrameHashes, variants) of the samples
        with it filled (scanner.overlays, scanner.match)."""
        if self.index is None:
            return []
        from scanner.match import match_digests, match_frames

        matches, seen = [], set()
        for hit in match_digests(sha256, md5, self.index):
            if hit.bank_entry_id not in seen:
                seen.add(hit.bank_entry_id)
                matches.append(hit)
        if len(query):
            matches += match_frames(
                query,
                self.index,
                min_quality=self.config.min_quality,
                distance_threshold=self.config.distance_threshold,
                **self._robust_args(variants, unbordered, unoverlaid),
            )
        return matches

    def _robust_args(self, variants: np.ndarray, unbordered, unoverlaid=None) -> dict[str, Any]:
        if self.config.match_mode != "robust":
            return {}
        from scanner.borders import box_kind

        args: dict[str, Any] = {"variants": variants}
        if unbordered is not None:
            args.update(unbordered=unbordered[0], unbordered_variants=unbordered[1], border_kind=box_kind(unbordered[2]))
        if unoverlaid is not None:
            args.update(unoverlaid=unoverlaid[0], unoverlaid_variants=unoverlaid[1])
        return args


# --------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------


def _match_dict(m, duration_seconds: float | None) -> dict[str, Any]:
    exact = m.signal != "pdq"
    matched_seconds = (duration_seconds or 0.0) if exact else m.matched_seconds
    return {
        "bank_entry_id": m.bank_entry_id,
        "label": m.label,
        "kind": "exact" if exact else "perceptual",
        "algorithm": m.signal,
        "is_match": m.is_match,
        "query_pct": round(m.query_pct, 3),
        "compared_pct": round(m.compared_pct, 3),
        "matched_seconds": round(matched_seconds, 3),
        "query_span_seconds": None if exact or np.isnan(m.query_span_seconds[0]) else [round(v, 3) for v in m.query_span_seconds],
        "reference_span_seconds": None
        if exact or np.isnan(m.reference_span_seconds[0])
        else [round(v, 3) for v in m.reference_span_seconds],
        "distance_min": m.distance_min,
        **_robust_match_fields(m, exact),
    }


def _robust_match_fields(m, exact: bool) -> dict[str, Any]:
    """How a robust match was found (scanner.match): path, alignment, spans."""
    if exact or m.decided_by is None and not m.path and np.isnan(m.align_rate):
        return {}

    def span(v):
        return None if np.isnan(v[0]) else [round(float(x), 3) for x in v]

    return {
        "path": list(m.path) or ["original"],
        "dihedral": m.dihedral,
        "decided_by": m.decided_by,
        "alignment": None
        if np.isnan(m.align_rate)
        else {
            "rate": round(m.align_rate, 4),
            "offset_seconds": round(m.align_offset_seconds, 3),
            "seconds": round(m.aligned_seconds, 3),
            "frames": m.aligned_frames,
            "query_span_seconds": span(m.aligned_query_span_seconds),
            "reference_span_seconds": span(m.aligned_reference_span_seconds),
        },
    }


def build_record(
    summary: dict[str, Any],
    *,
    config: ScanConfig,
    matches: list | None = None,
    risk_policy: RiskPolicy,
    timings: dict[str, float] | None = None,
    detections: list | None = None,
    detection_timeline: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ok = summary.get("error") is None
    matches = matches or []
    decision = risk_policy.assess(
        Evidence(path=summary["path"], matches=matches, duration_seconds=summary.get("duration_seconds"), detections=detections or ())
    ) if ok else None
    all_timings = {**summary.get("timings", {}), **(timings or {})}
    return {
        "schema_version": SCHEMA_VERSION,
        "path": summary["path"],
        "sha256": summary.get("sha256"),
        "md5": summary.get("md5"),
        "size_bytes": summary.get("size_bytes"),
        "status": "ok" if ok else "error",
        "error": summary.get("error"),
        "media": summary.get("media"),
        "duration_seconds": summary.get("duration_seconds"),
        "frames_decoded": int(summary.get("frames_decoded", 0)),
        "frames_sampled": int(summary.get("frames_sampled", 0)),
        "sampling": summary.get("sampling") or config.policy.describe(),
        "risk": decision.risk if decision else None,
        "reasons": list(decision.reasons) if decision else [f"error: {summary['error']['type']}"],
        "matches": [_match_dict(m, summary.get("duration_seconds")) for m in matches],
        "detections": [d.to_dict() for d in detections or ()],
        "detection_timeline": detection_timeline,
        "timings": {k: round(float(v), 6) for k, v in all_timings.items()},
    }


# --------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------


def _start_ray(address: str | None) -> bool:
    """Connect to ``address`` or start a local Ray; True when we started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    if address:
        ray.init(address=address, **common)
        return False
    ray.init(
        num_cpus=os.cpu_count() or 1,
        object_store_memory=min(2 << 30, max(256 << 20, int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * 0.1))),
        **common,
    )
    return True


@dataclass
class _Task:
    key: int
    path: str
    attempt_decoder: str
    submitted: float
    started: float | None = None
    summary: dict[str, Any] | None = None
    payload_ref: Any = None
    policy: Any = None  # a second-pass sampling policy (adaptive sampling)
    first_pass: dict[str, Any] | None = None  # the first pass's summary
    group_size: int = 1  # files in the decode task that carries this file


def scan(
    paths: Iterable[str | os.PathLike],
    *,
    sink: Sink,
    bank_path: str | os.PathLike | None = None,
    config: ScanConfig = ScanConfig(),
    ray_address: str | None = None,
    risk_policy: RiskPolicy | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    state_path: str | os.PathLike | None = None,
) -> ScanSummary:
    """Scan files and folders; write one record per file to ``sink``.

    Paths that ``sink`` already holds a record for (same bank, models and
    config) are skipped: a killed scan resumes. ``state_path``: skip unchanged
    content across runs (scanner.resume). The run's manifest goes to the sink."""
    from scanner.resume import RunLedger

    import ray
    from ray.exceptions import RayError, TaskCancelledError, WorkerCrashedError

    risk_policy = risk_policy or DefaultRiskPolicy()
    t_start = time.perf_counter()
    paths = list(paths)
    ledger = RunLedger.begin(sink, paths, config=config, bank_path=bank_path, state_path=state_path)
    started_ray = _start_ray(ray_address)
    summary = ScanSummary()
    run_error: BaseException | None = None
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        gpus = int(ray.cluster_resources().get("GPU", 0))
        slots = max(1, cpus)
        decode_inflight = config.decode_inflight or slots + 2
        decode_remote = ray.remote(max_retries=0, num_cpus=1)(_decode_task)  # num_returns per call: 1 + files
        use_gpu = gpus > 0 and config.device != "cpu"
        actor_cls = ray.remote(num_cpus=0, num_gpus=1 if use_gpu else 0, max_restarts=1)(ModelWorker)
        actor = actor_cls.remote(replace(config, device="cuda" if use_gpu else config.device), str(bank_path) if bank_path else None)
        config_ref = ray.put(config)
        known_ref = ray.put(ledger.known_sha256())

        from scanner.archives import ArchiveLimits

        files = ledger.filter(discover(paths, all_files=config.all_files, archive_limits=ArchiveLimits.from_config(config)))
        exhausted = False
        next_key = 0
        running: deque[list[_Task]] = deque()  # decode tasks, FIFO: the first `slots` are running
        by_meta: dict[Any, list[_Task]] = {}  # summaries ref -> the files of that decode task
        small: list[_Task] = []  # small files gathering into one decode task
        ready_for_model: list[_Task] = []
        model_calls: dict[Any, list[_Task]] = {}
        queues = _QueueStats(slots, config.model_inflight)

        def emit(record: dict[str, Any]) -> None:
            t_sink = time.perf_counter()
            sink.write(ledger.stamp(record))
            queues.sink_seconds += time.perf_counter() - t_sink
            ledger.recorded(record)
            summary.add(record)
            if on_record:
                on_record(record)

        def submit(group: list[_Task]) -> None:
            cfg = config_ref
            first = group[0]
            if first.attempt_decoder != config.decoder or first.policy is not None:  # retries and second passes go alone
                cfg = ray.put(replace(config, decoder=first.attempt_decoder, policy=first.policy or config.policy))
            meta_ref, *payload_refs = decode_remote.options(num_returns=1 + len(group)).remote([t.path for t in group], cfg, known_ref)
            for task, ref in zip(group, payload_refs):
                task.payload_ref, task.group_size = ref, len(group)
            by_meta[meta_ref] = group
            running.append(group)
            queues.decode_tasks += 1
            queues.decode_files += len(group)

        def resubmit_alone(task: _Task) -> None:
            task.started, task.submitted = None, time.monotonic()
            submit([task])

        def fail(task: _Task, error: dict[str, str]) -> None:
            base = task.summary or {"path": task.path}
            emit(build_record({**base, "error": error}, config=config, risk_policy=risk_policy))

        def timed_out(task: _Task) -> None:
            err = DecodeTimeoutError(f"{task.path}: decoding exceeded {config.file_timeout_seconds:g} s")
            fail(task, error_info(err))

        def decoded(task: _Task, file_summary: dict[str, Any]) -> None:
            task.summary = file_summary
            if task.summary.get("unchanged"):
                task.payload_ref = None
                emit(ledger.unchanged_record(task.summary))
                return
            if task.first_pass is not None:
                if task.summary.get("error") is not None:
                    # The second pass failed: finish on the first pass's frames alone.
                    task.summary["frames_sampled"] = task.summary["frames_decoded"] = 0
                    task.summary["error"] = None
                    task.payload_ref = ray.put(_empty_payload(config))
                task.summary = _merge_summaries(task.first_pass, task.summary, task.policy.describe())
            if task.summary.get("error") is not None:
                task.payload_ref = None
                fail(task, task.summary["error"])
            else:
                ready_for_model.append(task)

        while True:
            while not exhausted and len(by_meta) < decode_inflight:
                try:
                    path = next(files)
                except StopIteration:
                    exhausted = True
                    break
                task = _Task(next_key, path, config.decoder, time.monotonic())
                next_key += 1
                # Small files share a task only while every decode slot is taken
                # anyway: grouping must not leave a worker idle (a short scan, the
                # start of a sweep).
                if config.small_file_group > 1 and len(by_meta) >= slots and _is_small(path, config.small_file_bytes):
                    small.append(task)
                    if len(small) >= config.small_file_group:
                        submit(small)
                        small = []
                    continue
                submit([task])
            if small and (exhausted or len(by_meta) < slots):
                submit(small)  # the last small files, or idle slots: don't wait for a full group
                small = []
            now = time.monotonic()
            for i, group in enumerate(running):
                if i >= slots:
                    break
                for task in group:
                    task.started = task.started or now

            # Feed the model: at once when it is idle (records stream out, the
            # device never waits), else once a full batch has gathered.
            pending_frames = sum(t.summary["frames_sampled"] for t in ready_for_model)
            queues.sample(min(len(running), slots), len(ready_for_model), pending_frames, len(model_calls))
            draining = exhausted and not by_meta
            if ready_for_model and len(model_calls) < config.model_inflight and (
                not model_calls or pending_frames >= config.batch_frames or draining or len(ready_for_model) >= 32
            ):
                batch, ready_for_model = ready_for_model, []
                files_arg = [(t.key, t.summary["sha256"], t.summary["md5"]) for t in batch]
                ref = actor.run.remote(files_arg, *[t.payload_ref for t in batch])
                model_calls[ref] = batch
                queues.calls.append((len(batch), pending_frames))

            if not by_meta and not model_calls and not ready_for_model and exhausted and not small:
                break
            waitable = list(by_meta) + list(model_calls)
            if not waitable:
                continue
            done, _ = ray.wait(waitable, num_returns=1, timeout=0.2)
            for ref in done:
                if ref in model_calls:
                    batch = model_calls.pop(ref)
                    try:
                        results = ray.get(ref)
                    except RayError as exc:
                        for task in batch:
                            fail(task, {"type": "ModelError", "message": f"model stage failed: {exc}"})
                        continue
                    for task, result in zip(batch, results):
                        if result.get("refine") is not None:
                            task.first_pass, task.policy = task.summary, result["refine"]
                            resubmit_alone(task)
                            continue
                        emit(
                            build_record(
                                task.summary,
                                config=config,
                                matches=result["matches"],
                                risk_policy=risk_policy,
                                timings=result["timings"],
                                detections=result.get("detections"),
                                detection_timeline=result.get("detection_timeline"),
                            )
                        )
                        task.payload_ref = None
                    continue
                group = by_meta.pop(ref)
                running.remove(group)
                try:
                    summaries = ray.get(ref)
                except (WorkerCrashedError, RayError) as exc:
                    if len(group) > 1:
                        # One file of a small-file group crashed or hung: each goes
                        # again in its own task, so only the bad one fails.
                        for task in group:
                            resubmit_alone(task)
                        continue
                    (task,) = group
                    if time.monotonic() - (task.started or task.submitted) >= config.file_timeout_seconds:
                        # The worker's own watchdog ended it at the limit (see _decode_task).
                        timed_out(task)
                        continue
                    if task.attempt_decoder == "auto" and not isinstance(exc, TaskCancelledError):
                        # decord can abort the whole process on some streams: one retry with PyAV.
                        task.attempt_decoder = "pyav"
                        resubmit_alone(task)
                        continue
                    fail(task, {"type": "DecoderCrashError", "message": f"decoder process died: {type(exc).__name__}"})
                    continue
                for task, file_summary in zip(group, summaries):
                    decoded(task, file_summary)

            # Backstop for the per-file limit, for workers that cannot even run
            # their watchdog (frozen, stopped): kill, record, go on. The driver's
            # start time is an estimate (a queued task may wait for a worker to
            # start), hence the margin.
            now = time.monotonic()
            for meta_ref, group in list(by_meta.items()):
                started = group[0].started
                if started is not None and now - started > config.file_timeout_seconds * 1.5 * len(group) + 10.0:
                    ray.cancel(meta_ref, force=True)
                    by_meta.pop(meta_ref)
                    running.remove(group)
                    if len(group) > 1:
                        for task in group:
                            resubmit_alone(task)
                    else:
                        timed_out(group[0])
        try:
            summary.pipeline = queues.report(ray.get(actor.stats.remote(), timeout=30))
        except RayError:
            summary.pipeline = queues.report(None)
        ray.kill(actor)
    except BaseException as exc:
        run_error = exc
        raise
    finally:
        summary.wall_seconds = time.perf_counter() - t_start
        ledger.finish(summary, error=run_error)
        if started_ray:
            ray.shutdown()
    return summary

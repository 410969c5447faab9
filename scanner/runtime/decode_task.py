"""The decode stage, run in Ray worker processes (plain functions, testable alone).

One file in, a small summary (for the driver) and a payload of uint8 frames
(for the model actor, through the object store) out: digest, decode, sample
at the model's input size, find borders and overlays. A bad file gives an
error summary, never an exception; a hung decoder is ended by the worker's
own watchdog (faulthandler) at the per-file limit.
"""

from __future__ import annotations

import faulthandler
import time
from typing import Any, Sequence

import numpy as np

from vscan.config import ScanConfig
from vscan.decode import Budgeted, Decoder, PyAVDecoder, check_readable, choose_backend, is_still, open_decoder
from vscan.decode.cuts import first_pass_cuts
from vscan.decode.guard import STALL_SECONDS, DecodeStallError, Watch, run_guarded
from vscan.detect.frames_view import TRIAGE_KEY, triage_policy, triage_view
from vscan.errors import DecodeError, DecodeTimeoutError, UnsupportedMediaError, error_info
from vscan.frames.borders import BorderTap
from vscan.frames.prepare import SCAN_FRAME_SIDE_PX
from vscan.frames.overlays import add_unoverlaid
from vscan.frames.regions import add_region, add_region_box
from vscan.frames.resize import to_square
from vscan.inputs import archives
from vscan.inputs.archives import ArchiveLimits
from vscan.inputs.digests import record_digests
from vscan.runtime.confirm_ahead import confirm_read_on, decode_ahead
from vscan.runtime.deferred_regions import add_region_or_defer
from vscan.runtime.payload import DecodedFile, FileSummary
from vscan.runtime.region_probe import KEEP_PASSING, decode_again_if_reframed, first_pass_spread_rows, may_escalate

__all__ = ["decode_for_scan", "decode_task", "merge_passes", "empty_payload", "PER_FRAME_KEYS"]


#: Decoders tried after the first one fails or stalls, in order: the other
#: backend, then PyAV's plain forward decode (no seeks, no skipped frames).
_FALLBACKS = {"auto": ("pyav", "sequential"), "decord": ("pyav", "sequential"), "pyav": ("sequential", "decord")}


#: The scan's PyAV decoders. Slice threads, not frame threads: those would add ~26 ms of start-up per
#: file (35 vs 9.5 ms for a keyframe pass, measured). One codec thread was measured too (issue 30):
#: 5% less CPU on the archive bench's 145 files, but 23% more wall time a file at load 12-18 and a
#: slower embedded archive scan (13.5/12.6 s against 8.2/8.7 s after the first record, two runs in
#: either order): FFmpeg's thread count stays, but for HEVC and AV1 (libdav1d), opened with one thread:
#: their threads cost CPU and gave no wall time on the short decodes of a scan's passes (HEVC's wavefront
#: rows, libdav1d's worker threads and frame contexts made at every open): the archive's AV1 copies 42.9
#: -> 37.5 CPU-ms a file, HEVC 29.1 -> 25.4, walls level or lower; 1080p/2160p copies 8-39% less CPU
#: (docs/archive-speed.md, "One thread for HEVC and AV1"). H.264 (one slice a frame: the same CPU) and VP9
#: keep FFmpeg's count: VP9's tiles cost ~4% of its archive copies' CPU (1.04x in 8 rounds, 0.99x in 5) and
#: bought a 1080p copy's wall (196 against 235 ms, 241 against 228 CPU-ms). The file opened once for its
#: passes (index, first pass, probe, confirmation), closed at the end of _decode_frames.
_PYAV = {"thread_type": "SLICE", "hold_open": True, "one_thread": frozenset({"hevc", "libdav1d"})}
#: The scan decodes every frame as coded. Skipping H.264/HEVC's in-loop filters on keyframe passes and
#: confirmations (FFmpeg's skip_loop_filter, e323615) saved ~5% of such a file's decode CPU (~2% of the
#: process) but lost a heavily compressed copy (crf 40, 96x64: tests/test_cli_output.py), where deblocking is
#: most of the picture, as in messenger re-encodes; it was removed (117d887, then the option itself).


def _open(path: str, backend: str, config: ScanConfig) -> Decoder:
    from vscan.inputs.ranged_pyav import ranged_decoder

    # A pass whose policy needs the very frames it names (a sparse bank's second look: vscan.decode.adaptive.LookWindows)
    # skips only where each packet takes its own skip_frame, its wanted frames decoded (PyAVDecoder.stand_in False).
    exact = config.sampling.exact_frames or bool(getattr(config.sampling.policy, "exact_frames", False))
    decoder = ranged_decoder(path, plain=backend == "sequential")  # an object read by range requests (vscan.inputs.ranged)
    # a confirmation to decode ahead: read on to it from its keyframe in the first pass; given before the index pass
    # (the probe), whose decoder that pass then goes on from where it reads on from frame 0 (PyAVDecoder._build_index)
    read_on = confirm_read_on(config)
    if decoder is None:
        # skip_nonref before the probe: an AV1 codec held from the index pass opens skipping as the passes after (PyAVDecoder._set_threads)
        pyav = {**_PYAV, "skip_nonref": True, "read_on": read_on}
        decoder = PyAVDecoder(plain=True, **_PYAV) if backend == "sequential" else open_decoder(path, backend, pyav=pyav)
    if isinstance(decoder, PyAVDecoder):
        decoder.skip_nonref = not decoder.plain  # about half the decoding (and, stand_in, a frame or two off target)
        decoder.stand_in = not exact
        for name, value in _PYAV.items():  # a ranged decoder (an object) too
            setattr(decoder, name, value)
        decoder.read_on = read_on
    decoder.probe(path)
    return decoder


def _attempt(path: str, config: ScanConfig, backend: str, watch: Watch):
    """One decode of the file with one backend, under the guard's watch."""
    decoder = watch.use(_open(path, backend, config))
    if isinstance(decoder, PyAVDecoder) and may_escalate(config):
        decoder.keep_passing = KEEP_PASSING  # frames decoded on the way, for the region probe's escalated pass (no second decode)
    meta = decoder.probe(path)
    frames, numbers, times = [], [], []
    tap = BorderTap(lambda rgb: to_square(rgb, config.sampling.frame_size), enabled=config.matching.mode == "robust")
    square = (config.sampling.frame_size, config.sampling.frame_size)  # straight to the model's input size: no resize pass
    policy = Budgeted(triage_policy(config), config.sampling.max_frames_per_file)
    view = triage_view(config)  # triage: frames at their aspect ratio too (vscan.detect.frames_view)
    for batch in tap.watch(decoder.iter_frames(path, policy, batch_size=64, **(view.decode_args if view else {"size": square}))):
        watch.beat()
        frames.append(view.split(batch.rgb) if view else batch.rgb)
        numbers.append(batch.frame_indices)
        times.append(batch.pts_seconds)
    return decoder, meta, tap, frames, numbers, times, policy.truncation, view


def _decode_with_fallback(path: str, config: ScanConfig):
    """_attempt with the chosen backend, then the fallbacks while it fails
    (DecodeError, a stall, or decord refusing the file); the last element
    says which fallback ran and why (None when the first attempt served)."""
    first = choose_backend(config.sampling.policy, config.sampling.decoder)
    chain = ["auto"] if is_still(path) else [first, *_FALLBACKS[first]]
    stall = min(STALL_SECONDS, config.runtime.file_timeout_seconds / (len(chain) + 1))
    failures: list[tuple[str, BaseException]] = []
    for backend in chain:
        try:
            result = run_guarded(lambda watch: _attempt(path, config, backend, watch), stall, what=f"{backend} decoder")
        except (DecodeError, UnsupportedMediaError) as exc:
            if isinstance(exc, UnsupportedMediaError) and backend not in ("auto", "decord"):
                raise  # PyAV cannot open it: no other decoder will
            failures.append((backend, exc))
            continue
        if not failures:
            return result, None
        tried = "; ".join(f"{b}: {type(e).__name__}: {e}" for b, e in failures)
        return result, {"from": failures[0][0], "to": backend, "reason": tried[:600]}
    backend, exc = failures[0]
    if isinstance(exc, DecodeStallError):
        exc = DecodeTimeoutError(f"{path}: {exc}")
    others = "; ".join(f"{b}: {type(e).__name__}" for b, e in failures[1:])
    raise type(exc)(f"{exc} (fallbacks failed too: {others})" if others else str(exc)) from exc


def decode_for_scan(
    path: str, config: ScanConfig, known_sha256: frozenset[str] | None = None, benign: Sequence[Any] = ()
) -> tuple[dict[str, Any], DecodedFile | None]:
    """Digest, decode, sample and resize one file.

    Returns ``(summary, payload)``: a small dict for the driver (typed as a
    FileSummary by :func:`decode_task`), and the frames for the model actor
    (a DecodedFile, its invariants checked here; None on error). Never raises
    for a bad file. A file whose digest is on one of the ``benign`` lists
    (vscan.inputs.known_benign, ``--ignore``) is not decoded: its summary
    says ``known_benign`` (the list, its version, the digest kind).
    """
    if archives.handles(path):  # a zip/tar member, read into memory (or an archive that failed listing)
        return _decode_member(path, config, known_sha256, benign, decode_for_scan)
    if path.startswith(("s3://", "gs://", "az://", "http://", "https://")):  # an object (vscan.inputs.objectstore): read by range or fetched
        from vscan.inputs.objectstore import decode_object

        return decode_object(path, config, known_sha256, benign, decode_for_scan, _decode_frames)
    t0 = time.perf_counter()
    summary: dict[str, Any] = {"path": path, "sha256": None, "md5": None, "size_bytes": None, "error": None}
    try:
        check_readable(path)
        if _skipped_by_digest(path, config, known_sha256, benign, summary):
            summary["timings"] = {"digest": time.perf_counter() - t0}
            return summary, None
        return summary, _decode_frames(path, config, summary, t0)
    except Exception as exc:  # a bad file is a record, never a crash of the scan
        summary["error"] = error_info(exc)
        summary["timings"] = {"decode": time.perf_counter() - t0}
        return summary, None


def _skipped_by_digest(path: str, config: ScanConfig, known_sha256, benign, summary: dict[str, Any]) -> bool:
    """Read the file's digests into ``summary``; True when they say it needs
    no decode: on a known-benign list, or content already scanned (--state)."""
    if getattr(config.sampling.policy, "name", "") == "confirm":
        # A confirmation pass (vscan.decode.adaptive.Confirm): the first pass read the digests, the
        # driver keeps them (FileSummary.merged); reading the whole file again would cost more than its frame.
        summary["sha1"] = None
        return False
    summary.update(record_digests(path))  # a sparse file's digests are skipped, saying why (digest_skipped)
    for digest_list in benign if summary["sha256"] is not None else ():
        hit = digest_list.lookup(sha256=summary["sha256"], sha1=summary["sha1"], md5=summary["md5"])
        if hit is not None:
            summary["known_benign"] = hit
            return True
    if known_sha256 is not None and summary["sha256"] in known_sha256:
        summary["unchanged"] = True  # same content already scanned with these versions (vscan.output.resume --state)
        return True
    return False


def _joined(parts: list) -> np.ndarray:
    """``np.concatenate(parts)``, each part dropped from ``parts`` once copied: the decode's peak is the joined frames
    and one batch, not the frames twice (a 1-hour file with a keyframe a second: 3,600 first-pass frames, 675 MB, took
    1.5 GB here). ``parts`` is left empty."""
    out = np.empty((sum(len(p) for p in parts), *parts[0].shape[1:]), parts[0].dtype)
    at = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        out[at : at + len(part)] = part
        at += len(part)
        del part
    return out


def _decode_frames(path: str, config: ScanConfig, summary: dict[str, Any], t0: float, first: tuple | None = None) -> DecodedFile:
    """Decode and sample the file, its facts into ``summary``; its frame sets
    (borders removed, overlays filled, regions). ``first``: the frames as
    ``_decode_with_fallback`` gives them, decoded already (a confirmation
    decoded ahead), else decoded here."""
    t1 = time.perf_counter()
    # vscan.runtime.region_probe: a file that looks re-framed is decoded again with frames enough for region search
    more, decoded, ((decoder, meta, tap, frames, numbers, times, truncation, view), fallback) = decode_again_if_reframed(
        path, config, first or _decode_with_fallback(path, config), _decode_with_fallback
    )
    summary["media"] = {"kind": "image" if meta.is_still_image else "video", "decoder": meta.backend, "codec": meta.codec,
                        "width": meta.width, "height": meta.height, "fps": meta.fps, "fallback": fallback}  # fmt: skip
    summary["duration_seconds"] = float(meta.duration_seconds)
    damaged = decoder.damaged_seconds() if hasattr(decoder, "damaged_seconds") else []
    if damaged:  # packets refused as damaged inside the file: decoded past, and said (vscan.decode.pyav_packets.decoded)
        summary["media"]["damaged"] = {"packets": len(damaged), "first_at_seconds": round(damaged[0], 3) if damaged[0] == damaged[0] else None}
    if getattr(meta, "demux_partial", None):  # frames stop short of what the file declares: the record says so
        summary["partial"] = {"reason": meta.demux_partial, "declared_duration_seconds": meta.declared_duration_seconds,
                              "demuxed_duration_seconds": float(meta.duration_seconds)}  # fmt: skip
    dominant = decoder.damaged_from() if hasattr(decoder, "damaged_from") else None
    if dominant is not None:  # the rest of the file mostly refused: its frames before the damage scanned (pyav_packets.DamagedFrom)
        at, refused, packets = dominant
        summary["partial"] = {"reason": f"damaged data: from {at:.3f} s on the decoder refused {refused} of the file's {packets} packets "
                                        f"(more than half of them): the frames before {at:.3f} s were scanned, none after",
                              "declared_duration_seconds": (meta.declared_duration_seconds if meta.declared_duration_seconds is not None
                                                            else float(meta.duration_seconds)),
                              "demuxed_duration_seconds": round(at, 3)}  # fmt: skip
    if getattr(decoder, "cut_short", None):  # a picture whose data ends early, read as far as it goes (vscan.decode.images)
        summary["partial"] = {"reason": decoder.cut_short, "declared_duration_seconds": None, "demuxed_duration_seconds": 0.0}
    count = int(sum(len(n) for n in numbers))
    t2 = time.perf_counter()
    if count == 0:
        payload = empty_payload(config)
    else:
        payload = {"frames": _joined(frames), "frame_numbers": np.concatenate(numbers).astype(np.int64),
                   "timestamps": np.concatenate(times).astype(np.float64)}  # fmt: skip
    summary["frames_sampled"] = count
    summary["truncated"] = truncation  # the frame budget was spread thinner over the file
    payload["duration_seconds"] = np.float64(meta.duration_seconds)
    payload["sha1"] = np.array(summary["sha1"])  # for SHA-1-only bank entries
    summary["sampling"] = triage_policy(config).describe()  # names the triage frames when --triage adds them
    if config.sampling.frame_size != SCAN_FRAME_SIDE_PX:  # a hash-list bank's list_frame_size, or the user's frame_size
        summary["sampling"] += f"; {config.sampling.frame_size} px frames"
    if more is not None:
        summary["sampling"] += f"; looks re-framed: {more.sampling.first_pass_frames} first-pass frames"
    t3 = time.perf_counter()  # borders, overlays and region search: timed apart (issue #30: per-file costs in proportion)
    tap.add_to(payload)
    if view is not None:
        view.add_to(payload)
    # vscan.frames.overlays: static logo/box filled. Two frames suffice here: a
    # wrong overlay only adds a query version that can decide a match
    # through a >= 5 s aligned run alone, and adaptive first passes
    # (keyframes) often have just two or three frames.
    add_unoverlaid(payload, enabled=config.matching.mode == "robust", min_frames=2)
    # vscan.frames.regions: an inset picture; searched in the model call, only if the plain match does not decide, unless it looks re-framed
    spread = first_pass_spread_rows(config.sampling.policy, numbers, times, meta) if more is not None and count else None
    if spread is not None and not spread.all():  # a short file's burst: the box found on the frames spread over it, cut from all
        add_region(payload, enabled=config.matching.mode == "robust", detect_rows=spread)
        deferred = False
    else:
        deferred = add_region_or_defer(payload, enabled=config.matching.mode == "robust", reframed=more is not None)
    payload["source_size"] = np.array([meta.width, meta.height], np.int64)  # (w, h): detectors letterbox with it
    # decord counts the frames it was asked for (a lower bound); an escalated pass counts both passes' decoding
    summary["frames_decoded"] = decoded if decoded is not None else max(int(decoder.frames_decoded), count)
    summary["timings"] = {"digest": t1 - t0, "decode": t2 - t1, "regions": time.perf_counter() - t3}
    file = DecodedFile.from_dict(payload)  # typed, its rows checked, before it leaves this process
    file.regions_deferred = deferred
    if count:  # the cuts a second pass looks after if this first pass does not decide (Adaptive.cut_frames)
        file.cut_seconds = first_pass_cuts(config.sampling.policy, decoder, meta, path, file.frame_numbers)
    # adaptive sampling's confirmation, decoded now by the same decoder when the scan asks (vscan.runtime.confirm_ahead)
    try:
        return decode_ahead(path, config, summary, file, (decoder, meta, tap), fallback, _decode_frames)
    finally:
        if first is None and isinstance(decoder, PyAVDecoder):
            decoder.close()  # the container held open between the file's passes


#: Payload keys with one row per sampled frame (the rest are per file; DecodedFile checks the rows).
PER_FRAME_KEYS = ("frames", "frame_numbers", "timestamps", "unbordered_frames", "unoverlaid_frames", "region_frames", TRIAGE_KEY)


def merge_passes(first: DecodedFile | dict[str, np.ndarray], second: DecodedFile | dict[str, np.ndarray]) -> DecodedFile:
    """One payload from two sampling passes over a file, in frame order (DecodedFile.merged)."""
    as_file = lambda p: p if isinstance(p, DecodedFile) else DecodedFile.from_dict(p)  # noqa: E731
    return as_file(first).merged(as_file(second))


def empty_payload(config: ScanConfig) -> dict[str, np.ndarray]:
    size = config.sampling.frame_size
    return {
        "frames": np.zeros((0, size, size, 3), np.uint8),
        "frame_numbers": np.zeros(0, np.int64),
        "timestamps": np.zeros(0, np.float64),
    }


def decode_task(paths: list[str], config: ScanConfig, known_sha256=None, benign: Sequence[Any] = ()):
    """decode_for_scan of one file, or of a group of small files, in a Ray
    worker, each file under the per-file time limit.

    Returns ``(summaries, *payloads)``: the FileSummary list goes to the
    driver, each DecodedFile (or None) to the object store for the model actor. The clock starts when
    decoding of that file really starts (not when the driver queued the
    task), and faulthandler's watchdog thread ends the process even when the
    decoder hangs inside C code (decord's get_batch can): the driver sees the
    worker die and records DecodeTimeoutError (a group is first split).
    """
    summaries, payloads = [], []
    for path in paths:
        faulthandler.dump_traceback_later(config.runtime.file_timeout_seconds, exit=True)
        try:
            summary, payload = decode_for_scan(path, config, known_sha256, benign)
        finally:
            faulthandler.cancel_dump_traceback_later()
        summaries.append(FileSummary.from_dict(summary))  # typed for the driver
        payloads.append(payload)
    return (summaries, *payloads)




def _decode_member(path: str, config: ScanConfig, known_sha256, benign, decode) -> tuple[dict, DecodedFile | None]:
    """vscan.runtime.driver.decode_for_scan for an archive member: read into
    memory within the limits, then ``decode`` from there; reported under
    the member path. Never raises for a bad archive or member."""
    t0 = time.perf_counter()
    limits = ArchiveLimits.from_config(config.archives)
    try:
        if archives.split_member(path) is None:  # an archive that could not be listed: its one record
            check_readable(path)
            raise archives.archive_error(path, limits, all_files=config.inputs.all_files)
        with archives.open_member(path, limits, all_files=config.inputs.all_files) as fd_path:
            t1 = time.perf_counter()
            summary, payload = decode(str(fd_path), config, known_sha256, benign)
        summary["path"] = path
        if summary.get("error"):
            summary["error"] = {**summary["error"], "message": summary["error"]["message"].replace(str(fd_path), path)}
        summary["timings"] = {"archive_read": t1 - t0, **summary.get("timings", {})}
        return summary, payload
    except Exception as exc:  # noqa: BLE001 - a bad member is a record, never a crash of the scan
        summary = {"path": path, "sha256": None, "md5": None, "size_bytes": None, "error": error_info(exc)}
        summary["timings"] = {"decode": time.perf_counter() - t0}
        return summary, None

"""bench/gpu_check.py's decode part: a generated 1080p H.264 clip decoded by
PyAV on the CPU and with FFmpeg's cuda hwaccel (NVDEC), concurrent streams,
keyframes only and every frame: frames/s."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from .gpu_check_measure import Recorder, SkipPart, write_test_video
from .gpu_check_plan import Plan


def _hwaccel(device: str):
    if device == "cpu":
        return None
    from av.codec.hwaccel import HWAccel

    return HWAccel(device_type="cuda", allow_software_fallback=False)


def _decode_pass(path: str, device: str, keyframes_only: bool, stop: float, counter: list[int]) -> None:
    """Decodes the file again and again until ``stop``: counter = [frames, opens]."""
    import av

    while time.monotonic() < stop:
        counter[1] += 1
        with av.open(path, hwaccel=_hwaccel(device)) as container:
            stream = container.streams.video[0]
            if device == "cpu":
                stream.thread_type = "SLICE"  # as vscan's decode tasks do: one decode per core
            if keyframes_only:
                stream.codec_context.skip_frame = "NONKEY"
            for _frame in container.decode(stream):
                counter[0] += 1
                if time.monotonic() >= stop:
                    return


def _decode_rate(path: str, device: str, keyframes_only: bool, streams: int, window: float) -> dict[str, Any]:
    """Frames/s of ``streams`` concurrent decoders (threads; PyAV decodes
    without the GIL), each reopening the file until ``window`` s are up."""
    counters = [[0, 0] for _ in range(streams)]
    errors: list[str] = []
    t0 = time.monotonic()
    stop = t0 + window

    def run(c):
        try:
            _decode_pass(path, device, keyframes_only, stop, c)
        except Exception as exc:  # noqa: BLE001 - reported, not raised: one stream's failure is a result
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(c,)) for c in counters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - t0
    frames = sum(c[0] for c in counters)
    return {"streams": streams, "frames": frames, "seconds": seconds, "frames_per_second": frames / seconds,
            "frames_per_second_per_stream": frames / seconds / streams, "file_opens": sum(c[1] for c in counters),
            "errors": errors[:3]}  # fmt: skip


def _probe_hwaccel(path: str) -> dict[str, Any]:
    """One frame through the cuda hwaccel: works, or the reason it does not."""
    import av

    try:
        with av.open(path, hwaccel=_hwaccel("cuda")) as container:
            stream = container.streams.video[0]
            frame = next(container.decode(stream))
            on_device = getattr(stream.codec_context, "is_hwaccel", None)
            found = {"codec": stream.codec_context.name, "is_hwaccel": on_device, "frame_format": frame.format.name}
            if on_device is False:  # opened, but decoding in software: not a GPU figure
                return {"status": "skipped", "reason": "the cuda hwaccel opened but PyAV decodes in software", **found}
            return {"status": "ok", **found}
    except Exception as exc:  # noqa: BLE001 - the reason is the result
        return {"status": "skipped", "reason": f"FFmpeg's cuda hwaccel did not open: {type(exc).__name__}: {exc}"}


def part_decode(plan: Plan, rec: Recorder, deadline: float, work: Path) -> None:
    try:
        import av
        from av.codec.hwaccel import hwdevices_available
    except ImportError as exc:
        raise SkipPart(f"PyAV not importable ({exc}): the carried av wheel did not install") from None

    rec["pyav"] = {"version": av.__version__, "hwdevices": list(hwdevices_available()),
                   "cuvid": sorted(c for c in av.codecs_available if c.endswith("_cuvid"))}  # fmt: skip
    clip = write_test_video(work / "clip.mp4", plan.video_size, plan.video_seconds, plan.video_fps, plan.video_gop)
    rec["clip"] = clip
    probe = _probe_hwaccel(clip["path"])
    rec["cuda_probe"] = probe
    decoders = {"cpu": {"status": "ok", "what": "PyAV software decode, SLICE threads (the decode tasks' setting)"}}
    decoders["cuda"] = {**probe, "what": "PyAV with FFmpeg's cuda hwaccel (NVDEC), frames downloaded to host memory"}
    runs = [(d, mode, n) for d in ("cpu", "cuda") for mode in ("keyframes", "every_frame") for n in plan.decode_streams]
    window = min(plan.decode_window_seconds, max(deadline - time.monotonic() - 2, 0.1) / len(runs))
    for device, mode, streams in runs:
        if decoders[device]["status"] != "ok":
            continue
        result = _decode_rate(clip["path"], device, mode == "keyframes", streams, window)
        decoders[device].setdefault(mode, {})[str(streams)] = result
        rec["decoders"] = decoders

"""What every part of bench/gpu_check.py measures with: rates with device
synchronisation, GPU memory, a Recorder that saves after every step, strict
JSON, SkipPart, and the generated H.264 clips the pdq and decode parts use."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _memory(device: str) -> dict[str, int] | None:
    if device != "cuda":
        return None
    import torch

    return {"peak_allocated_bytes": int(torch.cuda.max_memory_allocated()), "peak_reserved_bytes": int(torch.cuda.max_memory_reserved())}


def _reset_memory(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.init()  # the allocator's statistics need an initialised device ("did you call init?")
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _rate(work: Callable[[], int], calls: int, deadline: float, device: str) -> dict[str, float]:
    """Items/s of ``work`` (returns the items it did): one warm-up call, then
    up to ``calls`` timed calls while time is left."""
    work()
    _sync(device)
    t0, items, done = time.perf_counter(), 0, 0
    while done < calls and (done == 0 or time.monotonic() < deadline):
        items += work()
        done += 1
    _sync(device)
    seconds = time.perf_counter() - t0
    return {"items_per_second": items / seconds, "items": items, "calls": done, "seconds": seconds}


class Recorder:
    """A part's results, written to its file after every step (a part killed
    at the end of its share keeps what it had measured)."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, default=_json_default))
        tmp.replace(self.path)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _clean(value: Any) -> Any:
    """inf/nan (a stage not measured) as None: the file is strict JSON."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_test_video(path: Path, size: tuple[int, int], seconds: float, fps: int, gop: int, seed: int = 29) -> dict[str, Any]:
    """An H.264 clip (libx264, yuv420p, a keyframe every ``gop`` frames):
    a smooth random texture panning under a moving block. Fast to make at
    1080p, unlike vscan.bench.synth's renderer (0.3 s a frame there)."""
    import av
    import numpy as np

    width, height = size
    rng = np.random.default_rng(seed)
    # 48 px blocks: about 6 Mbit/s at 1080p (crf 23), a web video's bitrate; finer noise
    # (16 px blocks: 18 Mbit/s) would time the entropy decoder more than typical video does.
    small = rng.integers(0, 192, (height // 48 + 2, width // 48 + 2, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(small, 48, axis=0), 48, axis=1)
    ramp = np.linspace(0, 60, width).astype(np.uint8)[None, :, None]  # uint8 sums stay under 256: no float pass per frame
    frames = int(round(seconds * fps))
    t0 = time.perf_counter()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": "2"}
        for i in range(frames):
            dy, dx = (3 * i) % 48, (5 * i) % 48
            img = texture[dy : dy + height, dx : dx + width] + ramp
            by, bx = (7 * i) % max(height - height // 4, 1), (11 * i) % max(width - width // 4, 1)
            img[by : by + height // 4, bx : bx + width // 4] = (40 * (i // gop)) % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return {"path": str(path), "width": width, "height": height, "frames": frames, "fps": fps, "gop_frames": gop,
            "codec": "h264 (libx264 ultrafast)", "bytes": path.stat().st_size, "bits_per_second": path.stat().st_size * 8 / seconds,
            "encode_seconds": time.perf_counter() - t0}  # fmt: skip


class SkipPart(Exception):
    """A part that cannot run here; its message is the reason."""

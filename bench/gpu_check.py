"""The GPU path in one prepared run (issue 29): every part of vscan that
runs on CUDA, measured in one call of under 8 minutes on a bare GPU
machine, with no Ray.

    python bench/gpu_check.py                 # on the GPU machine (installs .whl/, writes $OUT/gpu_check.json)
    python -m vscan.bench.gpu_check --dry-run # here: CPU device, small sizes, the same code paths
    python -m vscan.bench.gpu_check --fetch-wheels   # here: download bench/gpu_wheels.txt into .whl/

Parts, each in its own process with its own time share (killed at the end
of it, keeping what it had measured), so the whole run is bounded by the
sum of the shares (``SHARES``, 465 s):

- install: ``pip install --no-index --find-links .whl`` of the carried wheels;
- tests: every ``needs_cuda`` test of a test file that does not use Ray,
  with ``VSCAN_REQUIRE_CUDA=1`` (pytest, one result per test);
- pdq: decoded frames in (real clips through ``decode_for_scan``), PDQ
  through the torch backend on the device and through onnxruntime where it
  has a CUDA provider, in cross-file batches of 128/512/2048 frames:
  frames/s and GPU memory; the GPU stage end to end (``ModelWorker.run``,
  in-process); detector pre-processing on the device; onnxruntime on the
  CPU as the same-run baseline, and the device's bits against it;
- hamming: exact radius-31 search on the device at 1M and 10M rows
  (``vscan.kernels.hamming.radius_search``, what ``BankLookup(device="cuda")``
  runs): lookups/s, and the pairs of a sample of queries against the CPU
  index (``SplitIndex``), which must be equal;
- decode: a generated 1080p H.264 clip decoded by PyAV on the CPU (as the
  decode tasks do) and with FFmpeg's cuda hwaccel (NVDEC), 1/4/8 concurrent
  streams, keyframes only and every frame: frames/s;
- capacity: what those rates predict for scanning 1080p video on this
  machine (vscan.bench.capacity.predict), adaptive and ``--fps 1``.

Parts that cannot run here (no CUDA device, no CUDA provider, no hwaccel)
are reported as skipped with the reason the attempt gave, never estimated.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
WHEEL_DIR = ROOT / ".whl"
WHEEL_LIST = ROOT / "bench" / "gpu_wheels.txt"
CARRY_LIMIT_BYTES = 60 << 20
#: The device machine's limit on working tree plus carried folders together.
CARRY_TOTAL_BYTES = 64 << 20
#: The whole run, by construction: the shares below add up to less.
BUDGET_SECONDS = 480
SHARES = {"install": 45, "tests": 140, "pdq": 80, "hamming": 100, "decode": 90}
PARTS = tuple(SHARES)
SCHEMA = "vscan.gpu_check/1"
#: Query hashes per sampled frame when matching: the 8 dihedral variants.
QUERIES_PER_FRAME = 8
#: What a 1080p file is assumed to be for the capacity line: 30 fps, a keyframe every 2 s.
VIDEO_FPS = 30
VIDEO_GOP_SECONDS = 2.0

__all__ = ["Plan", "FULL", "DRY", "read_wheel_list", "main"]


@dataclass(frozen=True)
class Plan:
    """Sizes of one run, chosen so that each part ends within its share."""

    device: str  # "cuda" or "cpu"
    shares: dict[str, float]
    pdq_batches: tuple[int, ...]
    pdq_timed_calls: int  # per batch size, at most (the share ends them earlier)
    pdq_clips: int  # decoded files whose frames fill the cross-file batches
    pdq_clip_size: tuple[int, int]
    pdq_clip_seconds: float
    hamming_rows: tuple[int, ...]
    hamming_queries: int
    exact_sample: int  # queries that warm the CPU index (numba) before it is timed
    radius: int
    video_size: tuple[int, int]
    video_seconds: float
    video_fps: int
    video_gop: int  # frames between keyframes
    decode_streams: tuple[int, ...]
    decode_window_seconds: float  # each (decoder, mode, streams) measurement
    detector_size: int = 224


FULL = Plan(
    device="cuda", shares=dict(SHARES), pdq_batches=(128, 512, 2048), pdq_timed_calls=8, pdq_clips=6,
    pdq_clip_size=(640, 360), pdq_clip_seconds=8.0, hamming_rows=(1_000_000, 10_000_000), hamming_queries=4096,
    exact_sample=256, radius=31, video_size=(1920, 1080), video_seconds=20.0, video_fps=VIDEO_FPS,
    video_gop=int(VIDEO_FPS * VIDEO_GOP_SECONDS), decode_streams=(1, 4, 8), decode_window_seconds=4.0,
)  # fmt: skip
DRY = Plan(
    device="cpu", shares={"install": 10, "tests": 90, "pdq": 60, "hamming": 60, "decode": 45}, pdq_batches=(8, 16, 32),
    pdq_timed_calls=1, pdq_clips=2, pdq_clip_size=(160, 120), pdq_clip_seconds=2.0, hamming_rows=(5_000, 20_000),
    hamming_queries=64, exact_sample=32, radius=31, video_size=(320, 240), video_seconds=2.0, video_fps=VIDEO_FPS,
    video_gop=int(VIDEO_FPS * VIDEO_GOP_SECONDS) // 4, decode_streams=(1, 2), decode_window_seconds=0.4,
)  # fmt: skip


# ---------------------------------------------------------------- wheels


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    size_bytes: int
    role: str  # "top": installed by name; "dep": carried in case the image lacks it
    why: str


def read_wheel_list(path: Path = WHEEL_LIST) -> list[Wheel]:
    """bench/gpu_wheels.txt: ``name==version bytes role why`` per line."""
    wheels = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spec, size, role, *why = line.split()
        name, version = spec.split("==")
        wheels.append(Wheel(name, version, int(size), role, " ".join(why)))
    return wheels


def _pip_platform_args() -> list[str]:
    plats = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    return ["--only-binary=:all:", "--python-version", "3.12", *(a for p in plats for a in ("--platform", p))]


def fetch_wheels(dest: Path = WHEEL_DIR) -> int:
    """Downloads exactly the listed wheels into ``dest`` and the PDQ sample
    images beside them; checks sizes against the list and the carry limit."""
    wheels = read_wheel_list()
    dest.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), *_pip_platform_args(),
           *(f"{w.name}=={w.version}" for w in wheels)]  # fmt: skip
    if subprocess.run(cmd).returncode:
        print("pip download failed", file=sys.stderr)
        return 1
    total, bad = 0, 0
    for w in wheels:
        found = [p for p in dest.glob("*.whl") if _wheel_key(p.name) == (_norm(w.name), w.version)]
        size = found[0].stat().st_size if found else 0
        total += size
        note = "" if size == w.size_bytes else f"  (listed {w.size_bytes:,}: update bench/gpu_wheels.txt)"
        bad += size != w.size_bytes
        print(f"{w.name + '==' + w.version:<40} {size / 2**20:7.2f} MiB{note}")
    shared = ROOT.parent / "shared" / "data" / "pdq"
    if shared.is_dir():
        shutil.copytree(shared, dest / "shared" / "data" / "pdq", dirs_exist_ok=True)
        data = sum(p.stat().st_size for p in (dest / "shared").rglob("*") if p.is_file())
        print(f"PDQ sample images copied to {dest / 'shared'}: {data / 2**20:.2f} MiB")
    print(f"wheels: {total / 2**20:.2f} MiB of {CARRY_LIMIT_BYTES / 2**20:.0f} MiB")
    carried = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    tree = _tree_bytes()
    print(f"the run's carry: .whl {carried / 2**20:.2f} MiB + working tree {tree / 2**20:.2f} MiB = "
          f"{(carried + tree) / 2**20:.2f} MiB of {CARRY_TOTAL_BYTES / 2**20:.0f} MiB")
    return 1 if bad or total > CARRY_LIMIT_BYTES or carried + tree > CARRY_TOTAL_BYTES else 0


def _tree_bytes() -> int:
    """What the device tool copies besides .whl: tracked files and untracked ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True).stdout.split("\0")  # fmt: skip
    return sum((ROOT / p).stat().st_size for p in listed if p and (ROOT / p).is_file())


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


def _wheel_key(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]
    return _norm(name), version


def install_wheels(deadline: float) -> dict[str, Any]:
    """pip install --no-index of the listed top-level wheels from .whl/, one at
    a time (a missing one does not stop the others); kept where already installed."""
    if not WHEEL_DIR.is_dir():
        return {"status": "skipped", "reason": f"no {WHEEL_DIR} (run --fetch-wheels where PyPI is reachable and carry .whl)"}
    results = {}
    env = {**os.environ, "PIP_BREAK_SYSTEM_PACKAGES": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for w in (w for w in read_wheel_list() if w.role == "top"):
        base = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(WHEEL_DIR), w.name]
        for extra in ([], ["--user"]):  # a read-only site-packages: the user's
            left = deadline - time.monotonic()
            if left <= 1:
                results[w.name] = {"rc": None, "error": "out of time share"}
                break
            try:
                p = subprocess.run(base + extra, capture_output=True, text=True, timeout=left, env=env)
            except subprocess.TimeoutExpired:
                results[w.name] = {"rc": None, "error": "timed out"}
                break
            results[w.name] = {"rc": p.returncode, "user": bool(extra), "tail": (p.stdout + p.stderr)[-400:]}
            if p.returncode == 0:
                break
    ok = all(r.get("rc") == 0 for r in results.values())
    return {"status": "ok" if ok else "failed", "reason": None if ok else "some wheels did not install", "results": results}


# ---------------------------------------------------------------- importing vscan without installing it


def ensure_vscan_importable() -> str | None:
    """Make ``import vscan`` work from this checkout. Installed (editable, as
    here): nothing to do. A bare machine: a folder of symlinks laid out as the
    package (scanner/ -> vscan, kernels/ -> vscan.kernels, ...), put on
    sys.path and PYTHONPATH so child processes see it too. Returns its path."""
    try:
        import vscan  # noqa: F401

        return None
    except ImportError:
        pass
    shim = Path(tempfile.mkdtemp(prefix="vscan-shim-"))
    pkg = shim / "vscan"
    pkg.mkdir()
    for entry in (ROOT / "scanner").iterdir():
        (pkg / entry.name).symlink_to(entry)
    for sub in ("kernels", "models", "bench"):
        (pkg / sub).symlink_to(ROOT / sub)
    sys.path.insert(0, str(shim))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(shim), os.environ.get("PYTHONPATH")) if p)
    return str(shim)


# ---------------------------------------------------------------- small helpers


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


# ---------------------------------------------------------------- part: tests


#: Fixtures that start or join Ray (tests/conftest.py): a test using one is left out.
RAY_FIXTURES = frozenset({"ray_local", "ray_address"})


def _test_files() -> list[str]:
    """Test files with needs_cuda tests (``needs_cuda`` or conftest's ``DEVICES``)."""
    found = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        text = path.read_text()
        if "needs_cuda" in text or "DEVICES" in text:
            found.append(str(path.relative_to(ROOT)))
    return found


def pytest_collection_modifyitems(config, items) -> None:
    """pytest hook, active when the tests part loads this module (``-p``):
    leaves out the needs_cuda tests that need Ray (a Ray fixture, or a module
    that imports ray), listing them in $VSCAN_GPU_CHECK_LEFT_OUT."""
    listing = os.environ.get("VSCAN_GPU_CHECK_LEFT_OUT")
    if not listing:
        return
    keep, drop = [], []
    for item in items:
        module = getattr(getattr(item, "module", None), "__dict__", {})
        needs_ray = bool(RAY_FIXTURES & set(getattr(item, "fixturenames", ()))) or "ray" in module
        (drop if needs_ray else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    Path(listing).write_text(json.dumps([i.nodeid for i in drop if "needs_cuda" in i.keywords]))


def part_tests(plan: Plan, rec: Recorder, deadline: float, work: Path) -> None:
    files = _test_files()
    rec["files"] = files
    left_out = work / "left_out.json"
    env = {**os.environ, "VSCAN_GPU_CHECK_LEFT_OUT": str(left_out)}
    if plan.device == "cuda":
        env["VSCAN_REQUIRE_CUDA"] = "1"
    else:
        env.pop("VSCAN_REQUIRE_CUDA", None)  # dry run: collected and skipped, the skip's reason reported
    carried = WHEEL_DIR / "shared"
    if not (ROOT.parent / "shared" / "data").is_dir() and (carried / "data").is_dir():
        env["VSCAN_SHARED_DIR"] = str(carried)  # the PDQ sample images carried in .whl/ (tests/conftest.py)
    rec["require_cuda"] = env.get("VSCAN_REQUIRE_CUDA") == "1"
    junit = work / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "needs_cuda", "-p", "no:cacheprovider", "-p", "vscan.bench.gpu_check",
           f"--junitxml={junit}", *files]  # fmt: skip
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=max(deadline - time.monotonic() - 2, 1))
    rec["left_out_needing_ray"] = json.loads(left_out.read_text()) if left_out.exists() else None
    rec["pytest_rc"] = p.returncode
    rec["pytest_tail"] = (p.stdout + p.stderr)[-3000:]
    if not junit.exists():  # pytest itself did not run (not installed, a broken conftest): no results to report
        raise RuntimeError(f"pytest wrote no results (rc {p.returncode}): {(p.stdout + p.stderr)[-600:]}")
    rec["tests"] = _junit_results(junit)
    counts: dict[str, int] = {}
    for t in rec.data["tests"]:
        counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
    rec["counts"] = counts


def _junit_results(path: Path) -> list[dict[str, str]]:
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                outcome = {"failure": "failed"}.get(kind, kind)
                message = " ".join(m for m in (node.get("message"), node.text) if m)[:400]
        classname, name = case.get("classname") or "", case.get("name") or ""
        # A module skipped at collection (an importorskip) has no class: its name is the module's.
        test_id = f"{classname.replace('.', '/')}.py::{name}" if classname else f"{name.replace('.', '/')}.py"
        if outcome == "failed" and "CUDAExecutionProvider" in message:
            message = "onnxruntime has no CUDA provider (the image's CPU build; onnxruntime-gpu is not carried): " + message
        out.append({"id": test_id, "outcome": outcome, "seconds": float(case.get("time") or 0), "message": message})
    return out


# ---------------------------------------------------------------- part: pdq


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


# ---------------------------------------------------------------- part: hamming


def _bank_and_queries(rows: int, queries: int, seed: int):
    """Random bank rows; half the queries are bank rows with 0..40 bits
    flipped (neighbours within 31 and just beyond), half random."""
    import numpy as np

    rng = np.random.default_rng(seed)
    bank = rng.integers(0, 256, (rows, 32), dtype=np.uint8)
    q = rng.integers(0, 256, (queries, 32), dtype=np.uint8)
    near = np.arange(0, queries, 2)
    q[near] = bank[rng.integers(0, rows, len(near))]
    bits = np.unpackbits(q[near], axis=1)
    for i, k in enumerate(rng.integers(0, 41, len(near))):
        bits[i, rng.choice(256, k, replace=False)] ^= 1
    q[near] = np.packbits(bits, axis=1)
    return bank, q


#: Query hashes of one file's search: an adaptive first pass of 8 frames, 8 dihedral variants each
#: (vscan matches file by file, so this is the batch a search sees).
FILE_QUERIES = 64


def part_hamming(plan: Plan, rec: Recorder, deadline: float, work: Path) -> None:
    import torch

    from vscan.kernels.hamming import radius_search

    dev = plan.device
    if dev == "cuda" and not torch.cuda.is_available():
        raise SkipPart("torch sees no CUDA device")
    out = {}
    for k, rows in enumerate(plan.hamming_rows):
        if time.monotonic() > deadline - 5:
            out[str(rows)] = {"status": "skipped", "reason": "out of time share"}
            rec["rows"] = out
            continue
        bank, queries = _bank_and_queries(rows, plan.hamming_queries, seed=29 + k)
        _reset_memory(dev)
        bank_t = torch.from_numpy(bank).to(dev)
        q_t = torch.from_numpy(queries).to(dev)
        row: dict[str, Any] = {"status": "ok", "queries": len(queries), "radius": plan.radius, "by_chunk": {}}
        chunks = (16384, 262144) if dev == "cuda" else (16384,)
        pairs = None
        for chunk in chunks:  # the default chunk, and a larger one on the device
            def call() -> int:
                nonlocal pairs
                pairs = radius_search(q_t, bank_t, plan.radius, chunk=chunk)
                return len(queries)

            r = _rate(call, 2, deadline - 5, dev)
            row["by_chunk"][str(chunk)] = {"lookups_per_second": r["items_per_second"], "seconds": r["seconds"], "calls": r["calls"]}
        row["lookups_per_second"] = max(v["lookups_per_second"] for v in row["by_chunk"].values())
        best = int(max(row["by_chunk"], key=lambda c: row["by_chunk"][c]["lookups_per_second"]))
        one_file = q_t[:FILE_QUERIES]

        def file_call() -> int:
            radius_search(one_file, bank_t, plan.radius, chunk=best)
            return len(one_file)

        r = _rate(file_call, 3, deadline - 5, dev)
        row["per_file"] = {"queries": len(one_file), "chunk": best, "lookups_per_second": r["items_per_second"]}
        row["pairs_found"] = int(len(pairs[0]))
        row["memory"] = _memory(dev)
        rec["rows"] = {**out, str(rows): row}
        row["exact"] = _exact_against_cpu(bank, queries, pairs, plan.exact_sample, plan.radius)
        row["device_over_cpu_index"] = row["lookups_per_second"] / row["exact"]["cpu_index_lookups_per_second"]
        out[str(rows)] = row
        rec["rows"] = out
        del bank_t, q_t


def _exact_against_cpu(bank, queries, pairs, sample: int, radius: int) -> dict[str, Any]:
    """The device's pairs (``pairs``, of all ``queries``) against the CPU
    index's (vscan.bank.disk_index, what a scan searches a bank of over 50,000
    hashes with), and the index's own lookups/s on the same queries, after
    ``sample`` queries warmed it (numba compiles, or loads its cache)."""
    import numpy as np

    from vscan.bank.disk_index import SplitIndex

    t0 = time.perf_counter()
    index = SplitIndex.from_hashes(bank)
    build = time.perf_counter() - t0
    index.search(queries[:sample], radius)
    t0 = time.perf_counter()
    cq, cb, cd = index.search(queries, radius)
    cpu_seconds = time.perf_counter() - t0
    q, b, d = (t.cpu().numpy() for t in pairs)
    order = np.lexsort((b, q))
    q, b, d = q[order], b[order], d[order]
    same = bool(np.array_equal(q, cq) and np.array_equal(b, cb) and np.array_equal(d.astype(np.int16), cd))
    return {"queries": len(queries), "pairs_device": int(len(q)), "pairs_cpu_index": int(len(cq)), "equal": same,
            "cpu_index_build_seconds": build, "cpu_index_lookups_per_second": len(queries) / cpu_seconds}  # fmt: skip


# ---------------------------------------------------------------- part: decode


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


class SkipPart(Exception):
    """A part that cannot run here; its message is the reason."""


PART_FUNCS: dict[str, Callable[[Plan, Recorder, float, Path], None]] = {
    "tests": part_tests, "pdq": part_pdq, "hamming": part_hamming, "decode": part_decode,
}  # fmt: skip


def run_part_here(name: str, plan: Plan, out: Path, seconds: float) -> None:
    """The child process's side: run one part, write its results to ``out``."""
    rec = Recorder(out)
    rec.data.update(status="running", reason=None)
    try:
        with tempfile.TemporaryDirectory(prefix=f"gpu-check-{name}-") as tmp:
            PART_FUNCS[name](plan, rec, time.monotonic() + seconds, Path(tmp))
        rec.data["status"] = "ok"
    except SkipPart as exc:
        rec.data.update(status="skipped", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - a failed part is a result; the others still run
        import traceback

        rec.data.update(status="failed", reason=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-3000:])
    rec.save()


def run_part(name: str, plan: Plan, share: float, work: Path, dry_run: bool) -> dict[str, Any]:
    """The parent's side: the part in a child process of its own session,
    killed (its whole process group) when its share is up."""
    out = work / f"{name}.json"
    cmd = [sys.executable, "-m", "vscan.bench.gpu_check", "--part", name, "--part-out", str(out), "--part-seconds", str(share)]
    cmd += ["--dry-run"] if dry_run else []
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=share)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the part and anything it started (pytest), by the group we made
        log, _ = proc.communicate()
        timed_out = True
    result = json.loads(out.read_text()) if out.exists() else {}
    if timed_out:
        result.update(status="timed_out", reason=f"killed at the end of its {share:g} s share; results so far kept")
    elif not result or result.get("status") == "running":
        result.update(status="failed", reason=f"the part's process ended (rc {proc.returncode}) before it finished")
    result["seconds"] = time.monotonic() - t0
    result["share_seconds"] = share
    if result["status"] != "ok":
        result["log_tail"] = (log or "")[-2000:]
    return result


# ---------------------------------------------------------------- capacity


def capacity_line(parts: dict[str, Any], plan: Plan, cores: int) -> dict[str, Any]:
    """What the measured rates predict for 1080p video on this machine, via
    vscan.bench.capacity.predict (decode on the CPU decode slots, the model on
    the GPU actor: hashing at ModelWorker's rate, then the search of the
    largest bank through the CPU index, as a scan does, 8 dihedral queries a
    frame), and with decode on NVDEC instead (the lesser of decode and that
    actor); the actor's rate with the search on the device, a file's 64
    queries at a time, beside them. Assumes ``VIDEO_FPS`` fps and a keyframe every
    ``VIDEO_GOP_SECONDS`` s; adaptive's first pass decodes keyframes only
    (its second pass, near matches, is not counted: nothing matches in a
    sweep of unrelated video), ``--fps 1`` decodes every frame and keeps one a
    second (PyAV's non-reference skipping, which halves that, is not counted).
    Nor are the decode tasks' digest and resize: the decode rates are the decoder's."""
    from vscan.bench.capacity import StageRates, format_prediction, predict

    decode = parts.get("decode", {}).get("decoders", {})
    model = parts.get("pdq", {}).get("model_worker", {})
    rows = parts.get("hamming", {}).get("rows", {})
    if not model or not decode.get("cpu", {}).get("keyframes"):
        return {"status": "skipped", "reason": "needs the pdq part's model_worker and the decode part's cpu rates"}
    batch = "512" if "512" in model else max(model, key=int)
    model_fps = model[batch]["frames_sampled_per_second"]
    bank_rows = max((int(k) for k, r in rows.items() if r.get("status") == "ok" and "exact" in r), default=None)
    device_lookups = rows[str(bank_rows)]["per_file"]["lookups_per_second"] if bank_rows else None
    cpu_lookups = rows[str(bank_rows)]["exact"]["cpu_index_lookups_per_second"] if bank_rows else None
    keys_per_vs = 1.0 / max(VIDEO_GOP_SECONDS, 1.0)  # Adaptive keeps keyframes >= 1 s apart
    policies = {"adaptive": ("keyframes", keys_per_vs, keys_per_vs), "fps1": ("every_frame", 1.0, float(VIDEO_FPS))}
    gpus = 1 if plan.device == "cuda" else 0
    out: dict[str, Any] = {"status": "ok", "assumptions": {"fps": VIDEO_FPS, "gop_seconds": VIDEO_GOP_SECONDS, "model_batch": int(batch),
                           "bank_rows": bank_rows, "queries_per_frame": QUERIES_PER_FRAME, "cores": cores, "gpus": gpus,
                           "sink_and_driver": "not measured here (inf in the model, null in this file)"}}  # fmt: skip
    for name, (mode, sampled_per_vs, decoded_per_vs) in policies.items():
        if "1" not in decode["cpu"].get(mode, {}):
            out[name] = {"status": "skipped", "reason": f"no single-stream CPU decode rate for {mode} (out of time share)"}
            continue
        cpu_fps = decode["cpu"][mode]["1"]["frames_per_second"]
        model_vs = model_fps / sampled_per_vs
        inf = float("inf")
        cpu_match = cpu_lookups / QUERIES_PER_FRAME if cpu_lookups else inf  # the CPU index (a CPU model actor's search)
        rates = StageRates(files=1, video_seconds_per_file=plan.video_seconds, decode_per_slot=cpu_fps / decoded_per_vs,
                           decode_in_task=cpu_fps / decoded_per_vs, decode_frames_per_second=cpu_fps, model_per_actor=model_vs,
                           model_frames_per_actor=model_fps, model_threads=0, model_first_file_seconds=0.0,
                           match_per_second=cpu_match / sampled_per_vs, match_frames_per_second=cpu_match,
                           sink_records_per_second=inf,
                           driver_records_per_second=inf, driver_seconds_per_video_second=0.0)  # fmt: skip
        # The GPU actor hashes, then searches the bank, one after the other: its rate is the two
        # combined. A scan searches a bank of over 50,000 hashes with the CPU index (method "auto").
        search_vs = cpu_match / sampled_per_vs
        on_device_vs = device_lookups / (QUERIES_PER_FRAME * sampled_per_vs) if device_lookups else None
        actor_vs = 1 / (1 / model_vs + 1 / search_vs)
        pred = predict(rates, 1, cores, gpus, physical_cores=cores, gpu_actor_rate=actor_vs if gpus else None, device=plan.device)
        row: dict[str, Any] = {
            "hash_video_seconds_per_second": model_vs, "search_video_seconds_per_second": search_vs,
            "search_on_device_video_seconds_per_second": on_device_vs, "actor_video_seconds_per_second": actor_vs,
            "actor_with_search_on_device_video_seconds_per_second": 1 / (1 / model_vs + 1 / on_device_vs) if on_device_vs else None,
            "cpu_decode": {**pred.as_dict(), "line": format_prediction(pred).strip()},
        }  # fmt: skip
        gpu_decode = decode.get("cuda", {}).get(mode)
        if gpu_decode:
            nvdec = max(r["frames_per_second"] for r in gpu_decode.values())
            stages = {"decode (NVDEC)": nvdec / decoded_per_vs, "model": actor_vs if gpus else model_vs}
            bound = min(stages, key=stages.get)
            row["gpu_decode"] = {"stages": stages, "video_seconds_per_second": stages[bound], "bound": bound}
        else:
            row["gpu_decode"] = {"status": "skipped", "reason": decode.get("cuda", {}).get("reason", "no GPU decode rate")}
        out[name] = row
    return out


# ---------------------------------------------------------------- the run


def host_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count()}
    for mod in ("torch", "onnxruntime", "av", "numba", "numpy", "pytest", "ray"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as exc:  # noqa: BLE001 - absent or broken: say which
            info[mod] = f"absent ({type(exc).__name__})"
    try:
        import torch

        info["cuda_available"] = torch.cuda.is_available()
        if info["cuda_available"]:
            info["cuda_device"] = torch.cuda.get_device_name(0)
            info["cuda_memory_bytes"] = torch.cuda.get_device_properties(0).total_memory
            info["torch_cuda"] = torch.version.cuda
    except ImportError:
        info["cuda_available"] = False
    try:
        import onnxruntime as ort

        info["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        pass
    return info


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    plan = DRY if args.dry_run else FULL
    shares = {**plan.shares, **dict(args.share)}
    plan = replace(plan, shares=shares)
    parts = [p for p in PARTS if p in args.parts]
    t0 = time.monotonic()
    out_path = Path(args.out) if args.out else Path(os.environ.get("OUT") or ROOT / "out") / "gpu_check.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"schema": SCHEMA, "dry_run": args.dry_run, "device": plan.device, "budget_seconds": BUDGET_SECONDS,
                              "shares": {p: shares[p] for p in parts}, "plan": asdict(plan),
                              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "parts": {}}  # fmt: skip
    wheels = read_wheel_list()
    report["wheels"] = {"listed": [asdict(w) for w in wheels], "total_bytes": sum(w.size_bytes for w in wheels),
                        "limit_bytes": CARRY_LIMIT_BYTES}  # fmt: skip

    def save() -> None:
        report["wall_seconds"] = time.monotonic() - t0
        out_path.write_text(json.dumps(_clean(report), indent=1, default=_json_default))

    if "install" in parts:
        start = time.monotonic()
        if args.dry_run:
            result = {"status": "skipped", "reason": "dry run: this machine's packages"}
        else:
            result = install_wheels(time.monotonic() + shares["install"])
        report["parts"]["install"] = {**result, "seconds": time.monotonic() - start, "share_seconds": shares["install"]}
        save()
    report["vscan_shim"] = ensure_vscan_importable()
    report["host"] = host_info()
    save()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for name in parts:
            if name == "install":
                continue
            print(f"gpu_check: {name} (share {shares[name]:g} s)", flush=True)
            report["parts"][name] = run_part(name, plan, shares[name], Path(tmp), args.dry_run)
            print(f"gpu_check: {name} {report['parts'][name]['status']} in {report['parts'][name]['seconds']:.1f} s", flush=True)
            save()
    try:
        report["capacity"] = capacity_line(report["parts"], plan, os.cpu_count() or 1)
    except Exception as exc:  # noqa: BLE001 - the measurements are kept whatever the model says
        report["capacity"] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    save()
    print(summary_text(report))
    print(f"gpu_check: wrote {out_path}")
    return report


def _share(text: str) -> tuple[str, float]:
    name, _, seconds = text.partition("=")
    if name not in SHARES or not seconds:
        raise argparse.ArgumentTypeError(f"Invalid --share {text!r}. Supported: PART=SECONDS with PART in {PARTS}")
    return name, float(seconds)


def summary_text(report: dict[str, Any]) -> str:
    """A few lines for the terminal: each part's status and headline numbers."""
    lines = []
    for name, part in report["parts"].items():
        head = f"{name}: {part['status']}" + (f" ({part['reason']})" if part.get("reason") else "")
        if name == "tests" and part.get("counts"):
            head += f" {part['counts']}"
        if name == "pdq" and part.get("torch"):
            head += " torch " + ", ".join(f"{b}: {r['items_per_second']:,.0f} frames/s" for b, r in part["torch"].items())
        if name == "hamming" and part.get("rows"):
            head += " " + "; ".join(
                f"{n} rows: {r['lookups_per_second']:,.0f} lookups/s ({r['per_file']['lookups_per_second']:,.0f} at {r['per_file']['queries']} "
                f"queries a call), CPU index {r['exact']['cpu_index_lookups_per_second']:,.0f}, exact={r['exact']['equal']}"
                for n, r in part["rows"].items() if r.get("status") == "ok" and "exact" in r)  # fmt: skip
        if name == "decode" and part.get("decoders"):
            for dev, d in part["decoders"].items():
                rates = [f"{m} x{n}: {r['frames_per_second']:,.0f}" for m in ("keyframes", "every_frame") for n, r in d.get(m, {}).items()]
                head += f"\n  {dev}: " + (", ".join(rates) + " frames/s" if rates else d.get("reason", d["status"]))
        lines.append(head)
    cap = report.get("capacity", {})
    for policy in ("adaptive", "fps1"):
        if "cpu_decode" in cap.get(policy, {}):
            row = cap[policy]
            lines.append(f"capacity {policy}: {row['cpu_decode']['line']}")
            if "bound" in row.get("gpu_decode", {}):
                lines.append(f"  with NVDEC decode: {row['gpu_decode']['video_seconds_per_second']:,.0f} video-s/s, {row['gpu_decode']['bound']}-bound")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vscan.bench.gpu_check", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="CPU device, small sizes, the same code paths (what CI runs)")
    parser.add_argument("--out", help="the JSON file to write (default: $OUT/gpu_check.json, else out/gpu_check.json)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="run only these parts")
    parser.add_argument("--share", action="append", type=_share, default=[], metavar="PART=SECONDS",
                        help=f"a part's time share in seconds (default: {', '.join(f'{k}={v}' for k, v in SHARES.items())}; dry run smaller)")
    parser.add_argument("--fetch-wheels", action="store_true", help="download bench/gpu_wheels.txt into .whl/ and exit")
    parser.add_argument("--part", choices=tuple(PART_FUNCS), help=argparse.SUPPRESS)  # the child process's side
    parser.add_argument("--part-out", help=argparse.SUPPRESS)
    parser.add_argument("--part-seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fetch_wheels:
        return fetch_wheels()
    if args.part:
        ensure_vscan_importable()
        run_part_here(args.part, DRY if args.dry_run else FULL, Path(args.part_out), args.part_seconds)
        return 0
    report = run_all(args)
    return 0 if all(p["status"] in ("ok", "skipped") for p in report["parts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

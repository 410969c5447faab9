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

This module is the entry point: the run (each part in a child process),
its summary and the command line. The plan is in gpu_check_plan, the
wheels and the vscan shim in gpu_check_wheels, the parts in
gpu_check_pytest/_pdq/_hamming/_decode, the capacity line in
gpu_check_capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

if not __package__:  # run as a file (python bench/gpu_check.py), where vscan may not be installed:
    # the sibling modules below are imported as this checkout's package ``bench`` (PEP 366).
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import bench  # noqa: F401
    del sys.path[0]
    __package__ = "bench"

from .gpu_check_capacity import capacity_line
from .gpu_check_decode import part_decode
from .gpu_check_hamming import FILE_QUERIES, part_hamming  # noqa: F401 - FILE_QUERIES: re-exported (tests)
from .gpu_check_measure import Recorder, SkipPart, _clean, _json_default
from .gpu_check_pdq import part_pdq
from .gpu_check_plan import (  # noqa: F401 - the plan's constants, re-exported (tests, docs/gpu.md)
    BUDGET_SECONDS, CARRY_LIMIT_BYTES, CARRY_TOTAL_BYTES, DRY, FULL, PARTS, ROOT, SCHEMA, SHARES, Plan,
)
from .gpu_check_pytest import part_tests
from .gpu_check_wheels import ensure_vscan_importable, fetch_wheels, install_wheels, read_wheel_list

__all__ = ["Plan", "FULL", "DRY", "read_wheel_list", "main"]


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

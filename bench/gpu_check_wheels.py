"""bench/gpu_check.py's wheels (bench/gpu_wheels.txt: listed, fetched where
PyPI is reachable, installed on the GPU machine from the carried .whl/) and
making vscan importable from a bare checkout without installing it."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .gpu_check_plan import CARRY_LIMIT_BYTES, CARRY_TOTAL_BYTES, ROOT, WHEEL_DIR, WHEEL_LIST


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
    atexit.register(shutil.rmtree, shim, ignore_errors=True)  # child processes end before the run does
    pkg = shim / "vscan"
    pkg.mkdir()
    for entry in (ROOT / "scanner").iterdir():
        (pkg / entry.name).symlink_to(entry)
    for sub in ("kernels", "models", "bench"):
        (pkg / sub).symlink_to(ROOT / sub)
    sys.path.insert(0, str(shim))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(shim), os.environ.get("PYTHONPATH")) if p)
    return str(shim)

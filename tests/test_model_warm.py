"""The model stage's worker loads the memory-mapped bank's search kernel when it is built
(vscan.runtime.model_actor.ModelWorker._warm_bank_search), while the first files decode, not in
its first call: numba's import and the kernel's load from numba's cache were 0.6-1.3 s that the
scan's first record waited for (issue #30). Run in a fresh interpreter: numba loaded by another
test would hide it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_BUILD = """
import json, sys
import numpy as np
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.test_narrow_cache import _bank
from vscan.config import Runtime, ScanConfig
from vscan.runtime.model_actor import ModelWorker
path = Path(sys.argv[1])
_bank(path, np.random.default_rng(1))
before = "numba" in sys.modules
worker = ModelWorker(ScanConfig(runtime=Runtime(device="cpu")), str(path), threads=1)
from vscan.bank import mih_numba
from vscan.hashing import _hamming_kernel
blas = "scipy.linalg" in sys.modules or "scipy.linalg.cython_blas" in sys.modules
import scipy.linalg.cython_blas  # a later import of it works as ever
print(json.dumps({"before": before, "kernels": len(mih_numba.kernel.signatures), "files": worker.index.files,
                  "brute": len(_hamming_kernel.count_within.signatures), "blas": blas}))
"""


def test_the_bank_search_kernel_is_loaded_when_the_worker_is_built(tmp_path):
    done = subprocess.run([sys.executable, "-c", _BUILD, str(tmp_path / "b.bank"), str(Path(__file__).parent.parent)],
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["before"] is False  # nothing had loaded numba before the worker
    assert out["kernels"] >= 1  # the kernel compiled or loaded, before any file reached the worker
    assert out["files"] == 0  # the warm-up search narrowed no file (the bank's counters untouched)


def test_the_kernels_load_without_scipy_linalg_and_the_brute_force_loop_with_them(tmp_path):
    # numba's first kernel load imported scipy.linalg (~85 modules, ~0.2 CPU-s of the model's build) only to note
    # whether np.dot may use BLAS; it is refused for that moment, and the brute force's loop is loaded too.
    done = subprocess.run([sys.executable, "-c", _BUILD, str(tmp_path / "b.bank"), str(Path(__file__).parent.parent)],
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["blas"] is False and out["brute"] >= 2  # the loop for in-memory and read-only (memory-mapped) rows


def test_the_installed_numba_is_one_the_blas_refusal_was_checked_on():
    # The refusal leans on how numba imports (vscan.runtime.blas_check): outside the releases it was checked on it is not
    # made (0.2 CPU-s more in the model's build). A newer numba fails here: check test_the_kernels_load_without_scipy_linalg...
    # with it, then widen CHECKED_NUMBA.
    from vscan.runtime import blas_check

    release = blas_check._numba_release()
    assert release is not None and blas_check.CHECKED_NUMBA[0] <= release <= blas_check.CHECKED_NUMBA[1], release


def test_outside_the_checked_releases_nothing_is_refused(monkeypatch):
    from vscan.runtime import blas_check

    monkeypatch.setattr(blas_check, "_numba_release", lambda: (0, 99))
    monkeypatch.delitem(sys.modules, "scipy.linalg", raising=False)
    monkeypatch.delitem(sys.modules, "numba.np.arraymath", raising=False)
    monkeypatch.delitem(sys.modules, blas_check.BLAS_MODULE, raising=False)
    seen = []
    assert blas_check.load_without_blas_check(lambda: seen.append(blas_check.BLAS_MODULE in sys.modules)) is False
    assert seen == [False]  # nothing put in the way of the import


_NEEDS_BLAS = """
import json, sys
from vscan.runtime.blas_check import load_without_blas_check, refused_here
tries = []
def load():  # a kernel load that needs scipy's BLAS (as a numba that no longer treats it as optional would)
    tries.append(1)
    import scipy.linalg.cython_blas  # noqa: F401
applies = refused_here()
went = load_without_blas_check(load)
print(json.dumps({"applies": applies, "refused_load_went": went, "tries": len(tries), "loaded": "scipy.linalg.cython_blas" in sys.modules}))
"""


def test_a_load_that_needs_blas_is_made_again_without_the_refusal():
    """The refusal can cost at most its own saving, never the model's build."""
    done = subprocess.run([sys.executable, "-c", _NEEDS_BLAS], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"applies": True, "refused_load_went": False, "tries": 2, "loaded": True}, out

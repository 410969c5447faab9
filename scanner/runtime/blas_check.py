"""numba's first kernel load in the model's build, without the scipy.linalg it imports only to check for BLAS.

numba's first cached-kernel load in a process imports ``numba.np.arraymath``,
which imports ``scipy.linalg.cython_blas`` (scipy.linalg: ~85 modules,
0.16-0.25 CPU-s) only to note whether ``np.dot`` may use BLAS, and carries on
without it where that import fails; vscan's kernels use no BLAS. The model's
build refuses that import for the moment its kernels first load (issue #30:
the build is on the path to a scan's first record): 0.65 -> 0.44 CPU-s.
numba then notes no BLAS (``np.correlate`` compiled later in that process
sums in a loop; ``np.dot`` still imports scipy when compiled).

That leans on how numba imports, which is not numba's interface. So the
refusal is made only:
- for the numba releases it was checked on (``CHECKED_NUMBA``; the test
  ``tests/test_model_warm.py`` fails on a release outside them, to have it
  checked again), and where neither numba's module nor scipy.linalg is loaded;
- and never at the build's expense: a load that raises ImportError under the
  refusal (a numba that needs BLAS after all) is made again without it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["CHECKED_NUMBA", "refused_here", "load_without_blas_check"]

#: The import refused (numba.np.linalg.ensure_blas, called by numba.np.arraymath's _check_blas at its import).
BLAS_MODULE = "scipy.linalg.cython_blas"
#: numba releases (major, minor), first and last, whose arraymath treats that import as optional, as checked.
CHECKED_NUMBA = ((0, 60), (0, 68))


def _numba_release() -> tuple[int, int] | None:
    """The installed numba's (major, minor): its ``__version__`` where it is imported (the model's build imports it
    first: free), else its metadata (~15 ms, numba not imported); None if unknown."""
    from importlib.metadata import PackageNotFoundError, version

    numba = sys.modules.get("numba")
    try:
        major, minor = (numba.__version__ if numba is not None else version("numba")).split(".")[:2]
        return int(major), int(minor)
    except (PackageNotFoundError, ValueError, AttributeError):
        return None


def refused_here() -> bool:
    """Whether the refusal applies in this process now (module docstring)."""
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules or BLAS_MODULE in sys.modules:
        return False
    release = _numba_release()
    return release is not None and CHECKED_NUMBA[0] <= release <= CHECKED_NUMBA[1]


@contextmanager
def _refused() -> Iterator[None]:
    sys.modules[BLAS_MODULE] = None  # type: ignore[assignment]  (import refused, before its packages load)
    try:
        yield
    finally:
        if sys.modules.get(BLAS_MODULE, 0) is None:
            del sys.modules[BLAS_MODULE]


def load_without_blas_check(load: Callable[[], None]) -> bool:
    """``load()`` (the kernels' first load) with the BLAS check's import refused where that applies; where it then
    raises ImportError, ``load()`` again with nothing refused. Returns whether the refused load went through."""
    if not refused_here():
        load()
        return False
    try:
        with _refused():
            load()
        return True
    except ImportError:
        load()  # numba needed it after all: the refusal may cost its own saving, never the build
        return False

"""Shared fixtures: the ../shared test data, device parametrisation, markers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


needs_cuda = pytest.mark.needs_cuda
#: Use as ``@pytest.mark.parametrize("device", DEVICES)``.
DEVICES = ("cpu", pytest.param("cuda", marks=needs_cuda))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    require_cuda = os.environ.get("VSCAN_REQUIRE_CUDA") == "1"
    have_cuda = _cuda()
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU (set VSCAN_REQUIRE_CUDA=1 to make this a failure)")
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "needs_cuda" in item.keywords and not have_cuda and not require_cuda:
            item.add_marker(skip_cuda)
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder beside the project; skip without it, fail under CI."""
    if not (SHARED / "data").is_dir():
        message = f"../shared test data not found at {SHARED}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; under CI=true it is required")
        pytest.skip(f"{message}: tests that need it are skipped")
    return SHARED


@pytest.fixture(scope="session")
def pdq_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "pdq"


@pytest.fixture(scope="session")
def vpdq_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "vpdq"

"""Shared fixtures: the ../shared test data, device parametrisation, markers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: ../shared beside the checkout; VSCAN_SHARED_DIR elsewhere (bench/gpu_check.py carries its PDQ images in .whl/).
SHARED = Path(os.environ.get("VSCAN_SHARED_DIR") or ROOT.parent / "shared")


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


#: The slowest test files (seconds in this stop's two-worker clean run, at load 30-46: 370 down to 122), started
#: first. Under pytest-xdist's ``--dist loadfile`` (.ci/run) a file is one unit of work handed to the next free worker
#: in collection order, so a long file collected last would run alone at the end while the other worker idles.
SLOW_FIRST = ("test_embedded.py", "test_hostile_paths.py", "test_objectstore_cloud.py", "test_gpu_check.py",
              "test_objectstore.py", "test_cluster.py", "test_vpdq_conformance.py", "test_readme.py",
              "test_region_probe.py", "test_cli.py", "test_bad_inputs.py", "test_throughput.py", "test_decode_once.py",
              "test_resume.py", "test_stages.py")  # fmt: skip


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: every file's own order kept
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


@pytest.fixture(scope="session")
def ray_local() -> str:
    """One local Ray for the whole run (starting one costs 4-20 s here); yields its address.
    Always a new one of this process's own (``address="local"``): never a cluster named in
    RAY_ADDRESS or registered by ``ray start``, nor another pytest process's Ray."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_address(ray_local: str) -> str:
    """The address of the session's Ray, for `vscan scan --ray-address` subprocesses."""
    return ray_local


PG_ENV = "VSCAN_TEST_POSTGRES_DSN"


@pytest.fixture(scope="session")
def pg_admin_dsn():
    """The PostgreSQL server the sink tests use (.ci/start-postgres); skip without it, fail under CI."""
    dsn = os.environ.get(PG_ENV)
    if not dsn:
        message = f"{PG_ENV} is not set (.ci/start-postgres starts a server and prints one)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; under CI=true the PostgreSQL sink tests are required")
        pytest.skip(message)
    return dsn


@pytest.fixture
def pg_database(request):
    """Fresh PostgreSQL databases for one test: ``pg_database()`` makes one and returns its DSN;
    every one made is dropped afterwards. Skips (fails under CI) without a server, when called."""
    import uuid

    made: list[tuple[str, str]] = []

    def make() -> str:
        import psycopg
        from psycopg import sql

        admin = request.getfixturevalue("pg_admin_dsn")
        name = f"vscan_t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append((admin, name))
        return f"{admin.rpartition('/')[0]}/{name}"

    yield make
    if made:
        import psycopg
        from psycopg import sql

        for admin, name in made:
            with psycopg.connect(admin, autocommit=True) as db:
                db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

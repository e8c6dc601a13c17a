"""A real single-node Ceph for the ``rados`` store, brought up once per session on loopback.

``scripts/ceph-dev.sh`` installs Debian's packages and runs one mon and one memstore OSD
under a temporary directory. In CI (``CI=true``) Ceph is part of the suite: any problem
bringing it up is an error. Elsewhere the rados tests skip, saying why, when we are not
root, the packages cannot be installed or the daemons do not start.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI") == "true"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ceph-dev.sh"


def _unavailable(reason: str) -> None:
    """Fail in CI, where a broken Ceph is a broken suite; skip anywhere else."""
    if IN_CI:
        pytest.fail(f"Ceph is required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _script(*args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )
    if done.returncode:
        raise RuntimeError(f"ceph-dev.sh {' '.join(args)}: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def _import_rados() -> Any:
    """Debian's module, made importable in this venv (the .pth only counts from the next
    interpreter start, so also put its folder on sys.path now)."""
    _script("link-python", sys.prefix)
    folder = str(Path(sys.prefix) / "ceph-system")
    if folder not in sys.path:
        sys.path.append(folder)
    return importlib.import_module("rados")


@pytest.fixture(scope="session")
def ceph_conf() -> Iterator[Path]:
    if os.geteuid() != 0:
        _unavailable("the rados tests run a Ceph cluster and install it: they need root")
    try:
        _script("install", timeout=600)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        _unavailable(f"cannot install Ceph's Debian packages: {error}")
    try:
        _import_rados()
    except (RuntimeError, ImportError) as error:
        _unavailable(f"cannot import Debian's rados module: {error}")
    directory = Path(tempfile.mkdtemp(prefix="nefos-ceph-"))
    try:
        for attempt in range(3):
            try:
                conf = Path(_script("start", str(directory), timeout=120).splitlines()[-1])
                break
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                # Another run's Ceph took the monitor's port between the script's check
                # and the bind (it prefers 3300): a new start picks again.
                if "Address already in use" in str(error) and attempt < 2:
                    continue
                _unavailable(f"the Ceph daemons did not start: {error}")
        yield conf
    finally:
        _script("stop", str(directory), timeout=60)


@pytest.fixture(scope="session")
def ceph_admin(ceph_conf: Path) -> Iterator[Any]:
    """One admin connection for the fixtures' pool management."""
    rados = importlib.import_module("rados")
    cluster = rados.Rados(conffile=str(ceph_conf), rados_id="admin")
    cluster.connect(timeout=30)
    yield cluster
    cluster.shutdown()


@pytest.fixture
def rados_store_factory(ceph_conf: Path, ceph_admin: Any) -> Iterator[Callable[[], Awaitable[Any]]]:
    """Each store on a pool of its own, so tests never see each other's objects."""
    from nefos.storage.rados import RadosStore

    pools: list[str] = []

    async def make() -> RadosStore:
        pool = f"test-{uuid.uuid4().hex[:12]}"
        await asyncio.to_thread(ceph_admin.create_pool, pool)
        pools.append(pool)
        return RadosStore(ceph_conf, pool)

    yield make
    for pool in pools:
        ceph_admin.delete_pool(pool)

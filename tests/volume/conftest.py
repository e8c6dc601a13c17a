"""Volume fixtures: two users with tokens and an image of alice's (the Block Storage
API), and the node: a real ``nefos volumed`` on the test's deployment."""

from __future__ import annotations

import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from nefos.core.config import Settings
from nefos.server.engines import Engines
from nefos.volume.service import Volumes
from tests.volume.node import Node

V3 = "/volume/v3"
V2 = "/volume/v2"
SYNNEFO = "/cyclades/volume/v2.0"
MiB = 1 << 20
GiB = 1 << 30


async def stream(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), MiB):
        yield data[start : start + MiB]


@pytest.fixture
async def user(engines: Engines) -> str:
    """A user of the volume service's own tests."""
    made, _ = await engines.identity.create_user(f"v-{uuid.uuid4().hex[:8]}@example.org")
    return str(made.id)


@pytest.fixture
def volumes(engines: Engines) -> Volumes:
    return engines.volumes


@pytest.fixture
async def people(engines: Engines) -> dict[str, tuple[str, dict[str, str]]]:
    people = {}
    for name in ("alice", "bob"):
        user, token = await engines.identity.create_user(f"{name}-{uuid.uuid4().hex[:6]}@x.org")
        people[name] = (str(user.id), {"X-Auth-Token": token})
    return people


@pytest.fixture
async def image(engines: Engines, people) -> str:
    """A 5 MiB image of alice's (two blocks), private."""
    alice = people["alice"][0]
    await engines.storage.create_container(alice, "images")
    data = bytes(range(256)) * (5 * MiB // 256)
    await engines.storage.put_object(alice, "images", "os.img", stream(data))
    registered = await engines.images.register(alice, f"pithos://{alice}/images/os.img", "OS")
    return str(registered.id)


@pytest.fixture
def node(settings: Settings) -> Iterator[Node]:
    """volumed on the test's deployment. Its run directory is short (a unix socket's
    path is at most 107 bytes), under /tmp."""
    run_dir = Path(tempfile.mkdtemp(prefix="nv-", dir="/tmp"))
    node = Node(settings, run_dir, settings.data_dir / "volumed.log")
    node.start()
    try:
        yield node
    finally:
        node.kill(signal.SIGTERM)
        shutil.rmtree(run_dir, ignore_errors=True)

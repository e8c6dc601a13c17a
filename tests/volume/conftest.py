"""Block Storage API fixtures: two users with tokens, and an image of alice's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from nefos.server.engines import Engines

V3 = "/volume/v3"
V2 = "/volume/v2"
SYNNEFO = "/cyclades/volume/v2.0"
MiB = 1 << 20
GiB = 1 << 30


async def stream(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), MiB):
        yield data[start : start + MiB]


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

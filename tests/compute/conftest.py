"""Compute runs on both buses: in-process, and RabbitMQ when ``NEFOS_TEST_AMQP_URL`` is
set (as in CI), each test with its own exchange and dispatcher queue."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from nefos.compute.service import Compute, ServerView
from nefos.core.bus import AmqpBus, MemoryBus
from nefos.core.config import Settings
from nefos.quotas.service import project_holder, user_holder
from nefos.server.engines import Engines
from tests.backends.faulty import FaultyEmbeddedCluster

AMQP_URL = os.environ.get("NEFOS_TEST_AMQP_URL")
BUSES = ["memory", pytest.param("amqp", marks=pytest.mark.skipif(not AMQP_URL, reason="no AMQP"))]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.compute.embedded_delay = 0.02
    settings.compute.dispatcher_queue = f"nefos-test-events-{uuid.uuid4().hex[:12]}"
    return settings


@pytest.fixture(params=BUSES)
async def engines(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Engines]:
    exchange = f"nefos-test-{uuid.uuid4().hex[:12]}"
    bus = MemoryBus() if request.param == "memory" else AmqpBus(AMQP_URL or "", exchange=exchange)
    engines = Engines(settings, bus=bus, embedded=FaultyEmbeddedCluster)
    await engines.start()
    try:
        yield engines
    finally:
        await engines.close()
        if request.param == "amqp":
            cleaner = AmqpBus(AMQP_URL or "", exchange=exchange)
            await cleaner.start()
            queue = settings.compute.dispatcher_queue
            await cleaner.delete_queue(queue)
            await cleaner.delete_exchange()
            await cleaner.close()


@pytest.fixture
async def compute(engines: Engines) -> AsyncIterator[Compute]:
    await engines.start_dispatcher()
    await engines.compute.ensure_embedded()
    yield engines.compute


async def stream(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def world(engines: Engines, compute: Compute) -> dict:
    user, _ = await engines.identity.create_user(f"vm-{uuid.uuid4().hex[:6]}@example.org")
    uid = str(user.id)
    await engines.storage.create_container(uid, "images")
    await engines.storage.put_object(uid, "images", "debian", stream(b"disk image"))
    image = await engines.images.register(uid, f"pithos://{uid}/images/debian", "Debian")
    small = await compute.create_flavor(1, 512, 10)
    big = await compute.create_flavor(2, 1024, 10)
    return {"user": uid, "image": str(image.id), "small": small, "big": big}


async def until(compute: Compute, user: str, server_id: int, status: str) -> ServerView:
    for _ in range(500):
        view = await compute.server(user, server_id)
        if view.status == status and not view.server.task:
            return view
        await asyncio.sleep(0.01)
    raise AssertionError(f"server {server_id} stayed {view.status} ({view.server.task})")


async def usage(engines: Engines, user: str, resource: str) -> tuple[int, int]:
    """The holding once its commissions are settled (the update path resolves them
    just after it commits the job's outcome)."""
    for _ in range(200):
        for holding in await engines.quotas.holdings([user_holder(user)]):
            if holding.resource == resource and holding.source == project_holder(user):
                found = holding.usage_min, holding.usage_max
        if found[0] == found[1]:
            return found
        await asyncio.sleep(0.01)
    return found


# The API tests read everything a server shows, Synnefo's fields included: they run on the
# Synnefo-dialect endpoint. The OpenStack one differs only as compute.dialect says, which
# test_dialects walks against both.
COMPUTE = "/cyclades/compute/v2.0"


@pytest.fixture
async def setup(engines: Engines) -> dict:
    """Two users of the API, alice with a private image, and the default flavors."""
    await engines.start_dispatcher()
    await engines.compute.ensure_embedded()
    flavors = await engines.compute.ensure_default_flavors()
    people = {}
    for name in ("alice", "bob"):
        user, token = await engines.identity.create_user(f"{name}-{uuid.uuid4().hex[:6]}@x.org")
        people[name] = (str(user.id), {"X-Auth-Token": token})
    alice = people["alice"][0]
    await engines.storage.create_container(alice, "images")
    await engines.storage.put_object(alice, "images", "os", stream(b"disk"))
    image = await engines.images.register(alice, f"pithos://{alice}/images/os", "OS")
    return {"people": people, "image": str(image.id), "flavor": str(flavors[0].id)}


async def wait(client: httpx.AsyncClient, auth: dict, server_id: str, status: str) -> dict:
    for _ in range(500):
        server = (await client.get(f"{COMPUTE}/servers/{server_id}", headers=auth)).json()["server"]
        if server["status"] == status and not server["SNF:task_state"]:
            return server
        await asyncio.sleep(0.01)
    raise AssertionError(server)

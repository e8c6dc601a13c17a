"""Compute runs on both buses: in-process, and RabbitMQ when ``NEFOS_TEST_AMQP_URL`` is
set (as in CI), each test with its own exchange and dispatcher queue."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from nefos.core.bus import AmqpBus, MemoryBus
from nefos.core.config import Settings
from nefos.core.engines import Engines

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
    engines = Engines(settings, bus=bus)
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

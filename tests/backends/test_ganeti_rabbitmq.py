"""RabbitMQ restarted mid-run, on the real Ganeti path (issue 6's fault injection).

nefos' dispatcher and ``nefos ganeti eventd`` (the real command, in its own process) share
a private broker (``tests/broker.py``; the machine's RabbitMQ is not ours to restart). Ganeti
jobs start before the broker goes down, more are submitted and finish while it is down,
and once it is back the update path must catch up by itself: eventd keeps what it could not
publish and the dispatcher's consumer comes back. A reconcile pass then finds nothing to
repair and no commission is left pending.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest

from nefos.compute.reconcile import reconcile_servers
from nefos.compute.service import CLIENTKEY
from nefos.core.config import Settings, ensure_data_dir
from nefos.server.engines import Engines
from tests.backends.conftest import (
    Ganeti,
    add_ganeti_backend,
    log_text,
    number_servers_apart,
    remove_leftovers,
    start_eventd,
    stop_eventd,
    tenant,
)
from tests.backends.test_ganeti_backend import until_status
from tests.broker import Broker
from tests.compute.conftest import usage

MiB = 1 << 20


def bus_url(broker: Broker) -> str:
    # aio-pika retries every 5 s by default; 1 s keeps the test short.
    return f"{broker.url}?reconnect_interval=1"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, private_broker: Broker) -> Settings:
    return ensure_data_dir(
        Settings(
            data_dir=tmp_path / "data",
            database_url=database_url,
            bus_url=bus_url(private_broker),
            log_level="WARNING",
        )
    )


async def test_rabbitmq_restart_mid_run(
    ganeti: Ganeti, private_broker: Broker, engines: Engines, tmp_path: Path, timings
) -> None:
    compute = engines.compute
    await number_servers_apart(engines, 7)
    log = tmp_path / "eventd.log"
    eventd = await start_eventd(log, bus_url(private_broker))
    ids: list[int] = []
    try:
        backend = await add_ganeti_backend(engines, ganeti)
        cluster = compute.cluster(backend)
        await engines.start_dispatcher()
        ours = await tenant(engines, "r")
        user = ours.user

        async def create(name: str) -> int:
            view, _ = await compute.create_server(user, name, ours.image_id, ours.flavor_id)
            ids.append(view.server.id)
            return view.server.id

        async def job_of(server_id: int) -> int:
            job = (await compute.server(user, server_id)).server.task_job_id
            assert job is not None
            return job

        stopped_before, stopped_during, untouched = [await create(n) for n in "abc"]
        for server_id in ids:
            await until_status(engines, user, server_id, "ACTIVE")

        # Jobs under way when the broker goes down...
        await compute.shutdown(user, stopped_before)
        created_before = await create("d")
        running = [await job_of(stopped_before), await job_of(created_before)]
        outage, stopping = time.monotonic(), time.time()
        await asyncio.to_thread(private_broker.stop)
        # ...and jobs submitted and finished while it is down: nothing can be published.
        await compute.shutdown(user, stopped_during)
        created_during = await create("e")
        ends = []
        for job in [*running, await job_of(stopped_during), await job_of(created_during)]:
            done = await cluster.wait(job, within=120)
            assert done["status"] == "success"
            ends.append(done["end_ts"][0] + done["end_ts"][1] / 1e6)
        assert max(ends[:2]) > stopping  # a job was still running as the broker went down
        statuses = {i: (await compute.server(user, i)).status for i in ids}
        assert statuses[stopped_during] == "ACTIVE" and statuses[created_during] == "BUILD"
        assert eventd.returncode is None  # waiting for the broker, not dead
        await asyncio.to_thread(private_broker.start)

        # The update path catches up on its own: no reconcile has run yet.
        expected = {
            stopped_before: "STOPPED",
            stopped_during: "STOPPED",
            untouched: "ACTIVE",
            created_before: "ACTIVE",
            created_during: "ACTIVE",
        }
        for server_id, status in expected.items():
            await until_status(engines, user, server_id, status, within=90)
        timings.append(("broker outage -> all servers right", time.monotonic() - outage))
        assert await engines.bus.dead_letters(engines.settings.compute.dispatcher_queue) == []

        findings = await reconcile_servers(compute, fix=True, stale_after=dt.timedelta(0))
        assert [f for f in findings if f.server_id in ids] == []
        assert await engines.quotas.pending(CLIENTKEY) == []
        assert await usage(engines, user, "cyclades.vm") == (5, 5)
        assert await usage(engines, user, "cyclades.ram") == (3 * 128 * MiB, 3 * 128 * MiB)

        # And it keeps working after the outage: every server deleted through it.
        for server_id in ids:
            await compute.delete_server(user, server_id)
        for server_id in ids:
            await until_status(engines, user, server_id, "DELETED")
        assert await usage(engines, user, "cyclades.vm") == (0, 0)
        assert await engines.quotas.pending(CLIENTKEY) == []
    finally:
        if private_broker.process is None:  # failed mid-outage: let teardown disconnect
            await asyncio.to_thread(private_broker.start)
        code = await stop_eventd(eventd)
        await remove_leftovers(engines, ids)
    output = log_text(log)
    # aiormq logs the broker's close with a traceback of its own; nefos must log no error.
    assert code == 0 and " ERROR nefos" not in output, output
    assert "bus connection lost" in output or "will retry" in output, output

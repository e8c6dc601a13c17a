"""Fault injection on the real Ganeti path: events lost while the event daemon is down,
a restarted daemon replaying them, and instances changed directly on the cluster behind
nefos' back. After one reconcile pass no server disagrees with Ganeti and no commission
is left pending. RabbitMQ restarted mid-run is in test_ganeti_rabbitmq.py, on a broker
of the test's own."""

from __future__ import annotations

import asyncio
import datetime as dt

from nefos.backends import base
from nefos.backends.ganeti.eventd import QueueWatcher
from nefos.backends.ops import RemoveInstance, ShutdownInstance, StartupInstance
from nefos.compute.reconcile import reconcile_servers
from nefos.compute.service import CLIENTKEY
from nefos.server.engines import Engines
from tests.backends.conftest import (
    add_ganeti_backend,
    number_servers_apart,
    remove_leftovers,
    tenant,
)
from tests.backends.test_ganeti_backend import until_status
from tests.compute.conftest import usage

MiB = 1 << 20


async def test_lost_events_restarts_and_changes_behind_the_back(ganeti, engines: Engines) -> None:
    compute = engines.compute
    await number_servers_apart(engines, 8)

    def start_eventd(replay_seconds: float) -> tuple[QueueWatcher, asyncio.Task[None]]:
        watcher = QueueWatcher(
            ganeti.queue_dir, "ganeti1", engines.bus.publish, replay_seconds=replay_seconds
        )
        return watcher, asyncio.create_task(watcher.run())

    async def stop(task: asyncio.Task[None]) -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    watcher, eventd = start_eventd(0)
    ids: list[int] = []
    try:
        await asyncio.wait_for(watcher.ready.wait(), 10)
        backend = await add_ganeti_backend(engines, ganeti)
        await engines.start_dispatcher()
        ours = await tenant(engines, "f")
        user = ours.user
        for name in ("replayed", "reconciled", "stopped-behind", "removed-behind"):
            view, _ = await compute.create_server(user, name, ours.image_id, ours.flavor_id)
            ids.append(view.server.id)
        for server_id in ids:
            await until_status(engines, user, server_id, "ACTIVE")
        replayed, reconciled, stopped_behind, removed_behind = ids
        cluster = compute.cluster(backend)

        # The event daemon dies; two shutdowns finish on Ganeti unheard.
        await stop(eventd)
        await compute.shutdown(user, replayed)
        await compute.shutdown(user, reconciled)
        for server_id in (replayed, reconciled):
            job = (await compute.server(user, server_id)).server.task_job_id
            assert job is not None
            await cluster.wait(job, within=60)
            assert (await compute.server(user, server_id)).server.task == "STOP"

        # A restarted daemon replays recent jobs: both shutdowns are heard after all.
        watcher, eventd = start_eventd(600)
        await until_status(engines, user, replayed, "STOPPED")
        await until_status(engines, user, reconciled, "STOPPED")

        # An administrator starts one on the cluster directly (RAPI, as gnt-instance
        # would): no task of nefos, yet its event moves the server and a forced
        # commission charges the running resources.
        name = base.instance_name(reconciled)
        await cluster.wait(await cluster.submit(StartupInstance(name)), within=60)
        await until_status(engines, user, reconciled, "ACTIVE")
        assert await usage(engines, user, "cyclades.ram") == (3 * 128 * MiB, 3 * 128 * MiB)

        # With the daemon down again, changes behind nefos' back go unheard: the
        # reconciler finds and repairs them.
        await stop(eventd)
        name = base.instance_name(stopped_behind)
        await cluster.wait(await cluster.submit(ShutdownInstance(name, 0)), within=60)
        name = base.instance_name(removed_behind)
        await cluster.wait(await cluster.submit(ShutdownInstance(name, 0)), within=60)
        await cluster.wait(await cluster.submit(RemoveInstance(name)), within=60)
        stale = dt.timedelta(0)
        findings = [
            f
            for f in await reconcile_servers(compute, fix=True, stale_after=stale)
            if f.server_id in ids
        ]
        assert {f.server_id for f in findings} == {stopped_behind, removed_behind}
        assert all(f.fixed for f in findings)
        again = await reconcile_servers(compute, fix=False, stale_after=stale)
        assert [f for f in again if f.server_id in ids] == []

        statuses = {i: (await compute.server(user, i)).status for i in ids}
        assert statuses == {
            replayed: "STOPPED",
            reconciled: "ACTIVE",
            stopped_behind: "STOPPED",
            removed_behind: "DELETED",
        }
        assert await engines.quotas.pending(CLIENTKEY) == []
        assert await usage(engines, user, "cyclades.vm") == (3, 3)
        assert await usage(engines, user, "cyclades.ram") == (128 * MiB, 128 * MiB)
        assert await usage(engines, user, "cyclades.total_ram") == (3 * 128 * MiB, 3 * 128 * MiB)
        watcher, eventd = start_eventd(0)
        await asyncio.wait_for(watcher.ready.wait(), 10)
        for server_id in (replayed, reconciled, stopped_behind):
            await compute.delete_server(user, server_id)
        for server_id in (replayed, reconciled, stopped_behind):
            await until_status(engines, user, server_id, "DELETED")
        assert await usage(engines, user, "cyclades.vm") == (0, 0)
    finally:
        await stop(eventd)
        await remove_leftovers(engines, ids)

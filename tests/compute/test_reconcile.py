"""Fault injection on the embedded backend: lost events and changes made behind nefos'
back; one reconcile pass leaves no mismatch and no pending commission."""

from __future__ import annotations

import asyncio
import datetime as dt

from nefos.backends.base import instance_name
from nefos.compute.reconcile import reconcile_servers
from nefos.compute.service import CLIENTKEY, Compute
from nefos.server.engines import Engines
from tests.backends.faulty import FaultyEmbeddedCluster
from tests.compute.conftest import until, usage

NOW = dt.timedelta(0)


async def test_lost_events_and_changes_behind_the_back(engines: Engines, compute: Compute, world):
    user = world["user"]
    cluster = compute.cluster(await compute.backend("embedded"))
    assert isinstance(cluster, FaultyEmbeddedCluster)
    views = []
    for name in ("lost", "stopped", "gone", "resized"):
        view, _ = await compute.create_server(user, name, world["image"], world["small"].id)
        views.append(view)
    for view in views:
        await until(compute, user, view.server.id, "ACTIVE")
    lost, stopped, gone, resized = (v.server.id for v in views)

    cluster.drop_events = 1.0  # every event of the next job is lost
    await compute.shutdown(user, lost)
    await cluster.idle()
    cluster.drop_events = 0.0
    assert (await compute.server(user, lost)).server.task == "STOP"  # never heard back
    cluster.change_behind_back(instance_name(stopped), running=False)
    cluster.change_behind_back(instance_name(gone), running=None)
    cluster.change_behind_back(instance_name(resized), vcpus=2, memory=1024)
    cluster.change_behind_back("snf-999", running=True)

    report = await reconcile_servers(compute, fix=False, stale_after=NOW)
    problems = {(f.instance, f.problem.split(",")[0]) for f in report}
    assert problems == {
        (instance_name(lost), "operstate STARTED"),
        (instance_name(stopped), "operstate STARTED"),
        (instance_name(gone), "missing in the backend"),
        (instance_name(resized), "flavor 1 CPUs/512 MiB"),
        ("snf-999", "unknown to nefos"),
    }
    assert not any(f.fixed for f in report)

    fixed = await reconcile_servers(compute, fix=True, stale_after=NOW)
    assert all(f.fixed for f in fixed) and len(fixed) == 5
    await cluster.idle()  # the removal of snf-999
    assert await reconcile_servers(compute, fix=False, stale_after=NOW) == []

    assert (await compute.server(user, lost)).status == "STOPPED"
    assert (await compute.server(user, stopped)).status == "STOPPED"
    assert (await compute.server(user, gone)).status == "DELETED"
    assert (await compute.server(user, resized)).flavor.id == world["big"].id
    assert "snf-999" not in await cluster.instances()
    assert await engines.quotas.pending(CLIENTKEY) == []
    # Two servers exist, one running with the big flavor: quotas say exactly that.
    assert await usage(engines, user, "cyclades.vm") == (3, 3)
    assert await usage(engines, user, "cyclades.cpu") == (2, 2)
    assert await usage(engines, user, "cyclades.total_cpu") == (4, 4)


async def test_unreachable_backend_is_reported_not_guessed(compute: Compute, world):
    cluster = compute.cluster(await compute.backend("embedded"))

    async def broken() -> dict:
        raise ConnectionError("RAPI timed out")

    cluster.instances = broken  # type: ignore[method-assign]
    (finding,) = await reconcile_servers(compute, fix=True, stale_after=NOW)
    assert "unreachable" in finding.problem and not finding.fixed
    await asyncio.sleep(0)


async def test_a_build_whose_events_were_lost_gets_its_launch_time(compute: Compute, world):
    user = world["user"]
    cluster = compute.cluster(await compute.backend("embedded"))
    assert isinstance(cluster, FaultyEmbeddedCluster)
    cluster.drop_events = 1.0
    view, _ = await compute.create_server(user, "quiet", world["image"], world["small"].id)
    await cluster.idle()
    cluster.drop_events = 0.0
    assert (await compute.server(user, view.server.id)).server.launched is None
    await reconcile_servers(compute, fix=True, stale_after=NOW)
    fixed = await compute.server(user, view.server.id)
    assert fixed.status == "ACTIVE" and fixed.server.launched is not None
